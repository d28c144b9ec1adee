//! An in-memory pipe between a client in this process and a server's
//! connection ([`ServerControl::attach_pipe`](crate::server::ServerControl::attach_pipe)),
//! made of [`Bytes`] chunks rather than a byte ring as tokio's `DuplexStream`:
//! what the client writes is copied once, into a chunk the server's reader
//! hands to the broker as it is; what the server's writer sends is its own
//! chunks, copied once, into the client's read buffer. A duplex copies every
//! byte in and again out, each way.
//!
//! Each direction holds at most `capacity` bytes before its writer waits (the
//! server's writer may go over by the one chunk it adds to a pipe with room).
//! Closing or dropping a writer ends its reader's input once it read what is
//! left; dropping a reader makes its writer's writes fail (`BrokenPipe`).
//! The server's end counts as a reader of the client's writes until both
//! of its halves are gone, as a stream split in two does: a connection
//! the broker closes stops reading at once, but its client's writes fail
//! only once the last of its output was sent.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A pipe of at most `capacity` bytes each way: the client's end and the
/// server's.
pub fn pipe(capacity: usize) -> (PipeStream, PipeEnd) {
    let up = Simplex::new(capacity);
    let down = Simplex::new(capacity);
    let from_client = Arc::new(Reading(up.clone()));
    (
        PipeStream {
            up: Writing(up),
            down: Reading(down.clone()),
        },
        PipeEnd {
            read: PipeReader(from_client.clone()),
            write: PipeWriter {
                to_client: Writing(down),
                _from_client: from_client,
            },
        },
    )
}

/// One direction: the chunks written and not read yet.
struct State {
    chunks: VecDeque<Bytes>,
    len: usize,
    capacity: usize,
    write_closed: bool,
    read_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

#[derive(Clone)]
struct Simplex(Arc<Mutex<State>>);

impl Simplex {
    fn new(capacity: usize) -> Self {
        Simplex(Arc::new(Mutex::new(State {
            chunks: VecDeque::new(),
            len: 0,
            capacity: capacity.max(1),
            write_closed: false,
            read_closed: false,
            reader: None,
            writer: None,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn wake(waker: &mut Option<Waker>) {
    if let Some(w) = waker.take() {
        w.wake();
    }
}

/// The writing side of a direction; closes it when dropped.
struct Writing(Simplex);

impl Writing {
    /// Room for at least one byte: how much, up to the capacity.
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<io::Result<(usize, MutexGuard<'_, State>)>> {
        let mut s = self.0.lock();
        if s.read_closed || s.write_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if s.len >= s.capacity {
            s.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok((s.capacity - s.len, s)))
    }

    fn push(mut s: MutexGuard<'_, State>, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        s.len += chunk.len();
        s.chunks.push_back(chunk);
        wake(&mut s.reader);
    }

    fn close(&self) {
        let mut s = self.0.lock();
        s.write_closed = true;
        wake(&mut s.reader);
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.close();
    }
}

/// The reading side of a direction; closes it when dropped.
struct Reading(Simplex);

impl Reading {
    /// Takes what is there with `take` (which returns the bytes it took
    /// from the chunks it is given); `Ready(false)` at the end of the input.
    fn poll_take(
        &self,
        cx: &mut Context<'_>,
        take: impl FnOnce(&mut VecDeque<Bytes>) -> usize,
    ) -> Poll<bool> {
        let mut s = self.0.lock();
        if s.chunks.is_empty() {
            if s.write_closed {
                return Poll::Ready(false);
            }
            s.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let taken = take(&mut s.chunks);
        s.len -= taken;
        if taken > 0 {
            wake(&mut s.writer);
        }
        Poll::Ready(true)
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.read_closed = true;
        s.chunks.clear();
        s.len = 0;
        wake(&mut s.writer);
    }
}

/// The client's end: a byte stream. A write is copied into one chunk (as
/// much of it as there is room for); a read copies from the server's chunks.
pub struct PipeStream {
    up: Writing,
    down: Reading,
}

impl AsyncRead for PipeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let _ = ready!(self.down.poll_take(cx, |chunks| {
            let mut taken = 0;
            while buf.remaining() > 0
                && let Some(chunk) = chunks.front_mut()
            {
                let n = chunk.len().min(buf.remaining());
                buf.put_slice(&chunk[..n]);
                chunk.advance(n);
                taken += n;
                if chunk.is_empty() {
                    chunks.pop_front();
                }
            }
            taken
        }));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PipeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let (room, s) = ready!(self.up.poll_room(cx))?;
        let n = room.min(buf.len());
        Writing::push(s, Bytes::copy_from_slice(&buf[..n]));
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.up.close();
        Poll::Ready(Ok(()))
    }
}

/// The server's end, split into its reader and writer.
pub struct PipeEnd {
    pub(crate) read: PipeReader,
    pub(crate) write: PipeWriter,
}

/// The server's reading half: the client's writes, as they were written.
pub(crate) struct PipeReader(Arc<Reading>);

impl PipeReader {
    /// The next chunk the client wrote, at most `most` bytes of it (the
    /// rest is read next); `None` once the client closed its end and
    /// everything was read.
    pub(crate) async fn read(&mut self, most: usize) -> Option<Bytes> {
        let mut got = Bytes::new();
        let more = std::future::poll_fn(|cx| {
            self.0.poll_take(cx, |chunks| {
                let Some(chunk) = chunks.front_mut() else {
                    return 0;
                };
                if chunk.len() > most {
                    got = chunk.split_to(most.max(1));
                } else {
                    got = chunks.pop_front().unwrap_or_default();
                }
                got.len()
            })
        })
        .await;
        more.then_some(got)
    }
}

/// The server's writing half: its chunks go to the client as they are.
pub(crate) struct PipeWriter {
    to_client: Writing,
    /// The client's writes, still read (as far as the client can tell)
    /// while this half is there.
    _from_client: Arc<Reading>,
}

impl PipeWriter {
    /// Adds `chunk` once the pipe has room (its whole length need not
    /// fit); fails once the client's end is gone.
    pub(crate) async fn send(&mut self, chunk: Bytes) -> io::Result<()> {
        let mut chunk = Some(chunk);
        std::future::poll_fn(|cx| {
            let (_, s) = ready!(self.to_client.poll_room(cx))?;
            Writing::push(s, chunk.take().unwrap_or_default());
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Ends the client's input after what was sent.
    pub(crate) fn close(&mut self) {
        self.to_client.close();
    }
}

#[cfg(test)]
mod tests;
