//! Deterministic simulation of a mesh with offline queues: four nodes in a
//! full mesh of node links, a model catalog that fails now and then, and
//! nodes that crash and stay down long enough to be treated as away.
//!
//! Per seed: nodes 0, 2 and 3 each have a publisher (QoS 1, with a producer
//! id), nodes 0 to 2 a persistent subscriber, with filters that overlap,
//! and node 1 the one persistent member of a group, whose jobs the other
//! nodes keep for it (and hand to the catalog while it is away).
//! Publishing starts once each of those has declared its interest to the
//! others and written it to the catalog (a node that dies before its first
//! round with the catalog leaves no trace of what it wants there, for a
//! node that never linked to it). Node 3 starts later, on an empty store,
//! while others may be away or down with their lease still running, and its
//! publisher starts at once: it never linked to them, so only the catalog
//! tells it what they want (its clients' QoS 1 publishes wait for its first
//! listing, `Config::await_catalog`; the interest of a live peer not linked
//! is kept in the peer's outbox here). Then node links drop, stores compact, and nodes crash: some come
//! back at once, some stay down for up to five times the lease, so their
//! peers treat them as away and hand what they want to the catalog; two may
//! be down at once (the sender of a message for an away node dies too).
//! In half the seeds a node also hands on what a live peer wants once that
//! peer's link has been down for a grace (`Config::link_grace`, 0.2 to
//! 1.8 s against the lease's 1 s), as mqd's nodes do for a partition.
//! Every 100 ms each node that is up treats the nodes down past the lease as
//! away (and the others as live), then does its round with the catalog as
//! `mq_server::node` does after a heartbeat, through the same core
//! `CatalogRound` (`support/catalog_round.rs`): writes its declared
//! interest, feeds the catalog's interest of nodes not live (which may be
//! older than what they declared on their links, or missing), stores a
//! batch of its offline items, and drains a page of its own queue, acking
//! it once its local publishes are stored (a later round). Each catalog
//! call fails with 5 % chance. A node's adapter state (its round, the page
//! it waits for) dies with it. Then the faults stop, every node is up, and
//! the mesh settles.
//!
//! Asserted for every seed:
//! - every publish a node acknowledged reaches every matching subscriber,
//!   but one its node's catalog queue refused as full (in a third of the
//!   seeds the queues hold 4 to 19 messages) and its sender then dropped
//!   (the node was away), as a slow consumer's overflow is shed;
//! - no application sees a message twice;
//! - the catalog's queues are empty at the end, and so is every node's
//!   queue (its peers' outboxes among them: a message a full catalog
//!   queue refused is dropped from its outbox, not left in it);
//! - each broker's invariants hold after every step.
//!
//! Order per publisher and topic holds along one path (a link, or the
//! catalog); once an away node is back, its links may deliver newer
//! messages before the catalog's older ones, so order is counted across
//! paths, not asserted.
//!
//! `MQ_SIM_SEEDS=N` sets how many seeds run (default 100; `cargo xtask ci`
//! runs 2000 in release), `MQ_SIM_SEED=S`
//! runs one seed with a trace.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mq_core::Instant;
use mq_core::broker::Config;
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
#[path = "support/seeds.rs"]
mod seeds;
use seeds::for_each_seed;
#[path = "support/mesh_world.rs"]
mod mesh_world;
#[path = "support/net.rs"]
mod net;
use mesh_world::World;
#[path = "support/catalog_round.rs"]
mod catalog_round;
use catalog_round::{Adapter, Catalog, Round};

const NODES: usize = 4;
/// The node that starts late, a while after the others.
const LATE: usize = 3;
const TOPICS: [&str; 2] = ["data.a", "data.b"];
/// The persistent subscriber of each node but the late one.
const FILTERS: [&str; NODES - 1] = ["*.b", "data.>", "data.a"];
const PUBLISHERS: [usize; 3] = [0, 2, LATE];
/// A persistent member of group `w` on `data.>`, on node 1 alone: the
/// others keep the group's jobs for node 1 (in the catalog while it is
/// away), and the late node learns of the group only from the catalog.
const GROUP: (usize, &str, &str) = (1, "data.>", "w");
/// A node down longer than this is away.
const LEASE: Duration = Duration::from_secs(1);
const ROUND: Duration = Duration::from_millis(100);
struct App {
    node: usize,
    publisher: Option<u8>,
    filter: Option<&'static str>,
    group: Option<&'static str>,
    next_msg: u32,
    to_publish: u32,
    acked: BTreeSet<(u8, u32)>,
    publish_ids: BTreeMap<u32, (u8, u32)>,
    seen: Vec<(String, u8, u32)>,
    subscribed: bool,
}

#[derive(Default, Debug)]
struct Totals {
    acked: usize,
    restarts: u32,
    away: u32,
    offline_stored: u64,
    /// Of those, a group's jobs.
    group_stored: u64,
    /// Live peers handed on for a link down past the grace (counted at the
    /// end, by the nodes' last runs).
    unreachable: u64,
    offline_drained: u64,
    catalog_failures: u64,
    /// Messages a full catalog queue refused and their sender dropped.
    refused: usize,
    out_of_order: u32,
}

impl Totals {
    fn add(&mut self, t: Totals) {
        self.acked += t.acked;
        self.restarts += t.restarts;
        self.away += t.away;
        self.offline_stored += t.offline_stored;
        self.group_stored += t.group_stored;
        self.unreachable += t.unreachable;
        self.offline_drained += t.offline_drained;
        self.catalog_failures += t.catalog_failures;
        self.refused += t.refused;
        self.out_of_order += t.out_of_order;
    }
}

struct Sim {
    world: World,
    apps: Vec<App>,
    catalog: Catalog,
    adapters: Vec<Adapter>,
    /// When each node that is down went down.
    down_since: Vec<Option<Instant>>,
    /// When each node that is down comes back.
    back_at: Vec<Option<Instant>>,
    next_round: Instant,
    started: bool,
    faults: bool,
    totals: Totals,
    /// The topic of each message published: (publisher, seq).
    topics: BTreeMap<(u8, u32), &'static str>,
}

impl Sim {
    fn new(seed: u64, trace: bool) -> Sim {
        let mut rng = Rng::new(seed);
        let mut apps = Vec::new();
        let mut sessions = Vec::new();
        for node in 0..NODES {
            let mut roles: Vec<_> = FILTERS
                .get(node)
                .map(|&f| (None, Some(f), None))
                .into_iter()
                .collect();
            if node == GROUP.0 {
                roles.push((None, Some(GROUP.1), Some(GROUP.2)));
            }
            if PUBLISHERS.contains(&node) {
                roles.push((Some(node as u8 + 1), None, None));
            }
            for (publisher, filter, group) in roles {
                let i = apps.len();
                let producer = publisher.map(|_| 1000 + i as u64);
                let cfg = client_config(i, SessionMode::Resume, producer, seed);
                let (tx, rx) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
                sessions.push((node, Session::new(cfg, Framing::Stream, tx, rx)));
                apps.push(App {
                    node,
                    publisher,
                    filter,
                    group,
                    next_msg: 1,
                    to_publish: 20 + rng.below(40) as u32,
                    acked: BTreeSet::new(),
                    publish_ids: BTreeMap::new(),
                    seen: Vec::new(),
                    subscribed: filter.is_none(),
                });
            }
        }
        // Publishes wait for a node's first listing (its round with the
        // catalog), as mqd's do.
        // In half the seeds a node hands a live peer's messages to the
        // catalog once its link is down for longer than a grace (shorter
        // than the lease, or longer), as mqd's nodes do.
        let link_grace = (rng.below(2) == 0).then(|| Duration::from_millis(200 + rng.below(1_600)));
        // In a third of the seeds the catalog's queues are small: a node
        // away long enough has its queue fill, and its peers are refused.
        let capacity = match rng.below(3) {
            0 => 4 + rng.below(16) as usize,
            _ => usize::MAX,
        };
        let cfg = Config {
            await_catalog: Some(Duration::from_secs(30)),
            link_grace,
            ..broker_config(seed)
        };
        let mut world = World::new(cfg, NODES, rng, trace);
        let now = world.now;
        for (i, (node, mut session)) in sessions.into_iter().enumerate() {
            session.connect(now);
            if let Some(filter) = apps[i].filter {
                let opts = SubscribeOptions {
                    group: apps[i].group,
                    start: Start::New,
                    qos: QoS::AtLeastOnce,
                    credit: 8,
                };
                session.subscribe(now, filter, &opts).expect("subscribe");
            }
            world.add_client(node, session);
        }
        let adapters = (0..NODES).map(|n| Adapter::new(&world, n)).collect();
        let mut down_since = vec![None; NODES];
        let mut back_at = vec![None; NODES];
        world.kill_node(LATE);
        let late = Duration::from_millis(2_000 + world.rng.below(6_000));
        (down_since[LATE], back_at[LATE]) = (Some(now), Some(now + late));
        Sim {
            world,
            apps,
            catalog: Catalog::new(capacity),
            adapters,
            down_since,
            back_at,
            next_round: now,
            started: false,
            faults: false,
            totals: Totals::default(),
            topics: BTreeMap::new(),
        }
    }

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
                if let Some(id) = ack {
                    let _ = self.world.clients[i].session.ack(id);
                }
            }
            Happened::Subscribed => app.subscribed = true,
            Happened::Other(what) => self.world.log(|| format!("client {i}: {what}")),
            Happened::Disconnected(reason) => {
                self.world
                    .log(|| format!("client {i} disconnected: {reason}"));
            }
            Happened::Connect => {}
        }
    }

    fn expired(&self, m: usize) -> bool {
        self.down_since[m].is_some_and(|at| self.world.now >= at + LEASE)
    }

    /// What every node's adapter does after a heartbeat.
    fn catalog_round(&mut self) {
        for n in 0..NODES {
            if !self.world.nodes[n].down {
                self.node_round(n);
            }
        }
        self.drain();
    }

    /// The roster's part (peers away or live again), then the round with
    /// the catalog.
    fn node_round(&mut self, n: usize) {
        let now = self.world.now;
        for m in (0..NODES).filter(|&m| m != n) {
            let peer = self.world.nodes[m].name.clone();
            let expired = self.expired(m);
            let broker = &mut self.world.nodes[n].broker;
            if expired {
                if self.adapters[n].away.insert(m) {
                    self.totals.away += 1;
                    broker.node_away(now, &peer);
                }
            } else if self.down_since[m].is_none() && self.adapters[n].away.remove(&m) {
                broker.node_live(now, &peer);
            }
        }
        let live: Vec<String> = (0..NODES)
            .filter(|&m| !self.expired(m))
            .map(|m| self.world.nodes[m].name.clone())
            .collect();
        let live: Vec<&str> = live.iter().map(String::as_str).collect();
        let round = Round {
            world: &mut self.world,
            catalog: &mut self.catalog,
            adapter: &mut self.adapters[n],
            n,
            full: BTreeMap::new(),
        };
        round.run(&live);
    }

    fn interest_declared(&self) -> bool {
        let nodes = &self.world.nodes;
        let subscribing = 0..FILTERS.len();
        let fan_out = subscribing.clone().all(|from| {
            let name = &nodes[from].name;
            self.catalog.lists(name, FILTERS[from], None)
                && (subscribing.clone())
                    .filter(|&to| to != from)
                    .all(|to| nodes[to].broker.peer_interest(name) == [FILTERS[from]])
        });
        let (node, filter, group) = GROUP;
        let name = &nodes[node].name;
        let joined = [(filter.to_owned(), group.to_owned())];
        fan_out
            && self.catalog.lists(name, filter, Some(group))
            && (subscribing.clone())
                .filter(|&to| to != node)
                .all(|to| nodes[to].broker.peer_groups(name) == joined)
    }

    fn step(&mut self) {
        self.world.advance();
        if !self.started && self.apps.iter().all(|a| a.subscribed) {
            self.drain();
            if self.interest_declared() {
                self.world
                    .log(|| "interest declared: publishing starts".into());
                self.started = true;
                self.faults = true;
            }
        }
        if self.started {
            self.publish_some();
        }
        if self.faults {
            self.faults_step();
        }
        self.revive_due();
        self.drain();
        if self.world.now >= self.next_round {
            self.next_round = self.world.now + ROUND;
            self.catalog_round();
        }
    }

    fn publish_some(&mut self) {
        let now = self.world.now;
        for i in 0..self.apps.len() {
            let app = &mut self.apps[i];
            let Some(id) = app.publisher else { continue };
            if app.next_msg > app.to_publish || !self.world.rng.chance(4_000) {
                continue;
            }
            let topic = TOPICS[self.world.rng.below(TOPICS.len() as u64) as usize];
            let n = app.next_msg;
            let opts = PublishOptions {
                qos: QoS::AtLeastOnce,
                meta: Default::default(),
            };
            let session = &mut self.world.clients[i].session;
            if let Ok(pid) = session.publish(now, topic, &payload(id, n), &opts) {
                app.publish_ids.insert(pid.0, (id, n));
                app.next_msg += 1;
                self.topics.insert((id, n), topic);
            }
        }
    }

    fn faults_step(&mut self) {
        if self.world.rng.chance(2_000) {
            self.world.drop_random_wire(|_| true);
        }
        let down = self.down_since.iter().filter(|d| d.is_some()).count();
        if down < 2 && self.world.rng.chance(1_500) {
            let n = self.world.rng.below(NODES as u64) as usize;
            if self.down_since[n].is_some() {
                return;
            }
            self.adapters[n] = Adapter::new(&self.world, n);
            if self.world.rng.chance(300_000) {
                // Back at once, on its store.
                self.world.restart_node(n);
            } else {
                // Down for up to five leases: its peers may treat it as away.
                let stay = Duration::from_millis(self.world.rng.below(5_000));
                self.world.kill_node(n);
                self.down_since[n] = Some(self.world.now);
                self.back_at[n] = Some(self.world.now + stay);
            }
        }
        if self.world.rng.chance(600) {
            let n = self.world.rng.below(NODES as u64) as usize;
            if !self.world.nodes[n].down {
                self.drain();
                self.world.compact(n);
            }
        }
    }

    fn revive_due(&mut self) {
        for n in 0..NODES {
            let due = self.back_at[n].is_some_and(|at| at <= self.world.now);
            let settling = self.started && !self.faults;
            if due || (settling && self.back_at[n].is_some()) {
                self.back_at[n] = None;
                self.down_since[n] = None;
                self.world.revive_node(n);
                self.world.counts.restarts += 1;
            }
        }
    }

    fn publishing_done(&self) -> bool {
        (self.apps.iter()).all(|a| {
            a.publisher.is_none() || (a.next_msg > a.to_publish && a.publish_ids.is_empty())
        })
    }

    /// Quiet, every node live to every other (an item whose store failed
    /// waits in its outbox, unseen by the wires, until then), the catalog
    /// empty.
    fn settled(&self) -> bool {
        self.world.is_quiet()
            && (self.world.nodes.iter()).all(|n| n.broker.mesh_stats().away == 0)
            && self.catalog.queues.values().all(Vec::is_empty)
            && self.adapters.iter().all(Adapter::is_idle)
    }

    fn run(&mut self) {
        let deadline = self.world.now + Duration::from_secs(300);
        while !self.publishing_done() && self.world.now < deadline {
            self.step();
        }
        assert!(self.publishing_done(), "publishers did not finish");
        self.faults = false;
        let settle = self.world.now + Duration::from_secs(20);
        while self.world.now < settle && !self.settled() {
            self.step();
        }
    }

    fn check(&mut self) {
        let acked: BTreeSet<(u8, u32)> = (self.apps.iter())
            .flat_map(|a| a.acked.iter().copied())
            .collect();
        for (i, a) in self.apps.iter().enumerate() {
            let Some(filter) = a.filter else { continue };
            let f = Filter::new(filter).expect("filter");
            let mut once = BTreeSet::new();
            let mut last: BTreeMap<(&str, u8), u32> = BTreeMap::new();
            for (t, p, n) in &a.seen {
                assert!(
                    once.insert((*p, *n)),
                    "client {i} ({filter}): message {p}/{n} delivered to the application twice"
                );
                if last.insert((t, *p), *n).is_some_and(|prev| prev > *n) {
                    self.totals.out_of_order += 1;
                }
            }
            let node = &self.world.nodes[a.node].name;
            let group = a.group.map(String::from);
            let refused = |&(p, n): &(u8, u32)| {
                (self.catalog.refused).contains(&(node.clone(), group.clone(), p, n))
            };
            for m in &acked {
                let t = self.topics[m];
                if f.matches(Topic::new(t).expect("topic")) && !refused(m) {
                    assert!(
                        once.contains(m),
                        "client {i} ({filter}): acked message {m:?} on {t} never arrived"
                    );
                }
            }
        }
        let left: usize = self.catalog.queues.values().map(Vec::len).sum();
        assert_eq!(left, 0, "messages left in the catalog");
        for (n, node) in self.world.nodes.iter().enumerate() {
            for q in node.broker.queues() {
                assert_eq!(q.occupancy, 0, "node {n}: a queue not emptied: {q:?}");
            }
        }
        self.totals.acked = acked.len();
        self.totals.restarts = self.world.counts.restarts;
        self.totals.catalog_failures = self.catalog.failures;
        self.totals.refused = self.catalog.refused.len();
        for node in &self.world.nodes {
            let s = node.broker.mesh_stats();
            self.totals.offline_drained += s.offline_drained;
            self.totals.unreachable += s.unreachable;
        }
        self.totals.offline_stored = self.catalog.stored;
        self.totals.group_stored = self.catalog.group_stored;
    }
}

fn run_seed(seed: u64, trace: bool) -> Totals {
    let mut sim = Sim::new(seed, trace);
    sim.run();
    if trace {
        println!("ended at {:?}, settled: {}", sim.world.now, sim.settled());
        for (n, node) in sim.world.nodes.iter().enumerate() {
            println!("node {n}: {:?}", node.broker.mesh_stats());
            for q in node.broker.queues() {
                println!("  {q:?}");
            }
        }
        for (r, q) in &sim.catalog.queues {
            println!("catalog queue {r}: {}", q.len());
        }
    }
    sim.check();
    sim.totals
}

#[test]
fn offline_queues_lose_nothing_acknowledged_and_duplicate_nothing() {
    let mut totals = Totals::default();
    let Some(seeds) = for_each_seed("sim_offline", run_seed, |t| totals.add(t)) else {
        return;
    };
    println!("{seeds} seeds: {totals:?}");
    assert!(
        totals.away > 0 && totals.offline_stored > 0 && totals.offline_drained > 0,
        "no message ever went through the catalog"
    );
    assert!(totals.catalog_failures > 0, "the catalog never failed");
    assert!(
        totals.group_stored > 0,
        "no group's job went through the catalog"
    );
    assert!(totals.unreachable > 0, "no live peer was ever out of reach");
    assert!(totals.refused > 0, "no catalog queue was ever full");
}
