//! Deterministic simulation: many client sessions and a broker in one process, on a
//! virtual clock, over a faulty network, with broker crashes that lose whatever the
//! store had not made durable.
//!
//! Per seed: publishers send QoS 1 messages (with producer ids, so retries are
//! deduplicated) to a few topics; persistent fan-out subscribers and the persistent
//! members of one group consume them. One publisher and one subscriber are
//! devices on serial lines (COBS framing): a line carries one connection after
//! another, and its faults are noise (damaged and truncated chunks) rather than
//! cuts. Connections drop at random points (also in the middle of a frame),
//! chunks arrive late, the store compacts its log into the broker's snapshot,
//! and the broker restarts from the records its store had persisted. Then the
//! faults stop and the system settles. In half the seeds the broker has a short
//! ack deadline and the applications are slow: they ack some messages only
//! after up to three deadlines have passed.
//!
//! Asserted for every seed:
//! - every publish the broker acknowledged reaches every matching persistent
//!   subscriber's application, exactly once (duplicates are suppressed by the
//!   broker's deduplication and the session's acked-delivery memory);
//! - per subscriber, publisher, topic and priority (publishers give every fifth
//!   message priority 3 and some others 1), the application sees messages in
//!   the order they were published;
//! - every acknowledged publish to the group's topics reaches some member;
//! - the broker's invariants hold after every step (a group message is held by at
//!   most one member, no queue exceeds its bound, counters match).
//!
//! `MQ_SIM_SEEDS=N` sets how many seeds run (default 100; `cargo xtask ci` runs 2000 in release), `MQ_SIM_SEED=S` runs one
//! seed with a trace of what happened; a failing seed prints that command.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use mq_core::Instant;
use mq_core::broker::{Broker, Config, ConnId, Event as BrokerEvent};
use mq_core::client::{PublishOptions, Session, SubscribeOptions};
use mq_core::framing::Framing;
use mq_core::framing::serial::SerialDecoder;
use mq_core::wire::{QoS, SessionMode, Start};

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;
#[path = "support/sim_config.rs"]
mod sim_config;
use sim_config::{broker_config, client_config};
#[path = "support/slow_app.rs"]
mod slow_app;
use slow_app::Later;
#[path = "support/seeds.rs"]
mod seeds;
use seeds::for_each_seed;
#[path = "support/happened.rs"]
mod happened;
use happened::{Happened, payload};
#[path = "sim/faults.rs"]
mod faults;
#[path = "sim/flow.rs"]
mod flow;

const TOPICS: [&str; 3] = ["data.a", "data.b", "jobs.x"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Publisher {
        id: u8,
    },
    /// A fan-out subscriber with one filter.
    Subscriber {
        filter: &'static str,
    },
    /// A member of the "workers" group on `jobs.>`.
    Worker,
}

/// One direction of a connection: chunks in flight, in order.
#[derive(Default)]
struct Pipe {
    chunks: VecDeque<(Instant, Vec<u8>)>,
    /// Received but not yet consumed by the endpoint.
    rx: Vec<u8>,
}

struct Link {
    client: usize,
    conn: ConnId,
    /// A serial line: it outlives the client's connections, and noise is its
    /// fault.
    serial: bool,
    up: Pipe,
    down: Pipe,
    /// A serial line's device decodes frames itself (as mq-embedded's driver
    /// does) and hands them to its session one by one.
    device: Option<Device>,
}

/// The device end of a serial line.
struct Device {
    decoder: SerialDecoder<Vec<u8>>,
    /// The session could not take the decoder's last frame yet.
    refused: bool,
}

impl Device {
    /// Decodes `rx` into frames for `session`; returns the bytes consumed
    /// (fewer when the session pushes back).
    fn feed(&mut self, session: &mut Session<Vec<u8>>, now: Instant, rx: &[u8]) -> usize {
        if self.refused {
            match self.decoder.last_frame() {
                Some(frame) if session.handle_frame(now, frame).is_err() => return 0,
                _ => self.refused = false,
            }
        }
        let mut used = 0;
        while used < rx.len() {
            let (n, out) = self.decoder.feed(&rx[used..]);
            used += n.max(1);
            match out {
                Some(Ok(frame)) if session.handle_frame(now, frame).is_err() => {
                    self.refused = true;
                    break;
                }
                Some(Err(_)) => session.handle_damaged_frame(now),
                _ => {}
            }
        }
        used.min(rx.len())
    }
}

struct Client {
    role: Role,
    /// Its transport is a serial line.
    serial: bool,
    session: Session<Vec<u8>>,
    link: Option<usize>,
    /// Publisher: next message number, and numbers the broker acknowledged.
    next_msg: u32,
    to_publish: u32,
    acked: BTreeSet<(u8, u32)>,
    publish_ids: BTreeMap<u32, (u8, u32, &'static str)>,
    /// Subscriber: what the application saw, in order.
    seen: Vec<(String, u8, u32)>,
    /// Subscriber: its subscription was acknowledged once.
    subscribed: bool,
    /// Acks the application put off.
    later: Later,
}

struct Store {
    /// Durable records.
    durable: Vec<Vec<u8>>,
    /// Written but not yet durable: (token, bytes, durable at).
    volatile: VecDeque<(u64, Vec<u8>, Instant)>,
}

struct Sim {
    rng: Rng,
    now: Instant,
    broker: Broker,
    broker_cfg: Config,
    links: BTreeMap<usize, Link>,
    next_link: usize,
    clients: Vec<Client>,
    store: Store,
    faults: bool,
    trace: bool,
    restarts: u32,
    drops: u32,
    compactions: u32,
    /// Chunks damaged on serial lines.
    noise: u32,
    /// Acks the applications made after the broker's ack deadline.
    late_acks: u32,
    /// Ack deadlines the broker saw missed (over its restarts).
    missed_deadlines: u64,
}

/// The priority a publisher gives its message `n`: most carry none, some are
/// urgent (so messages overtake each other in the queues).
fn priority_of(n: u32) -> u8 {
    match n % 5 {
        0 => 3,
        3 => 1,
        _ => 0,
    }
}

impl Sim {
    fn new(seed: u64, trace: bool) -> Sim {
        let mut rng = Rng::new(seed);
        let mut broker_cfg = broker_config(seed);
        broker_cfg.ack_timeout = slow_app::ack_deadline(&mut rng);
        let mut clients = Vec::new();
        let mut roles = vec![
            (Role::Publisher { id: 1 }, false),
            (Role::Publisher { id: 2 }, false),
            (Role::Subscriber { filter: "data.>" }, false),
            (Role::Subscriber { filter: "data.a" }, false),
            (Role::Subscriber { filter: "*.*" }, false),
            (Role::Worker, false),
            (Role::Worker, false),
            (Role::Publisher { id: 4 }, true),
            (Role::Subscriber { filter: "data.>" }, true),
        ];
        if rng.chance(500_000) {
            roles.push((Role::Publisher { id: 3 }, false));
        }
        for (i, (role, serial)) in roles.into_iter().enumerate() {
            let producer = matches!(role, Role::Publisher { .. }).then_some(1000 + i as u64);
            let cfg = client_config(i, SessionMode::Resume, producer, seed);
            let framing = if serial {
                Framing::Serial
            } else {
                Framing::Stream
            };
            let session = Session::new(cfg, framing, vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
            clients.push(Client {
                role,
                serial,
                session,
                link: None,
                next_msg: 1,
                to_publish: 20 + rng.below(40) as u32,
                acked: BTreeSet::new(),
                publish_ids: BTreeMap::new(),
                seen: Vec::new(),
                subscribed: false,
                later: Later::default(),
            });
        }
        let broker = Broker::new(broker_cfg.clone());
        let mut sim = Sim {
            rng,
            now: Instant::from_millis(1_000),
            broker,
            broker_cfg,
            links: BTreeMap::new(),
            next_link: 1,
            clients,
            store: Store {
                durable: Vec::new(),
                volatile: VecDeque::new(),
            },
            faults: true,
            trace,
            restarts: 0,
            drops: 0,
            compactions: 0,
            noise: 0,
            late_acks: 0,
            missed_deadlines: 0,
        };
        for i in 0..sim.clients.len() {
            sim.clients[i].session.connect(sim.now);
            if matches!(sim.clients[i].role, Role::Subscriber { .. } | Role::Worker) {
                let (filter, group) = match sim.clients[i].role {
                    Role::Subscriber { filter } => (filter, None),
                    _ => ("jobs.>", Some("workers")),
                };
                let opts = SubscribeOptions {
                    group,
                    start: Start::New,
                    qos: QoS::AtLeastOnce,
                    credit: 8,
                };
                sim.clients[i]
                    .session
                    .subscribe(sim.now, filter, &opts)
                    .expect("subscribe");
            }
        }
        sim
    }

    fn log(&self, what: impl FnOnce() -> String) {
        if self.trace {
            println!("{:>10} {}", self.now.as_micros(), what());
        }
    }

    fn latency(&mut self) -> Duration {
        Duration::from_micros(50 + self.rng.below(2_000))
    }

    fn publishing_done(&self) -> bool {
        self.clients.iter().all(|c| match c.role {
            Role::Publisher { .. } => c.next_msg > c.to_publish && c.publish_ids.is_empty(),
            _ => true,
        })
    }

    fn run(&mut self) {
        let deadline = self.now + Duration::from_secs(120);
        while !self.publishing_done() && self.now < deadline {
            self.step();
        }
        assert!(
            self.publishing_done(),
            "publishers did not finish within virtual 120 s"
        );
        // Settle without faults.
        self.faults = false;
        let settle = self.now + Duration::from_secs(5);
        while self.now < settle {
            self.step();
        }
    }

    fn check(&self) {
        let acked: BTreeSet<(u8, u32)> = self
            .clients
            .iter()
            .flat_map(|c| c.acked.iter().copied())
            .collect();
        // Which topic each acked message went to.
        let mut topic_of: BTreeMap<(u8, u32), String> = BTreeMap::new();
        for c in &self.clients {
            for (t, p, n) in &c.seen {
                topic_of.insert((*p, *n), t.clone());
            }
        }
        let mut group_seen: BTreeSet<(u8, u32)> = BTreeSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            match c.role {
                Role::Subscriber { filter } => {
                    let f = mq_core::topic::Filter::new(filter).unwrap();
                    let mut once = BTreeSet::new();
                    let mut last: BTreeMap<(String, u8, u8), u32> = BTreeMap::new();
                    for (t, p, n) in &c.seen {
                        assert!(
                            once.insert((*p, *n)),
                            "client {i} ({filter}): message {p}/{n} delivered to the application twice"
                        );
                        // In order within a priority; a higher one may overtake.
                        let prev = last.insert((t.clone(), *p, priority_of(*n)), *n);
                        assert!(
                            prev.is_none_or(|prev| prev < *n),
                            "client {i} ({filter}): {p}/{n} on {t} after {prev:?}"
                        );
                    }
                    for m in &acked {
                        let Some(t) = topic_of.get(m) else {
                            panic!("acked message {m:?} reached no subscriber at all");
                        };
                        if f.matches(mq_core::topic::Topic::new(t).unwrap()) {
                            assert!(
                                once.contains(m),
                                "client {i} ({filter}): acked message {m:?} on {t} never arrived"
                            );
                        }
                    }
                }
                Role::Worker => group_seen.extend(c.seen.iter().map(|(_, p, n)| (*p, *n))),
                Role::Publisher { .. } => {}
            }
        }
        for m in &acked {
            if topic_of.get(m).is_some_and(|t| t.starts_with("jobs.")) {
                assert!(
                    group_seen.contains(m),
                    "acked job {m:?} reached no group member"
                );
            }
        }
    }
}

/// What one seed did: faults and acknowledged publishes.
#[derive(Default, Debug)]
struct Totals {
    restarts: u32,
    drops: u32,
    noise: u32,
    compactions: u32,
    late_acks: u32,
    missed_deadlines: u64,
    acked: usize,
}

impl Totals {
    fn add(&mut self, t: Totals) {
        self.restarts += t.restarts;
        self.drops += t.drops;
        self.noise += t.noise;
        self.compactions += t.compactions;
        self.late_acks += t.late_acks;
        self.missed_deadlines += t.missed_deadlines;
        self.acked += t.acked;
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} acked publishes, {} link drops, {} damaged serial chunks, {} broker restarts, {} compactions, {} acks after the deadline, {} missed deadlines",
            self.acked,
            self.drops,
            self.noise,
            self.restarts,
            self.compactions,
            self.late_acks,
            self.missed_deadlines
        )
    }
}

fn run_seed(seed: u64, trace: bool) -> Totals {
    let mut sim = Sim::new(seed, trace);
    sim.run();
    if trace {
        println!("broker: {:?}", sim.broker.stats());
        for (i, c) in sim.clients.iter().enumerate() {
            println!("client {i}: {:?} seen {}", c.session.stats(), c.seen.len());
        }
    }
    sim.check();
    let acked = sim.clients.iter().map(|c| c.acked.len()).sum();
    Totals {
        restarts: sim.restarts,
        drops: sim.drops,
        noise: sim.noise,
        compactions: sim.compactions,
        late_acks: sim.late_acks,
        missed_deadlines: sim.missed_deadlines + sim.broker.stats().ack_timeouts,
        acked,
    }
}

#[test]
fn simulated_faults_lose_nothing_acknowledged() {
    let mut totals = Totals::default();
    let Some(seeds) = for_each_seed("sim", run_seed, |t| totals.add(t)) else {
        return;
    };
    println!("{seeds} seeds: {totals}");
    assert!(
        totals.restarts > 0
            && totals.drops > 0
            && totals.noise > 0
            && totals.compactions > 0
            && totals.late_acks > 0
            && totals.missed_deadlines > 0,
        "the faults never happened"
    );
}
