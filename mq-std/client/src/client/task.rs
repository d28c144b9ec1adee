//! The client's task over tokio: the channel, one-shot and stream types
//! the driver is given, and the loop that moves commands, bytes and time
//! between them and the driver.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant as StdInstant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, oneshot};

use super::Connector;
use crate::clock::Clock;
use crate::driver::{Command, CommandSender, Driver, Message, Offer, Received, Reply, Sink};

/// How long closing waits for the socket to take the last bytes.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Commands handled per wakeup before the socket gets a turn.
const COMMAND_BATCH: usize = 256;

impl<T: Send> Reply<T> for oneshot::Sender<T> {
    fn send(self: Box<Self>, value: T) {
        let _ = (*self).send(value);
    }

    fn is_closed(&self) -> bool {
        oneshot::Sender::is_closed(self)
    }
}

impl Sink for mpsc::Sender<Message> {
    fn offer(&mut self, msg: Message) -> Offer {
        match self.try_send(msg) {
            Ok(()) => Offer::Taken,
            Err(mpsc::error::TrySendError::Full(msg)) => Offer::Full(msg),
            Err(mpsc::error::TrySendError::Closed(msg)) => Offer::Closed(msg),
        }
    }
}

impl CommandSender for mpsc::UnboundedSender<Command> {
    fn send(&self, cmd: Command) -> bool {
        mpsc::UnboundedSender::send(self, cmd).is_ok()
    }
}

type Connecting<'a, S> = Pin<Box<dyn Future<Output = io::Result<S>> + Send + 'a>>;

/// What woke the task.
enum Wake<S> {
    Command(Option<Command>),
    Connected(io::Result<S>),
    /// Bytes moved between the stream and the driver; `Err(None)` is the
    /// broker closing the connection.
    Moved(Result<(), Option<io::Error>>),
    Timer,
}

/// The task: moves commands, bytes and time into the driver and does what it
/// wants, until the session is closed. `connector` opens each connection.
pub(super) async fn run<C: Connector>(
    mut driver: Driver,
    mut commands: mpsc::UnboundedReceiver<Command>,
    connector: C,
    clock: Clock,
) {
    let mut stream: Option<C::Stream> = None;
    let mut connecting: Option<Connecting<'_, C::Stream>> = None;
    loop {
        let wants = driver.poll(clock.now());
        if wants.stop {
            if let Some(mut s) = stream.take() {
                driver.close_tls();
                let _ = tokio::time::timeout(FLUSH_TIMEOUT, async {
                    while driver.wants_write() {
                        poll_fn(|cx| match driver.write_to(&mut PollIo(&mut s, cx)) {
                            Ok(sent) if sent.blocked && !sent.moved => Poll::Pending,
                            Ok(_) => Poll::Ready(Ok(())),
                            Err(e) => Poll::Ready(Err(e)),
                        })
                        .await?;
                    }
                    s.shutdown().await
                })
                .await;
            }
            driver.finish();
            return;
        }
        if wants.disconnect && (stream.is_some() || connecting.is_some()) {
            if let Some(mut s) = stream.take() {
                // Best effort: an error frame the session wants the broker to see.
                let _ = poll_fn(|cx| Poll::Ready(driver.write_to(&mut PollIo(&mut s, cx)))).await;
            }
            connecting = None;
            driver.handle_disconnected(clock.now(), None);
            continue;
        }
        if wants.connect {
            stream = None;
            connecting = Some(Box::pin(connector.connect()));
        }
        let (read, write) = (driver.wants_read(), driver.wants_write());
        let deadline = wants.timeout.map(|t| clock.to_std(t));
        let wake = tokio::select! {
            cmd = commands.recv() => Wake::Command(cmd),
            res = connect_step(&mut connecting) => Wake::Connected(res),
            res = exchange(stream.as_mut(), &mut driver, read, write) => Wake::Moved(res),
            () = sleep_until(deadline) => Wake::Timer,
        };
        let now = clock.now();
        match wake {
            Wake::Command(Some(cmd)) => {
                driver.handle_command(now, cmd);
                for _ in 0..COMMAND_BATCH {
                    match commands.try_recv() {
                        Ok(cmd) => driver.handle_command(now, cmd),
                        Err(_) => break,
                    }
                }
            }
            // Unreachable while the driver holds a sender; close if it happens.
            Wake::Command(None) => driver.handle_command(now, Command::Close(None)),
            Wake::Connected(res) => {
                connecting = None;
                match res {
                    Ok(s) => {
                        stream = Some(s);
                        driver.handle_connected(now);
                    }
                    Err(e) => driver.handle_disconnected(now, Some(e)),
                }
            }
            Wake::Moved(Ok(())) => {}
            Wake::Moved(Err(e)) => {
                stream = None;
                driver.handle_disconnected(now, e);
            }
            Wake::Timer => driver.handle_timeout(now),
        }
    }
}

/// Once the stream can move bytes: one read (when the driver wants input)
/// and as many writes as the stream takes (when it has output). Pending
/// while neither moves anything; never ready without a stream or without
/// anything wanted. `Err(None)` is the broker closing the connection.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: Option<&mut S>,
    driver: &mut Driver,
    read: bool,
    write: bool,
) -> Result<(), Option<io::Error>> {
    let Some(s) = stream.filter(|_| read || write) else {
        return std::future::pending().await;
    };
    poll_fn(|cx| {
        let mut io = PollIo(&mut *s, cx);
        let mut moved = false;
        if read {
            match driver.read_from(&mut io) {
                Ok(Received::Closed) => return Poll::Ready(Err(None)),
                Ok(Received::Some) => moved = true,
                Ok(Received::WouldBlock) => {}
                Err(e) => return Poll::Ready(Err(Some(e))),
            }
        }
        if write {
            match driver.write_to(&mut io) {
                Ok(sent) => moved |= sent.moved || !sent.blocked,
                Err(e) => return Poll::Ready(Err(Some(e))),
            }
            // A stream that buffers what it is given (a connector's may)
            // sends it now; TCP and the in-memory pipe are ready at once.
            if let Poll::Ready(Err(e)) = Pin::new(&mut *s).poll_flush(cx) {
                return Poll::Ready(Err(Some(e)));
            }
        }
        if moved {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// A tokio stream as the non-blocking `Read` and `Write` the driver (and TLS
/// in it) reads and writes: `WouldBlock` when it is not ready, with the
/// task's waker registered for when it is.
struct PollIo<'a, 'b, S>(&'a mut S, &'a mut Context<'b>);

impl<S: AsyncRead + Unpin> io::Read for PollIo<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut *self.0).poll_read(self.1, &mut buf) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<S: AsyncWrite + Unpin> io::Write for PollIo<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.0).poll_write(self.1, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

async fn connect_step<S>(connecting: &mut Option<Connecting<'_, S>>) -> io::Result<S> {
    match connecting {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<StdInstant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
