//! The session against a scripted broker, frame by frame, on a virtual clock.
//!
//! This file is the harness ([`T`]: a session, a clock and the broker's side of
//! the wire); the tests are split by concern like the session itself.

mod admin;
mod deliver;
mod lifecycle;
mod props;
mod publish;
mod request;
mod serial;
mod subscribe;

use core::time::Duration;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{println, vec};

use super::*;
use crate::framing::serial::SerialDecoder;
use crate::framing::stream::{self, Split, StreamDecoder};
use crate::time::Instant;
use crate::wire::{
    Close, Deliver, ErrorFrame, Fragment, Frame, Limits, Meta, PubAck, PubReject, QoS, Reason,
    SessionMode, Start, SubAck, SubReject, UnsubAck, Welcome,
};

/// An event with its borrowed parts copied out.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ev {
    Connect,
    Connected(bool),
    Disconnected(Reason),
    Published(u32, u64, bool),
    PublishRejected(u32, Reason),
    Subscribed(u32),
    SubscribeRejected(u32, Reason),
    Unsubscribed(u32),
    Message(Msg),
    Chunk(Piece),
    Reply(RequestId, Msg),
    RequestFailed(RequestId, RequestFailure),
    AdminAnswer(u32, Vec<u8>),
    Closed,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Msg {
    id: DeliveryId,
    sub: u32,
    topic: String,
    seq: u64,
    attempt: u16,
    qos: QoS,
    reply_to: Option<String>,
    correlation: Option<Vec<u8>>,
    payload: Vec<u8>,
}

impl Msg {
    fn of(d: &Delivery<'_>) -> Msg {
        Msg {
            id: d.id,
            sub: d.sub.0,
            topic: d.topic.to_string(),
            seq: d.seq,
            attempt: d.attempt,
            qos: d.qos,
            reply_to: d.meta.reply_to.map(|r| r.to_string()),
            correlation: d.meta.correlation.map(|c| c.to_vec()),
            payload: d.payload.to_vec(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Piece {
    id: DeliveryId,
    topic: String,
    offset: u64,
    total: u64,
    data: Vec<u8>,
    last: bool,
    reply_to: Option<String>,
}

impl From<Event<'_>> for Ev {
    fn from(e: Event<'_>) -> Ev {
        match e {
            Event::Connect => Ev::Connect,
            Event::Connected { session_present } => Ev::Connected(session_present),
            Event::Disconnected { reason } => Ev::Disconnected(reason),
            Event::Published { id, seq, duplicate } => Ev::Published(id.0, seq, duplicate),
            Event::PublishRejected { id, reason } => Ev::PublishRejected(id.0, reason),
            Event::Subscribed { sub } => Ev::Subscribed(sub.0),
            Event::SubscribeRejected { sub, reason } => Ev::SubscribeRejected(sub.0, reason),
            Event::Unsubscribed { sub } => Ev::Unsubscribed(sub.0),
            Event::Message(d) => Ev::Message(Msg::of(&d)),
            Event::Chunk(c) => Ev::Chunk(Piece {
                id: c.id,
                topic: c.topic.to_string(),
                offset: c.offset,
                total: c.total,
                data: c.data.to_vec(),
                last: c.last,
                reply_to: c.meta.reply_to.map(|r| r.to_string()),
            }),
            Event::Reply { id, delivery } => Ev::Reply(id, Msg::of(&delivery)),
            Event::RequestFailed { id, reason } => Ev::RequestFailed(id, reason),
            Event::AdminAnswer { id, body } => Ev::AdminAnswer(id.0, body.to_vec()),
            Event::Closed => Ev::Closed,
        }
    }
}

pub(super) fn frame(body: &[u8]) -> Frame<'_> {
    Frame::decode(body).expect("session sent an undecodable frame")
}

pub(super) fn kinds(bodies: &[Vec<u8>]) -> Vec<&'static str> {
    bodies.iter().map(|b| frame(b).kind()).collect()
}

pub(super) fn limits(max_frame: u32, keepalive_ms: u32) -> Limits {
    Limits {
        max_frame,
        credit: 8,
        keepalive_ms,
    }
}

pub(super) fn config() -> Config {
    let mut c = Config::new("client-1").unwrap();
    c.limits = limits(4096, 0);
    c.reconnect_min = Duration::from_millis(100);
    c.reconnect_max = Duration::from_secs(1);
    c.connect_timeout = Duration::from_secs(5);
    c.seed = 7;
    c
}

/// A delivery frame (the broker tests' scripted peers use it too).
pub(crate) fn deliver<'a>(
    sub: u32,
    topic: &'a str,
    seq: u64,
    tag: u64,
    qos: QoS,
    payload: &'a [u8],
) -> Deliver<'a> {
    Deliver {
        sub,
        topic,
        seq,
        tag,
        attempt: 1,
        qos,
        meta: Meta::default(),
        fragment: None,
        payload,
    }
}

/// The session under test, a clock, and the broker's side of the wire.
pub(super) struct T {
    pub(super) s: Session<Vec<u8>>,
    pub(super) now: Instant,
    /// Lone delimiters the session wrote on a serial line.
    pub(super) delimiters: usize,
}

impl T {
    pub(super) fn new(config: Config, outbox: usize, inbox: usize) -> T {
        T::with_framing(config, Framing::Stream, outbox, inbox)
    }

    pub(super) fn with_framing(config: Config, framing: Framing, outbox: usize, inbox: usize) -> T {
        T {
            s: Session::new(config, framing, vec![0; outbox], vec![0; inbox]),
            now: Instant::from_millis(1_000),
            delimiters: 0,
        }
    }

    pub(super) fn std() -> T {
        T::new(config(), 8192, 8192)
    }

    /// A session on a serial line; the broker's frames go in decoded, as a
    /// serial driver hands them in.
    pub(super) fn serial() -> T {
        T::with_framing(config(), Framing::Serial, 8192, 8192)
    }

    pub(super) fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Everything the session transmits now, as frame bodies.
    pub(super) fn tx(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65_536];
        let mut serial = SerialDecoder::new(vec![0u8; 65_536]);
        while let Some(n) = self.s.poll_transmit(self.now, &mut buf) {
            let mut rest = &buf[..n];
            let dec = StreamDecoder::new(u32::MAX);
            while !rest.is_empty() {
                let consumed = if self.s.framing == Framing::Serial {
                    let (consumed, frame) = serial.feed(rest);
                    match frame {
                        Some(Ok(frame)) => {
                            let mut body = vec![0u8; frame.encoded_len()];
                            frame.encode(&mut body).unwrap();
                            out.push(body);
                        }
                        None if consumed == 1 && rest[0] == 0 => self.delimiters += 1,
                        _ => panic!("partial or bad frame in poll_transmit output"),
                    }
                    consumed
                } else {
                    let Ok(Split::Whole { body, consumed }) = dec.split(rest) else {
                        panic!("partial frame in poll_transmit output");
                    };
                    out.push(body.to_vec());
                    consumed
                };
                rest = &rest[consumed..];
            }
        }
        out
    }

    pub(super) fn ev(&mut self) -> Vec<Ev> {
        let mut out = Vec::new();
        while let Some(e) = self.s.poll_event() {
            out.push(e.into());
        }
        out
    }

    pub(super) fn wire(f: &Frame<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; stream::framed_len(f)];
        let n = stream::encode_frame(f, u32::MAX, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    /// Feeds one frame; returns whether it was consumed.
    pub(super) fn feed(&mut self, f: Frame<'_>) -> bool {
        if self.s.framing == Framing::Serial {
            return self.s.handle_frame(self.now, f).is_ok();
        }
        let bytes = T::wire(&f);
        let n = self.s.handle_input(self.now, &bytes);
        assert!(n == 0 || n == bytes.len());
        n == bytes.len()
    }

    pub(super) fn welcome(session_present: bool, limits: Limits) -> Frame<'static> {
        Frame::Welcome(Welcome {
            version: crate::wire::PROTOCOL_VERSION,
            session_present,
            limits,
            epoch: 0,
        })
    }

    /// Connect, Hello, Welcome; returns the events after Welcome.
    pub(super) fn handshake(&mut self, session_present: bool, broker: Limits) -> Vec<Ev> {
        if self.s.state() == State::Idle {
            self.s.connect(self.now);
            assert_eq!(self.ev(), [Ev::Connect]);
        }
        self.s.handle_connected(self.now);
        assert_eq!(kinds(&self.tx()), ["hello"]);
        assert!(self.feed(T::welcome(session_present, broker)));
        let events = self.ev();
        assert_eq!(events[0], Ev::Connected(session_present));
        events
    }

    /// Transport lost, backoff elapses, Connect, Hello, Welcome.
    pub(super) fn reconnect(&mut self, session_present: bool, broker: Limits) -> Vec<Ev> {
        self.s.handle_disconnected(self.now);
        let mut events = self.ev();
        let at = self.s.poll_timeout().expect("reconnect scheduled");
        self.now = at;
        self.s.handle_timeout(self.now);
        events.extend(self.ev());
        assert_eq!(events.last(), Some(&Ev::Connect));
        self.s.handle_connected(self.now);
        assert_eq!(kinds(&self.tx()), ["hello"]);
        assert!(self.feed(T::welcome(session_present, broker)));
        events.extend(self.ev());
        events
    }

    pub(super) fn subscribe(&mut self, filter: &str) -> SubId {
        let sub = self
            .s
            .subscribe(self.now, filter, &SubscribeOptions::default())
            .unwrap();
        let sent = self.tx();
        assert_eq!(kinds(&sent), ["subscribe"]);
        assert!(self.feed(Frame::SubAck(SubAck { sub: sub.0 })));
        assert_eq!(self.ev(), [Ev::Subscribed(sub.0)]);
        sub
    }
}

pub(super) fn msg(ev: &Ev) -> &Msg {
    match ev {
        Ev::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The `Debug` text of a `T` that `init` built on a slot of zeros: devices
/// build the session's parts so (`init_on_zeros`), and each is compared
/// with its ordinary constructor's value.
///
/// # Safety
///
/// `init` leaves the zeroed slot a valid `T`, as each `init_on_zeros`
/// promises.
pub(crate) unsafe fn debug_on_zeros<T: core::fmt::Debug>(init: impl FnOnce(*mut T)) -> String {
    let mut zeroed = core::mem::MaybeUninit::<T>::zeroed();
    init(zeroed.as_mut_ptr());
    // SAFETY: `init` made it a valid `T` (the caller's promise).
    let built = unsafe { zeroed.assume_init() };
    alloc::format!("{built:?}")
}
