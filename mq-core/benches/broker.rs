//! The broker state machine alone (no I/O, no real store): messages per second for
//! 1-to-1, 1-to-4 fan-out and a 4-member group, at QoS 0 and QoS 1, 100 B payloads.
//!
//! `cargo bench -p mq-core --bench broker [-- MESSAGES]`
//!
//! Publishers and subscribers are frame-level peers in the same thread: the
//! publisher keeps a window of 256 unacknowledged publishes, subscribers ack every
//! QoS 1 delivery, and the "store" reports each batch of records persisted at once
//! (what a group-committing WAL does). The figure is the ceiling the adapters
//! (`mqd`, the clients) are measured against.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant as Clock;

use mq_core::Instant;
use mq_core::broker::{Broker, Config, ConnId};
use mq_core::framing::Framing;
use mq_core::framing::stream::{self, Decoded, StreamDecoder};
use mq_core::wire::*;

const PAYLOAD: [u8; 100] = [0x5a; 100];
const WINDOW: u64 = 256;

struct Run {
    b: Broker,
    now: Instant,
    out: Vec<u8>,
    inbox: HashMap<ConnId, Vec<u8>>,
}

impl Run {
    fn send(&mut self, conn: ConnId, frame: &Frame<'_>) {
        let n = stream::encode_frame(frame, u32::MAX, &mut self.out).unwrap();
        let used = self.b.handle_input(conn, self.now, &self.out[..n]);
        assert_eq!(used, n, "broker refused input");
    }

    /// Moves everything the broker wants to send into per-connection inboxes and
    /// persists every record.
    fn pump(&mut self) {
        let mut last = None;
        while let Some(op) = self.b.poll_store() {
            last = Some(op.token);
        }
        if let Some(t) = last {
            self.b.handle_persisted(t, self.now);
        }
        let mut buf = vec![0u8; 64 * 1024];
        while let Some(t) = self.b.poll_transmit(self.now, &mut buf) {
            self.inbox
                .entry(t.conn)
                .or_default()
                .extend_from_slice(&buf[..t.len]);
        }
    }

    fn connect(&mut self, client: &str) -> ConnId {
        let c = self.b.accept(self.now, Framing::Stream).unwrap();
        self.send(
            c,
            &Frame::Hello(Hello {
                version: PROTOCOL_VERSION,
                client_id: client,
                session: SessionMode::Clean,
                token: None,
                limits: Limits {
                    max_frame: 1 << 20,
                    credit: 1024,
                    keepalive_ms: 0,
                },
            }),
        );
        self.pump();
        self.inbox.remove(&c);
        c
    }
}

/// Handles what arrived for one connection: counts deliveries and pub acks,
/// returning the acks subscribers owe.
fn read(bytes: &mut Vec<u8>, acks: &mut Vec<u64>, delivered: &mut u64, puback: &mut u64) {
    let dec = StreamDecoder::new(u32::MAX);
    let mut pos = 0;
    while let Ok(Decoded::Frame { frame, consumed }) = dec.decode(&bytes[pos..]) {
        match frame {
            Frame::Deliver(d) => {
                black_box(d.payload);
                *delivered += 1;
                if d.qos == QoS::AtLeastOnce {
                    acks.push(d.tag);
                }
            }
            Frame::PubAck(_) => *puback += 1,
            Frame::SubAck(_) => {}
            other => panic!("unexpected {other:?}"),
        }
        pos += consumed;
    }
    bytes.drain(..pos);
}

fn scenario(name: &str, qos: QoS, subscribers: usize, group: bool, messages: u64) {
    let cfg = Config {
        ack_timeout: None,
        limits: Limits {
            max_frame: 1 << 20,
            credit: 1024,
            keepalive_ms: 0,
        },
        ..Config::default()
    };
    let mut r = Run {
        b: Broker::new(cfg),
        now: Instant::from_millis(1),
        out: vec![0u8; 4096],
        inbox: HashMap::new(),
    };
    let publisher = r.connect("publisher");
    let mut subs = Vec::new();
    for i in 0..subscribers {
        let c = r.connect(&format!("sub{i}"));
        r.send(
            c,
            &Frame::Subscribe(Subscribe {
                sub: 1,
                filter: "bench.topic",
                group: group.then_some("workers"),
                start: Start::New,
                qos,
                credit: 1024,
            }),
        );
        subs.push(c);
    }
    r.pump();

    let expected = if group {
        messages
    } else {
        messages * subscribers as u64
    };
    let (mut sent, mut delivered, mut pubacks) = (0u64, 0u64, 0u64);
    let mut acks = Vec::new();
    let mut credit_owed: HashMap<ConnId, u32> = HashMap::new();
    let start = Clock::now();
    while delivered < expected {
        let in_flight = if qos == QoS::AtLeastOnce {
            sent - pubacks
        } else {
            0
        };
        let burst = (WINDOW - in_flight.min(WINDOW)).min(messages - sent);
        for _ in 0..burst {
            sent += 1;
            r.send(
                publisher,
                &Frame::Publish(Publish {
                    id: sent as u32,
                    topic: "bench.topic",
                    qos,
                    dedup: None,
                    meta: Meta::default(),
                    fragment: None,
                    payload: &PAYLOAD,
                }),
            );
        }
        r.pump();
        if let Some(mut bytes) = r.inbox.remove(&publisher) {
            read(&mut bytes, &mut acks, &mut 0, &mut pubacks);
            assert!(acks.is_empty());
        }
        for &s in &subs {
            let Some(mut bytes) = r.inbox.remove(&s) else {
                continue;
            };
            let before = delivered;
            read(&mut bytes, &mut acks, &mut delivered, &mut 0);
            for tag in acks.drain(..) {
                r.send(s, &Frame::Ack(Ack { tag }));
            }
            if qos == QoS::AtMostOnce {
                // QoS 0 credit comes back in batches, as the client session does.
                let owed = credit_owed.entry(s).or_default();
                *owed += (delivered - before) as u32;
                if *owed >= 512 {
                    r.send(
                        s,
                        &Frame::Credit(Credit {
                            sub: 1,
                            credit: *owed,
                        }),
                    );
                    *owed = 0;
                }
            }
        }
        r.pump();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<24} {:>12.0} msg/s published {:>12.0} deliveries/s",
        messages as f64 / secs,
        delivered as f64 / secs
    );
}

fn main() {
    let messages: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500_000);
    println!("broker state machine, {messages} messages of 100 B per scenario");
    for (qos, q) in [(QoS::AtMostOnce, "qos0"), (QoS::AtLeastOnce, "qos1")] {
        scenario(&format!("1-to-1 {q}"), qos, 1, false, messages);
        scenario(&format!("1-to-4 fan-out {q}"), qos, 4, false, messages);
        scenario(&format!("4-member group {q}"), qos, 4, true, messages);
    }
}
