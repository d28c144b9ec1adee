//! Serial lines: `mqd --serial PATH` serves a device on a UART (or a
//! pseudo-terminal) with the COBS + CRC framing of
//! [`mq_core::framing::serial`], into the same broker as the TCP clients.
//!
//! A line has no connect and no close, so it carries one broker connection
//! after another ([`serve_line`]):
//!
//! - A connection starts with the first frame that arrives while the line has
//!   none (lazily: an idle line holds no connection and no handshake timer).
//!   Normally that frame is the device's `Hello`; anything else (say, a ping
//!   from a device that has not noticed that `mqd` restarted) is answered by
//!   the broker with an error, which tells the device to handshake again.
//! - A `Hello` on a line whose connection already had one starts a new
//!   connection on the same line: the old one is closed first (its session is
//!   detached, as when a TCP client drops; a persistent session stays) and its
//!   output not yet written to the line is discarded. This is how a device
//!   that rebooted, or that gave up on a silent broker, reconnects: no
//!   `SessionTakenOver` error reaches it.
//! - When the broker ends a connection (the device's `Close`, a keepalive or
//!   protocol error), the line stays open and the next frame starts the next
//!   connection.
//! - Damaged frames fail their CRC and are dropped; the decoder resynchronises
//!   at the next delimiter. Before a new connection's output, a lone delimiter
//!   ends whatever partial frame the device's decoder holds.
//!
//! [`open`] opens a terminal device in raw mode (8N1, no flow control) at a
//! baud rate and discards input that queued before `mqd` opened it. It works on
//! Unix; elsewhere it fails with [`io::ErrorKind::Unsupported`]. A line that
//! fails later (a USB adapter unplugged) ends [`serve_line`] with the error;
//! `mqd` logs it and serves its other lines and clients on.

mod port;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mq_core::framing::Framing;
use mq_core::framing::serial::{self, DELIMITER, SerialDecoder};
use mq_core::wire::Frame;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::io::{DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use crate::server::ServerControl;
pub use port::{SerialPort, open};

/// Buffer between the line task and one broker connection, each way.
const PIPE: usize = 64 * 1024;

/// The line task's side of one broker connection.
struct Current {
    to_broker: WriteHalf<DuplexStream>,
    /// The connection has had its `Hello`.
    hello: bool,
    /// The broker ended it (its output reached end of stream).
    ended: Arc<AtomicBool>,
}

/// What the writer half of [`serve_line`] forwards to the line: one
/// connection's output.
struct Output {
    from_broker: ReadHalf<DuplexStream>,
    ended: Arc<AtomicBool>,
}

/// Serves a device on `line` (see the module docs) until the line fails or
/// ends, or the server stops. `max_frame` is the broker's maximum frame (the
/// largest frame a device may send); `name` appears in the logs.
pub async fn serve_line<S>(
    control: ServerControl,
    line: S,
    name: String,
    max_frame: u32,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(line);
    let (outputs, next_output) = mpsc::unbounded_channel();
    let forward = tokio::spawn(to_line(writer, next_output));
    let result = from_line(reader, control, outputs, &name, max_frame).await;
    // The writer ends once `from_line` dropped its sender.
    let written = forward.await.map_err(io::Error::other)?;
    result.and(written)
}

/// Reads the line, decodes frames, and hands each to the current connection,
/// starting connections as the module docs say.
async fn from_line(
    mut reader: impl AsyncRead + Unpin,
    control: ServerControl,
    outputs: mpsc::UnboundedSender<Output>,
    name: &str,
    max_frame: u32,
) -> io::Result<()> {
    let mut decoder = SerialDecoder::new(vec![0u8; serial::max_framed_len(max_frame as usize)]);
    let mut buf = vec![0u8; 4096];
    let mut encoded = Vec::new();
    let mut current: Option<Current> = None;
    let mut connections = 0u64;
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            tracing::info!(line = %name, "serial line closed");
            return Ok(());
        }
        let mut input = &buf[..n];
        while !input.is_empty() {
            let (used, out) = decoder.feed(input);
            input = input.get(used.max(1)..).unwrap_or(&[]);
            let frame = match out {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => {
                    tracing::debug!(line = %name, error = %e, "serial frame dropped");
                    continue;
                }
                None => continue,
            };
            let hello = matches!(frame, Frame::Hello(_));
            if let Some(c) = current.as_mut()
                && ((hello && c.hello) || c.ended.load(Ordering::Acquire))
            {
                // A new connection on the same line: the old one ends here.
                let _ = c.to_broker.shutdown().await;
                current = None;
            }
            encoded.resize(serial::max_framed_len(frame.encoded_len()), 0);
            let Ok(len) = serial::encode_frame(&frame, &mut encoded) else {
                continue;
            };
            let bytes = encoded.get(..len).unwrap_or(&[]);
            for _attempt in 0..2 {
                if current.is_none() {
                    connections += 1;
                    let (ours, theirs) = tokio::io::duplex(PIPE);
                    let conn_name = format!("{name}#{connections}");
                    if !control.attach(theirs, Framing::Serial, conn_name) {
                        tracing::info!(line = %name, "server stopped; serial line released");
                        return Ok(());
                    }
                    let (from_broker, to_broker) = tokio::io::split(ours);
                    let ended = Arc::new(AtomicBool::new(false));
                    let output = Output {
                        from_broker,
                        ended: ended.clone(),
                    };
                    if outputs.send(output).is_err() {
                        // The writer stopped: it says why.
                        return Ok(());
                    }
                    current = Some(Current {
                        to_broker,
                        hello: false,
                        ended,
                    });
                }
                let Some(c) = current.as_mut() else { break };
                if c.to_broker.write_all(bytes).await.is_ok() {
                    c.hello |= hello;
                    break;
                }
                // The broker ended that connection meanwhile: the next one.
                current = None;
            }
        }
    }
}

/// Writes the current connection's output to the line; a new connection's
/// output replaces the old one's (whatever the old one still had is dropped),
/// after a lone delimiter.
async fn to_line(
    mut writer: impl AsyncWrite + Unpin,
    mut outputs: mpsc::UnboundedReceiver<Output>,
) -> io::Result<()> {
    let mut current: Option<Output> = None;
    let mut buf = vec![0u8; 4096];
    loop {
        let read = async {
            match current.as_mut() {
                Some(out) => out.from_broker.read(&mut buf).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // A new connection wins over reading the old one: nothing the broker
            // sends the old one after the switch reaches the line.
            biased;
            next = outputs.recv() => {
                let Some(next) = next else { return Ok(()) };
                current = Some(next);
                writer.write_all(&[DELIMITER]).await?;
            }
            n = read => match n {
                Ok(n) if n > 0 => {
                    writer.write_all(&buf[..n]).await?;
                    writer.flush().await?;
                }
                _ => {
                    if let Some(out) = current.take() {
                        out.ended.store(true, Ordering::Release);
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mq_core::broker::{Broker, Config as BrokerConfig};
    use mq_core::wire::{
        Hello, Limits, PROTOCOL_VERSION, Publish, QoS, Reason, SessionMode, Start, Subscribe,
    };
    use tokio::io::DuplexStream;

    use super::*;
    use crate::server::{self, SerialInput, ServerHandle, ServerOptions};

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
            let (line, theirs) = tokio::io::duplex(PIPE);
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

    /// Everything the broker wants done: records persisted at once, frames
    /// decoded into their kinds.
    fn drain(broker: &mut Broker, now: mq_core::Instant, kinds: &mut Vec<&'static str>) {
        let mut out = vec![0u8; 65536];
        loop {
            while let Some(op) = broker.poll_store() {
                broker.handle_persisted(op.token, now);
            }
            let Some(t) = broker.poll_transmit(now, &mut out) else {
                return;
            };
            let mut dec = SerialDecoder::new(vec![0u8; 4096]);
            let mut bytes = &out[..t.len];
            while !bytes.is_empty() {
                let (n, f) = dec.feed(bytes);
                if let Some(Ok(f)) = f {
                    kinds.push(f.kind());
                }
                bytes = &bytes[n..];
            }
        }
    }

    #[test]
    fn a_frame_the_broker_cannot_take_yet_is_offered_again() {
        let mut broker = Broker::new(BrokerConfig {
            max_pending_frames: 1,
            ..BrokerConfig::default()
        });
        let now = mq_core::Instant::from_millis(1);
        let conn = broker.accept(now, Framing::Serial).unwrap();
        let mut input = SerialInput::new(4096);
        let mut line = vec![0u8; 1024];
        let mut len = serial::encode_frame(&hello("dev-3"), &mut line).unwrap();
        len += serial::encode_frame(&subscribe(1, "a"), &mut line[len..]).unwrap();
        len += serial::encode_frame(&subscribe(2, "b"), &mut line[len..]).unwrap();
        // Hello is taken and its Welcome queued: the queue is full, so the
        // first Subscribe is refused and kept.
        let used = input.offer(&mut broker, conn, now, &line[..len]);
        assert!(used < len && input.holds_frame());
        assert_eq!(input.offer(&mut broker, conn, now, &line[used..len]), 0);
        let mut answers = Vec::new();
        let mut rest = &line[used..len];
        while !rest.is_empty() || input.holds_frame() {
            drain(&mut broker, now, &mut answers);
            let n = input.offer(&mut broker, conn, now, rest);
            rest = &rest[n..];
        }
        drain(&mut broker, now, &mut answers);
        // Nothing lost, nothing twice.
        assert_eq!(answers, ["welcome", "suback", "suback"]);
    }
}
