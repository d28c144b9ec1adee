//! The world of the mesh simulation: nodes (brokers with their stores),
//! client sessions attached to them, and the wires between them, on a
//! virtual clock. Node links connect again a little after they drop; a node
//! crashes by losing its broker and what its store had not made durable, and
//! may stay down a while (no link or client reaches it) before it restarts.

use std::collections::BTreeMap;
use std::time::Duration;

use mq_core::Instant;
use mq_core::broker::{Broker, Config, ConnId, Event as BrokerEvent};
use mq_core::client::Session;
use mq_core::framing::Framing;

use crate::happened::Happened;
use crate::net::{Pipe, Store};
use crate::rng::Rng;

/// One end of a wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Port {
    Client(usize),
    Node(usize, ConnId),
}

/// A connection: bytes from `a` to `b` and back. A node link goes from the
/// node that connected (`a`) to the one that accepted.
struct Wire {
    a: Port,
    b: Port,
    ab: Pipe,
    ba: Pipe,
    link: Option<(usize, usize)>,
}

pub struct Node {
    pub name: String,
    pub broker: Broker,
    pub store: Store,
    /// Crashed and not restarted yet: nothing reaches it.
    pub down: bool,
}

/// A client session and the node it connects to.
pub struct Endpoint {
    pub node: usize,
    pub session: Session<Vec<u8>>,
    wire: Option<usize>,
}

/// Faults and work the world saw.
#[derive(Default, Debug)]
pub struct Counts {
    pub link_drops: u32,
    pub client_drops: u32,
    pub restarts: u32,
    pub compactions: u32,
}

pub struct World {
    pub rng: Rng,
    pub now: Instant,
    cfg: Config,
    pub nodes: Vec<Node>,
    pub clients: Vec<Endpoint>,
    wires: BTreeMap<usize, Wire>,
    next_wire: usize,
    /// When each node link (from, to) that is down may connect again.
    retry: BTreeMap<(usize, usize), Instant>,
    pub trace: bool,
    pub counts: Counts,
}

impl World {
    /// `nodes` nodes named `n0`, `n1`, ... in a full mesh whose links
    /// connect at the first step.
    pub fn new(cfg: Config, nodes: usize, rng: Rng, trace: bool) -> World {
        let now = Instant::from_millis(1_000);
        let mut retry = BTreeMap::new();
        for from in 0..nodes {
            for to in (0..nodes).filter(|&to| to != from) {
                retry.insert((from, to), now);
            }
        }
        World {
            rng,
            now,
            nodes: (0..nodes)
                .map(|n| Node {
                    name: format!("n{n}"),
                    broker: Broker::new(cfg.clone()),
                    store: Store::default(),
                    down: false,
                })
                .collect(),
            cfg,
            clients: Vec::new(),
            wires: BTreeMap::new(),
            next_wire: 1,
            retry,
            trace,
            counts: Counts::default(),
        }
    }

    /// A client of `node`; it connects when its session asks to.
    pub fn add_client(&mut self, node: usize, session: Session<Vec<u8>>) {
        self.clients.push(Endpoint {
            node,
            session,
            wire: None,
        });
    }

    pub fn log(&self, what: impl FnOnce() -> String) {
        if self.trace {
            println!("{:>10} {}", self.now.as_micros(), what());
        }
    }

    fn wire_of(&self, port: Port) -> Option<usize> {
        self.wires
            .iter()
            .find(|(_, w)| w.a == port || w.b == port)
            .map(|(id, _)| *id)
    }

    fn open_wire(&mut self, a: Port, b: Port, link: Option<(usize, usize)>) -> usize {
        let id = self.next_wire;
        self.next_wire += 1;
        let (ab, ba) = (Pipe::default(), Pipe::default());
        self.wires.insert(id, Wire { a, b, ab, ba, link });
        id
    }

    /// Cuts a wire: both ends learn it is gone, but a crashed node (`except`).
    fn drop_wire(&mut self, id: usize, except: Option<usize>) {
        let Some(w) = self.wires.remove(&id) else {
            return;
        };
        self.log(|| format!("wire {id} {:?} <-> {:?} dropped", w.a, w.b));
        for port in [w.a, w.b] {
            match port {
                Port::Client(c) => {
                    let c = &mut self.clients[c];
                    c.wire = None;
                    c.session.handle_disconnected(self.now);
                }
                Port::Node(n, conn) if Some(n) != except => {
                    self.nodes[n].broker.handle_closed(conn, self.now);
                }
                Port::Node(..) => {}
            }
        }
        match w.link {
            Some(pair) => {
                self.counts.link_drops += 1;
                let at = self.now + Duration::from_millis(5 + self.rng.below(50));
                self.retry.insert(pair, at);
            }
            None => self.counts.client_drops += 1,
        }
    }

    /// Cuts a node link or the connection of a client `may_cut` allows.
    pub fn drop_random_wire(&mut self, may_cut: impl Fn(usize) -> bool) {
        let candidates: Vec<usize> = self
            .wires
            .iter()
            .filter(|(_, w)| match w.a {
                Port::Client(c) => may_cut(c),
                Port::Node(..) => true,
            })
            .map(|(id, _)| *id)
            .collect();
        if !candidates.is_empty() {
            let k = self.rng.below(candidates.len() as u64) as usize;
            self.drop_wire(candidates[k], None);
        }
    }

    /// The node's store compacts its log into the broker's snapshot.
    pub fn compact(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        while let Some(op) = node.broker.poll_store() {
            node.store.write(op.token, op.bytes(), self.now);
        }
        let Some(snap) = node.broker.snapshot() else {
            return;
        };
        self.counts.compactions += 1;
        node.store.compact(&snap.records, snap.upto);
        node.broker.handle_persisted(snap.upto, self.now);
    }

    /// The node crashes and restarts from its durable records; its wires drop.
    pub fn restart_node(&mut self, n: usize) {
        self.counts.restarts += 1;
        self.kill_node(n);
        self.revive_node(n);
    }

    /// The node crashes and starts again with an empty store (a memory
    /// store, or a data dir that is gone); its wires drop.
    #[allow(dead_code)]
    pub fn restart_node_empty(&mut self, n: usize) {
        self.counts.restarts += 1;
        self.kill_node(n);
        self.log(|| format!("node {n} lost its store"));
        self.nodes[n].store = Store::default();
        self.revive_node(n);
    }

    /// The node crashes (its wires drop, its store keeps what was durable)
    /// and stays down until [`revive_node`](Self::revive_node).
    pub fn kill_node(&mut self, n: usize) {
        self.log(|| format!("node {n} crashes"));
        let touching: Vec<usize> = self
            .wires
            .iter()
            .filter(|(_, w)| {
                [w.a, w.b]
                    .iter()
                    .any(|p| matches!(p, Port::Node(m, _) if *m == n))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in touching {
            self.drop_wire(id, Some(n));
        }
        let node = &mut self.nodes[n];
        node.store.crash();
        node.down = true;
    }

    /// The node starts again from its durable records, with a seed of its
    /// own, as an adapter picks one at random at every start (so what it
    /// keeps across a restart, its store's epoch, must come from its store).
    pub fn revive_node(&mut self, n: usize) {
        self.log(|| format!("node {n} starts"));
        self.cfg.seed = self.cfg.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let node = &mut self.nodes[n];
        node.broker = Broker::new(self.cfg.clone());
        for r in node.store.durable() {
            node.broker
                .restore(self.now, r)
                .expect("stored records restore");
        }
        node.down = false;
        let node = &self.nodes[n];
        let known: Vec<_> = (self.nodes.iter())
            .filter(|m| m.name != node.name)
            .map(|m| (&m.name, node.broker.peer_interest(&m.name)))
            .collect();
        self.log(|| format!("node {n} restored peers' interest {known:?}"));
    }

    /// Sends bytes written at `from` along its wire.
    fn send(&mut self, from: Port, bytes: &[u8]) {
        let Some(id) = self.wire_of(from) else {
            return;
        };
        let at = self.now + Duration::from_micros(50 + self.rng.below(2_000));
        let w = self.wires.get_mut(&id).expect("wire found");
        let pipe = if w.a == from { &mut w.ab } else { &mut w.ba };
        pipe.send(at, bytes, &mut self.rng);
    }

    /// One round of everything every endpoint wants to do; the client
    /// events it saw (a connect or disconnect is handled here too). `None`
    /// when nothing moved.
    pub fn pump(&mut self) -> Option<Vec<(usize, Happened)>> {
        let mut buf = vec![0u8; 8 * 1024];
        let mut progress = false;
        for n in 0..self.nodes.len() {
            if self.nodes[n].down {
                continue;
            }
            while let Some(op) = self.nodes[n].broker.poll_store() {
                progress = true;
                let at = self.now + Duration::from_micros(self.rng.below(3_000));
                self.nodes[n].store.write(op.token, op.bytes(), at);
            }
            while let Some(t) = self.nodes[n].broker.poll_transmit(self.now, &mut buf) {
                progress = true;
                self.send(Port::Node(n, t.conn), &buf[..t.len]);
            }
            while let Some(event) = self.nodes[n].broker.poll_event() {
                progress = true;
                let BrokerEvent::Close(conn) = event else {
                    continue;
                };
                match self.wire_of(Port::Node(n, conn)) {
                    Some(id) => self.drop_wire(id, None),
                    None => self.nodes[n].broker.handle_closed(conn, self.now),
                }
            }
        }
        let mut events = Vec::new();
        for i in 0..self.clients.len() {
            while let Some(len) = self.clients[i].session.poll_transmit(self.now, &mut buf) {
                progress = true;
                self.send(Port::Client(i), &buf[..len]);
            }
            while let Some(ev) = self.clients[i]
                .session
                .poll_event()
                .map(|e| Happened::from_event(i, e))
            {
                progress = true;
                match ev {
                    Happened::Connect => self.client_connects(i),
                    Happened::Disconnected(_) => {
                        if let Some(id) = self.clients[i].wire {
                            self.drop_wire(id, None);
                        }
                        events.push((i, ev));
                    }
                    ev => events.push((i, ev)),
                }
            }
        }
        progress.then_some(events)
    }

    /// Nothing moves: every node link and client connection is up with
    /// nothing in flight, and no broker owes a connected session anything
    /// or waits for its store.
    pub fn is_quiet(&self) -> bool {
        self.retry.is_empty()
            && self.clients.iter().all(|c| c.wire.is_some())
            && self
                .wires
                .values()
                .all(|w| w.ab.is_idle() && w.ba.is_idle())
            && self
                .nodes
                .iter()
                .all(|n| n.broker.is_drained() && n.store.next().is_none())
    }

    /// Panics unless every broker's invariants hold.
    pub fn check_invariants(&self) {
        for (n, node) in self.nodes.iter().enumerate() {
            (node.broker.check_invariants()).unwrap_or_else(|e| panic!("node {n} invariant: {e}"));
        }
    }

    fn client_connects(&mut self, i: usize) {
        let n = self.clients[i].node;
        if self.nodes[n].down {
            // Refused: the client tries again later.
            self.clients[i].session.handle_disconnected(self.now);
            return;
        }
        let conn = self.nodes[n]
            .broker
            .accept(self.now, Framing::Stream)
            .expect("accept");
        let id = self.open_wire(Port::Client(i), Port::Node(n, conn), None);
        let c = &mut self.clients[i];
        c.wire = Some(id);
        c.session.handle_connected(self.now);
    }

    /// Moves the clock to the next thing that happens (by small steps), and
    /// lets it happen: stores make records durable, node links connect
    /// again, bytes arrive, timers fire.
    pub fn advance(&mut self) {
        let next = self
            .next_event()
            .unwrap_or(self.now + Duration::from_millis(1));
        let cap = self.now + Duration::from_micros(200 + self.rng.below(800));
        self.now = self.now.max(next.min(cap));
        let now = self.now;
        for node in self.nodes.iter_mut().filter(|n| !n.down) {
            if let Some(token) = node.store.settle(now) {
                node.broker.handle_persisted(token, now);
            }
        }
        let due: Vec<(usize, usize)> = self
            .retry
            .iter()
            .filter(|((from, to), at)| {
                **at <= now && !self.nodes[*from].down && !self.nodes[*to].down
            })
            .map(|(pair, _)| *pair)
            .collect();
        for (from, to) in due {
            self.retry.remove(&(from, to));
            let (node, peer) = (self.nodes[from].name.clone(), self.nodes[to].name.clone());
            let a = self.nodes[from]
                .broker
                .connect_link(now, &node, &peer, None);
            let b = self.nodes[to].broker.accept(now, Framing::Stream);
            let (a, b) = (a.expect("connect link"), b.expect("accept link"));
            self.open_wire(Port::Node(from, a), Port::Node(to, b), Some((from, to)));
        }
        let ids: Vec<usize> = self.wires.keys().copied().collect();
        for id in ids {
            for forward in [true, false] {
                let Some(w) = self.wires.get_mut(&id) else {
                    continue;
                };
                let (to, pipe) = match forward {
                    true => (w.b, &mut w.ab),
                    false => (w.a, &mut w.ba),
                };
                pipe.arrive(now);
                let used = match to {
                    Port::Client(c) => self.clients[c].session.handle_input(now, &pipe.rx),
                    Port::Node(n, conn) => self.nodes[n].broker.handle_input(conn, now, &pipe.rx),
                };
                pipe.rx.drain(..used);
            }
        }
        for node in self.nodes.iter_mut().filter(|n| !n.down) {
            node.broker.handle_timeout(now);
        }
        for c in &mut self.clients {
            c.session.handle_timeout(now);
        }
    }

    fn next_event(&self) -> Option<Instant> {
        let nodes = self.nodes.iter().filter(|n| !n.down);
        let times = nodes
            .flat_map(|n| [n.broker.poll_timeout(), n.store.next()])
            .chain(self.clients.iter().map(|c| c.session.poll_timeout()))
            .chain(self.wires.values().flat_map(|w| [w.ab.next(), w.ba.next()]))
            .chain(self.retry.iter().map(|((from, to), t)| {
                let up = !self.nodes[*from].down && !self.nodes[*to].down;
                up.then_some(*t)
            }));
        times.flatten().min()
    }
}
