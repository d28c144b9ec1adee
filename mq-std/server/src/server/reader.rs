//! A connection's reader task: reads while the broker task has room for its
//! input (a semaphore of bytes it has not consumed yet), and hands what it
//! read to the broker task.

use std::sync::Arc;

use bytes::BytesMut;
use mq_core::broker::ConnId;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Semaphore, mpsc};

use super::command::Cmd;

pub(super) async fn read_loop(
    mut read: impl AsyncRead + Unpin,
    conn: ConnId,
    budget: Arc<Semaphore>,
    chunk: usize,
    tx: mpsc::UnboundedSender<Cmd>,
) {
    let mut buf = BytesMut::with_capacity(chunk);
    loop {
        // Wait until the broker has consumed enough of what we gave it.
        let want = chunk.min(budget.available_permits().max(1));
        let Ok(permit) = budget.acquire_many(want as u32).await else {
            break;
        };
        buf.reserve(want);
        let n = match (&mut read).take(want as u64).read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        permit.forget();
        if want > n {
            budget.add_permits(want - n);
        }
        if tx.send(Cmd::Input(conn, buf.split().freeze())).is_err() {
            return;
        }
    }
    let _ = tx.send(Cmd::Closed(conn));
}
