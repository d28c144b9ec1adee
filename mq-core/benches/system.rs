//! The whole sans-IO system in one thread: real client `Session`s (a publisher
//! and 1 or 4 subscribers) talking to a `Broker` through in-memory byte streams,
//! with the configuration `mq bench` and `mqd` use. No sockets, no threads, no
//! store I/O: what `mq bench` against `mqd` would reach if the adapters (tokio,
//! mio, TCP, the store thread) cost nothing.
//!
//! `cargo bench -p mq-core --bench system [-- MESSAGES [NAME-FILTER]]`
//!
//! Like `mq bench`: the publisher keeps 256 publishes in flight with a producer id
//! (deduplicated publishing), subscribers have a credit of 1,024 and ack every
//! QoS 1 delivery, and the "store" reports each batch persisted at once. The
//! broker's configuration is `mqd`'s default (acknowledgement timeouts, dedup
//! window, retention). It sits between the `broker` bench (the broker alone, with
//! frame-level peers) and the end-to-end figures.

use std::hint::black_box;
use std::time::{Duration, Instant as Clock};

use mq_core::Instant;
use mq_core::broker::{Broker, Config, ConnId};
use mq_core::client::{self, Event, PublishError, PublishOptions, Session, SubscribeOptions};
use mq_core::framing::Framing;
use mq_core::wire::{Limits, QoS, SessionMode};

const PAYLOAD: [u8; 100] = [0x5a; 100];
const WINDOW: u64 = 256;
const CREDIT: u32 = 1024;
const TOPIC: &str = "bench.topic";

/// The std client's session shape (8 subscriptions, 256 held deliveries).
type ClientSession = Session<Vec<u8>, 8, 256>;

struct Peer {
    session: ClientSession,
    conn: ConnId,
    /// Bytes from the broker not yet taken by the session.
    down: Vec<u8>,
    down_start: usize,
}

struct Counts {
    acked: u64,
    delivered: u64,
}

struct System {
    broker: Broker,
    clock: Clock,
    peers: Vec<Peer>,
    buf: Vec<u8>,
}

impl System {
    fn now(&self) -> Instant {
        Instant::from_micros(1_000 + self.clock.elapsed().as_micros() as u64)
    }

    fn connect(&mut self, id: &str, producer: Option<u64>) -> usize {
        let now = self.now();
        let mut cfg = client::Config::new(id).unwrap();
        cfg.mode = SessionMode::Clean;
        cfg.limits = Limits {
            max_frame: 1 << 20,
            credit: CREDIT,
            keepalive_ms: 30_000,
        };
        cfg.producer = producer;
        let mut session =
            Session::new(cfg, Framing::Stream, vec![0u8; 8 << 20], vec![0u8; 2 << 20]);
        session.connect(now);
        session.handle_connected(now);
        let conn = self.broker.accept(now, Framing::Stream).unwrap();
        self.peers.push(Peer {
            session,
            conn,
            down: Vec::new(),
            down_start: 0,
        });
        self.peers.len() - 1
    }

    /// Moves bytes both ways and handles every event until nothing moves.
    fn pump(&mut self, counts: &mut Counts) {
        loop {
            let now = self.now();
            let mut progress = false;
            for p in &mut self.peers {
                while let Some(n) = p.session.poll_transmit(now, &mut self.buf) {
                    let used = self.broker.handle_input(p.conn, now, &self.buf[..n]);
                    assert_eq!(used, n, "broker refused input");
                    progress = true;
                }
            }
            let mut last = None;
            while let Some(op) = self.broker.poll_store() {
                last = Some(op.token);
            }
            if let Some(t) = last {
                self.broker.handle_persisted(t, now);
                progress = true;
            }
            while let Some(t) = self.broker.poll_transmit(now, &mut self.buf) {
                let p = self.peers.iter_mut().find(|p| p.conn == t.conn).unwrap();
                p.down.extend_from_slice(&self.buf[..t.len]);
                progress = true;
            }
            for p in &mut self.peers {
                loop {
                    let n = p.session.handle_input(now, &p.down[p.down_start..]);
                    p.down_start += n;
                    let mut events = false;
                    while let Some(ev) = p.session.poll_event() {
                        events = true;
                        match ev {
                            Event::Published { .. } => counts.acked += 1,
                            Event::Message(d) => {
                                black_box(d.payload);
                                counts.delivered += 1;
                                if d.id.needs_ack() {
                                    let id = d.id;
                                    p.session.ack(id).unwrap();
                                }
                            }
                            Event::Disconnected { reason } => panic!("disconnected: {reason:?}"),
                            _ => {}
                        }
                    }
                    progress |= n > 0 || events;
                    if n == 0 && !events {
                        break;
                    }
                }
                if p.down_start == p.down.len() {
                    p.down.clear();
                    p.down_start = 0;
                }
            }
            if !progress {
                break;
            }
        }
    }
}

fn scenario(name: &str, qos: QoS, subscribers: usize, messages: u64) {
    let mut sys = System {
        broker: Broker::new(Config::default()),
        clock: Clock::now(),
        peers: Vec::new(),
        buf: vec![0u8; 64 * 1024],
    };
    let mut counts = Counts {
        acked: 0,
        delivered: 0,
    };
    let publisher = sys.connect("publisher", Some(0x1234_5678));
    for i in 0..subscribers {
        let s = sys.connect(&format!("sub{i}"), None);
        let now = sys.now();
        let opts = SubscribeOptions {
            qos,
            credit: CREDIT,
            ..SubscribeOptions::default()
        };
        sys.peers[s].session.subscribe(now, TOPIC, &opts).unwrap();
    }
    sys.pump(&mut counts);

    let expected = messages * subscribers as u64;
    let opts = PublishOptions {
        qos,
        ..PublishOptions::default()
    };
    let mut sent = 0u64;
    let start = Clock::now();
    let deadline = start + Duration::from_secs(60);
    while counts.delivered < expected {
        let now = sys.now();
        let in_flight = if qos == QoS::AtLeastOnce {
            sent - counts.acked
        } else {
            0
        };
        let burst = (WINDOW - in_flight.min(WINDOW)).min(messages - sent);
        for _ in 0..burst {
            match sys.peers[publisher]
                .session
                .publish(now, TOPIC, &PAYLOAD, &opts)
            {
                Ok(_) => sent += 1,
                Err(PublishError::OutboxFull) => break,
                Err(e) => panic!("publish: {e:?}"),
            }
        }
        sys.pump(&mut counts);
        assert!(Clock::now() < deadline, "{name}: stalled at {counts:?}");
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<24} {:>12.0} msg/s published {:>12.0} deliveries/s",
        messages as f64 / secs,
        counts.delivered as f64 / secs
    );
}

impl std::fmt::Debug for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} acked, {} delivered", self.acked, self.delivered)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let messages: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(500_000);
    let filter = args
        .iter()
        .find(|a| a.parse::<u64>().is_err() && !a.starts_with('-'));
    println!("clients + broker, no I/O, {messages} messages of 100 B per scenario");
    for (qos, q) in [(QoS::AtMostOnce, "qos0"), (QoS::AtLeastOnce, "qos1")] {
        for (subs, shape) in [(1, "1-to-1"), (4, "1-to-4 fan-out")] {
            let name = format!("{shape} {q}");
            if filter.is_none_or(|f| name.contains(f.as_str())) {
                scenario(&name, qos, subs, messages);
            }
        }
    }
}
