//! Deterministic simulation of MQTT clients through the broker's MQTT codec:
//! a QoS 2 publisher and a QoS 2 subscriber, both with persistent sessions
//! (MQTT 3.1.1, clean session 0), small sans-IO clients built from
//! `mq_core::mqtt`, on a virtual clock. Connections drop at random (also in
//! the middle of a packet) and the broker crashes, losing what its store had
//! not made durable, and restarts from the rest. Then the faults stop and
//! the system settles.
//!
//! Asserted for every seed: every message the publisher published reaches
//! the subscriber's application exactly once (the subscriber hands a QoS 2
//! message over at PUBREL, as libmosquitto and paho do), and the broker's
//! invariants hold after every step. A second run has the subscriber take
//! each message twice, by a plain subscription and a `$share` group's (it
//! is the group's only member): two deliveries of a message to one session,
//! so one goes out under a packet id not its message's own, which must
//! survive drops and crashes too; each message reaches it exactly twice.
//!
//! `MQ_SIM_SEEDS=N` sets how many seeds run (default 100; `cargo xtask ci`
//! runs 2000 in release), `MQ_SIM_SEED=S` runs one, and `MQ_SIM_TRACE=1`
//! prints its records, deliveries and crashes.

#[path = "support/rng.rs"]
mod rng;
#[path = "support/seeds.rs"]
mod seeds;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mq_core::Instant;
use mq_core::broker::{Broker, Config, ConnId, Event, Protocol};
use mq_core::mqtt::stream::{PacketDecoder, Split};
use mq_core::mqtt::{
    Ack, Connect, List, MAX_PACKET_SIZE, Packet, PacketId, Properties, Publish, QoS, QosPid,
    Subscribe, Subscription, SubscriptionOptions, Version,
};
use rng::Rng;
use seeds::for_each_seed;

const V: Version = Version::V3_1_1;
const MESSAGES: u32 = 40;
const TOPIC: &str = "sim/q2";

/// A sans-IO MQTT client: what it sent and got, and its QoS 2 state.
#[derive(Default)]
struct Client {
    id: &'static str,
    conn: Option<ConnId>,
    /// Bytes from the broker not yet read.
    rx: Vec<u8>,
    /// Packets to send.
    tx: Vec<u8>,
    connected: bool,
    /// Subscriber: its filters, subscribed to in one SUBSCRIBE.
    filters: &'static [&'static str],
    subscribed: bool,
    /// Publisher: message number by packet id, and whether PUBREL was sent.
    outbox: BTreeMap<u16, (u32, bool)>,
    next: u32,
    completed: BTreeSet<u32>,
    /// Subscriber: QoS 2 messages held until PUBREL, and the application's.
    held: BTreeMap<u16, u32>,
    delivered: Vec<u32>,
}

impl Client {
    fn send(&mut self, p: Packet<'_>) {
        let at = self.tx.len();
        self.tx.resize(at + p.encoded_len(V), 0);
        p.encode(V, &mut self.tx[at..])
            .expect("a packet the client can encode");
    }

    fn publish(&mut self, pid: u16, n: u32, dup: bool) {
        let payload = n.to_be_bytes();
        self.send(Packet::Publish(Publish {
            dup,
            qos: QosPid::ExactlyOnce(PacketId::new(pid).unwrap()),
            retain: false,
            topic: TOPIC,
            properties: Properties::EMPTY,
            payload: &payload,
        }));
    }

    /// Reads what the broker sent.
    fn read(&mut self, publisher: bool) {
        let dec = PacketDecoder::new(V, MAX_PACKET_SIZE);
        let rx = std::mem::take(&mut self.rx);
        let mut at = 0;
        while let Ok(Split::Whole(bytes)) = dec.split(&rx[at..]) {
            at += bytes.len();
            let packet = Packet::decode(bytes, V).expect("the broker sends valid packets");
            self.on_packet(packet, publisher);
        }
        self.rx = rx[at..].to_vec();
    }

    fn on_packet(&mut self, p: Packet<'_>, publisher: bool) {
        match p {
            Packet::ConnAck(_) => {
                self.connected = true;
                if publisher {
                    // Resend what is not complete.
                    let pending: Vec<(u16, u32, bool)> =
                        self.outbox.iter().map(|(&p, &(n, r))| (p, n, r)).collect();
                    for (pid, n, released) in pending {
                        match released {
                            true => {
                                self.send(Packet::PubRel(Ack::new(PacketId::new(pid).unwrap())))
                            }
                            false => self.publish(pid, n, true),
                        }
                    }
                } else if !self.subscribed {
                    let subs: Vec<Subscription<'_>> = (self.filters.iter())
                        .map(|&filter| Subscription {
                            filter,
                            options: SubscriptionOptions::qos(QoS::ExactlyOnce),
                        })
                        .collect();
                    self.send(Packet::Subscribe(Subscribe {
                        packet_id: PacketId::new(1).unwrap(),
                        properties: Properties::EMPTY,
                        subscriptions: List::new(&subs),
                    }));
                }
            }
            Packet::SubAck(a) => {
                if std::env::var("MQ_SIM_TRACE").is_ok() {
                    eprintln!("suback {a:?}");
                }
                self.subscribed = true
            }
            Packet::PubRec(a) => {
                if let Some(e) = self.outbox.get_mut(&a.packet_id.get()) {
                    e.1 = true;
                    self.send(Packet::PubRel(Ack::new(a.packet_id)));
                }
            }
            Packet::PubComp(a) => {
                if let Some((n, _)) = self.outbox.remove(&a.packet_id.get()) {
                    self.completed.insert(n);
                }
            }
            Packet::Publish(p) => {
                let pid = p.qos.packet_id().expect("QoS 2 deliveries");
                let n = u32::from_be_bytes(p.payload.try_into().expect("4-byte payloads"));
                if std::env::var("MQ_SIM_TRACE").is_ok() {
                    eprintln!(
                        "publish {n} pid {pid} dup {} held {:?}",
                        p.dup,
                        self.held.get(&pid.get())
                    );
                }
                self.held.entry(pid.get()).or_insert(n);
                self.send(Packet::PubRec(Ack::new(pid)));
            }
            Packet::PubRel(a) => {
                if let Some(n) = self.held.remove(&a.packet_id.get()) {
                    if std::env::var("MQ_SIM_TRACE").is_ok() {
                        eprintln!("deliver {n} pid {}", a.packet_id);
                    }
                    self.delivered.push(n);
                }
                self.send(Packet::PubComp(Ack::new(a.packet_id)));
            }
            other => panic!("unexpected packet {other:?}"),
        }
    }
}

struct World {
    b: Broker,
    now: Instant,
    rng: Rng,
    /// Every record handed out, with its token; those up to `persisted` survive a crash.
    records: Vec<(u64, Vec<u8>)>,
    persisted: u64,
    clients: [Client; 2],
    buf: Vec<u8>,
}

impl World {
    fn crash(&mut self) {
        if std::env::var("MQ_SIM_TRACE").is_ok() {
            eprintln!("crash, keeping records up to {}", self.persisted);
        }
        let keep: Vec<(u64, Vec<u8>)> = self
            .records
            .iter()
            .filter(|(t, _)| *t <= self.persisted)
            .cloned()
            .collect();
        self.b = Broker::new(Config::default());
        for (_, r) in &keep {
            self.b.restore(self.now, r).expect("records restore");
        }
        // The new broker's tokens start again: keep them apart.
        self.records = keep.into_iter().map(|(_, r)| (0, r)).collect();
        self.persisted = 0;
        for c in &mut self.clients {
            c.conn = None;
            c.connected = false;
            c.rx.clear();
            c.tx.clear();
        }
    }

    fn step(&mut self, faults: bool) {
        let r = &mut self.rng;
        if faults && r.chance(3_000) {
            return self.crash();
        }
        // Publishing starts once the subscription is stored (SUBACK).
        let subscribed = self.clients[1].subscribed;
        for (i, c) in self.clients.iter_mut().enumerate() {
            let publisher = i == 0;
            match c.conn {
                None => {
                    if let Ok(conn) = self.b.accept(self.now, Protocol::Mqtt) {
                        c.conn = Some(conn);
                        c.send(Packet::Connect(Connect {
                            version: V,
                            clean_start: false,
                            keep_alive: 0,
                            properties: Properties::EMPTY,
                            client_id: c.id,
                            will: None,
                            username: None,
                            password: None,
                        }));
                    }
                }
                Some(conn) if faults && r.chance(8_000) => {
                    // Dropped, perhaps in the middle of a packet.
                    let cut = r.below(c.tx.len() as u64 + 1) as usize;
                    self.b.handle_input(conn, self.now, &c.tx[..cut]);
                    self.b.handle_closed(conn, self.now);
                    c.conn = None;
                    c.connected = false;
                    c.rx.clear();
                    c.tx.clear();
                    continue;
                }
                Some(_) => {}
            }
            if publisher && subscribed && c.connected && c.outbox.len() < 4 && c.next < MESSAGES {
                let n = c.next;
                c.next += 1;
                let pid = (n % 1000) as u16 + 1;
                c.outbox.insert(pid, (n, false));
                c.publish(pid, n, false);
            }
            if let Some(conn) = c.conn {
                let used = self.b.handle_input(conn, self.now, &c.tx);
                c.tx.drain(..used);
            }
        }
        self.drain(faults);
        self.now += Duration::from_millis(10);
        self.b.handle_timeout(self.now);
        self.b.check_invariants().expect("broker invariants");
    }

    fn drain(&mut self, faults: bool) {
        loop {
            let mut progress = false;
            while let Some(op) = self.b.poll_store() {
                if std::env::var("MQ_SIM_TRACE").is_ok() {
                    eprintln!("record {} {:?}", op.token, op.record());
                }
                self.records.push((op.token, op.bytes().to_vec()));
                progress = true;
            }
            // The store makes records durable now and then (always once settling).
            if let Some(&(last, _)) = self.records.last()
                && last > self.persisted
                && (!faults || self.rng.chance(300_000))
            {
                let upto = match faults {
                    true => self.persisted + 1 + self.rng.below(last - self.persisted),
                    false => last,
                };
                self.persisted = upto;
                if std::env::var("MQ_SIM_TRACE").is_ok() {
                    eprintln!("persisted {upto}");
                }
                self.b.handle_persisted(upto, self.now);
                progress = true;
            }
            while let Some(t) = self.b.poll_transmit(self.now, &mut self.buf) {
                if let Some(c) = self.clients.iter_mut().find(|c| c.conn == Some(t.conn)) {
                    c.rx.extend_from_slice(&self.buf[..t.len]);
                }
                progress = true;
            }
            while let Some(e) = self.b.poll_event() {
                if let Event::Close(conn) = e {
                    self.b.handle_closed(conn, self.now);
                    for c in &mut self.clients {
                        if c.conn == Some(conn) {
                            c.conn = None;
                            c.connected = false;
                            c.rx.clear();
                            c.tx.clear();
                        }
                    }
                }
                progress = true;
            }
            for (i, c) in self.clients.iter_mut().enumerate() {
                if !c.rx.is_empty() {
                    c.read(i == 0);
                    if let Some(conn) = c.conn
                        && !c.tx.is_empty()
                    {
                        let used = self.b.handle_input(conn, self.now, &c.tx);
                        c.tx.drain(..used);
                        progress = true;
                    }
                }
            }
            if !progress {
                return;
            }
        }
    }
}

/// The subscriber's filters: a plain subscription, or that and a group's.
const PLAIN: &[&str] = &[TOPIC];
const AND_SHARED: &[&str] = &[TOPIC, "$share/g/sim/+"];

fn run_seed(seed: u64, filters: &'static [&'static str]) -> (usize, u32) {
    let mut w = World {
        b: Broker::new(Config::default()),
        now: Instant::from_millis(1_000),
        rng: Rng::new(seed),
        records: Vec::new(),
        persisted: 0,
        clients: [
            Client {
                id: "sim-pub",
                ..Client::default()
            },
            Client {
                id: "sim-sub",
                filters,
                ..Client::default()
            },
        ],
        buf: vec![0u8; 4096],
    };
    let mut crashes_seen = 0;
    for _ in 0..3_000 {
        let before = w.records.len();
        w.step(true);
        crashes_seen += usize::from(w.records.len() < before);
    }
    for _ in 0..3_000 {
        w.step(false);
        let [p, s] = &w.clients;
        if p.next == MESSAGES
            && p.outbox.is_empty()
            && s.delivered.len() >= MESSAGES as usize * filters.len()
        {
            break;
        }
    }
    let [p, s] = &w.clients;
    let mut got = s.delivered.clone();
    got.sort_unstable();
    let mut want: Vec<u32> = (0..MESSAGES)
        .flat_map(|n| std::iter::repeat_n(n, filters.len()))
        .collect();
    want.sort_unstable();
    assert_eq!(
        p.completed.len() as u32,
        MESSAGES,
        "seed {seed}: the publisher finished"
    );
    assert_eq!(got, want, "seed {seed}: every message exactly once");
    (crashes_seen, MESSAGES)
}

#[test]
fn mqtt_qos2_exactly_once_through_drops_and_crashes() {
    let mut crashes = 0;
    let run = |seed, _trace| run_seed(seed, PLAIN);
    let Some(seeds) = for_each_seed("sim_mqtt", run, |(c, _)| crashes += c) else {
        return;
    };
    println!("{seeds} seeds, {crashes} broker crashes");
}

#[test]
fn mqtt_qos2_exactly_once_to_a_shared_subscription_too() {
    let mut crashes = 0;
    let run = |seed, _trace| run_seed(seed, AND_SHARED);
    let Some(seeds) = for_each_seed("sim_mqtt", run, |(c, _)| crashes += c) else {
        return;
    };
    println!("{seeds} seeds, {crashes} broker crashes");
}

/// Seed 1341 (of the 2000 CI runs) once lost a message: after a crash the
/// subscriber reconnected while its session still had packet id 21 in an
/// exactly-once delivery (PUBREC received, PUBREL waiting for the store),
/// the new connection gave 21 to the next message, and the client, still
/// holding the first one under 21, took the second for it.
#[test]
fn mqtt_qos2_a_reconnect_does_not_reuse_an_id_still_released() {
    run_seed(1341, PLAIN);
}

/// Seed 234 of the shared subscriber once took a message for another: after
/// a crash its group delivery of the next message took the packet id the
/// plain subscription's delivery of the one before had gone out under (its
/// message's own, not stored), before that went out again; the client,
/// still holding the first message under it, took the second for it.
#[test]
fn mqtt_qos2_another_id_is_not_a_waiting_messages_own() {
    run_seed(234, AND_SHARED);
}
