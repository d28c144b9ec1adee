//! Serial lines: `mqd --serial PATH` serves a device on a UART (or a
//! pseudo-terminal) with the COBS + CRC framing of
//! [`mq_core::framing::serial`], into the same broker as the TCP clients.
//!
//! [`serve_line`] hands the whole line to the broker as one transport in
//! serial framing. The line's rules live in mq-core, where every adapter
//! shares them (see `mq_core::broker` and the "Serial lines" rules of
//! [`mq_core::wire`]): the line carries one connection after another, each
//! starting with the device's `Hello`; a `Hello` on a line whose connection
//! already had one closes that connection (its session is detached, as when a
//! TCP client drops) and starts a new one, so a device that rebooted or gave
//! up on a silent broker reconnects without a `SessionTakenOver` error; a
//! connection the broker ends leaves the line idle for the next `Hello`;
//! damaged frames fail their CRC and are dropped, ending the connection they
//! belonged to (so nothing after them overtakes what they carried).
//!
//! [`open`] opens a terminal device in raw mode (8N1, no flow control) at a
//! baud rate and discards input that queued before `mqd` opened it. It works on
//! Unix; elsewhere it fails with [`io::ErrorKind::Unsupported`]. A line that
//! fails later (a USB adapter unplugged) ends [`serve_line`] with the error;
//! `mqd` logs it and serves its other lines and clients on.

mod port;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use mq_core::framing::Framing;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use crate::server::ServerControl;
pub use port::{SerialPort, open};

/// Serves a device on `line` (see the module docs) until the line fails or
/// ends, or the server stops. `name` appears in the logs. `max_frame` is
/// unused: the broker bounds serial frames by its own maximum.
pub async fn serve_line<S>(
    control: ServerControl,
    line: S,
    name: String,
    max_frame: u32,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let _ = max_frame;
    let (tx, ended) = oneshot::channel();
    let line = Watched {
        inner: Box::pin(line),
        ended: Some(tx),
    };
    if !control.attach(line, Framing::Serial, name.clone()) {
        tracing::info!(line = %name, "server stopped; serial line released");
        return Ok(());
    }
    let result = ended.await.unwrap_or(Ok(()));
    if result.is_ok() {
        tracing::info!(line = %name, "serial line closed");
    }
    result
}

/// A line that reports how it ended: its first error, or `Ok` at its end
/// (the broker dropped it, or reading it reached end of stream).
struct Watched<S> {
    inner: Pin<Box<S>>,
    ended: Option<oneshot::Sender<io::Result<()>>>,
}

impl<S> Watched<S> {
    fn end(&mut self, result: io::Result<()>) {
        if let Some(tx) = self.ended.take() {
            let _ = tx.send(result);
        }
    }

    /// Notes an error (a copy goes to `serve_line`) and passes it on.
    fn check<T>(&mut self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(e)) = &poll {
            self.end(Err(io::Error::new(e.kind(), e.to_string())));
        }
        poll
    }
}

impl<S> Drop for Watched<S> {
    fn drop(&mut self) {
        self.end(Ok(()));
    }
}

impl<S: AsyncRead> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = self.inner.as_mut().poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() == before {
            self.end(Ok(()));
        }
        self.check(poll)
    }
}

impl<S: AsyncWrite> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = self.inner.as_mut().poll_write(cx, buf);
        self.check(poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = self.inner.as_mut().poll_flush(cx);
        self.check(poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.as_mut().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mq_core::broker::Config as BrokerConfig;
    use mq_core::framing::serial::{self, SerialDecoder};
    use mq_core::wire::{
        Frame, Hello, Limits, PROTOCOL_VERSION, Publish, QoS, Reason, SessionMode, Start, Subscribe,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;
    use crate::server::{self, ServerHandle, ServerOptions};

    fn hello(client: &str) -> Frame<'_> {
        Frame::Hello(Hello {
            version: PROTOCOL_VERSION,
            client_id: client,
            session: SessionMode::Resume,
            token: None,
            limits: Limits {
                max_frame: 4096,
                credit: 8,
                keepalive_ms: 0,
            },
        })
    }

    /// The device's end of a line served by an in-process broker.
    struct Device {
        line: DuplexStream,
        decoder: SerialDecoder<Vec<u8>>,
        pending: Vec<u8>,
    }

    /// A frame as the device saw it, owned.
    #[derive(Debug, PartialEq)]
    enum Got {
        Welcome(bool),
        SubAck(u32),
        PubAck(u32),
        Deliver(String),
        Error(Reason),
        Other(&'static str),
    }

    impl Device {
        async fn start() -> (ServerHandle, Device) {
            let server = server::spawn(ServerOptions {
                broker: BrokerConfig::default(),
                ..ServerOptions::default()
            })
            .await
            .unwrap();
            let (line, theirs) = tokio::io::duplex(64 * 1024);
            let max_frame = BrokerConfig::default().limits.max_frame;
            tokio::spawn(serve_line(
                server.control(),
                theirs,
                "test".into(),
                max_frame,
            ));
            let device = Device {
                line,
                decoder: SerialDecoder::new(vec![0; 8192]),
                pending: Vec::new(),
            };
            (server, device)
        }

        async fn send(&mut self, frame: Frame<'_>) {
            let mut buf = vec![0; serial::max_framed_len(frame.encoded_len())];
            let n = serial::encode_frame(&frame, &mut buf).unwrap();
            self.line.write_all(&buf[..n]).await.unwrap();
        }

        /// The next frame from the broker, if one comes within a second.
        async fn recv(&mut self) -> Option<Got> {
            loop {
                while !self.pending.is_empty() {
                    let (used, out) = self.decoder.feed(&self.pending);
                    let got = match out {
                        Some(Ok(Frame::Welcome(w))) => Some(Got::Welcome(w.session_present)),
                        Some(Ok(Frame::SubAck(a))) => Some(Got::SubAck(a.sub)),
                        Some(Ok(Frame::PubAck(a))) => Some(Got::PubAck(a.id)),
                        Some(Ok(Frame::Deliver(d))) => Some(Got::Deliver(d.topic.into())),
                        Some(Ok(Frame::Error(e))) => Some(Got::Error(e.code)),
                        Some(Ok(other)) => Some(Got::Other(other.kind())),
                        Some(Err(e)) => panic!("damaged frame from the broker: {e}"),
                        None => None,
                    };
                    self.pending.drain(..used);
                    if got.is_some() {
                        return got;
                    }
                }
                let mut buf = [0u8; 4096];
                let read = tokio::time::timeout(Duration::from_secs(1), self.line.read(&mut buf));
                match read.await {
                    Ok(Ok(n)) if n > 0 => self.pending.extend_from_slice(&buf[..n]),
                    _ => return None,
                }
            }
        }
    }

    fn subscribe(sub: u32, filter: &str) -> Frame<'_> {
        Frame::Subscribe(Subscribe {
            sub,
            filter,
            group: None,
            start: Start::New,
            qos: QoS::AtLeastOnce,
            credit: 8,
        })
    }

    fn publish<'a>(id: u32, topic: &'a str) -> Frame<'a> {
        Frame::Publish(Publish {
            id,
            topic,
            qos: QoS::AtLeastOnce,
            dedup: None,
            meta: Default::default(),
            fragment: None,
            payload: b"x",
        })
    }

    #[tokio::test]
    async fn a_second_hello_is_a_new_connection_on_the_same_line() {
        let (server, mut dev) = Device::start().await;
        // An idle line holds no connection.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(server.stats().await.connections_total, 0);

        dev.send(hello("dev-1")).await;
        assert_eq!(dev.recv().await, Some(Got::Welcome(false)));
        dev.send(subscribe(1, "cmd.>")).await;
        assert_eq!(dev.recv().await, Some(Got::SubAck(1)));

        // The device rebooted: Hello again on the same line. The old
        // connection is closed quietly; the session is resumed, no
        // SessionTakenOver reaches the line.
        dev.send(hello("dev-1")).await;
        assert_eq!(dev.recv().await, Some(Got::Welcome(true)));
        dev.send(subscribe(1, "cmd.>")).await;
        assert_eq!(dev.recv().await, Some(Got::SubAck(1)));
        dev.send(publish(7, "cmd.x")).await;
        let mut got = [dev.recv().await, dev.recv().await];
        got.sort_by_key(|g| format!("{g:?}"));
        assert_eq!(
            got,
            [Some(Got::Deliver("cmd.x".into())), Some(Got::PubAck(7))]
        );
        assert_eq!(dev.recv().await, None);
        let stats = server.stats().await;
        assert_eq!((stats.connections_total, stats.current_connections), (2, 1));
        assert_eq!(stats.protocol_errors, 0);
    }

    #[tokio::test]
    async fn frames_before_hello_are_refused_then_hello_works() {
        let (server, mut dev) = Device::start().await;
        // Noise on the line, then a frame from a device that does not know mqd
        // restarted (no Hello on this line yet).
        dev.line.write_all(&[7, 7, 7, 0]).await.unwrap();
        dev.send(Frame::Ping(1)).await;
        assert_eq!(
            dev.recv().await,
            Some(Got::Error(Reason::ProtocolViolation))
        );
        // The line stays open: the device's Hello starts the next connection.
        dev.send(hello("dev-2")).await;
        assert_eq!(dev.recv().await, Some(Got::Welcome(false)));
        let stats = server.stats().await;
        assert_eq!((stats.connections_total, stats.current_connections), (2, 1));
    }
}
