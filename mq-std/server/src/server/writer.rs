//! A connection's writer task: sends the chunks the broker task hands it, in
//! order. The chunks that queued up while it wrote go out together, in one
//! vectored write where the transport takes one (a plain TCP socket; TLS
//! writes them one after another).
//!
//! On plain TCP the broker task writes to the socket itself while the writer
//! has nothing queued ([`SharedTcp`], [`Queued`]): a chunk the socket takes at
//! once costs no wake-up of the writer; what it does not take goes to the
//! writer, and nothing is written directly again until the writer caught up,
//! so the bytes stay in order.
//!
//! On an in-memory pipe ([`PipeWriter`]) the chunks go to the client as they
//! are, with no write.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use mq_core::broker::ConnId;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use super::command::Cmd;
use crate::pipe::PipeWriter;

/// The most chunks sent with one write.
const GATHER: usize = 64;

/// Chunks handed to a writer and not written yet: the broker task writes
/// directly only while there are none.
#[derive(Clone, Default)]
pub(super) struct Queued(Arc<AtomicUsize>);

impl Queued {
    /// Nothing is waiting in the writer: a direct write goes after
    /// everything written before.
    pub(super) fn is_empty(&self) -> bool {
        self.0.load(Ordering::Acquire) == 0
    }

    /// A chunk is on its way to the writer (counted before it is sent).
    pub(super) fn add(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    fn written(&self, chunks: usize) {
        self.0.fetch_sub(chunks, Ordering::AcqRel);
    }
}

/// A plain TCP connection's write half, shared by its writer task and the
/// broker task. The socket is shut down for writing when the last holder
/// drops it (the writer, after its last chunk).
#[derive(Clone)]
pub(super) struct SharedTcp(Arc<OwnedWriteHalf>);

impl SharedTcp {
    pub(super) fn new(write: OwnedWriteHalf) -> Self {
        SharedTcp(Arc::new(write))
    }

    fn tcp(&self) -> &TcpStream {
        (*self.0).as_ref()
    }

    /// Writes what the socket takes now, without waiting; returns how many
    /// bytes. 0 also on an error: the writer, which gets the rest, meets it
    /// again and reports the connection closed.
    pub(super) fn try_write(&self, bytes: &[u8]) -> usize {
        self.tcp().try_write(bytes).unwrap_or(0)
    }
}

impl SharedTcp {
    /// Runs `write` once the socket is ready, until it does not block.
    fn poll_ready_write(
        &self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.tcp().poll_write_ready(cx))?;
            match write(self.tcp()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                done => return Poll::Ready(done),
            }
        }
    }
}

impl AsyncWrite for SharedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_ready_write(cx, |tcp| tcp.try_write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_ready_write(cx, |tcp| tcp.try_write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The write half shuts down when its last holder drops it.
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Where a connection's output goes.
pub(super) trait Sink: Send + 'static {
    /// Sends every chunk of `chunks`, in order (consuming them on the way).
    fn send(&mut self, chunks: &mut [Bytes]) -> impl Future<Output = io::Result<()>> + Send;

    /// Nothing else is queued: pushes on what the transport may hold.
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;

    /// The connection's output has ended.
    fn shutdown(&mut self) -> impl Future<Output = ()> + Send;
}

/// A byte stream, written in as few writes as it allows.
pub(super) struct Stream<W>(pub W);

impl<W: AsyncWrite + Unpin + Send + 'static> Sink for Stream<W> {
    async fn send(&mut self, chunks: &mut [Bytes]) -> io::Result<()> {
        write_all(&mut self.0, chunks).await
    }

    async fn flush(&mut self) -> io::Result<()> {
        // TLS may keep records it encrypted and the socket did not take
        // yet until a flush.
        self.0.flush().await
    }

    async fn shutdown(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

impl Sink for PipeWriter {
    async fn send(&mut self, chunks: &mut [Bytes]) -> io::Result<()> {
        for chunk in chunks {
            PipeWriter::send(self, std::mem::take(chunk)).await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn shutdown(&mut self) {
        self.close();
    }
}

pub(super) async fn write_loop(
    mut write: impl Sink,
    mut rx: mpsc::Receiver<Bytes>,
    conn: ConnId,
    queued: Queued,
    paused: Arc<AtomicBool>,
    tx: mpsc::UnboundedSender<Cmd>,
) {
    let mut batch: Vec<Bytes> = Vec::with_capacity(GATHER);
    while let Some(chunk) = rx.recv().await {
        batch.push(chunk);
        while batch.len() < GATHER
            && let Ok(chunk) = rx.try_recv()
        {
            batch.push(chunk);
        }
        let sent = match write.send(&mut batch).await {
            Ok(()) if rx.is_empty() => write.flush().await,
            other => other,
        };
        if sent.is_ok() {
            queued.written(batch.len());
        }
        batch.clear();
        if sent.is_err() {
            let _ = tx.send(Cmd::Closed(conn));
            return;
        }
        if paused.load(Ordering::Acquire) {
            let _ = tx.send(Cmd::Writable(conn));
        }
    }
    write.shutdown().await;
}

/// Writes every chunk of `chunks`, in order, as few writes as the transport
/// allows; `chunks` is consumed (emptied or cut) on the way.
async fn write_all(write: &mut (impl AsyncWrite + Unpin), chunks: &mut [Bytes]) -> io::Result<()> {
    let mut first = 0;
    while first < chunks.len() {
        let mut written = {
            let mut slices = [IoSlice::new(&[]); GATHER];
            let pending = &chunks[first..chunks.len().min(first + GATHER)];
            for (slice, chunk) in slices.iter_mut().zip(pending) {
                *slice = IoSlice::new(chunk);
            }
            write.write_vectored(&slices[..pending.len()]).await?
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let len = chunks[first].len();
            if written < len {
                chunks[first] = chunks[first].slice(written..);
                break;
            }
            written -= len;
            first += 1;
        }
        // Empty chunks take no room in a write.
        while chunks.get(first).is_some_and(Bytes::is_empty) {
            first += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `most` bytes per write (of the first buffer only when
    /// it does not gather), and counts the writes.
    struct Trickle {
        got: Vec<u8>,
        most: usize,
        gathers: bool,
        writes: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.most);
            self.got.extend_from_slice(&buf[..n]);
            self.writes += 1;
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            if !self.gathers {
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
                return self.poll_write(cx, first);
            }
            let mut room = self.most;
            for b in bufs {
                let n = b.len().min(room);
                self.got.extend_from_slice(&b[..n]);
                room -= n;
            }
            self.writes += 1;
            Poll::Ready(Ok(self.most - room))
        }

        fn is_write_vectored(&self) -> bool {
            self.gathers
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn chunks() -> Vec<Bytes> {
        (0..100u8)
            .map(|i| Bytes::from(vec![i; usize::from(i % 7)]))
            .collect()
    }

    #[tokio::test]
    async fn every_byte_goes_out_in_order_through_short_writes() {
        let want: Vec<u8> = chunks().concat();
        for (most, gathers) in [
            (1, true),
            (5, true),
            (64, true),
            (1 << 20, true),
            (3, false),
        ] {
            let mut w = Trickle {
                got: Vec::new(),
                most,
                gathers,
                writes: 0,
            };
            let mut c = chunks();
            write_all(&mut w, &mut c).await.unwrap();
            assert_eq!(w.got, want, "at most {most} per write, gathering {gathers}");
        }
    }

    #[tokio::test]
    async fn queued_chunks_go_out_in_one_write_when_they_fit() {
        let mut w = Trickle {
            got: Vec::new(),
            most: 1 << 20,
            gathers: true,
            writes: 0,
        };
        let mut c: Vec<Bytes> = chunks().into_iter().take(GATHER).collect();
        let want = c.concat();
        write_all(&mut w, &mut c).await.unwrap();
        assert_eq!((w.got, w.writes), (want, 1));
    }

    #[tokio::test]
    async fn chunks_count_as_queued_until_the_transport_took_them() {
        // The broker task writes directly only while nothing is queued: a
        // chunk the writer holds must count until it is written.
        let (near, mut far) = tokio::io::duplex(64);
        let (tx, rx) = mpsc::channel(8);
        let (cmds, _) = mpsc::unbounded_channel();
        let queued = Queued::default();
        let paused = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(write_loop(
            Stream(near),
            rx,
            ConnId(1),
            queued.clone(),
            paused,
            cmds,
        ));
        let chunks = [Bytes::from(vec![1u8; 100]), Bytes::from(vec![2u8; 100])];
        for c in &chunks {
            queued.add();
            tx.send(c.clone()).await.unwrap();
        }
        // The transport takes 64 bytes and waits.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!queued.is_empty());
        let mut got = vec![0u8; 200];
        tokio::io::AsyncReadExt::read_exact(&mut far, &mut got)
            .await
            .unwrap();
        assert_eq!(got, chunks.concat());
        drop(tx);
        writer.await.unwrap();
        assert!(queued.is_empty());
    }

    #[tokio::test]
    async fn a_transport_that_takes_nothing_is_an_error() {
        let mut w = Trickle {
            got: Vec::new(),
            most: 0,
            gathers: true,
            writes: 0,
        };
        let err = write_all(&mut w, &mut [Bytes::from_static(b"x")]).await;
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::WriteZero);
    }
}
