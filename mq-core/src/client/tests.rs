//! The session against a scripted broker, frame by frame, on a virtual clock.

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
enum Ev {
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
    Closed,
}

#[derive(Debug, Clone, PartialEq)]
struct Msg {
    id: DeliveryId,
    sub: u32,
    topic: String,
    seq: u64,
    attempt: u16,
    qos: QoS,
    reply_to: Option<String>,
    payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
struct Piece {
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
            Event::Message(d) => Ev::Message(Msg {
                id: d.id,
                sub: d.sub.0,
                topic: d.topic.to_string(),
                seq: d.seq,
                attempt: d.attempt,
                qos: d.qos,
                reply_to: d.meta.reply_to.map(|r| r.to_string()),
                payload: d.payload.to_vec(),
            }),
            Event::Chunk(c) => Ev::Chunk(Piece {
                id: c.id,
                topic: c.topic.to_string(),
                offset: c.offset,
                total: c.total,
                data: c.data.to_vec(),
                last: c.last,
                reply_to: c.meta.reply_to.map(|r| r.to_string()),
            }),
            Event::Closed => Ev::Closed,
        }
    }
}

fn frame(body: &[u8]) -> Frame<'_> {
    Frame::decode(body).expect("session sent an undecodable frame")
}

fn kinds(bodies: &[Vec<u8>]) -> Vec<&'static str> {
    bodies.iter().map(|b| frame(b).kind()).collect()
}

fn limits(max_frame: u32, keepalive_ms: u32) -> Limits {
    Limits {
        max_frame,
        credit: 8,
        keepalive_ms,
    }
}

fn config() -> Config {
    let mut c = Config::new("client-1").unwrap();
    c.limits = limits(4096, 0);
    c.reconnect_min = Duration::from_millis(100);
    c.reconnect_max = Duration::from_secs(1);
    c.connect_timeout = Duration::from_secs(5);
    c.seed = 7;
    c
}

fn deliver<'a>(
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
struct T {
    s: Session<Vec<u8>>,
    now: Instant,
}

impl T {
    fn new(config: Config, outbox: usize, inbox: usize) -> T {
        T {
            s: Session::new(config, Framing::Stream, vec![0; outbox], vec![0; inbox]),
            now: Instant::from_millis(1_000),
        }
    }

    fn std() -> T {
        T::new(config(), 8192, 8192)
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Everything the session transmits now, as frame bodies.
    fn tx(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while let Some(n) = self.s.poll_transmit(self.now, &mut buf) {
            let mut rest = &buf[..n];
            let dec = StreamDecoder::new(u32::MAX);
            while !rest.is_empty() {
                let Ok(Split::Whole { body, consumed }) = dec.split(rest) else {
                    panic!("partial frame in poll_transmit output");
                };
                out.push(body.to_vec());
                rest = &rest[consumed..];
            }
        }
        out
    }

    fn ev(&mut self) -> Vec<Ev> {
        let mut out = Vec::new();
        while let Some(e) = self.s.poll_event() {
            out.push(e.into());
        }
        out
    }

    fn wire(f: &Frame<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; stream::framed_len(f)];
        let n = stream::encode_frame(f, u32::MAX, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    /// Feeds one frame; returns whether it was consumed.
    fn feed(&mut self, f: Frame<'_>) -> bool {
        let bytes = T::wire(&f);
        let n = self.s.handle_input(self.now, &bytes);
        assert!(n == 0 || n == bytes.len());
        n == bytes.len()
    }

    fn welcome(session_present: bool, limits: Limits) -> Frame<'static> {
        Frame::Welcome(Welcome {
            version: crate::wire::PROTOCOL_VERSION,
            session_present,
            limits,
        })
    }

    /// Connect, Hello, Welcome; returns the events after Welcome.
    fn handshake(&mut self, session_present: bool, broker: Limits) -> Vec<Ev> {
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
    fn reconnect(&mut self, session_present: bool, broker: Limits) -> Vec<Ev> {
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

    fn subscribe(&mut self, filter: &str) -> SubId {
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

fn msg(ev: &Ev) -> &Msg {
    match ev {
        Ev::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn handshake_sends_hello_then_waits_for_welcome() {
    let mut t = T::new(config(), 4096, 1024);
    assert_eq!(t.s.state(), State::Idle);
    assert_eq!(t.s.poll_timeout(), None);
    // Queued before connecting: must wait for Welcome.
    t.s.publish(t.now, "a.b", b"early", &PublishOptions::default())
        .unwrap();
    t.s.connect(t.now);
    assert_eq!(t.ev(), [Ev::Connect]);
    assert_eq!(t.s.poll_timeout(), Some(t.now + Duration::from_secs(5)));
    t.s.handle_connected(t.now);
    let sent = t.tx();
    assert_eq!(kinds(&sent), ["hello"]);
    let Frame::Hello(h) = frame(&sent[0]) else {
        unreachable!()
    };
    assert_eq!(h.client_id, "client-1");
    assert_eq!(h.session, SessionMode::Resume);
    assert_eq!(h.version, crate::wire::PROTOCOL_VERSION);
    // The announced maximum frame is lowered to what the inbox holds.
    assert_eq!(h.limits.max_frame, (1024 - INBOX_RECORD_OVERHEAD) as u32);
    assert_eq!(t.s.receive_limits(), h.limits);
    assert!(t.tx().is_empty());
    assert!(t.feed(T::welcome(false, limits(2048, 0))));
    assert_eq!(t.ev(), [Ev::Connected(false)]);
    assert!(t.s.is_connected());
    assert_eq!(t.s.broker_limits(), Some(limits(2048, 0)));
    let sent = t.tx();
    assert_eq!(kinds(&sent), ["publish"]);
    assert_eq!(t.s.outbox_len(), 0);
    assert_eq!(t.s.stats().frames_in, 1);
}

#[test]
fn qos0_and_qos1_publish_and_puback_frees_outbox() {
    let mut c = config();
    c.producer = Some(42);
    let mut t = T::new(c, 4096, 4096);
    t.handshake(false, limits(4096, 0));
    let q0 =
        t.s.publish(t.now, "s.t", b"zero", &PublishOptions::default())
            .unwrap();
    let opts = PublishOptions {
        qos: QoS::AtLeastOnce,
        meta: Meta {
            reply_to: Some("r.me"),
            ..Meta::default()
        },
    };
    let q1 = t.s.publish(t.now, "s.t", b"one", &opts).unwrap();
    let q1b = t.s.publish(t.now, "s.u", b"two", &opts).unwrap();
    assert_eq!((q0.0, q1.0, q1b.0), (1, 2, 3));
    assert_eq!(t.s.outbox_len(), 3);
    let sent = t.tx();
    let pubs: Vec<_> = sent
        .iter()
        .map(|b| match frame(b) {
            Frame::Publish(p) => (
                p.id,
                p.qos,
                p.dedup.map(|d| (d.producer, d.seq)),
                p.payload.to_vec(),
            ),
            f => panic!("unexpected {f:?}"),
        })
        .collect();
    assert_eq!(
        pubs,
        [
            (1, QoS::AtMostOnce, None, b"zero".to_vec()),
            (2, QoS::AtLeastOnce, Some((42, 1)), b"one".to_vec()),
            (3, QoS::AtLeastOnce, Some((42, 2)), b"two".to_vec()),
        ]
    );
    let Frame::Publish(p) = frame(&sent[1]) else {
        unreachable!()
    };
    assert_eq!(p.meta.reply_to, Some("r.me"));
    // QoS 0 left the outbox once written; QoS 1 waits for PubAck.
    assert_eq!(t.s.outbox_len(), 2);
    assert!(t.feed(Frame::PubAck(PubAck {
        id: 3,
        seq: 11,
        duplicate: false
    })));
    assert!(t.feed(Frame::PubAck(PubAck {
        id: 2,
        seq: 10,
        duplicate: true
    })));
    assert_eq!(
        t.ev(),
        [Ev::Published(3, 11, false), Ev::Published(2, 10, true)]
    );
    assert_eq!((t.s.outbox_len(), t.s.outbox_bytes()), (0, 0));
    let st = t.s.stats();
    assert_eq!((st.publishes, st.publish_acks), (3, 2));
    // An unknown PubAck is ignored.
    assert!(t.feed(Frame::PubAck(PubAck {
        id: 99,
        seq: 1,
        duplicate: false
    })));
    assert!(t.ev().is_empty());
    assert_eq!(
        t.s.publish(t.now, "a.*", b"", &PublishOptions::default()),
        Err(PublishError::InvalidTopic)
    );
}

#[test]
fn outbox_full_then_succeeds_after_ack() {
    // 32 + 3 + 5 + 100 = 140 bytes per record: three fit in 450.
    let mut t = T::new(config(), 450, 4096);
    t.handshake(false, limits(4096, 0));
    let opts = PublishOptions {
        qos: QoS::AtLeastOnce,
        ..Default::default()
    };
    for _ in 0..3 {
        t.s.publish(t.now, "a.b", &[1; 100], &opts).unwrap();
    }
    assert_eq!(
        t.s.publish(t.now, "a.b", &[1; 100], &opts),
        Err(PublishError::OutboxFull)
    );
    assert_eq!(
        t.s.publish(t.now, "a.b", &[1; 500], &opts),
        Err(PublishError::TooLarge)
    );
    assert_eq!(t.tx().len(), 3);
    assert!(t.feed(Frame::PubAck(PubAck {
        id: 2,
        seq: 1,
        duplicate: false
    })));
    // Freed in the middle: compaction makes the room usable.
    assert_eq!(
        t.s.publish(t.now, "a.b", &[1; 100], &opts),
        Ok(PublishId(4))
    );
    assert_eq!(t.s.outbox_len(), 3);
}

#[test]
fn unacked_publishes_resent_in_order_after_reconnect() {
    let mut c = config();
    c.producer = Some(7);
    let mut t = T::new(c, 8192, 4096);
    let broker = limits(128, 0);
    t.handshake(false, broker);
    let q1 = PublishOptions {
        qos: QoS::AtLeastOnce,
        ..Default::default()
    };
    t.s.publish(t.now, "a.one", b"A", &q1).unwrap();
    t.s.publish(t.now, "a.big", &[9; 300], &PublishOptions::default())
        .unwrap();
    t.s.publish(t.now, "a.two", b"C", &q1).unwrap();
    t.s.publish(t.now, "a.three", b"D", &q1).unwrap();
    // A transmit buffer that fits one fragment at a time: stop after the first
    // fragment of the QoS 0 message.
    let mut buf = [0u8; 140];
    let mut got = Vec::new();
    while !got.iter().any(|(id, _)| *id == 2) {
        let n = t.s.poll_transmit(t.now, &mut buf).unwrap();
        let mut rest = &buf[..n];
        while let Ok(Split::Whole { body, consumed }) = StreamDecoder::new(u32::MAX).split(rest) {
            let Frame::Publish(p) = frame(body) else {
                panic!()
            };
            got.push((p.id, p.fragment.map(|f| f.offset)));
            rest = &rest[consumed..];
        }
    }
    assert_eq!(got, [(1, None), (2, Some(0))]);
    // Lost before the QoS 0 message was complete and before any PubAck.
    let events = t.reconnect(true, broker);
    assert_eq!(
        events,
        [
            Ev::Disconnected(Reason::Normal),
            Ev::Connect,
            Ev::Connected(true)
        ]
    );
    let sent = t.tx();
    let order: Vec<_> = sent
        .iter()
        .map(|b| match frame(b) {
            Frame::Publish(p) => (p.id, p.dedup.map(|d| d.seq), p.fragment.map(|f| f.offset)),
            f => panic!("unexpected {f:?}"),
        })
        .collect();
    assert_eq!(order[0], (1, Some(1), None));
    assert_eq!(order[1], (2, None, Some(0)));
    assert!(order[2..order.len() - 2].iter().all(|o| o.0 == 2));
    assert_eq!(order[order.len() - 2], (3, Some(2), None));
    assert_eq!(order[order.len() - 1], (4, Some(3), None));
    // Acked ones are not resent again.
    for id in [1, 4] {
        assert!(t.feed(Frame::PubAck(PubAck {
            id,
            seq: 1,
            duplicate: true
        })));
    }
    t.ev();
    t.reconnect(true, broker);
    let again: Vec<_> = t
        .tx()
        .iter()
        .map(|b| match frame(b) {
            Frame::Publish(p) => p.id,
            _ => 0,
        })
        .collect();
    assert_eq!(again, [3]);
}

#[test]
fn large_publish_is_fragmented_without_interleaving() {
    let mut t = T::new(config(), 8192, 4096);
    t.handshake(false, limits(256, 0));
    let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let opts = PublishOptions {
        qos: QoS::AtLeastOnce,
        meta: Meta {
            correlation: Some(b"corr"),
            ..Meta::default()
        },
    };
    let big = t.s.publish(t.now, "big.data", &payload, &opts).unwrap();
    let small =
        t.s.publish(t.now, "small", b"x", &PublishOptions::default())
            .unwrap();
    let sent = t.tx();
    let mut whole = Vec::new();
    let mut frames = 0;
    for body in &sent[..sent.len() - 1] {
        assert!(body.len() <= 256, "fragment of {} bytes", body.len());
        let Frame::Publish(p) = frame(body) else {
            panic!()
        };
        assert_eq!(p.id, big.0);
        let f = p.fragment.unwrap();
        assert_eq!((f.offset, f.total), (whole.len() as u64, 1000));
        assert_eq!(p.meta.correlation, Some(&b"corr"[..]));
        whole.extend_from_slice(p.payload);
        frames += 1;
    }
    assert!(frames >= 4);
    assert_eq!(whole, payload);
    let Frame::Publish(last) = frame(sent.last().unwrap()) else {
        panic!()
    };
    assert_eq!((last.id, last.fragment), (small.0, None));
    assert_eq!(t.s.outbox_len(), 1);
    // Headers alone larger than the broker's frame: refused up front.
    let long_topic = "t".repeat(250);
    assert_eq!(
        t.s.publish(t.now, &long_topic, b"", &PublishOptions::default()),
        Err(PublishError::TooLarge)
    );
}

#[test]
fn publish_that_cannot_fit_a_smaller_broker_is_rejected_locally() {
    let mut t = T::new(config(), 8192, 4096);
    let long_topic = "t".repeat(200);
    let id =
        t.s.publish(t.now, &long_topic, b"x", &PublishOptions::default())
            .unwrap();
    t.handshake(false, limits(100, 0));
    assert!(t.tx().is_empty());
    assert_eq!(t.ev(), [Ev::PublishRejected(id.0, Reason::MessageTooLarge)]);
    assert_eq!(t.s.outbox_len(), 0);
}

#[test]
fn max_frame_out_caps_publish_fragments_below_the_broker_limit() {
    let mut c = config();
    c.max_frame_out = 300;
    let mut t = T::new(c, 8192, 4096);
    // The broker takes 1 MiB frames; the device sends at most 300-byte ones.
    t.handshake(false, limits(1 << 20, 0));
    let payload: Vec<u8> = (0..2000u32).map(|i| (i * 7) as u8).collect();
    let opts = PublishOptions {
        qos: QoS::AtLeastOnce,
        ..PublishOptions::default()
    };
    let id =
        t.s.publish(t.now, "dev.telemetry", &payload, &opts)
            .unwrap();
    // A transmit buffer that holds exactly one capped frame is enough.
    let mut buf = vec![0u8; Framing::Stream.max_framed_len(300)];
    let mut whole = Vec::new();
    let mut frames = 0;
    while let Some(n) = t.s.poll_transmit(t.now, &mut buf) {
        let Ok(Split::Whole { body, consumed }) = StreamDecoder::new(u32::MAX).split(&buf[..n])
        else {
            panic!("partial frame in poll_transmit output");
        };
        assert_eq!(consumed, n, "one frame per call with this buffer");
        assert!(body.len() <= 300, "frame of {} bytes", body.len());
        let Frame::Publish(p) = frame(body) else {
            panic!("expected a publish")
        };
        let f = p.fragment.expect("fragmented");
        assert_eq!((p.id, f.offset, f.total), (id.0, whole.len() as u64, 2000));
        whole.extend_from_slice(p.payload);
        frames += 1;
    }
    assert_eq!(whole, payload);
    assert!(frames >= 7, "{frames} fragments");
    // Headers alone above the cap: refused up front, although the broker would
    // take them.
    let long_topic = "t".repeat(250);
    let meta = Meta {
        correlation: Some(&[1; 100]),
        ..Meta::default()
    };
    assert_eq!(
        t.s.publish(
            t.now,
            &long_topic,
            b"x",
            &PublishOptions {
                meta,
                ..PublishOptions::default()
            }
        ),
        Err(PublishError::TooLarge)
    );
    // A broker limit below the cap wins.
    let mut c = config();
    c.max_frame_out = 4096;
    let mut t = T::new(c, 8192, 4096);
    t.handshake(false, limits(256, 0));
    t.s.publish(t.now, "a", &[1; 1000], &PublishOptions::default())
        .unwrap();
    let sent = t.tx();
    assert!(sent.len() >= 4);
    assert!(sent.iter().all(|b| b.len() <= 256));
}

#[test]
fn subscriptions_sent_after_welcome_and_again_when_session_lost() {
    let mut t = T::std();
    let opts = SubscribeOptions {
        start: Start::Last(5),
        credit: 3,
        ..Default::default()
    };
    let a = t.s.subscribe(t.now, "sensors.>", &opts).unwrap();
    let b =
        t.s.subscribe(
            t.now,
            "jobs.*",
            &SubscribeOptions {
                group: Some("workers"),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((a.0, b.0), (1, 2));
    t.handshake(false, limits(4096, 0));
    let sent = t.tx();
    let subs: Vec<_> = sent
        .iter()
        .map(|b| match frame(b) {
            Frame::Subscribe(s) => (
                s.sub,
                s.filter.to_string(),
                s.group.map(|g| g.to_string()),
                s.start,
                s.credit,
            ),
            f => panic!("unexpected {f:?}"),
        })
        .collect();
    assert_eq!(
        subs,
        [
            (1, "sensors.>".to_string(), None, Start::Last(5), 3),
            (
                2,
                "jobs.*".to_string(),
                Some("workers".to_string()),
                Start::New,
                8
            ),
        ]
    );
    assert!(t.feed(Frame::SubAck(SubAck { sub: 1 })));
    assert!(t.feed(Frame::SubAck(SubAck { sub: 2 })));
    assert_eq!(t.ev(), [Ev::Subscribed(1), Ev::Subscribed(2)]);
    // Resumed session: every subscription is re-asserted with its id, filter
    // and group (the broker delivers for it only after that).
    t.reconnect(true, limits(4096, 0));
    let reasserted: Vec<_> = t
        .tx()
        .iter()
        .map(|b| match frame(b) {
            Frame::Subscribe(s) => (s.sub, s.filter.to_string(), s.group.map(str::to_string)),
            f => panic!("unexpected {f:?}"),
        })
        .collect();
    assert_eq!(
        reasserted,
        [
            (1, "sensors.>".to_string(), None),
            (2, "jobs.*".to_string(), Some("workers".to_string()))
        ]
    );
    // Lost session: every subscription again, from the stored cursor.
    t.reconnect(false, limits(4096, 0));
    let sent = t.tx();
    let again: Vec<_> = sent
        .iter()
        .map(|b| match frame(b) {
            Frame::Subscribe(s) => (s.sub, s.start),
            f => panic!("unexpected {f:?}"),
        })
        .collect();
    assert_eq!(again, [(1, Start::Cursor), (2, Start::Cursor)]);
    // Acks of the resubscription do not repeat Subscribed.
    assert!(t.feed(Frame::SubAck(SubAck { sub: 1 })));
    assert!(t.ev().is_empty());
    assert_eq!(
        t.s.subscribe(t.now, "a..b", &SubscribeOptions::default()),
        Err(SubscribeError::InvalidFilter)
    );
    assert_eq!(
        t.s.subscribe(
            t.now,
            "a",
            &SubscribeOptions {
                group: Some(""),
                ..Default::default()
            }
        ),
        Err(SubscribeError::InvalidGroup)
    );
}

#[test]
fn subscribe_table_full_reject_and_unsubscribe() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let a = t.subscribe("a");
    for i in 1..8 {
        t.s.subscribe(t.now, &std::format!("x{i}"), &SubscribeOptions::default())
            .unwrap();
    }
    assert_eq!(
        t.s.subscribe(t.now, "full", &SubscribeOptions::default()),
        Err(SubscribeError::TableFull)
    );
    // Never sent: removed at once, nothing on the wire.
    t.s.unsubscribe(t.now, SubId(8)).unwrap();
    assert_eq!(t.s.subscriptions(), 7);
    assert_eq!(t.tx().len(), 6);
    assert!(t.feed(Frame::SubReject(SubReject {
        sub: 2,
        reason: Reason::NotAuthorized
    })));
    assert_eq!(t.ev(), [Ev::SubscribeRejected(2, Reason::NotAuthorized)]);
    assert_eq!(t.s.subscriptions(), 6);
    t.s.unsubscribe(t.now, a).unwrap();
    let sent = t.tx();
    assert_eq!(kinds(&sent), ["unsubscribe"]);
    assert!(t.feed(Frame::UnsubAck(UnsubAck { sub: a.0 })));
    assert_eq!(t.ev(), [Ev::Unsubscribed(a.0)]);
    assert_eq!(t.s.unsubscribe(t.now, a), Err(UnsubscribeError::UnknownSub));
    assert_eq!(t.s.grant_credit(a, 1), Err(CreditError::UnknownSub));
}

#[test]
fn delivery_event_then_ack_sends_tag() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("orders.>");
    let mut d = deliver(sub.0, "orders.eu", 17, 900, QoS::AtLeastOnce, b"payload");
    d.meta.reply_to = Some("replies.x");
    d.attempt = 2;
    assert!(t.feed(Frame::Deliver(d)));
    let events = t.ev();
    let m = msg(&events[0]);
    assert_eq!(
        (m.sub, m.topic.as_str(), m.seq, m.attempt, m.qos),
        (sub.0, "orders.eu", 17, 2, QoS::AtLeastOnce)
    );
    assert_eq!(m.reply_to.as_deref(), Some("replies.x"));
    assert_eq!(m.payload, b"payload");
    assert!(m.id.needs_ack());
    assert_eq!(t.s.held_len(), 1);
    assert!(t.tx().is_empty());
    t.s.ack(m.id).unwrap();
    let sent = t.tx();
    assert_eq!(frame(&sent[0]), Frame::Ack(crate::wire::Ack { tag: 900 }));
    assert_eq!(t.s.held_len(), 0);
    assert_eq!(t.s.ack(m.id), Err(AckError::Unknown));
    // Nack carries requeue.
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "orders.eu",
        18,
        901,
        QoS::AtLeastOnce,
        b"p"
    ))));
    let id = msg(&t.ev()[0]).id;
    t.s.nack(id, false).unwrap();
    assert_eq!(
        frame(&t.tx()[0]),
        Frame::Nack(crate::wire::Nack {
            tag: 901,
            requeue: false
        })
    );
    // QoS 0: nothing to ack.
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "orders.eu",
        19,
        902,
        QoS::AtMostOnce,
        b"p"
    ))));
    let id = msg(&t.ev()[0]).id;
    assert_eq!(id, DeliveryId::NONE);
    assert_eq!(t.s.ack(id), Ok(()));
    assert!(t.tx().is_empty());
    assert_eq!(t.s.stats().deliveries, 3);
}

#[test]
fn redelivery_of_acked_message_is_suppressed_and_reacked() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("a.>");
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.b",
        5,
        10,
        QoS::AtLeastOnce,
        b"x"
    ))));
    let id = msg(&t.ev()[0]).id;
    t.s.ack(id).unwrap();
    assert_eq!(kinds(&t.tx()), ["ack"]);
    let mut again = deliver(sub.0, "a.b", 5, 11, QoS::AtLeastOnce, b"x");
    again.attempt = 2;
    assert!(t.feed(Frame::Deliver(again)));
    assert!(t.ev().is_empty());
    assert_eq!(frame(&t.tx()[0]), Frame::Ack(crate::wire::Ack { tag: 11 }));
    assert_eq!(t.s.stats().duplicates_suppressed, 1);
    // Same sequence on another topic is a different message.
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.c",
        5,
        12,
        QoS::AtLeastOnce,
        b"y"
    ))));
    assert_eq!(t.ev().len(), 1);
}

#[test]
fn redelivery_of_held_message_updates_its_tag() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("a.>");
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.b",
        1,
        10,
        QoS::AtLeastOnce,
        b"x"
    ))));
    let first = msg(&t.ev()[0]).id;
    // Ack timeout on the broker: same message, new tag; not shown again.
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.b",
        1,
        11,
        QoS::AtLeastOnce,
        b"x"
    ))));
    assert!(t.ev().is_empty());
    t.s.ack(first).unwrap();
    assert_eq!(frame(&t.tx()[0]), Frame::Ack(crate::wire::Ack { tag: 11 }));
    // Across a reconnect the held entry waits for its redelivery's tag.
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.b",
        2,
        12,
        QoS::AtLeastOnce,
        b"y"
    ))));
    let second = msg(&t.ev()[0]).id;
    t.reconnect(true, limits(4096, 0));
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.b",
        2,
        30,
        QoS::AtLeastOnce,
        b"y"
    ))));
    assert!(t.ev().is_empty());
    t.s.ack(second).unwrap();
    assert_eq!(frame(&t.tx()[0]), Frame::Ack(crate::wire::Ack { tag: 30 }));
    assert_eq!(t.s.stats().redeliveries_absorbed, 2);
}

#[test]
fn ack_after_disconnect_is_stale_and_applied_on_redelivery() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("a.>");
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.b",
        5,
        10,
        QoS::AtLeastOnce,
        b"x"
    ))));
    let id = msg(&t.ev()[0]).id;
    t.s.handle_disconnected(t.now);
    assert_eq!(t.ev(), [Ev::Disconnected(Reason::Normal)]);
    assert_eq!(t.s.ack(id), Err(AckError::Stale));
    assert_eq!(t.s.ack(id), Err(AckError::Unknown));
    assert!(t.tx().is_empty());
    // Put the session back to Backoff expectations: reconnect from here.
    let at = t.s.poll_timeout().unwrap();
    t.now = at;
    t.s.handle_timeout(t.now);
    assert_eq!(t.ev(), [Ev::Connect]);
    t.handshake(true, limits(4096, 0));
    // The resumed subscription is re-asserted.
    assert_eq!(kinds(&t.tx()), ["subscribe"]);
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.b",
        5,
        20,
        QoS::AtLeastOnce,
        b"x"
    ))));
    assert!(t.ev().is_empty());
    assert_eq!(frame(&t.tx()[0]), Frame::Ack(crate::wire::Ack { tag: 20 }));
}

#[test]
fn fragmented_delivery_reassembled_when_it_fits() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("f.>");
    let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    for (i, part) in payload.chunks(300).enumerate() {
        let mut d = deliver(sub.0, "f.x", 3, 77, QoS::AtLeastOnce, part);
        d.fragment = Some(Fragment {
            offset: i as u64 * 300,
            total: 1000,
        });
        if i > 0 {
            // Headers come from the first fragment only.
            d.topic = "ignored";
        }
        assert!(t.feed(Frame::Deliver(d)));
        let events = t.ev();
        if i < 3 {
            assert!(events.is_empty());
        } else {
            let m = msg(&events[0]);
            assert_eq!((m.topic.as_str(), m.seq), ("f.x", 3));
            assert_eq!(m.payload, payload);
            t.s.ack(m.id).unwrap();
        }
    }
    assert_eq!(frame(&t.tx()[0]), Frame::Ack(crate::wire::Ack { tag: 77 }));
}

#[test]
fn delivery_larger_than_inbox_arrives_in_chunks() {
    let mut t = T::new(config(), 4096, 512);
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("f.>");
    let payload: Vec<u8> = (0..2000u32).map(|i| (i * 3) as u8).collect();
    let mut got = Vec::new();
    let mut id = None;
    for (i, part) in payload.chunks(300).enumerate() {
        let mut d = deliver(sub.0, "f.big", 9, 55, QoS::AtLeastOnce, part);
        d.meta.reply_to = Some("back");
        d.fragment = Some(Fragment {
            offset: i as u64 * 300,
            total: 2000,
        });
        assert!(t.feed(Frame::Deliver(d)));
        let events = t.ev();
        assert_eq!(events.len(), 1);
        let Ev::Chunk(c) = &events[0] else {
            panic!("expected a chunk")
        };
        assert_eq!(
            (c.offset, c.total, c.topic.as_str()),
            (i as u64 * 300, 2000, "f.big")
        );
        assert_eq!(c.last, c.offset + c.data.len() as u64 == 2000);
        assert_eq!(c.reply_to.is_some(), i == 0);
        assert_eq!(*id.get_or_insert(c.id), c.id);
        got.extend_from_slice(&c.data);
    }
    assert_eq!(got, payload);
    t.s.ack(id.unwrap()).unwrap();
    assert_eq!(frame(&t.tx()[0]), Frame::Ack(crate::wire::Ack { tag: 55 }));
    assert_eq!(t.s.stats().deliveries, 1);
}

#[test]
fn full_inbox_stops_input_until_events_are_drained() {
    // One 100-byte delivery on "a.b" takes 56 + 3 + 5 + 100 = 164 bytes.
    let mut t = T::new(config(), 4096, 200);
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("a.>");
    let mut input = Vec::new();
    for seq in 1..=3 {
        input.extend(T::wire(&Frame::Deliver(deliver(
            sub.0,
            "a.b",
            seq,
            seq,
            QoS::AtMostOnce,
            &[seq as u8; 100],
        ))));
    }
    let one = input.len() / 3;
    let mut seen = Vec::new();
    let mut rest = &input[..];
    let mut calls = 0;
    while !rest.is_empty() {
        let n = t.s.handle_input(t.now, rest);
        assert_eq!(n, one, "exactly one delivery fits at a time");
        rest = &rest[n..];
        for e in t.ev() {
            seen.push(msg(&e).seq);
        }
        calls += 1;
    }
    assert_eq!((seen, calls), (vec![1, 2, 3], 3));
    // Held table full also pushes back (HELD = 1 here).
    let mut s: Session<Vec<u8>, 8, 1> =
        Session::new(config(), Framing::Stream, vec![0; 1024], vec![0; 4096]);
    s.connect(t.now);
    s.handle_connected(t.now);
    let mut buf = vec![0u8; 4096];
    s.poll_transmit(t.now, &mut buf);
    assert!(
        s.handle_frame(t.now, T::welcome(false, limits(4096, 0)))
            .is_ok()
    );
    let sub = s
        .subscribe(t.now, "a", &SubscribeOptions::default())
        .unwrap();
    s.poll_transmit(t.now, &mut buf);
    assert!(
        s.handle_frame(
            t.now,
            Frame::Deliver(deliver(sub.0, "a", 1, 1, QoS::AtLeastOnce, b"1"))
        )
        .is_ok()
    );
    assert_eq!(
        s.handle_frame(
            t.now,
            Frame::Deliver(deliver(sub.0, "a", 2, 2, QoS::AtLeastOnce, b"2"))
        ),
        Err(Backpressure::Held)
    );
}

#[test]
fn qos0_credit_returned_in_batches_and_grants_sent() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub =
        t.s.subscribe(
            t.now,
            "c.>",
            &SubscribeOptions {
                credit: 4,
                qos: QoS::AtMostOnce,
                ..Default::default()
            },
        )
        .unwrap();
    t.tx();
    assert!(t.feed(Frame::SubAck(SubAck { sub: sub.0 })));
    t.ev();
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "c.x",
        1,
        1,
        QoS::AtMostOnce,
        b"1"
    ))));
    t.ev();
    assert!(t.tx().is_empty(), "one owed is below half the window");
    for seq in 2..=3 {
        assert!(t.feed(Frame::Deliver(deliver(
            sub.0,
            "c.x",
            seq,
            seq,
            QoS::AtMostOnce,
            b"n"
        ))));
    }
    assert_eq!(t.ev().len(), 2);
    assert_eq!(
        frame(&t.tx()[0]),
        Frame::Credit(crate::wire::Credit {
            sub: sub.0,
            credit: 3
        })
    );
    assert!(t.tx().is_empty());
    // QoS 1 deliveries return credit through the ack only.
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "c.x",
        4,
        4,
        QoS::AtLeastOnce,
        b"n"
    ))));
    let id = msg(&t.ev()[0]).id;
    t.s.ack(id).unwrap();
    assert_eq!(kinds(&t.tx()), ["ack"]);
    t.s.grant_credit(sub, 10).unwrap();
    assert_eq!(
        frame(&t.tx()[0]),
        Frame::Credit(crate::wire::Credit {
            sub: sub.0,
            credit: 10
        })
    );
}

#[test]
fn keepalive_pings_answers_and_detects_dead_broker() {
    let mut c = config();
    c.limits.keepalive_ms = 10_000;
    let mut t = T::new(c, 4096, 4096);
    let start = t.now;
    t.handshake(false, limits(4096, 4_000));
    // Effective interval 4 s: ping after 2 s of silence.
    assert_eq!(t.s.poll_timeout(), Some(start + Duration::from_secs(2)));
    t.now = t.s.poll_timeout().unwrap();
    t.s.handle_timeout(t.now);
    assert_eq!(frame(&t.tx()[0]), Frame::Ping(1));
    t.advance(Duration::from_millis(500));
    assert!(t.feed(Frame::Ping(77)));
    assert_eq!(frame(&t.tx()[0]), Frame::Pong(77));
    let last_rx = t.now;
    // Nothing more from the broker: pings every 2 s, dead 6 s after the last input.
    let mut pings = 0;
    loop {
        t.now = t.s.poll_timeout().unwrap();
        t.s.handle_timeout(t.now);
        pings += t.tx().len();
        let events = t.ev();
        if !events.is_empty() {
            assert_eq!(events, [Ev::Disconnected(Reason::KeepaliveTimeout)]);
            break;
        }
    }
    assert_eq!(t.now, last_rx + Duration::from_secs(6));
    assert_eq!(pings, 2);
    assert_eq!(t.s.state(), State::Disconnecting);
    assert_eq!(t.s.stats().timeouts, 1);
    // The adapter closes; no second Disconnected.
    t.s.handle_disconnected(t.now);
    assert!(t.ev().is_empty());
    assert_eq!(t.s.state(), State::Backoff);
}

#[test]
fn no_welcome_in_time_is_a_timeout() {
    let mut t = T::std();
    t.s.connect(t.now);
    t.ev();
    t.advance(Duration::from_secs(1));
    t.s.handle_connected(t.now);
    t.tx();
    t.now = t.s.poll_timeout().unwrap();
    assert_eq!(t.now, Instant::from_millis(1_000 + 5_000));
    t.s.handle_timeout(t.now);
    assert_eq!(t.ev(), [Ev::Disconnected(Reason::Timeout)]);
    assert!(t.tx().is_empty());
}

#[test]
fn reconnect_backoff_doubles_with_jitter_and_resets_after_welcome() {
    let mut t = T::std();
    t.s.connect(t.now);
    t.ev();
    let mut expect_ms = [100u64, 200, 400, 800, 1000, 1000].into_iter();
    for base in expect_ms.by_ref() {
        t.s.handle_connected(t.now);
        t.s.handle_disconnected(t.now);
        assert_eq!(t.ev(), [Ev::Disconnected(Reason::Normal)]);
        let at = t.s.poll_timeout().unwrap();
        let delay = (at - t.now).as_millis() as u64;
        assert!(
            delay >= base * 3 / 4 && delay <= base * 5 / 4,
            "delay {delay} ms for base {base} ms"
        );
        // Not before its time.
        t.s.handle_timeout(Instant::from_micros(at.as_micros() - 1));
        assert!(t.ev().is_empty());
        t.now = at;
        t.s.handle_timeout(t.now);
        assert_eq!(t.ev(), [Ev::Connect]);
    }
    assert_eq!(t.s.stats().reconnects, 6);
    t.handshake(false, limits(4096, 0));
    t.s.handle_disconnected(t.now);
    let delay = (t.s.poll_timeout().unwrap() - t.now).as_millis();
    assert!((75..=125).contains(&delay));
}

#[test]
fn malformed_or_unexpected_input_sends_error_and_disconnects() {
    let sub_deliver = T::wire(&Frame::Deliver(deliver(
        42,
        "a",
        1,
        1,
        QoS::AtMostOnce,
        b"",
    )));
    let welcome = T::wire(&T::welcome(false, limits(4096, 0)));
    let mut first = deliver(1, "a", 1, 1, QoS::AtMostOnce, &[0; 10]);
    first.fragment = Some(Fragment {
        offset: 0,
        total: 20,
    });
    let mut gap = first;
    gap.fragment = Some(Fragment {
        offset: 15,
        total: 20,
    });
    let mut out_of_order = T::wire(&Frame::Deliver(first));
    out_of_order.extend(T::wire(&Frame::Deliver(gap)));
    let cases: [(&str, Vec<u8>, Reason); 6] = [
        ("garbage", vec![3, 0xFF, 0xFF, 0xFF], Reason::Malformed),
        (
            "bad prefix",
            vec![0x80, 0x80, 0x80, 0x80, 0x80],
            Reason::Malformed,
        ),
        (
            "oversized",
            vec![0xFF, 0xFF, 0xFF, 0x7F],
            Reason::FrameTooLarge,
        ),
        ("unknown sub", sub_deliver, Reason::ProtocolViolation),
        ("welcome twice", welcome, Reason::ProtocolViolation),
        ("fragment gap", out_of_order, Reason::ProtocolViolation),
    ];
    for (name, input, reason) in cases {
        let mut t = T::std();
        t.handshake(false, limits(4096, 0));
        t.s.subscribe(t.now, "a", &SubscribeOptions::default())
            .unwrap();
        t.tx();
        assert_eq!(t.s.handle_input(t.now, &input), input.len(), "{name}");
        assert_eq!(t.ev(), [Ev::Disconnected(reason)], "{name}");
        let sent = t.tx();
        assert_eq!(sent.len(), 1, "{name}");
        let Frame::Error(ErrorFrame { code, .. }) = frame(&sent[0]) else {
            panic!("{name}: expected an error frame")
        };
        assert_eq!(code, reason, "{name}");
        assert_eq!(t.s.state(), State::Disconnecting);
        // Further input is ignored; the adapter closes and reconnects later.
        assert_eq!(t.s.handle_input(t.now, &[1, 2, 3]), 3);
        t.s.handle_disconnected(t.now);
        assert!(t.ev().is_empty(), "{name}");
        assert_eq!(t.s.state(), State::Backoff);
        assert_eq!(t.s.stats().protocol_errors, 1);
    }
    // Before Welcome, anything but Welcome / Error / Close / Ping is a violation.
    let mut t = T::std();
    t.s.connect(t.now);
    t.s.handle_connected(t.now);
    t.tx();
    t.ev();
    assert!(t.feed(Frame::PubAck(PubAck {
        id: 1,
        seq: 1,
        duplicate: false
    })));
    assert_eq!(t.ev(), [Ev::Disconnected(Reason::ProtocolViolation)]);
}

#[test]
fn broker_close_error_and_rejects() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let id =
        t.s.publish(
            t.now,
            "a",
            b"x",
            &PublishOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        )
        .unwrap();
    t.tx();
    assert!(t.feed(Frame::PubReject(PubReject {
        id: id.0,
        reason: Reason::QueueFull
    })));
    assert_eq!(t.ev(), [Ev::PublishRejected(id.0, Reason::QueueFull)]);
    assert_eq!(t.s.outbox_len(), 0);
    assert!(t.feed(Frame::Close(Close {
        reason: Reason::ShuttingDown,
        text: "bye"
    })));
    assert_eq!(t.ev(), [Ev::Disconnected(Reason::ShuttingDown)]);
    assert!(t.tx().is_empty());
    let events = t.reconnect(true, limits(4096, 0));
    assert_eq!(events, [Ev::Connect, Ev::Connected(true)]);
    // Taken over by another connection: closed for good.
    assert!(t.feed(Frame::Error(ErrorFrame {
        code: Reason::SessionTakenOver,
        text: ""
    })));
    assert_eq!(t.ev(), [Ev::Disconnected(Reason::SessionTakenOver)]);
    t.s.handle_disconnected(t.now);
    assert_eq!(t.ev(), [Ev::Closed]);
    assert_eq!((t.s.state(), t.s.poll_timeout()), (State::Closed, None));
}

#[test]
fn close_sends_close_then_closed_and_never_reconnects() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    t.s.close(t.now);
    assert!(t.ev().is_empty());
    let sent = t.tx();
    assert_eq!(
        frame(&sent[0]),
        Frame::Close(Close {
            reason: Reason::Normal,
            text: ""
        })
    );
    assert_eq!(t.ev(), [Ev::Closed]);
    t.s.handle_disconnected(t.now);
    t.s.handle_timeout(t.now + Duration::from_secs(3600));
    assert!(t.ev().is_empty());
    assert_eq!((t.s.state(), t.s.poll_timeout()), (State::Closed, None));
    // While waiting to reconnect, close is immediate.
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    t.s.handle_disconnected(t.now);
    t.ev();
    t.s.close(t.now);
    assert_eq!(t.ev(), [Ev::Closed]);
    assert_eq!(t.s.poll_timeout(), None);
}

#[test]
fn too_small_transmit_buffer_is_left_untouched() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    t.s.publish(t.now, "a.b", &[5; 100], &PublishOptions::default())
        .unwrap();
    let mut small = [0xAAu8; 64];
    assert_eq!(t.s.poll_transmit(t.now, &mut small), None);
    assert_eq!(small, [0xAA; 64]);
    assert_eq!(kinds(&t.tx()), ["publish"]);
}

#[test]
fn serial_framing_round_trip() {
    let mut s: Session<[u8; 2048]> = Session::new(config(), Framing::Serial, [0; 2048], [0; 2048]);
    let now = Instant::from_millis(5);
    s.connect(now);
    s.handle_connected(now);
    let mut line = [0u8; 4096];
    let n = s.poll_transmit(now, &mut line).unwrap();
    let mut dec = SerialDecoder::new([0u8; 4096]);
    let (used, out) = dec.feed(&line[..n]);
    assert_eq!(used, n);
    assert!(matches!(out, Some(Ok(Frame::Hello(_)))));
    // The serial driver decodes the broker's frames itself.
    s.handle_frame(now, T::welcome(true, limits(512, 0)))
        .unwrap();
    assert_eq!(s.poll_event(), Some(Event::Connect));
    assert_eq!(
        s.poll_event(),
        Some(Event::Connected {
            session_present: true
        })
    );
    s.publish(now, "uart.x", &[0; 50], &PublishOptions::default())
        .unwrap();
    let n = s.poll_transmit(now, &mut line).unwrap();
    let (_, out) = dec.feed(&line[..n]);
    let Some(Ok(Frame::Publish(p))) = out else {
        panic!("expected a publish")
    };
    assert_eq!((p.topic, p.payload.len()), ("uart.x", 50));
}

#[test]
fn size_of_session() {
    let size = core::mem::size_of::<Session<[u8; 4096]>>();
    println!("size_of::<Session<[u8; 4096]>>() = {size}");
    assert!(size < 20 * 1024);
}

#[test]
fn events_keep_arrival_order_around_messages() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub =
        t.s.subscribe(t.now, "o.>", &SubscribeOptions::default())
            .unwrap();
    let id =
        t.s.publish(
            t.now,
            "o.p",
            b"x",
            &PublishOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        )
        .unwrap();
    t.tx();
    let mut input = T::wire(&Frame::SubAck(SubAck { sub: sub.0 }));
    input.extend(T::wire(&Frame::Deliver(deliver(
        sub.0,
        "o.a",
        1,
        1,
        QoS::AtMostOnce,
        b"1",
    ))));
    input.extend(T::wire(&Frame::PubAck(PubAck {
        id: id.0,
        seq: 4,
        duplicate: false,
    })));
    input.extend(T::wire(&Frame::Deliver(deliver(
        sub.0,
        "o.a",
        2,
        2,
        QoS::AtMostOnce,
        b"2",
    ))));
    assert_eq!(t.s.handle_input(t.now, &input), input.len());
    let events = t.ev();
    assert_eq!(events[0], Ev::Subscribed(sub.0));
    assert_eq!(msg(&events[1]).seq, 1);
    assert_eq!(events[2], Ev::Published(id.0, 4, false));
    assert_eq!(msg(&events[3]).seq, 2);
}

#[test]
fn chunked_delivery_cut_by_disconnect_is_shown_again() {
    let mut t = T::new(config(), 4096, 512);
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("f.>");
    let mut first = deliver(sub.0, "f.big", 1, 5, QoS::AtLeastOnce, &[1; 300]);
    first.fragment = Some(Fragment {
        offset: 0,
        total: 1000,
    });
    assert!(t.feed(Frame::Deliver(first)));
    let Ev::Chunk(c) = &t.ev()[0] else { panic!() };
    let old = c.id;
    t.reconnect(true, limits(4096, 0));
    assert_eq!(t.s.ack(old), Err(AckError::Unknown));
    first.tag = 6;
    first.attempt = 2;
    assert!(t.feed(Frame::Deliver(first)));
    let Ev::Chunk(c) = &t.ev()[0] else {
        panic!("the redelivery must be shown from offset 0")
    };
    assert_eq!(c.offset, 0);
    assert_ne!(c.id, old);
    // A reassembly cut short leaves nothing behind in the inbox either.
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("f.>");
    let mut d = deliver(sub.0, "f.x", 1, 5, QoS::AtLeastOnce, &[1; 300]);
    d.fragment = Some(Fragment {
        offset: 0,
        total: 600,
    });
    assert!(t.feed(Frame::Deliver(d)));
    assert!(t.s.inbox_bytes() > 0);
    t.reconnect(true, limits(4096, 0));
    assert_eq!((t.s.inbox_bytes(), t.s.held_len()), (0, 0));
}

#[test]
fn unsubscribe_while_away_completes_when_the_session_is_lost() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("a");
    t.s.handle_disconnected(t.now);
    t.s.unsubscribe(t.now, sub).unwrap();
    let at = t.s.poll_timeout().unwrap();
    t.now = at;
    t.s.handle_timeout(t.now);
    t.ev();
    assert_eq!(
        t.handshake(false, limits(4096, 0)),
        [Ev::Connected(false), Ev::Unsubscribed(sub.0)]
    );
    assert!(t.tx().is_empty());
    assert_eq!(t.s.subscriptions(), 0);
    // With the session resumed, the Unsubscribe goes out instead.
    let sub = t.subscribe("b");
    t.s.handle_disconnected(t.now);
    t.s.unsubscribe(t.now, sub).unwrap();
    let events = t.reconnect(true, limits(4096, 0));
    assert_eq!(events.last(), Some(&Ev::Connected(true)));
    assert_eq!(kinds(&t.tx()), ["unsubscribe"]);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn connected() -> T {
        let mut t = T::new(config(), 2048, 700);
        t.handshake(false, limits(300, 0));
        t.subscribe("a.>");
        t.s.publish(t.now, "a.b", &[7; 700], &PublishOptions::default())
            .unwrap();
        t
    }

    /// Drives the session like an adapter would, checking what comes out.
    fn pump(t: &mut T) {
        for body in t.tx() {
            frame(&body);
        }
        let events = t.ev();
        for e in events {
            if let Ev::Message(m) = &e {
                let _ = t.s.ack(m.id);
            }
            if let Ev::Chunk(c) = &e
                && c.last
            {
                let _ = t.s.nack(c.id, true);
            }
        }
    }

    /// sub, seq, tag, topic index, attempt, QoS 1, payload length, fragment.
    type Spec = (u32, u64, u64, u64, u16, bool, usize, Option<(u64, u64)>);

    fn fragment_strategy() -> impl Strategy<Value = Spec> {
        (
            0u32..3,
            0u64..4,
            0u64..6,
            0u64..4,
            1u16..3,
            any::<bool>(),
            0usize..400,
            proptest::option::of((0u64..1200, 0u64..1200)),
        )
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let mut t = connected();
            for chunk in &chunks {
                let n = t.s.handle_input(t.now, chunk);
                prop_assert!(n <= chunk.len());
                pump(&mut t);
            }
        }

        #[test]
        fn arbitrary_deliveries_never_panic_or_leak(
            frames in proptest::collection::vec(fragment_strategy(), 0..24),
            disconnect_at in 0usize..24,
        ) {
            let mut t = connected();
            let payload = [3u8; 400];
            for (i, (sub, seq, tag, topic, attempt, qos1, len, frag)) in frames.into_iter().enumerate() {
                if i == disconnect_at {
                    t.reconnect(true, limits(300, 0));
                }
                let topics = ["a.b", "a.c", "a.d.e", "x"];
                let mut d = deliver(sub, topics[topic as usize], seq, tag, if qos1 { QoS::AtLeastOnce } else { QoS::AtMostOnce }, &payload[..len]);
                d.attempt = attempt;
                d.fragment = frag.map(|(offset, total)| Fragment { offset, total });
                let bytes = T::wire(&Frame::Deliver(d));
                let mut rest = &bytes[..];
                for _ in 0..4 {
                    let n = t.s.handle_input(t.now, rest);
                    rest = &rest[n..];
                    pump(&mut t);
                    if rest.is_empty() {
                        break;
                    }
                }
                if !t.s.is_connected() {
                    t.reconnect(true, limits(300, 0));
                }
            }
            pump(&mut t);
            prop_assert!(t.s.inbox_bytes() <= 700);
        }
    }
}

#[test]
fn close_sends_queued_acks_and_publishes_before_close() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("jobs");
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "jobs",
        1,
        70,
        QoS::AtLeastOnce,
        b"a"
    ))));
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "jobs",
        2,
        71,
        QoS::AtLeastOnce,
        b"b"
    ))));
    let ids: Vec<DeliveryId> = t.ev().iter().map(|e| msg(e).id).collect();
    for id in ids {
        t.s.ack(id).unwrap();
    }
    t.s.publish(t.now, "log", b"bye", &PublishOptions::default())
        .unwrap();
    t.s.close(t.now);
    let sent = t.tx();
    assert_eq!(
        kinds(&sent),
        ["ack", "ack", "publish", "close"],
        "everything queued before close goes out before the Close"
    );
}

#[test]
fn acks_go_out_before_an_unsubscribe_issued_after_them() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("jobs");
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "jobs",
        1,
        80,
        QoS::AtLeastOnce,
        b"a"
    ))));
    let id = msg(&t.ev()[0]).id;
    t.s.ack(id).unwrap();
    t.s.unsubscribe(t.now, sub).unwrap();
    assert_eq!(kinds(&t.tx()), ["ack", "unsubscribe"]);
}
