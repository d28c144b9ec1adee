//! Test support: a real `mqd` child process ([`mq_testkit::Mqd`]), and a raw
//! frame-level TCP peer that can misbehave on purpose.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mq_core::framing::stream::{self, Decoded, StreamDecoder};
use mq_core::wire::*;
pub use mq_testkit::Mqd;

mod run;
#[allow(unused_imports)]
pub use run::*;

/// A frame as tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    Welcome,
    PubAck(u32),
    PubReject(u32, Reason),
    SubAck(u32),
    SubReject(u32, Reason),
    Deliver {
        tag: u64,
        topic: String,
        payload: Vec<u8>,
    },
    Ping(u64),
    Close(Reason),
    Error(Reason),
    Other(String),
}

fn own(f: Frame<'_>) -> Got {
    match f {
        Frame::Welcome(_) => Got::Welcome,
        Frame::PubAck(a) => Got::PubAck(a.id),
        Frame::PubReject(r) => Got::PubReject(r.id, r.reason),
        Frame::SubAck(a) => Got::SubAck(a.sub),
        Frame::SubReject(r) => Got::SubReject(r.sub, r.reason),
        Frame::Deliver(d) => Got::Deliver {
            tag: d.tag,
            topic: d.topic.into(),
            payload: d.payload.into(),
        },
        Frame::Ping(n) => Got::Ping(n),
        Frame::Close(c) => Got::Close(c.reason),
        Frame::Error(e) => Got::Error(e.code),
        other => Got::Other(format!("{other:?}")),
    }
}

/// What [`Raw::next`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Frame(Got),
    /// Nothing within the limit.
    Idle,
    /// The stream ended (or failed).
    Closed,
}

/// The `Hello` every test peer sends: 1 MiB frames, credit 64, no keepalive.
fn hello_frame<'a>(client: &'a str, session: SessionMode, token: Option<&'a str>) -> Frame<'a> {
    Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        client_id: client,
        session,
        token,
        limits: Limits {
            max_frame: 1 << 20,
            credit: 64,
            keepalive_ms: 0,
        },
    })
}

/// A frame-level peer over a plain socket.
pub struct Raw {
    pub s: TcpStream,
    buf: Vec<u8>,
    /// Answer the broker's keepalive pings (off for a peer that must stay silent).
    pub answer_pings: bool,
    /// `session_present` of the last `Welcome` received.
    pub session_present: Option<bool>,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        Self::try_connect(addr).expect("connects")
    }

    /// Connects, or `None` when nothing listens.
    pub fn try_connect(addr: SocketAddr) -> Option<Raw> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
        s.set_nodelay(true).ok()?;
        Some(Raw {
            s,
            buf: Vec::new(),
            answer_pings: true,
            session_present: None,
        })
    }

    /// Sends a frame; false when the connection is gone.
    pub fn try_send(&mut self, frame: Frame<'_>) -> bool {
        let mut out = vec![0u8; stream::framed_len(&frame)];
        let n = stream::encode_frame(&frame, u32::MAX, &mut out).unwrap();
        self.s.write_all(&out[..n]).is_ok()
    }

    /// `Hello` with a session mode; the answer, or `None` when the connection
    /// ended first.
    pub fn hello_as(&mut self, client: &str, session: SessionMode) -> Option<Got> {
        if !self.try_send(hello_frame(client, session, None)) {
            return None;
        }
        self.recv(Duration::from_secs(10))
    }

    pub fn send(&mut self, frame: Frame<'_>) {
        let mut out = vec![0u8; stream::framed_len(&frame)];
        let n = stream::encode_frame(&frame, u32::MAX, &mut out).unwrap();
        self.s.write_all(&out[..n]).unwrap();
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        // The server may already have closed: that is fine for misbehaving peers.
        let _ = self.s.write_all(bytes);
    }

    pub fn hello(&mut self, client: &str, token: Option<&str>) -> Got {
        self.send(hello_frame(client, SessionMode::Clean, token));
        self.recv(Duration::from_secs(5))
            .expect("an answer to hello")
    }

    /// The next frame, or `None` at end of stream or after `limit`.
    pub fn recv(&mut self, limit: Duration) -> Option<Got> {
        match self.next(limit) {
            Next::Frame(got) => Some(got),
            Next::Idle | Next::Closed => None,
        }
    }

    /// The next frame, telling a quiet connection from a closed one.
    pub fn next(&mut self, limit: Duration) -> Next {
        let deadline = Instant::now() + limit;
        let dec = StreamDecoder::new(u32::MAX);
        loop {
            if let Ok(Decoded::Frame { frame, consumed }) = dec.decode(&self.buf) {
                if let Frame::Welcome(w) = &frame {
                    self.session_present = Some(w.session_present);
                }
                let got = own(frame);
                self.buf.drain(..consumed);
                // Keepalive is answered, not reported.
                if let Got::Ping(n) = got {
                    if self.answer_pings {
                        self.try_send(Frame::Pong(n));
                    }
                    continue;
                }
                return Next::Frame(got);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Next::Idle;
            }
            self.s.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) => return Next::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Next::Idle;
                }
                Err(_) => return Next::Closed,
            }
        }
    }

    /// Frames until the server closes the connection (bounded by `limit`);
    /// panics if it stays open. `tick` runs between short waits (to keep other
    /// connections busy meanwhile).
    pub fn until_closed_while(&mut self, limit: Duration, mut tick: impl FnMut()) -> Vec<Got> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "server kept the connection open; got {got:?}"
            );
            let slice = left.min(Duration::from_millis(250));
            let before = Instant::now();
            match self.recv(slice) {
                Some(g) => got.push(g),
                // Sooner than the slice: the stream ended.
                None if before.elapsed() < slice => return got,
                None => tick(),
            }
        }
    }

    /// [`until_closed_while`](Self::until_closed_while) with nothing to do meanwhile.
    pub fn until_closed(&mut self, limit: Duration) -> Vec<Got> {
        self.until_closed_while(limit, || {})
    }

    pub fn close_write(&self) {
        let _ = self.s.shutdown(Shutdown::Write);
    }

    pub fn subscribe(&mut self, sub: u32, filter: &str, qos: QoS, credit: u32) {
        self.send(Frame::Subscribe(Subscribe {
            sub,
            filter,
            group: None,
            start: Start::New,
            qos,
            credit,
        }));
        assert_eq!(self.recv(Duration::from_secs(5)), Some(Got::SubAck(sub)));
    }

    /// Sends a publish. A connection the server has closed (shutting down, say)
    /// is not an error here: the missing answer is.
    pub fn publish(&mut self, id: u32, topic: &str, qos: QoS, payload: &[u8]) {
        self.try_send(Frame::Publish(Publish {
            id,
            topic,
            qos,
            dedup: None,
            meta: Meta::default(),
            fragment: None,
            payload,
        }));
    }
}

/// A publisher and a subscriber that must keep working while others misbehave.
pub struct Flow {
    pub publisher: Raw,
    pub subscriber: Raw,
    next: u32,
}

impl Flow {
    pub fn new(addr: SocketAddr, token: Option<&str>) -> Flow {
        let mut subscriber = Raw::connect(addr);
        assert_eq!(subscriber.hello("flow-sub", token), Got::Welcome);
        subscriber.subscribe(1, "flow", QoS::AtLeastOnce, 64);
        let mut publisher = Raw::connect(addr);
        assert_eq!(publisher.hello("flow-pub", token), Got::Welcome);
        Flow {
            publisher,
            subscriber,
            next: 1,
        }
    }

    /// Publishes one QoS 1 message and checks that it is acked and delivered.
    pub fn check(&mut self) {
        let id = self.next;
        self.next += 1;
        let payload = id.to_le_bytes();
        self.publisher
            .publish(id, "flow", QoS::AtLeastOnce, &payload);
        assert_eq!(
            self.publisher.recv(Duration::from_secs(5)),
            Some(Got::PubAck(id))
        );
        match self.subscriber.recv(Duration::from_secs(5)) {
            Some(Got::Deliver {
                tag, payload: p, ..
            }) => {
                assert_eq!(p, payload);
                self.subscriber.send(Frame::Ack(Ack { tag }));
            }
            other => panic!("flow stopped: {other:?}"),
        }
    }
}
