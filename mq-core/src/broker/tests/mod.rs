//! Unit tests of the broker's transitions, at the frame level on a virtual clock:
//! the harness here, the tests by concern in the files beside it.

mod admin;
mod auth;
mod catalog_listing;
mod delivery;
mod forget;
mod handshake;
mod ids;
mod mesh;
mod mesh_link;
mod mqtt;
mod mqtt_qos2_ids;
mod mqtt_session;
mod nats;
mod nats_exchange;
mod offline;
mod offline_groups;
mod offline_loss;
mod priority;
mod publish;
mod replay;
mod sessions;
mod unreachable;
mod versions;

extern crate std;

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;
use std::collections::BTreeMap;

use super::*;
use crate::framing::Framing;
use crate::framing::serial::{self, SerialDecoder};
use crate::framing::stream::{Decoded, StreamDecoder, encode_frame, framed_len};
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
    Admin(u32, crate::broker::admin::AdminReply),
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
        Frame::AdminAnswer(a) => Got::Admin(
            a.id,
            crate::broker::admin::AdminReply::decode(a.body).unwrap(),
        ),
        other => panic!("broker sent a client frame: {other:?}"),
    }
}

struct H {
    b: Broker,
    now: Instant,
    got: BTreeMap<ConnId, Vec<Got>>,
    closed: Vec<ConnId>,
    /// `Event::Readable`s, in order.
    readable: Vec<ConnId>,
    /// Serial lines (their bytes are COBS frames), with every transmit.
    lines: BTreeMap<ConnId, Vec<Vec<u8>>>,
    /// `poll_transmit`'s buffer.
    buf: Vec<u8>,
    records: Vec<Vec<u8>>,
    /// How many of `records` a store that syncs only what must be synced
    /// keeps through a power cut (up to the last op that `must_sync`).
    synced: usize,
    /// Persist store records at once (else they wait for `persist`).
    auto_persist: bool,
    unpersisted: Vec<u64>,
    max_frame: u32,
    /// MQTT and NATS connections, with the bytes the broker sent each and
    /// not yet read.
    mqtt: BTreeMap<ConnId, Vec<u8>>,
    /// MQTT packets read and not yet taken by a test.
    mgot: BTreeMap<ConnId, Vec<mqtt::MGot>>,
}

impl H {
    fn new(cfg: Config) -> Self {
        H {
            b: Broker::new(cfg),
            now: Instant::from_secs_for_tests(1),
            got: BTreeMap::new(),
            closed: Vec::new(),
            readable: Vec::new(),
            lines: BTreeMap::new(),
            buf: vec![0u8; 256 * 1024],
            records: Vec::new(),
            synced: 0,
            auto_persist: true,
            unpersisted: Vec::new(),
            max_frame: 1 << 20,
            mqtt: BTreeMap::new(),
            mgot: BTreeMap::new(),
        }
    }

    /// A broker with `cfg` restored from `records` (what a restart on the
    /// same store sees), its invariants checked.
    fn restored_from<R: AsRef<[u8]>>(cfg: Config, records: impl IntoIterator<Item = R>) -> H {
        let mut h = H::new(cfg);
        for r in records {
            h.b.restore(h.now, r.as_ref()).unwrap();
        }
        h.b.check_invariants().unwrap();
        h
    }

    fn drain(&mut self) {
        let mut buf = core::mem::take(&mut self.buf);
        loop {
            let mut progress = false;
            while let Some(op) = self.b.poll_store() {
                progress = true;
                self.records.push(op.bytes().to_vec());
                if op.must_sync() {
                    self.synced = self.records.len();
                }
                if self.auto_persist {
                    self.b.handle_persisted(op.token, self.now);
                } else {
                    self.unpersisted.push(op.token);
                }
            }
            while let Some(t) = self.b.poll_transmit(self.now, &mut buf) {
                progress = true;
                let mut rest = &buf[..t.len];
                if let Some(raw) = self.mqtt.get_mut(&t.conn) {
                    raw.extend_from_slice(rest);
                    continue;
                }
                if let Some(raw) = self.lines.get_mut(&t.conn) {
                    raw.push(rest.to_vec());
                    let mut dec = SerialDecoder::new(vec![0u8; 64 * 1024]);
                    while !rest.is_empty() {
                        let (n, out) = dec.feed(rest);
                        if let Some(frame) = out {
                            let frame = frame.expect("a valid serial frame");
                            self.got.entry(t.conn).or_default().push(own(frame));
                        }
                        rest = &rest[n..];
                    }
                    assert_eq!(dec.buffered(), 0, "partial frame in a transmit");
                    continue;
                }
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
            while let Some(event) = self.b.poll_event() {
                progress = true;
                match event {
                    Event::Close(c) => {
                        self.closed.push(c);
                        self.b.handle_closed(c, self.now);
                    }
                    Event::Readable(c) => self.readable.push(c),
                }
            }
            if !progress {
                break;
            }
        }
        self.buf = buf;
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
        let mut buf = vec![0u8; serial::max_framed_len(frame.encoded_len()) + 8];
        let n = match self.lines.contains_key(&conn) {
            true => serial::encode_frame(&frame, &mut buf).unwrap(),
            false => encode_frame(&frame, u32::MAX, &mut buf).unwrap(),
        };
        assert_eq!(self.b.handle_input(conn, self.now, &buf[..n]), n);
        self.drain();
    }

    /// Sends many frames in one input (stream framing), then drains once.
    fn send_all<'a>(&mut self, conn: ConnId, frames: impl IntoIterator<Item = Frame<'a>>) {
        let mut bytes = Vec::new();
        for frame in frames {
            let at = bytes.len();
            bytes.resize(at + framed_len(&frame), 0);
            encode_frame(&frame, u32::MAX, &mut bytes[at..]).unwrap();
        }
        assert_eq!(self.b.handle_input(conn, self.now, &bytes), bytes.len());
        self.drain();
    }

    /// A serial line.
    fn accept_line(&mut self) -> ConnId {
        let c = self.b.accept(self.now, Framing::Serial).unwrap();
        self.lines.insert(c, Vec::new());
        c
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
        self.connect_as(client, mode, token, None)
    }

    /// Connects over a transport that verified `identity`.
    fn connect_as(
        &mut self,
        client: &str,
        mode: SessionMode,
        token: Option<&str>,
        identity: Option<&str>,
    ) -> ConnId {
        let c = self
            .b
            .accept_with_identity(self.now, Framing::Stream, identity)
            .unwrap();
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

/// The default configuration with an ack deadline of `secs` seconds.
fn ack_within(secs: u64) -> Config {
    Config {
        ack_timeout: Some(Duration::from_secs(secs)),
        ..Config::default()
    }
}

/// Queues of two messages with `overflow`.
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
