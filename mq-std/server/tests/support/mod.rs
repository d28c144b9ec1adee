//! A broker in a test loop, for the log's tests: frame-level peers, a virtual
//! clock, and the records it asks to store. Records come from a real
//! in-process `Broker`, the way the server produces them.

#![allow(dead_code)]

use std::collections::HashMap;

use mq_core::Instant;
use mq_core::broker::{Broker, Config, ConnId, Record, StoreOp};
use mq_core::framing::Framing;
use mq_core::framing::stream::{self, Decoded, StreamDecoder};
use mq_core::wire::*;
use mq_server::store::Store;

/// A frame from the broker, as tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    Welcome {
        session_present: bool,
    },
    PubAck(u32),
    PubReject(u32),
    SubAck(u32),
    Deliver(Delivery),
    /// Anything else, printed.
    Other(String),
}

/// A delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub sub: u32,
    pub topic: String,
    pub seq: u64,
    pub tag: u64,
    pub qos: QoS,
    pub payload: Vec<u8>,
}

/// A broker in a test loop: frame-level peers, a virtual clock, and a store.
pub struct Sim {
    pub b: Broker,
    pub now: Instant,
    pub out: Vec<u8>,
    pub inbox: HashMap<ConnId, Vec<u8>>,
}

impl Sim {
    pub fn new() -> Sim {
        Sim::with(Config::default())
    }

    pub fn with(cfg: Config) -> Sim {
        Sim {
            b: Broker::new(cfg),
            now: Instant::from_millis(1),
            out: vec![0u8; 256 * 1024],
            inbox: HashMap::new(),
        }
    }

    /// A broker rebuilt from `records`.
    pub fn restored(records: &[Vec<u8>]) -> Sim {
        let mut sim = Sim::new();
        for r in records {
            sim.b.restore(sim.now, r).unwrap();
        }
        sim
    }

    pub fn send(&mut self, conn: ConnId, frame: &Frame<'_>) {
        let n = stream::encode_frame(frame, u32::MAX, &mut self.out).unwrap();
        let used = self.b.handle_input(conn, self.now, &self.out[..n]);
        assert_eq!(used, n, "broker refused input");
    }

    pub fn connect(&mut self, client: &str, session: SessionMode) -> ConnId {
        let c = self.b.accept(self.now, Framing::Stream).unwrap();
        self.send(
            c,
            &Frame::Hello(Hello {
                version: PROTOCOL_VERSION,
                client_id: client,
                session,
                token: None,
                limits: Limits {
                    max_frame: 1 << 20,
                    credit: 1024,
                    keepalive_ms: 0,
                },
            }),
        );
        c
    }

    pub fn publish(&mut self, conn: ConnId, id: u32, payload: &[u8]) {
        self.publish_to(conn, id, "t", QoS::AtLeastOnce, payload);
    }

    pub fn publish_to(&mut self, conn: ConnId, id: u32, topic: &str, qos: QoS, payload: &[u8]) {
        self.send(
            conn,
            &Frame::Publish(Publish {
                id,
                topic,
                qos,
                dedup: None,
                meta: Meta::default(),
                fragment: None,
                payload,
            }),
        );
    }

    /// Everything the broker wants stored, without reporting it persisted.
    pub fn take_ops(&mut self) -> Vec<StoreOp> {
        std::iter::from_fn(|| self.b.poll_store()).collect()
    }

    /// Moves what the broker sends to the inboxes; whether anything moved.
    pub fn transmit(&mut self) -> bool {
        let mut moved = false;
        while let Some(t) = self.b.poll_transmit(self.now, &mut self.out) {
            moved = true;
            self.inbox
                .entry(t.conn)
                .or_default()
                .extend_from_slice(&self.out[..t.len]);
        }
        moved
    }

    /// Writes what the broker wants stored, compacts when the store asks, moves
    /// output to the inboxes; until nothing moves.
    pub fn pump(&mut self, store: &mut impl Store) {
        loop {
            let ops = self.take_ops();
            if let Some(last) = ops.last().map(|op| op.token) {
                store.write(&ops).unwrap();
                self.b.handle_persisted(last, self.now);
            }
            if store.wants_compaction() {
                let snapshot = self.b.snapshot().expect("store drained");
                store.compact(&snapshot).unwrap();
            }
            if !self.transmit() && ops.is_empty() {
                return;
            }
        }
    }

    /// The frames waiting for `conn`, taken out of its inbox.
    pub fn frames(&mut self, conn: ConnId) -> Vec<Got> {
        let buf = self.inbox.remove(&conn).unwrap_or_default();
        let dec = StreamDecoder::new(u32::MAX);
        let mut pos = 0;
        let mut got = Vec::new();
        while let Ok(Decoded::Frame { frame, consumed }) = dec.decode(&buf[pos..]) {
            got.push(match frame {
                Frame::Welcome(w) => Got::Welcome {
                    session_present: w.session_present,
                },
                Frame::PubAck(a) => Got::PubAck(a.id),
                Frame::PubReject(r) => Got::PubReject(r.id),
                Frame::SubAck(a) => Got::SubAck(a.sub),
                Frame::Deliver(d) => Got::Deliver(Delivery {
                    sub: d.sub,
                    topic: d.topic.to_owned(),
                    seq: d.seq,
                    tag: d.tag,
                    qos: d.qos,
                    payload: d.payload.to_vec(),
                }),
                other => Got::Other(format!("{other:?}")),
            });
            pos += consumed;
        }
        got
    }

    /// Acks every delivery waiting for `conn`; returns (deliveries, pub acks).
    pub fn ack_all(&mut self, conn: ConnId) -> (usize, usize) {
        let mut tags = Vec::new();
        let mut acks = 0;
        for got in self.frames(conn) {
            match got {
                Got::Deliver(d) => tags.push(d.tag),
                Got::PubAck(_) => acks += 1,
                _ => {}
            }
        }
        for &tag in &tags {
            self.send(conn, &Frame::Ack(Ack { tag }));
        }
        (tags.len(), acks)
    }
}

/// `n` QoS 1 publishes to `t` with payloads `first..first + n` (u32 LE), as the
/// broker asks them stored (one record each; the store's epoch and the
/// reservation of message ids, which go before them, left out).
pub fn publish_ops(first: u32, n: u32) -> Vec<StoreOp> {
    let mut sim = Sim::new();
    let c = sim.connect("p", SessionMode::Clean);
    for i in first..first + n {
        sim.publish(c, i, &i.to_le_bytes());
    }
    let mut ops = sim.take_ops();
    ops.retain(|op| matches!(Record::decode(op.bytes()), Ok(Record::Message(_))));
    assert_eq!(ops.len(), n as usize);
    ops
}

/// The payloads of the message records among `records`.
pub fn payloads(records: &[Vec<u8>]) -> Vec<u32> {
    records
        .iter()
        .filter_map(|r| match Record::decode(r).expect("a valid record") {
            Record::Message(m) => Some(u32::from_le_bytes(m.payload.try_into().unwrap())),
            _ => None,
        })
        .collect()
}
