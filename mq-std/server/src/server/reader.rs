//! A connection's reader task: reads while the broker task has room for its
//! input (a semaphore of bytes it has not consumed yet), and hands what it
//! read to the broker task, from a byte stream ([`Stream`]) or as the chunks
//! an in-memory pipe's client wrote ([`PipeReader`]).

use std::future::Future;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use mq_core::broker::ConnId;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Semaphore, mpsc};

use super::command::Cmd;
use crate::pipe::PipeReader;

/// Where a connection's input comes from.
pub(super) trait Source: Send + 'static {
    /// At most `want` bytes, at least one; `None` at the end of the input
    /// (or on an error).
    fn read(&mut self, want: usize) -> impl Future<Output = Option<Bytes>> + Send;
}

/// A byte stream, read into chunks of the reader's.
pub(super) struct Stream<R> {
    read: R,
    buf: BytesMut,
}

impl<R> Stream<R> {
    pub(super) fn new(read: R, chunk: usize) -> Self {
        Stream {
            read,
            buf: BytesMut::with_capacity(chunk),
        }
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> Source for Stream<R> {
    async fn read(&mut self, want: usize) -> Option<Bytes> {
        self.buf.reserve(want);
        match (&mut self.read)
            .take(want as u64)
            .read_buf(&mut self.buf)
            .await
        {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(self.buf.split().freeze()),
        }
    }
}

impl Source for PipeReader {
    async fn read(&mut self, want: usize) -> Option<Bytes> {
        PipeReader::read(self, want).await
    }
}

pub(super) async fn read_loop(
    mut read: impl Source,
    conn: ConnId,
    budget: Arc<Semaphore>,
    chunk: usize,
    tx: mpsc::UnboundedSender<Cmd>,
) {
    loop {
        // Wait until the broker has consumed enough of what we gave it.
        let want = chunk.min(budget.available_permits().max(1));
        let Ok(permit) = budget.acquire_many(want as u32).await else {
            break;
        };
        let Some(bytes) = read.read(want).await else {
            break;
        };
        permit.forget();
        if want > bytes.len() {
            budget.add_permits(want - bytes.len());
        }
        if tx.send(Cmd::Input(conn, bytes)).is_err() {
            return;
        }
    }
    let _ = tx.send(Cmd::Closed(conn));
}
