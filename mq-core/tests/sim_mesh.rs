//! Deterministic simulation of a mesh: three nodes (brokers with their own
//! stores) in a full mesh of node links, clients on every node, on a virtual
//! clock over a faulty network.
//!
//! Per seed: every node has a publisher (QoS 1, with a producer id; every
//! seventh message larger than a frame, so it travels in fragments), a
//! persistent subscriber and a plain (clean session) subscriber, with filters
//! that overlap across nodes; two nodes also have a persistent member of one
//! group, which the third node's jobs reach over a link. Publishing starts
//! once every node has declared its interest to every other and each has
//! stored what it learnt (there is no catalog here: the store stands in for
//! the first listing a node of the product waits for, see
//! `interest_declared`). Then node links and client connections drop at
//! random points (also in the middle of a frame), chunks arrive late,
//! stores compact, and every node but one (which one depends on the seed)
//! crashes now and then and restarts from what its store had made durable
//! (the plain subscribers of a crashed node lose their sessions). In half
//! the seeds the nodes have a short ack deadline and the applications ack
//! one message in five up to three deadlines late. Then the faults stop and
//! the mesh settles.
//!
//! Asserted for every seed:
//! - every publish a node acknowledged reaches every matching persistent
//!   subscriber on every node, and every plain subscriber whose session
//!   never ended;
//! - no application sees a message twice (a message forwarded again after a
//!   link drop or a restart is deduplicated by the receiving node);
//! - per subscriber, publisher and topic, messages arrive in publish order;
//! - every acknowledged job reaches some member of the group (how many a
//!   second member saw too is counted);
//! - each broker's invariants hold after every step.
//!
//! `MQ_SIM_SEEDS=N` sets how many seeds run (default 100; `cargo xtask ci`
//! runs 2000 in release), `MQ_SIM_SEED=S` runs one seed with a trace; a
//! failing seed prints that command.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mq_core::broker::MeshStats;
use mq_core::client::{PublishOptions, Session, SubscribeOptions};
use mq_core::framing::Framing;
use mq_core::topic::{Filter, Topic};
use mq_core::wire::{QoS, SessionMode, Start};

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;
#[path = "support/happened.rs"]
mod happened;
use happened::{Happened, payload};
#[path = "support/sim_config.rs"]
mod sim_config;
use sim_config::{broker_config, client_config};
#[path = "support/slow_app.rs"]
mod slow_app;
use slow_app::Later;
#[path = "support/seeds.rs"]
mod seeds;
use seeds::for_each_seed;
#[path = "support/mesh_world.rs"]
mod mesh_world;
#[path = "support/net.rs"]
mod net;
use mesh_world::World;

#[path = "sim_mesh/store_lost.rs"]
mod store_lost;

const NODES: usize = 3;
const TOPICS: [&str; 3] = ["data.a", "data.b", "jobs.x"];
/// Each node's persistent and plain subscribers' filters.
const FILTERS: [[&str; 2]; NODES] = [["data.>", "*.*"], ["data.a", "jobs.>"], ["*.*", "data.b"]];

/// The group on `jobs.>` has members on these nodes (not on the first).
const WORKER_NODES: [usize; 2] = [1, 2];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Publisher(u8),
    Subscriber(&'static str),
    /// A member of the group "workers" on `jobs.>`.
    Worker,
}

/// What a client did and saw (its session is the world's).
struct App {
    role: Role,
    persistent: bool,
    next_msg: u32,
    to_publish: u32,
    acked: BTreeSet<(u8, u32)>,
    publish_ids: BTreeMap<u32, (u8, u32)>,
    seen: Vec<(String, u8, u32)>,
    subscribed: bool,
    /// A plain subscriber whose session ended: it may have missed messages.
    broken: bool,
    /// Acks the application put off.
    later: Later,
}

/// What one seed did.
#[derive(Default, Debug)]
struct Totals {
    acked: usize,
    link_drops: u32,
    client_drops: u32,
    restarts: u32,
    compactions: u32,
    forwarded: u64,
    received: u64,
    deduplicated: u64,
    group_repeats: u32,
    late_acks: u32,
}

impl Totals {
    fn add_mesh(&mut self, s: MeshStats) {
        self.forwarded += s.forwarded;
        self.received += s.received;
        self.deduplicated += s.deduplicated;
    }

    fn add(&mut self, t: Totals) {
        self.acked += t.acked;
        self.link_drops += t.link_drops;
        self.client_drops += t.client_drops;
        self.restarts += t.restarts;
        self.compactions += t.compactions;
        self.forwarded += t.forwarded;
        self.received += t.received;
        self.deduplicated += t.deduplicated;
        self.group_repeats += t.group_repeats;
        self.late_acks += t.late_acks;
    }
}

struct Sim {
    world: World,
    apps: Vec<App>,
    started: bool,
    faults: bool,
    /// Faults start with publishing (else the network and nodes stay up).
    faulty: bool,
    /// The node that never crashes.
    steady: usize,
    /// Mesh counters of brokers that crashed.
    mesh: Totals,
    /// Acks the applications made after the ack deadline.
    late_acks: u32,
}

impl Sim {
    fn new(seed: u64, trace: bool) -> Sim {
        let mut rng = Rng::new(seed);
        let mut cfg = broker_config(seed);
        cfg.ack_timeout = slow_app::ack_deadline(&mut rng);
        let mut apps = Vec::new();
        let mut sessions = Vec::new();
        for (node, filters) in FILTERS.iter().enumerate() {
            let mut roles = vec![
                (Role::Publisher(node as u8 + 1), true),
                (Role::Subscriber(filters[0]), true),
                (Role::Subscriber(filters[1]), false),
            ];
            if WORKER_NODES.contains(&node) {
                roles.push((Role::Worker, true));
            }
            for (role, persistent) in roles {
                let i = apps.len();
                let mode = match persistent {
                    true => SessionMode::Resume,
                    false => SessionMode::Clean,
                };
                let producer = matches!(role, Role::Publisher(_)).then_some(1000 + i as u64);
                let cfg = client_config(i, mode, producer, seed);
                let (tx, rx) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
                sessions.push((node, Session::new(cfg, Framing::Stream, tx, rx)));
                apps.push(App {
                    role,
                    persistent,
                    next_msg: 1,
                    to_publish: 20 + rng.below(40) as u32,
                    acked: BTreeSet::new(),
                    publish_ids: BTreeMap::new(),
                    seen: Vec::new(),
                    subscribed: false,
                    broken: false,
                    later: Later::default(),
                });
            }
        }
        let mut world = World::new(cfg, NODES, rng, trace);
        let now = world.now;
        for (i, (node, mut session)) in sessions.into_iter().enumerate() {
            session.connect(now);
            let (filter, group) = match apps[i].role {
                Role::Subscriber(filter) => (Some(filter), None),
                Role::Worker => (Some("jobs.>"), Some("workers")),
                Role::Publisher(_) => (None, None),
            };
            if let Some(filter) = filter {
                let opts = SubscribeOptions {
                    group,
                    start: Start::New,
                    qos: QoS::AtLeastOnce,
                    credit: 8,
                };
                session.subscribe(now, filter, &opts).expect("subscribe");
            }
            world.add_client(node, session);
        }
        Sim {
            world,
            apps,
            started: false,
            faults: false,
            faulty: true,
            steady: (seed % NODES as u64) as usize,
            mesh: Totals::default(),
            late_acks: 0,
        }
    }

    /// Moves everything every endpoint wants to do, until nothing moves.
    fn drain(&mut self) {
        while let Some(events) = self.world.pump() {
            for (i, ev) in events {
                self.on_client_event(i, ev);
            }
        }
        self.world.check_invariants();
    }

    fn on_client_event(&mut self, i: usize, ev: Happened) {
        let app = &mut self.apps[i];
        match ev {
            Happened::Disconnected(reason) => {
                self.world
                    .log(|| format!("client {i} disconnected: {reason}"));
                app.broken |= !app.persistent;
            }
            Happened::Published(id) => {
                if let Some(m) = app.publish_ids.remove(&id) {
                    app.acked.insert(m);
                }
            }
            Happened::Message {
                topic,
                publisher,
                n,
                ack,
            } => {
                self.world
                    .log(|| format!("client {i}: got {publisher}/{n} on {topic}"));
                app.seen.push((topic, publisher, n));
                let Some(id) = ack else { return };
                let deadline = self.world.nodes[0].broker.config().ack_timeout;
                let now = self.world.now;
                if let Some((_, late)) = app.later.put_off(&mut self.world.rng, deadline, now, id) {
                    self.late_acks += u32::from(late);
                    return;
                }
                // A stale id (the connection dropped meanwhile) is fine.
                let _ = self.world.clients[i].session.ack(id);
            }
            Happened::Subscribed => app.subscribed = true,
            Happened::Other(what) => self.world.log(|| format!("client {i}: {what}")),
            Happened::Connect => {}
        }
    }

    /// Every node has every other node's interest (the local filters of its
    /// subscribers), in its store: a node that restarts knows it. This
    /// simulation has no catalog; in the product a node holds its clients'
    /// QoS 1 publishes until its first catalog listing, which gives it the
    /// interest of its peers whose links have not sent their snapshot yet
    /// (`Config::await_catalog`, `Broker::set_live_interest`). Here the
    /// store stands in for that listing: publishing before it would let a
    /// node that crashes at once restart without a peer's interest and ack
    /// what that peer wants before its link declares again, which the
    /// product does not for interest in the catalog (sim_offline runs that
    /// path). Interest younger than the peer's last catalog round is not
    /// covered there either, as a publish racing a new subscription's
    /// declaration is not.
    fn interest_declared(&self) -> bool {
        let nodes = &self.world.nodes;
        // Every record each node emitted is durable: a restart restores it.
        let durable = |n: &mesh_world::Node| n.broker.is_store_idle() && n.store.next().is_none();
        if !nodes.iter().all(durable) {
            return false;
        }
        (0..NODES).all(|from| {
            let mut want: Vec<String> = FILTERS[from].iter().map(|s| s.to_string()).collect();
            want.sort();
            want.dedup();
            let groups = match WORKER_NODES.contains(&from) {
                true => vec![("jobs.>".to_string(), "workers".to_string())],
                false => Vec::new(),
            };
            (0..NODES).filter(|&to| to != from).all(|to| {
                let broker = &nodes[to].broker;
                broker.peer_interest(&nodes[from].name) == want
                    && broker.peer_groups(&nodes[from].name) == groups
            })
        })
    }

    fn step(&mut self) {
        self.world.advance();
        // The slow applications' acks that are due.
        let now = self.world.now;
        for (i, app) in self.apps.iter_mut().enumerate() {
            for id in app.later.due(now) {
                let _ = self.world.clients[i].session.ack(id);
            }
        }
        let ready = self
            .apps
            .iter()
            .all(|a| a.subscribed || a.role.is_publisher());
        if !self.started && ready {
            self.drain();
            if self.interest_declared() {
                self.world
                    .log(|| "interest declared everywhere: publishing starts".into());
                self.started = true;
                self.faults = self.faulty;
            }
        }
        if self.started {
            self.publish_some();
        }
        if self.faults {
            self.faults_step();
        }
        self.drain();
    }

    fn publish_some(&mut self) {
        let now = self.world.now;
        for i in 0..self.apps.len() {
            let app = &mut self.apps[i];
            let Role::Publisher(id) = app.role else {
                continue;
            };
            if app.next_msg > app.to_publish || !self.world.rng.chance(50_000) {
                continue;
            }
            let topic = TOPICS[self.world.rng.below(TOPICS.len() as u64) as usize];
            let n = app.next_msg;
            let opts = PublishOptions {
                qos: QoS::AtLeastOnce,
                meta: Default::default(),
            };
            // Every seventh is larger than a frame: it crosses links in fragments.
            let mut body = payload(id, n);
            if n.is_multiple_of(7) {
                body.resize(3_000, b'.');
            }
            let session = &mut self.world.clients[i].session;
            if let Ok(pid) = session.publish(now, topic, &body, &opts) {
                app.publish_ids.insert(pid.0, (id, n));
                app.next_msg += 1;
            }
        }
    }

    fn faults_step(&mut self) {
        if self.world.rng.chance(4_000) {
            // A node link, or a persistent client's connection.
            let apps = &self.apps;
            self.world.drop_random_wire(|c| apps[c].persistent);
        }
        if self.world.rng.chance(400) {
            // One node never crashes: its plain subscriber sees it all.
            let k = 1 + self.world.rng.below(NODES as u64 - 1) as usize;
            let n = (self.steady + k) % NODES;
            self.mesh.add_mesh(self.world.nodes[n].broker.mesh_stats());
            for (i, app) in self.apps.iter_mut().enumerate() {
                if self.world.clients[i].node == n && !app.persistent {
                    app.broken = true;
                }
            }
            self.world.restart_node(n);
        }
        if self.world.rng.chance(600) {
            let n = self.world.rng.below(NODES as u64) as usize;
            self.drain();
            self.world.compact(n);
        }
    }

    fn publishing_done(&self) -> bool {
        self.apps.iter().all(|a| {
            !a.role.is_publisher() || (a.next_msg > a.to_publish && a.publish_ids.is_empty())
        })
    }

    fn run(&mut self) {
        let deadline = self.world.now + Duration::from_secs(120);
        while !self.publishing_done() && self.world.now < deadline {
            self.step();
        }
        assert!(
            self.publishing_done(),
            "publishers did not finish within virtual 120 s"
        );
        self.faults = false;
        let settle = self.world.now + Duration::from_secs(3);
        while self.world.now < settle && !self.world.is_quiet() {
            self.step();
        }
    }

    fn check(&self) {
        let acked: BTreeSet<(u8, u32)> = self
            .apps
            .iter()
            .flat_map(|a| a.acked.iter().copied())
            .collect();
        let mut topic_of: BTreeMap<(u8, u32), &str> = BTreeMap::new();
        for a in &self.apps {
            for (t, p, n) in &a.seen {
                topic_of.insert((*p, *n), t);
            }
        }
        let mut group_seen: BTreeMap<(u8, u32), u32> = BTreeMap::new();
        for a in self.apps.iter().filter(|a| a.role == Role::Worker) {
            for (_, p, n) in &a.seen {
                *group_seen.entry((*p, *n)).or_default() += 1;
            }
        }
        for m in &acked {
            if topic_of.get(m).is_some_and(|t| t.starts_with("jobs.")) {
                assert!(
                    group_seen.contains_key(m),
                    "acked job {m:?} reached no worker"
                );
            }
        }
        for (i, a) in self.apps.iter().enumerate() {
            let Role::Subscriber(filter) = a.role else {
                continue;
            };
            let node = self.world.clients[i].node;
            let f = Filter::new(filter).expect("filter");
            let mut once = BTreeSet::new();
            let mut last: BTreeMap<(&str, u8), u32> = BTreeMap::new();
            for (t, p, n) in &a.seen {
                assert!(
                    once.insert((*p, *n)),
                    "client {i} on node {node} ({filter}): message {p}/{n} delivered to the application twice"
                );
                let prev = last.insert((t, *p), *n);
                assert!(
                    prev.is_none_or(|prev| prev < *n),
                    "client {i} on node {node} ({filter}): {p}/{n} on {t} after {prev:?}"
                );
            }
            if a.broken {
                continue;
            }
            for m in &acked {
                let Some(t) = topic_of.get(m) else {
                    panic!("acked message {m:?} reached no subscriber at all");
                };
                if f.matches(Topic::new(t).expect("topic")) {
                    assert!(
                        once.contains(m),
                        "client {i} on node {node} ({filter}): acked message {m:?} on {t} never arrived"
                    );
                }
            }
        }
    }

    /// Jobs a second worker saw too (at least once allows it, after a
    /// worker went away with a job unacknowledged).
    fn group_repeats(&self) -> u32 {
        let mut seen = BTreeSet::new();
        let workers = self.apps.iter().filter(|a| a.role == Role::Worker);
        let all = workers.flat_map(|a| a.seen.iter().map(|(_, p, n)| (*p, *n)));
        all.filter(|m| !seen.insert(*m)).count() as u32
    }

    fn totals(mut self) -> Totals {
        let counts = &self.world.counts;
        let mut t = Totals {
            acked: self.apps.iter().map(|a| a.acked.len()).sum(),
            link_drops: counts.link_drops,
            client_drops: counts.client_drops,
            restarts: counts.restarts,
            compactions: counts.compactions,
            group_repeats: self.group_repeats(),
            late_acks: self.late_acks,
            ..Totals::default()
        };
        for node in &self.world.nodes {
            self.mesh.add_mesh(node.broker.mesh_stats());
        }
        t.add(self.mesh);
        t
    }
}

impl Role {
    fn is_publisher(&self) -> bool {
        matches!(self, Role::Publisher(_))
    }
}

fn run_seed(seed: u64, trace: bool) -> Totals {
    let mut sim = Sim::new(seed, trace);
    sim.run();
    if trace {
        for (n, node) in sim.world.nodes.iter().enumerate() {
            println!("node {n}: {:?}", node.broker.mesh_stats());
        }
        for (i, a) in sim.apps.iter().enumerate() {
            let node = sim.world.clients[i].node;
            println!(
                "client {i} {:?} on node {node}: seen {}",
                a.role,
                a.seen.len()
            );
        }
    }
    sim.check();
    sim.totals()
}

#[test]
fn mesh_loses_nothing_acknowledged_and_duplicates_nothing() {
    let mut totals = Totals::default();
    let Some(seeds) = for_each_seed("sim_mesh", run_seed, |t| totals.add(t)) else {
        return;
    };
    println!("{seeds} seeds: {totals:?}");
    assert!(
        totals.restarts > 0 && totals.link_drops > 0 && totals.forwarded > 0,
        "the faults or the forwarding never happened"
    );
    assert!(
        totals.deduplicated > 0,
        "no redelivery over a link was ever deduplicated"
    );
    assert!(totals.late_acks > 0, "no application acked late");
}
