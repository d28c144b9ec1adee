//! A connection's two tasks: the reader, which hands bytes to the broker task
//! within its input budget, and the writer, which writes the chunks the
//! broker task queued and says when a paused connection may send again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use mq_core::broker::ConnId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};

use super::command::Cmd;

/// Sleeps until `until`, or forever.
pub(crate) async fn sleep(until: Option<std::time::Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

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

pub(super) async fn write_loop(
    mut write: impl AsyncWrite + Unpin,
    mut rx: mpsc::Receiver<Bytes>,
    conn: ConnId,
    paused: Arc<AtomicBool>,
    tx: mpsc::UnboundedSender<Cmd>,
) {
    while let Some(chunk) = rx.recv().await {
        // TLS may keep records it encrypted and the socket did not take yet
        // until a flush: flush once nothing else is queued.
        let sent = match write.write_all(&chunk).await {
            Ok(()) if rx.is_empty() => write.flush().await,
            other => other,
        };
        if sent.is_err() {
            let _ = tx.send(Cmd::Closed(conn));
            return;
        }
        if paused.load(Ordering::Acquire) {
            let _ = tx.send(Cmd::Writable(conn));
        }
    }
    let _ = write.shutdown().await;
}
