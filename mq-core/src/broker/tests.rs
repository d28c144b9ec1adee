//! Unit tests of the broker's transitions, at the frame level on a virtual clock.

extern crate std;

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;
use std::collections::BTreeMap;

use super::*;
use crate::framing::stream::{encode_frame, framed_len};
use crate::wire::Dedup;
use crate::wire::*;

/// One decoded frame, owned, with just what tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Welcome { present: bool },
    PubAck { id: u32, seq: u64, dup: bool },
    PubReject { id: u32, reason: Reason },
    SubAck(u32),
    SubReject(u32, Reason),
    UnsubAck(u32),
    Deliver(Dv),
    Ping,
    Pong(u64),
    Close(Reason),
    Error(Reason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Dv {
    sub: u32,
    topic: String,
    seq: u64,
    tag: u64,
    attempt: u16,
    qos: QoS,
    payload: Vec<u8>,
    frag: Option<Fragment>,
    reply_to: Option<String>,
}

fn own(frame: Frame<'_>) -> Got {
    match frame {
        Frame::Welcome(w) => Got::Welcome {
            present: w.session_present,
        },
        Frame::PubAck(a) => Got::PubAck {
            id: a.id,
            seq: a.seq,
            dup: a.duplicate,
        },
        Frame::PubReject(r) => Got::PubReject {
            id: r.id,
            reason: r.reason,
        },
        Frame::SubAck(a) => Got::SubAck(a.sub),
        Frame::SubReject(r) => Got::SubReject(r.sub, r.reason),
        Frame::UnsubAck(a) => Got::UnsubAck(a.sub),
        Frame::Deliver(d) => Got::Deliver(Dv {
            sub: d.sub,
            topic: d.topic.to_string(),
            seq: d.seq,
            tag: d.tag,
            attempt: d.attempt,
            qos: d.qos,
            payload: d.payload.to_vec(),
            frag: d.fragment,
            reply_to: d.meta.reply_to.map(ToString::to_string),
        }),
        Frame::Ping(_) => Got::Ping,
        Frame::Pong(n) => Got::Pong(n),
        Frame::Close(c) => Got::Close(c.reason),
        Frame::Error(e) => Got::Error(e.code),
        other => panic!("broker sent a client frame: {other:?}"),
    }
}

struct H {
    b: Broker,
    now: Instant,
    got: BTreeMap<ConnId, Vec<Got>>,
    closed: Vec<ConnId>,
    records: Vec<Vec<u8>>,
    /// Persist store records at once (else they wait for `persist`).
    auto_persist: bool,
    unpersisted: Vec<u64>,
    max_frame: u32,
}

impl H {
    fn new(cfg: Config) -> Self {
        H {
            b: Broker::new(cfg),
            now: Instant::from_secs_for_tests(1),
            got: BTreeMap::new(),
            closed: Vec::new(),
            records: Vec::new(),
            auto_persist: true,
            unpersisted: Vec::new(),
            max_frame: 1 << 20,
        }
    }

    fn drain(&mut self) {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let mut progress = false;
            while let Some(op) = self.b.poll_store() {
                progress = true;
                self.records.push(op.bytes().to_vec());
                if self.auto_persist {
                    self.b.handle_persisted(op.token, self.now);
                } else {
                    self.unpersisted.push(op.token);
                }
            }
            while let Some(t) = self.b.poll_transmit(self.now, &mut buf) {
                progress = true;
                let mut rest = &buf[..t.len];
                let dec = StreamDecoder::new(u32::MAX);
                while !rest.is_empty() {
                    match dec.decode(rest).unwrap() {
                        Decoded::Frame { frame, consumed } => {
                            self.got.entry(t.conn).or_default().push(own(frame));
                            rest = &rest[consumed..];
                        }
                        Decoded::Incomplete { .. } => panic!("partial frame in a transmit"),
                    }
                }
            }
            while let Some(Event::Close(c)) = self.b.poll_event() {
                progress = true;
                self.closed.push(c);
                self.b.handle_closed(c, self.now);
            }
            if !progress {
                break;
            }
        }
        self.b.check_invariants().unwrap();
    }

    fn persist(&mut self) {
        if let Some(&t) = self.unpersisted.last() {
            self.unpersisted.clear();
            self.b.handle_persisted(t, self.now);
            self.drain();
        }
    }

    fn send(&mut self, conn: ConnId, frame: Frame<'_>) {
        let mut buf = vec![0u8; framed_len(&frame)];
        let n = encode_frame(&frame, u32::MAX, &mut buf).unwrap();
        assert_eq!(self.b.handle_input(conn, self.now, &buf[..n]), n);
        self.drain();
    }

    fn take(&mut self, conn: ConnId) -> Vec<Got> {
        self.got.remove(&conn).unwrap_or_default()
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.b.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.b.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
        self.b.handle_timeout(self.now);
        self.drain();
    }

    fn connect_with(&mut self, client: &str, mode: SessionMode, token: Option<&str>) -> ConnId {
        let c = self.b.accept(self.now, Framing::Stream).unwrap();
        self.send(
            c,
            Frame::Hello(Hello {
                version: PROTOCOL_VERSION,
                client_id: client,
                session: mode,
                token,
                limits: Limits {
                    max_frame: self.max_frame,
                    credit: 16,
                    keepalive_ms: 0,
                },
            }),
        );
        c
    }

    fn connect(&mut self, client: &str, mode: SessionMode) -> (ConnId, bool) {
        let c = self.connect_with(client, mode, None);
        let mut got = self.take(c);
        match got.first() {
            Some(&Got::Welcome { present }) => {
                // A resumed session's deliveries may follow at once: keep them.
                got.remove(0);
                if !got.is_empty() {
                    self.got.insert(c, got);
                }
                (c, present)
            }
            other => panic!("no welcome: {other:?}"),
        }
    }

    fn subscribe(&mut self, c: ConnId, sub: u32, filter: &str, group: Option<&str>, credit: u32) {
        self.subscribe_at(c, sub, filter, group, credit, Start::New);
    }

    fn subscribe_at(
        &mut self,
        c: ConnId,
        sub: u32,
        filter: &str,
        group: Option<&str>,
        credit: u32,
        start: Start,
    ) {
        self.send(
            c,
            Frame::Subscribe(Subscribe {
                sub,
                filter,
                group,
                start,
                qos: QoS::AtLeastOnce,
                credit,
            }),
        );
        let got = self.take(c);
        assert!(got.contains(&Got::SubAck(sub)), "no suback: {got:?}");
        // Replayed deliveries may follow the suback: keep them.
        let rest: Vec<Got> = got.into_iter().filter(|g| *g != Got::SubAck(sub)).collect();
        if !rest.is_empty() {
            self.got.insert(c, rest);
        }
    }

    fn publish(&mut self, c: ConnId, id: u32, topic: &str, qos: QoS, payload: &[u8]) {
        self.publish_with(c, id, topic, qos, None, Meta::default(), payload);
    }

    #[allow(clippy::too_many_arguments)]
    fn publish_with(
        &mut self,
        c: ConnId,
        id: u32,
        topic: &str,
        qos: QoS,
        dedup: Option<Dedup>,
        meta: Meta<'_>,
        payload: &[u8],
    ) {
        self.send(
            c,
            Frame::Publish(Publish {
                id,
                topic,
                qos,
                dedup,
                meta,
                fragment: None,
                payload,
            }),
        );
    }

    fn deliveries(&mut self, c: ConnId) -> Vec<Dv> {
        let mut out = Vec::new();
        let mut keep = Vec::new();
        for g in self.take(c) {
            match g {
                Got::Deliver(d) => out.push(d),
                other => keep.push(other),
            }
        }
        if !keep.is_empty() {
            self.got.insert(c, keep);
        }
        out
    }

    fn ack(&mut self, c: ConnId, tag: u64) {
        self.send(c, Frame::Ack(Ack { tag }));
    }
}

impl Instant {
    fn from_secs_for_tests(s: u64) -> Instant {
        Instant::from_millis(s * 1000)
    }
}

fn payloads(ds: &[Dv]) -> Vec<&[u8]> {
    ds.iter().map(|d| d.payload.as_slice()).collect()
}

#[test]
fn handshake_and_frames_before_hello() {
    let mut h = H::new(Config::default());
    let (_c, present) = h.connect("a", SessionMode::Clean);
    assert!(!present);

    let bad = h.b.accept(h.now, Framing::Stream).unwrap();
    h.send(bad, Frame::Ping(1));
    assert_eq!(h.take(bad), vec![Got::Error(Reason::ProtocolViolation)]);
    assert!(h.closed.contains(&bad));
    assert_eq!(h.b.stats().protocol_errors, 1);
}

#[test]
fn qos1_acked_and_delivered_only_after_persisted() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t.*", None, 8);
    h.auto_persist = false;
    h.publish(p, 7, "t.a", QoS::AtLeastOnce, b"one");
    assert!(h.take(p).is_empty(), "acked before persisted");
    assert!(h.deliveries(s).is_empty(), "delivered before persisted");
    h.persist();
    assert_eq!(
        h.take(p),
        vec![Got::PubAck {
            id: 7,
            seq: 1,
            dup: false
        }]
    );
    let d = h.deliveries(s);
    assert_eq!(payloads(&d), [b"one"]);
    assert_eq!((d[0].sub, d[0].seq, d[0].attempt), (1, 1, 1));
}

#[test]
fn qos0_waits_behind_unpersisted_qos1_to_keep_order() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 8);
    h.auto_persist = false;
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    h.publish(p, 0, "t", QoS::AtMostOnce, b"2");
    assert!(h.deliveries(s).is_empty());
    h.persist();
    assert_eq!(payloads(&h.deliveries(s)), [b"1", b"2"]);
}

#[test]
fn fan_out_and_group_competition() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (a, _) = h.connect("a", SessionMode::Clean);
    let (b, _) = h.connect("b", SessionMode::Clean);
    let (w1, _) = h.connect("w1", SessionMode::Clean);
    let (w2, _) = h.connect("w2", SessionMode::Clean);
    h.subscribe(a, 1, "jobs.>", None, 100);
    h.subscribe(b, 1, "jobs.*", None, 100);
    h.subscribe(w1, 1, "jobs.>", Some("workers"), 100);
    h.subscribe(w2, 1, "jobs.>", Some("workers"), 100);
    for i in 0..10u8 {
        h.publish(p, u32::from(i) + 1, "jobs.x", QoS::AtLeastOnce, &[i]);
    }
    assert_eq!(h.deliveries(a).len(), 10);
    assert_eq!(h.deliveries(b).len(), 10);
    let d1 = h.deliveries(w1);
    let d2 = h.deliveries(w2);
    assert_eq!(d1.len() + d2.len(), 10);
    assert!(!d1.is_empty() && !d2.is_empty(), "round robin uses both");
    let mut all: Vec<u8> = d1.iter().chain(&d2).map(|d| d.payload[0]).collect();
    all.sort_unstable();
    assert_eq!(all, (0..10).collect::<Vec<u8>>());
}

#[test]
fn nacked_group_message_goes_to_another_member() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (w1, _) = h.connect("w1", SessionMode::Clean);
    h.subscribe(w1, 1, "q", Some("g"), 10);
    h.publish(p, 1, "q", QoS::AtLeastOnce, b"job");
    let d = h.deliveries(w1);
    assert_eq!(d.len(), 1);
    let (w2, _) = h.connect("w2", SessionMode::Clean);
    h.subscribe(w2, 1, "q", Some("g"), 10);
    h.send(
        w1,
        Frame::Nack(Nack {
            tag: d[0].tag,
            requeue: true,
        }),
    );
    assert!(
        h.deliveries(w2).is_empty(),
        "redelivery waits for its backoff"
    );
    h.advance(Duration::from_secs(1));
    let again = h.deliveries(w2);
    assert_eq!(payloads(&again), [b"job"]);
    assert_eq!(again[0].attempt, 2);
    assert!(h.deliveries(w1).is_empty());
}

#[test]
fn credit_limits_outstanding_deliveries() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 2);
    for i in 0..5u8 {
        h.publish(p, u32::from(i) + 1, "t", QoS::AtLeastOnce, &[i]);
    }
    let d = h.deliveries(s);
    assert_eq!(d.len(), 2);
    h.ack(s, d[0].tag);
    let more = h.deliveries(s);
    assert_eq!(payloads(&more), [[2u8]]);
    h.send(s, Frame::Credit(Credit { sub: 1, credit: 10 }));
    assert_eq!(h.deliveries(s).len(), 2);
}

#[test]
fn ack_timeout_redelivers_then_dead_letters() {
    let cfg = Config {
        ack_timeout: Some(Duration::from_secs(5)),
        max_attempts: 2,
        ..Config::default()
    };
    let mut h = H::new(cfg);
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    let (dl, _) = h.connect("dl", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 10);
    h.subscribe(dl, 1, "$dlq.>", None, 10);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"m");
    assert_eq!(h.deliveries(s)[0].attempt, 1);
    h.advance(Duration::from_secs(6));
    let d = h.deliveries(s);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].attempt, 2);
    h.advance(Duration::from_secs(6));
    assert!(h.deliveries(s).is_empty());
    let dead = h.deliveries(dl);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].topic, "$dlq.t");
    assert_eq!(dead[0].payload, b"m");
    assert_eq!(h.b.stats().dead_lettered, 1);
    // A plain '>' subscriber does not see dead letters.
    let (all, _) = h.connect("all", SessionMode::Clean);
    h.subscribe_at(all, 1, ">", None, 10, Start::Seq(0));
    assert!(h.deliveries(all).iter().all(|d| !d.topic.starts_with('$')));
}

#[test]
fn nack_without_requeue_dead_letters() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 10);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"poison");
    let tag = h.deliveries(s)[0].tag;
    h.send(
        s,
        Frame::Nack(Nack {
            tag,
            requeue: false,
        }),
    );
    assert_eq!(h.b.stats().dead_lettered, 1);
    h.advance(Duration::from_secs(60));
    assert!(h.deliveries(s).is_empty());
}

#[test]
fn duplicate_publishes_are_stored_once() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 10);
    let dd = Some(Dedup {
        producer: 9,
        seq: 1,
    });
    h.publish_with(p, 1, "t", QoS::AtLeastOnce, dd, Meta::default(), b"x");
    h.publish_with(p, 2, "t", QoS::AtLeastOnce, dd, Meta::default(), b"x");
    assert_eq!(
        h.take(p),
        vec![
            Got::PubAck {
                id: 1,
                seq: 1,
                dup: false
            },
            Got::PubAck {
                id: 2,
                seq: 1,
                dup: true
            }
        ]
    );
    assert_eq!(h.deliveries(s).len(), 1);
    assert_eq!(h.b.stats().duplicates, 1);
}

#[test]
fn duplicate_of_unpersisted_publish_is_acked_when_original_is() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.auto_persist = false;
    let dd = Some(Dedup {
        producer: 9,
        seq: 1,
    });
    h.publish_with(p, 1, "t", QoS::AtLeastOnce, dd, Meta::default(), b"x");
    h.publish_with(p, 2, "t", QoS::AtLeastOnce, dd, Meta::default(), b"x");
    assert!(h.take(p).is_empty());
    h.persist();
    assert_eq!(h.take(p).len(), 2);
}

#[test]
fn expired_messages_are_dropped_and_counted() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    let meta = Meta {
        ttl_ms: Some(1000),
        ..Meta::default()
    };
    h.publish_with(p, 1, "t", QoS::AtLeastOnce, None, meta, b"a");
    h.publish_with(p, 2, "t", QoS::AtLeastOnce, None, meta, b"b");
    let d = h.deliveries(s);
    assert_eq!(d.len(), 1);
    h.advance(Duration::from_secs(3));
    h.ack(s, d[0].tag);
    assert!(h.deliveries(s).is_empty(), "expired message delivered");
    assert_eq!(h.b.stats().expired, 1);
}

fn small_queue(overflow: Overflow) -> Config {
    Config {
        default_queue: QueueLimits {
            max_messages: 2,
            max_bytes: 1 << 20,
            overflow,
        },
        ..Config::default()
    }
}

#[test]
fn reject_new_refuses_qos1_when_full() {
    let mut h = H::new(small_queue(Overflow::RejectNew));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    for i in 1..=3 {
        h.publish(p, i, "t", QoS::AtLeastOnce, b"x");
    }
    let got = h.take(p);
    assert_eq!(
        got[2],
        Got::PubReject {
            id: 3,
            reason: Reason::QueueFull
        }
    );
    assert!(h.b.queues().iter().all(|q| q.occupancy <= q.max_messages));
}

#[test]
fn drop_oldest_keeps_the_newest() {
    let mut h = H::new(small_queue(Overflow::DropOldest));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    for i in 1..=4u8 {
        h.publish(p, u32::from(i), "t", QoS::AtLeastOnce, &[i]);
    }
    let d = h.deliveries(s);
    assert_eq!(payloads(&d), [[1u8]]);
    assert_eq!(h.b.stats().dropped, 2);
    h.ack(s, d[0].tag);
    assert_eq!(payloads(&h.deliveries(s)), [[4u8]]);
}

#[test]
fn queue_bounds_count_messages_still_waiting_for_the_store() {
    let mut h = H::new(small_queue(Overflow::RejectNew));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    // A slow store: four publishes are admitted or refused before any is durable.
    h.auto_persist = false;
    for i in 1..=4u8 {
        h.publish(p, u32::from(i), "t", QoS::AtLeastOnce, &[i]);
    }
    h.persist();
    let answers = h.take(p);
    let acked: Vec<u32> = answers
        .iter()
        .filter_map(|g| match g {
            Got::PubAck { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    let refused: Vec<u32> = answers
        .iter()
        .filter_map(|g| match g {
            Got::PubReject {
                id,
                reason: Reason::QueueFull,
            } => Some(*id),
            _ => None,
        })
        .collect();
    // The queue holds two: the other two are refused, not acked and then dropped.
    assert_eq!(acked, [1, 2]);
    assert_eq!(refused, [3, 4]);
    assert_eq!(h.b.stats().dropped, 0);
    let d = h.deliveries(s);
    assert_eq!(payloads(&d), [[1u8]]);
    h.ack(s, d[0].tag);
    assert_eq!(payloads(&h.deliveries(s)), [[2u8]]);
}

#[test]
fn block_holds_publisher_until_room_or_deadline() {
    let mut h = H::new(small_queue(Overflow::Block {
        deadline: Duration::from_secs(2),
    }));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"2");
    h.publish(p, 3, "t", QoS::AtLeastOnce, b"3"); // held
    assert_eq!(h.take(p).len(), 2);
    // While held, further input from the publisher is not consumed.
    let frame = Frame::Ping(1);
    let mut buf = vec![0u8; 16];
    let n = encode_frame(&frame, 1024, &mut buf).unwrap();
    assert_eq!(h.b.handle_input(p, h.now, &buf[..n]), 0);
    // Room appears: the held publish is admitted.
    let d = h.deliveries(s);
    h.ack(s, d[0].tag);
    assert_eq!(
        h.take(p),
        vec![Got::PubAck {
            id: 3,
            seq: 3,
            dup: false
        }]
    );
    // Full again and nobody acks: refused at the deadline.
    h.publish(p, 4, "t", QoS::AtLeastOnce, b"4");
    h.advance(Duration::from_secs(3));
    assert_eq!(
        h.take(p),
        vec![Got::PubReject {
            id: 4,
            reason: Reason::Timeout
        }]
    );
}

#[test]
fn block_admits_a_held_qos0_publish_as_soon_as_deliveries_make_room() {
    let mut h = H::new(small_queue(Overflow::Block {
        deadline: Duration::from_secs(5),
    }));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    // 1 goes out on the only credit, 2 and 3 fill the queue, 4 is held.
    for i in 1..=4u8 {
        h.publish(p, u32::from(i), "t", QoS::AtMostOnce, &[i]);
    }
    assert_eq!(payloads(&h.deliveries(s)), [[1u8]]);
    assert!(h.b.input_blocked(p), "the fourth publish is held");
    // Credit takes 2 out of the queue: that is room, so 4 is admitted now,
    // long before its deadline, and nothing is lost.
    h.send(s, Frame::Credit(Credit { sub: 1, credit: 3 }));
    h.drain();
    assert!(!h.b.input_blocked(p), "held until the deadline");
    assert_eq!(payloads(&h.deliveries(s)), [[2u8], [3], [4]]);
    assert_eq!(h.b.stats().dropped, 0);
}

#[test]
fn persistent_session_queues_while_away_and_resumes_in_order() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, present) = h.connect("dev", SessionMode::Resume);
    assert!(!present);
    h.subscribe(s, 1, "cmd.>", None, 3);
    h.publish(p, 1, "cmd.a", QoS::AtLeastOnce, b"1");
    let first = h.deliveries(s);
    assert_eq!(first.len(), 1);
    // Goes away without acking.
    h.b.handle_closed(s, h.now);
    for i in 2..=5u8 {
        h.publish(p, u32::from(i), "cmd.a", QoS::AtLeastOnce, &[b'0' + i]);
    }
    let (s2, present) = h.connect("dev", SessionMode::Resume);
    assert!(present);
    assert!(
        h.deliveries(s2).is_empty(),
        "nothing until the subscription is re-asserted"
    );
    h.subscribe(s2, 1, "cmd.>", None, 3);
    let d = h.deliveries(s2);
    assert_eq!(
        payloads(&d),
        [b"1", b"2", b"3"],
        "unacked first, then queued, within credit"
    );
    assert_eq!(d[0].attempt, 2);
    for x in &d {
        h.ack(s2, x.tag);
    }
    assert_eq!(payloads(&h.deliveries(s2)), [b"4", b"5"]);
}

#[test]
fn clean_session_discards_stored_one() {
    let mut h = H::new(Config::default());
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "x", None, 3);
    h.b.handle_closed(s, h.now);
    assert!(h.b.has_session("dev"));
    let (_, present) = h.connect("dev", SessionMode::Clean);
    assert!(!present);
    assert_eq!(h.b.stats().current_subscriptions, 0);
}

#[test]
fn takeover_closes_the_old_connection() {
    let mut h = H::new(Config::default());
    let (old, _) = h.connect("dev", SessionMode::Resume);
    let (_new, present) = h.connect("dev", SessionMode::Resume);
    assert!(present);
    assert_eq!(h.take(old), vec![Got::Error(Reason::SessionTakenOver)]);
    assert!(h.closed.contains(&old));
}

#[test]
fn restore_rebuilds_sessions_and_pending_messages() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "t.>", None, 10);
    let (g, _) = h.connect("w", SessionMode::Resume);
    h.subscribe(g, 1, "jobs", Some("workers"), 10);
    h.publish(p, 1, "t.a", QoS::AtLeastOnce, b"acked");
    let d = h.deliveries(s);
    h.ack(s, d[0].tag);
    h.b.handle_closed(s, h.now);
    h.b.handle_closed(g, h.now);
    h.publish(p, 2, "t.a", QoS::AtLeastOnce, b"pending");
    h.publish(p, 3, "jobs", QoS::AtLeastOnce, b"job");
    h.publish(p, 0, "t.a", QoS::AtMostOnce, b"qos0 is not durable");
    let records = h.records.clone();

    let mut r = H::new(Config::default());
    for rec in &records {
        r.b.restore(r.now, rec).unwrap();
    }
    let (s, present) = r.connect("dev", SessionMode::Resume);
    assert!(present);
    r.subscribe(s, 1, "t.>", None, 10);
    assert_eq!(payloads(&r.deliveries(s)), [b"pending"]);
    let (g, present) = r.connect("w", SessionMode::Resume);
    assert!(present);
    r.subscribe(g, 1, "jobs", Some("workers"), 10);
    assert_eq!(payloads(&r.deliveries(g)), [b"job"]);
    // Sequence numbers continue after the restored ones.
    let (p, _) = r.connect("pub", SessionMode::Clean);
    r.publish(p, 1, "t.a", QoS::AtLeastOnce, b"next");
    // The QoS 0 message's sequence number (3) is never handed out again.
    match r.take(p)[..] {
        [
            Got::PubAck {
                id: 1,
                seq,
                dup: false,
            },
        ] => assert!(seq > 3, "seq {seq} reused"),
        ref other => panic!("{other:?}"),
    }
    assert!(r.b.restore(r.now, &[0xff, 0xff]).is_err());
}

#[test]
fn auth_tokens_and_permissions() {
    let cfg = Config {
        auth: Auth {
            tokens: vec![(
                "dev-token".into(),
                Permissions {
                    publish: vec!["telemetry.>".into()],
                    subscribe: vec!["cmd.dev1".into()],
                },
            )],
        },
        ..Config::default()
    };
    let mut h = H::new(cfg);
    let bad = h.connect_with("x", SessionMode::Clean, Some("wrong"));
    assert_eq!(h.take(bad), vec![Got::Error(Reason::BadToken)]);
    let none = h.connect_with("y", SessionMode::Clean, None);
    assert_eq!(h.take(none), vec![Got::Error(Reason::BadToken)]);
    let c = h.connect_with("dev1", SessionMode::Clean, Some("dev-token"));
    assert!(matches!(h.take(c)[..], [Got::Welcome { .. }]));
    h.publish(c, 1, "telemetry.t", QoS::AtLeastOnce, b"ok");
    h.publish(c, 2, "cmd.dev2", QoS::AtLeastOnce, b"no");
    let got = h.take(c);
    assert_eq!(
        got[0],
        Got::PubAck {
            id: 1,
            seq: 1,
            dup: false
        }
    );
    assert_eq!(
        got[1],
        Got::PubReject {
            id: 2,
            reason: Reason::NotAuthorized
        }
    );
    h.send(
        c,
        Frame::Subscribe(Subscribe {
            sub: 1,
            filter: "cmd.>",
            group: None,
            start: Start::New,
            qos: QoS::AtLeastOnce,
            credit: 1,
        }),
    );
    assert_eq!(h.take(c), vec![Got::SubReject(1, Reason::NotAuthorized)]);
    assert_eq!(h.b.stats().auth_failures, 4);
}

#[test]
fn replay_from_sequence_and_last_n() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    for i in 1..=5u8 {
        h.publish(p, u32::from(i), "log", QoS::AtLeastOnce, &[i]);
    }
    let (a, _) = h.connect("a", SessionMode::Clean);
    h.subscribe_at(a, 1, "log", None, 100, Start::Seq(3));
    assert_eq!(payloads(&h.deliveries(a)), [[3u8], [4], [5]]);
    let (b, _) = h.connect("b", SessionMode::Clean);
    h.subscribe_at(b, 1, "log", None, 100, Start::Last(2));
    assert_eq!(payloads(&h.deliveries(b)), [[4u8], [5]]);
    h.publish(p, 9, "log", QoS::AtLeastOnce, &[6]);
    assert_eq!(payloads(&h.deliveries(b)), [[6u8]]);
}

#[test]
fn cursor_resumes_after_last_ack() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "log", None, 100);
    for i in 1..=3u8 {
        h.publish(p, u32::from(i), "log", QoS::AtLeastOnce, &[i]);
    }
    let d = h.deliveries(s);
    h.ack(s, d[0].tag);
    h.ack(s, d[1].tag);
    h.send(s, Frame::Unsubscribe(Unsubscribe { sub: 1 }));
    assert_eq!(h.take(s), vec![Got::UnsubAck(1)]);
    h.subscribe_at(s, 2, "log", None, 100, Start::Cursor);
    assert_eq!(payloads(&h.deliveries(s)), [[3u8]]);
}

#[test]
fn fragmented_publish_and_fragmented_delivery() {
    let mut h = H::new(Config::default());
    h.max_frame = 1024;
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "big", None, 10);
    let payload: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    for (i, chunk) in payload.chunks(700).enumerate() {
        h.send(
            p,
            Frame::Publish(Publish {
                id: 3,
                topic: "big",
                qos: QoS::AtLeastOnce,
                dedup: None,
                meta: Meta::default(),
                fragment: Some(Fragment {
                    offset: (i * 700) as u64,
                    total: payload.len() as u64,
                }),
                payload: chunk,
            }),
        );
    }
    assert_eq!(
        h.take(p),
        vec![Got::PubAck {
            id: 3,
            seq: 1,
            dup: false
        }]
    );
    let parts = h.deliveries(s);
    assert!(parts.len() > 4, "client max_frame 1024 forces fragments");
    let mut joined = Vec::new();
    for d in &parts {
        let f = d.frag.expect("fragment marker");
        assert_eq!(f.offset as usize, joined.len());
        assert_eq!(f.total as usize, payload.len());
        assert_eq!(d.tag, parts[0].tag);
        joined.extend_from_slice(&d.payload);
    }
    assert_eq!(joined, payload);
}

#[test]
fn out_of_order_fragment_closes_the_connection() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.send(
        p,
        Frame::Publish(Publish {
            id: 1,
            topic: "t",
            qos: QoS::AtLeastOnce,
            dedup: None,
            meta: Meta::default(),
            fragment: Some(Fragment {
                offset: 10,
                total: 20,
            }),
            payload: b"0123456789",
        }),
    );
    assert_eq!(h.take(p), vec![Got::Error(Reason::ProtocolViolation)]);
}

#[test]
fn malformed_and_oversized_input_close_only_that_connection() {
    let cfg = Config {
        limits: Limits {
            max_frame: 4096,
            ..Config::default().limits
        },
        ..Config::default()
    };
    let mut h = H::new(cfg);
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 10);
    let (bad, _) = h.connect("bad", SessionMode::Clean);
    assert_eq!(h.b.handle_input(bad, h.now, &[3, 0xff, 0xff, 0xff]), 4);
    h.drain();
    assert_eq!(h.take(bad), vec![Got::Error(Reason::Malformed)]);
    let (big, _) = h.connect("big", SessionMode::Clean);
    // A length prefix of 1 MiB: refused before any of it arrives.
    assert_eq!(h.b.handle_input(big, h.now, &[0x80, 0x80, 0x40]), 3);
    h.drain();
    assert_eq!(h.take(big), vec![Got::Error(Reason::FrameTooLarge)]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"still works");
    assert_eq!(payloads(&h.deliveries(s)), [b"still works"]);
}

#[test]
fn keepalive_timeout_closes_silent_connection() {
    let mut h = H::new(Config {
        limits: Limits {
            keepalive_ms: 1000,
            ..Config::default().limits
        },
        ..Config::default()
    });
    let (c, _) = h.connect("c", SessionMode::Clean);
    h.advance(Duration::from_millis(600));
    assert_eq!(h.take(c), vec![Got::Ping]);
    h.advance(Duration::from_millis(1000));
    assert!(h.take(c).contains(&Got::Error(Reason::KeepaliveTimeout)));
    assert!(h.closed.contains(&c));
}

#[test]
fn request_reply_carries_reply_to() {
    let mut h = H::new(Config::default());
    let (req, _) = h.connect("req", SessionMode::Clean);
    let (srv, _) = h.connect("srv", SessionMode::Clean);
    h.subscribe(srv, 1, "svc.echo", Some("svc"), 10);
    h.subscribe(req, 1, "reply.req", None, 10);
    let meta = Meta {
        reply_to: Some("reply.req"),
        correlation: Some(b"c1"),
        ..Meta::default()
    };
    h.publish_with(req, 1, "svc.echo", QoS::AtLeastOnce, None, meta, b"ping");
    let d = h.deliveries(srv);
    assert_eq!(d[0].reply_to.as_deref(), Some("reply.req"));
    h.publish(
        srv,
        1,
        d[0].reply_to.as_deref().unwrap(),
        QoS::AtMostOnce,
        b"pong",
    );
    assert_eq!(payloads(&h.deliveries(req)), [b"pong"]);
}

#[test]
fn publishing_to_system_topics_is_refused() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.publish(p, 1, "$dlq.x", QoS::AtLeastOnce, b"x");
    assert_eq!(
        h.take(p),
        vec![Got::PubReject {
            id: 1,
            reason: Reason::NotAuthorized
        }]
    );
}

#[test]
fn paused_connection_gets_no_bytes_until_resumed() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 10);
    h.b.pause_transmit(s);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    assert!(h.deliveries(s).is_empty());
    assert_eq!(h.take(p).len(), 1, "other connections still flow");
    h.b.resume_transmit(s);
    h.drain();
    assert_eq!(payloads(&h.deliveries(s)), [b"x"]);
}

#[test]
fn graceful_shutdown_refuses_new_work_and_drains_deliveries() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"2");
    h.take(p);
    h.b.begin_shutdown();
    h.publish(p, 3, "t", QoS::AtLeastOnce, b"3");
    assert_eq!(
        h.take(p),
        vec![Got::PubReject {
            id: 3,
            reason: Reason::ShuttingDown
        }]
    );
    assert_eq!(
        h.b.accept(h.now, Framing::Stream),
        Err(AcceptError::ShuttingDown)
    );
    assert!(!h.b.is_drained(), "message 2 is still owed");
    let d = h.deliveries(s);
    h.ack(s, d[0].tag);
    let d = h.deliveries(s);
    assert_eq!(payloads(&d), [b"2"]);
    assert!(!h.b.is_drained(), "message 2 is in flight");
    h.ack(s, d[0].tag);
    assert!(h.b.is_drained());
    h.b.shutdown(h.now);
    h.drain();
    assert!(h.closed.contains(&s) && h.closed.contains(&p));
}

#[test]
fn reoffered_partial_frame_is_not_activity() {
    let mut h = H::new(Config {
        limits: Limits {
            keepalive_ms: 1000,
            ..Config::default().limits
        },
        ..Config::default()
    });
    let (c, _) = h.connect("c", SessionMode::Clean);
    let partial = [40u8, 2, 0];
    assert_eq!(h.b.handle_input(c, h.now, &partial), 0);
    for _ in 0..20 {
        h.now += Duration::from_millis(100);
        // An adapter retrying its leftover must not keep the connection alive.
        if !h.closed.contains(&c) {
            assert_eq!(h.b.handle_input(c, h.now, &partial), 0);
        }
        h.b.handle_timeout(h.now);
        h.drain();
    }
    assert!(
        h.closed.contains(&c),
        "half frame kept the connection alive"
    );
    assert!(h.take(c).contains(&Got::Error(Reason::KeepaliveTimeout)));
}

#[test]
fn snapshot_plus_later_records_rebuilds_the_same_broker() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "t.>", None, 2);
    let (g, _) = h.connect("w", SessionMode::Resume);
    h.subscribe(g, 1, "jobs", Some("workers"), 10);
    let dd = |seq| Some(Dedup { producer: 7, seq });
    for i in 1..=4u8 {
        h.publish_with(
            p,
            u32::from(i),
            "t.a",
            QoS::AtLeastOnce,
            dd(u64::from(i)),
            Meta::default(),
            &[i],
        );
    }
    let d = h.deliveries(s);
    h.ack(s, d[0].tag); // 1 acked, 2 in flight, 3 and 4 waiting
    h.publish(p, 9, "jobs", QoS::AtLeastOnce, b"job");
    h.b.handle_closed(s, h.now);
    h.b.handle_closed(g, h.now);
    let snap = h.b.snapshot().expect("store drained");
    let before = h.records.len();
    // After the snapshot: one more message, and a new subscriber's record.
    h.publish_with(p, 5, "t.a", QoS::AtLeastOnce, dd(5), Meta::default(), &[5]);
    let later = h.records[before..].to_vec();

    let mut r = H::new(Config::default());
    for rec in snap.records.iter().map(|r| r.to_vec()).chain(later) {
        r.b.restore(r.now, &rec).unwrap();
    }
    let (s, present) = r.connect("dev", SessionMode::Resume);
    assert!(present);
    r.subscribe(s, 1, "t.>", None, 2);
    let d = r.deliveries(s);
    assert_eq!(
        payloads(&d),
        [[2u8], [3]],
        "in-flight 2 and waiting 3 come back first"
    );
    for x in &d {
        r.ack(s, x.tag);
    }
    assert_eq!(payloads(&r.deliveries(s)), [[4u8], [5]]);
    let (g, _) = r.connect("w", SessionMode::Resume);
    r.subscribe(g, 1, "jobs", Some("workers"), 10);
    assert_eq!(payloads(&r.deliveries(g)), [b"job"]);
    // The dedup window and the sequences survived.
    let (p, _) = r.connect("pub", SessionMode::Clean);
    r.publish_with(p, 1, "t.a", QoS::AtLeastOnce, dd(2), Meta::default(), &[2]);
    assert_eq!(
        r.take(p),
        vec![Got::PubAck {
            id: 1,
            seq: 2,
            dup: true
        }]
    );
    r.publish(p, 2, "t.a", QoS::AtLeastOnce, b"new");
    match r.take(p)[..] {
        [
            Got::PubAck {
                id: 2,
                seq,
                dup: false,
            },
        ] => assert!(seq > 5),
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn snapshot_waits_for_the_store_to_be_drained_and_restore_skips_repeats() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "t", None, 10);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    let d = h.deliveries(s);
    h.ack(s, d[0].tag);
    // A record emitted and not yet handed out: no snapshot now.
    let frame = Frame::Publish(Publish {
        id: 2,
        topic: "t",
        qos: QoS::AtLeastOnce,
        dedup: None,
        meta: Meta::default(),
        fragment: None,
        payload: b"y",
    });
    let mut buf = vec![0u8; 64];
    let n = encode_frame(&frame, 1024, &mut buf).unwrap();
    h.b.handle_input(p, h.now, &buf[..n]);
    assert!(h.b.snapshot().is_none());
    h.drain();
    let snap = h.b.snapshot().unwrap();
    // A store that wrote the whole log after the snapshot too: nothing doubles.
    let mut r = H::new(Config::default());
    for rec in snap
        .records
        .iter()
        .map(|r| r.to_vec())
        .chain(h.records.clone())
    {
        r.b.restore(r.now, &rec).unwrap();
    }
    let (s, _) = r.connect("dev", SessionMode::Resume);
    r.subscribe(s, 1, "t", None, 10);
    assert_eq!(payloads(&r.deliveries(s)), [b"y"]);
}
