//! The broker state machine (`alloc`): connections, sessions, routing, delivery.
//!
//! [`Broker`] decides everything a broker decides, and does no I/O: the adapter
//! hands it connections, bytes, time and store completions, and polls out bytes to
//! send, events, store records and the next timer. See [`Broker`] for the contract.

mod config;
mod dedup;
mod message;
mod queue;
mod record;
mod slab;
mod stats;

#[cfg(test)]
mod tests;

pub use config::{
    Auth, Backoff, Config, Overflow, Permissions, QueueLimits, Retention, Rule, covers,
};
pub use record::{MessageRecord, Record, RecordError, StoreOp};

/// The broker's durable state as records (see [`Broker::snapshot`]).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Records that rebuild the state, in order.
    pub records: Vec<Arc<[u8]>>,
    /// The state includes every store operation with a token up to this one.
    pub upto: u64,
}
pub use stats::Stats;

use alloc::borrow::ToOwned;
use alloc::collections::{BTreeMap, BinaryHeap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::time::Duration;

use dedup::{Dedup, Seen};
use message::{Message, Msg};
use queue::{Offer, Queue, Queued};
use slab::{Key, Slab};

use crate::framing::Framing;
use crate::framing::stream::{self, Decoded, StreamDecoder};
use crate::time::Instant;
use crate::topic::{Filter, SubscriptionIndex, Topic};
use crate::wire::{
    self, Deliver, ErrorFrame, Fragment, Frame, Hello, Limits, Meta, PROTOCOL_VERSION, PubAck,
    PubReject, Publish, QoS, Reason, SessionMode, Start, SubAck, SubReject, Subscribe, UnsubAck,
    Welcome,
};

pub(crate) type Map<K, V> = hashbrown::HashMap<K, V, foldhash::fast::FixedState>;

/// Identifies a connection; assigned by [`Broker::accept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Bytes for one connection, written by [`Broker::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The connection to send them on.
    pub conn: ConnId,
    /// How many bytes at the front of the buffer.
    pub len: usize,
}

/// Something the adapter must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Close this connection's transport: everything the broker wanted to send on it
    /// has been handed out by `poll_transmit`. Then call
    /// [`Broker::handle_closed`].
    Close(ConnId),
}

/// The broker refused a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcceptError {
    /// `Config::max_connections` are open.
    TooManyConnections,
    /// The broker is shutting down.
    ShuttingDown,
}

impl core::fmt::Display for AcceptError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            AcceptError::TooManyConnections => "too many connections",
            AcceptError::ShuttingDown => "shutting down",
        })
    }
}

impl core::error::Error for AcceptError {}

/// One queue's state, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// Client id (fan-out subscription) or group name.
    pub owner: String,
    /// The subscription's filter.
    pub filter: String,
    /// True for a group's shared queue.
    pub group: bool,
    /// Messages waiting.
    pub waiting: usize,
    /// Deliveries in flight.
    pub inflight: usize,
    /// Waiting plus in flight: what the bound applies to.
    pub occupancy: usize,
    /// The bound.
    pub max_messages: usize,
}

/// Where matched messages go: a fan-out subscription's queue or a group's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Target {
    Sub(Key),
    Group(Key),
}

/// A small owned frame waiting to be sent.
enum Ctrl {
    Welcome(Welcome),
    PubAck(PubAck),
    PubReject(PubReject),
    SubAck(SubAck),
    SubReject(SubReject),
    UnsubAck(UnsubAck),
    Ping(u64),
    Pong(u64),
    Close(Reason),
    Error(Reason, &'static str),
}

enum Out {
    Ctrl(Ctrl),
    Deliver {
        msg: Msg,
        sub: u32,
        tag: u64,
        attempt: u16,
        qos: QoS,
        /// Payload bytes already sent (fragments).
        offset: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ConnState {
    AwaitHello,
    Open(Key),
    Closing,
}

/// A publish being received in fragments, or held for room (owned copy).
struct Incoming {
    id: u32,
    topic: String,
    qos: QoS,
    dedup: Option<wire::Dedup>,
    ttl_ms: Option<u32>,
    priority: u8,
    reply_to: Option<String>,
    correlation: Option<Vec<u8>>,
    headers: Vec<u8>,
    payload: Vec<u8>,
    total: u64,
    /// Refused already (too large): swallow the remaining fragments.
    refused: bool,
}

impl Incoming {
    fn from_publish(p: &Publish<'_>, total: u64) -> Self {
        Incoming {
            id: p.id,
            topic: p.topic.to_owned(),
            qos: p.qos,
            dedup: p.dedup,
            ttl_ms: p.meta.ttl_ms,
            priority: p.meta.priority,
            reply_to: p.meta.reply_to.map(ToOwned::to_owned),
            correlation: p.meta.correlation.map(ToOwned::to_owned),
            headers: p.meta.headers.as_encoded().to_vec(),
            payload: Vec::new(),
            total,
            refused: false,
        }
    }

    fn as_publish(&self) -> Publish<'_> {
        Publish {
            id: self.id,
            topic: &self.topic,
            qos: self.qos,
            dedup: self.dedup,
            meta: Meta {
                ttl_ms: self.ttl_ms,
                priority: self.priority,
                reply_to: self.reply_to.as_deref(),
                correlation: self.correlation.as_deref(),
                headers: wire::Headers::from_encoded(&self.headers).unwrap_or_default(),
            },
            fragment: None,
            payload: &self.payload,
        }
    }
}

struct Parked {
    publish: Incoming,
    deadline: Instant,
}

struct Conn {
    state: ConnState,
    framing: Framing,
    decoder: StreamDecoder,
    peer: Limits,
    keepalive: Option<Duration>,
    last_rx: Instant,
    last_tx: Instant,
    out: VecDeque<Out>,
    in_ready: bool,
    partial: Option<Incoming>,
    parked: Option<Parked>,
    ping_seq: u64,
    close_event_sent: bool,
    /// The adapter cannot take more bytes for it now.
    paused: bool,
    /// Unconsumed bytes left after the last `handle_input`: when the next call
    /// offers more, new bytes arrived.
    leftover: usize,
}

struct InFlight {
    sub: Key,
    target: Target,
    msg: Msg,
    attempt: u16,
    deadline: Option<Instant>,
}

struct Session {
    client: String,
    persistent: bool,
    conn: Option<ConnId>,
    perms: Permissions,
    /// Default credit the client announced.
    default_credit: u32,
    subs: BTreeMap<u32, Key>,
    next_tag: u64,
    inflight: Map<u64, InFlight>,
    /// filter -> topic -> highest sequence acked (for `Start::Cursor`).
    cursors: BTreeMap<String, BTreeMap<Arc<str>, u64>>,
}

struct Subscription {
    session: Key,
    id: u32,
    filter: String,
    group: Option<Key>,
    qos: QoS,
    window: u32,
    credit: u32,
    /// Fan-out subscriptions only; group members use the group's queue.
    queue: Queue,
    /// False after a session resumes, until the client subscribes again with the
    /// same id: only then does the broker deliver for it.
    active: bool,
}

struct Group {
    filter: String,
    name: String,
    members: Vec<Key>,
    next_member: usize,
    queue: Queue,
    /// Some member's session is persistent: its acks are recorded.
    durable: bool,
}

struct TopicState {
    name: Arc<str>,
    next_seq: u64,
    /// Sequence numbers below this are reserved in the store (see
    /// `Record::SeqReserve`).
    reserved_until: u64,
    retained: VecDeque<Msg>,
    retained_bytes: usize,
    retention: Retention,
}

enum Pending {
    /// A message to route once persisted (or at once, behind earlier ones).
    Release {
        token: Option<u64>,
        msg: Msg,
        targets: Vec<Target>,
        /// Publishers to answer with `PubAck` on release.
        acks: Vec<(ConnId, u32)>,
        dedup: Option<wire::Dedup>,
    },
    /// A frame to send once a record is persisted.
    Reply {
        token: u64,
        conn: ConnId,
        ctrl: Ctrl,
    },
}

impl Pending {
    fn token(&self) -> Option<u64> {
        match self {
            Pending::Release { token, .. } => *token,
            Pending::Reply { token, .. } => Some(*token),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Handshake(ConnId),
    Keepalive(ConnId),
    Parked(ConnId),
    AckDeadline(Key, u64),
    Retry(Target),
    Sweep,
}

/// The broker state machine.
///
/// # Contract
///
/// Method groups, quinn-style:
///
/// - **`handle_*`**: [`accept`](Self::accept) a connection,
///   [`handle_input`](Self::handle_input) bytes from it (or
///   [`handle_frame`](Self::handle_frame) for a transport that decodes frames
///   itself), [`handle_closed`](Self::handle_closed) when its transport is gone,
///   [`handle_timeout`](Self::handle_timeout) when `poll_timeout` is reached,
///   [`handle_persisted`](Self::handle_persisted) when the store made records
///   durable, and [`restore`](Self::restore) for each stored record at start.
/// - **commands**: [`shutdown`](Self::shutdown).
/// - **`poll_*`**: [`poll_store`](Self::poll_store) (write these records, in
///   order), [`poll_transmit`](Self::poll_transmit) (send these bytes),
///   [`poll_event`](Self::poll_event) (close these connections),
///   [`poll_timeout`](Self::poll_timeout) (call `handle_timeout` then).
/// - **getters**: [`stats`](Self::stats), [`queues`](Self::queues), ...
///
/// After every `handle_*` call or command, drain `poll_store`, `poll_transmit` and
/// `poll_event` until each returns `None`, then sleep until `poll_timeout()` or
/// the next input. Every record from `poll_store` must eventually be reported
/// with `handle_persisted` (an adapter without durable storage reports it at
/// once); QoS 1 publishes are acknowledged, and delivered, only after that.
///
/// Time is the adapter's monotonic clock. For a store that survives restarts, use
/// a clock that does too (microseconds since the Unix epoch), so TTLs and
/// retention ages stay right across a restart.
pub struct Broker {
    cfg: Config,
    rng: u64,
    conns: Map<ConnId, Conn>,
    next_conn: u64,
    ready: VecDeque<ConnId>,
    events: VecDeque<Event>,
    sessions: Slab<Session>,
    by_client: Map<String, Key>,
    subs: Slab<Subscription>,
    groups: Slab<Group>,
    group_by_name: Map<(String, String), Key>,
    index: SubscriptionIndex<Target>,
    topics: Map<Arc<str>, TopicState>,
    dedup: Dedup,
    next_msg: u64,
    store: VecDeque<StoreOp>,
    next_token: u64,
    persisted: u64,
    pending: VecDeque<Pending>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    parked: Vec<ConnId>,
    sweep_scheduled: Option<Instant>,
    shutting_down: bool,
    /// The store is full: QoS 1 publishes are refused with `StorageFull`.
    store_full: bool,
    stats: Stats,
}

const MIN_CLIENT_FRAME: u32 = 512;
const MAX_CLIENT_ID: usize = 128;
const MAX_GROUP_NAME: usize = 64;
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Sequence numbers reserved per `SeqReserve` record.
const SEQ_BLOCK: u64 = 1 << 20;

impl Broker {
    /// A broker with `cfg`. Before accepting connections, [`restore`](Self::restore)
    /// every stored record.
    pub fn new(cfg: Config) -> Self {
        let rng = cfg.seed | 1;
        let dedup = Dedup::new(cfg.dedup_window, cfg.max_producers);
        Broker {
            cfg,
            rng,
            conns: Map::default(),
            next_conn: 1,
            ready: VecDeque::new(),
            events: VecDeque::new(),
            sessions: Slab::new(),
            by_client: Map::default(),
            subs: Slab::new(),
            groups: Slab::new(),
            group_by_name: Map::default(),
            index: SubscriptionIndex::new(),
            topics: Map::default(),
            dedup,
            next_msg: 1,
            store: VecDeque::new(),
            next_token: 1,
            persisted: 0,
            pending: VecDeque::new(),
            timers: BinaryHeap::new(),
            parked: Vec::new(),
            sweep_scheduled: None,
            shutting_down: false,
            store_full: false,
            stats: Stats::default(),
        }
    }

    // ----------------------------------------------------------------- getters

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.current_connections = self.conns.len() as u64;
        s.current_sessions = self.sessions.len() as u64;
        s.current_topics = self.topics.len() as u64;
        s.current_subscriptions = self.subs.len() as u64;
        s
    }

    /// Every queue with its depth and bound.
    pub fn queues(&self) -> Vec<QueueInfo> {
        let mut out = Vec::new();
        for (_, sub) in self.subs.iter() {
            if sub.group.is_some() {
                continue;
            }
            let owner = self
                .sessions
                .get(sub.session)
                .map(|s| s.client.clone())
                .unwrap_or_default();
            out.push(QueueInfo {
                owner,
                filter: sub.filter.clone(),
                group: false,
                waiting: sub.queue.waiting(),
                inflight: sub.queue.inflight(),
                occupancy: sub.queue.occupancy(),
                max_messages: sub.queue.limits.max_messages,
            });
        }
        for (_, g) in self.groups.iter() {
            out.push(QueueInfo {
                owner: g.name.clone(),
                filter: g.filter.clone(),
                group: true,
                waiting: g.queue.waiting(),
                inflight: g.queue.inflight(),
                occupancy: g.queue.occupancy(),
                max_messages: g.queue.limits.max_messages,
            });
        }
        out
    }

    /// Whether a session is stored for `client_id`.
    pub fn has_session(&self, client_id: &str) -> bool {
        self.by_client.contains_key(client_id)
    }

    /// The number of open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Checks the broker's internal invariants; for tests and simulations.
    ///
    /// - no queue holds more than its bound (waiting plus in flight);
    /// - a group's message is in flight with at most one member, and never both in
    ///   flight and waiting;
    /// - the queue and in-flight counters match the queues.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        use alloc::format;
        let mut queued = 0u64;
        for info in self.queues() {
            if info.occupancy > info.max_messages {
                return Err(format!(
                    "queue {}/{} holds {} > {}",
                    info.owner, info.filter, info.occupancy, info.max_messages
                ));
            }
            queued += info.waiting as u64;
        }
        if queued != self.stats.current_queued {
            return Err(format!(
                "current_queued {} but queues hold {queued}",
                self.stats.current_queued
            ));
        }
        let mut inflight = 0u64;
        let mut group_held: BTreeMap<(Key, u64), u32> = BTreeMap::new();
        for (_, s) in self.sessions.iter() {
            for f in s.inflight.values() {
                inflight += 1;
                if let Target::Group(g) = f.target {
                    *group_held.entry((g, f.msg.id)).or_default() += 1;
                }
            }
        }
        if inflight != self.stats.current_inflight {
            return Err(format!(
                "current_inflight {} but sessions hold {inflight}",
                self.stats.current_inflight
            ));
        }
        for (&(g, id), &n) in &group_held {
            if n > 1 {
                return Err(format!("group message {id} in flight with {n} members"));
            }
            let group = self
                .groups
                .get(g)
                .ok_or("in-flight delivery of a removed group")?;
            let mut waiting = false;
            let mut probe = |q: &Queued| waiting |= q.msg.id == id;
            group.queue.for_each_waiting(&mut probe);
            if waiting {
                return Err(format!("group message {id} both in flight and waiting"));
            }
        }
        Ok(())
    }

    /// The store reached its size limit (or has room again): while full, QoS 1
    /// publishes are refused with [`Reason::StorageFull`]; acks, subscriptions and
    /// QoS 0 go on.
    pub fn set_store_full(&mut self, full: bool) {
        self.store_full = full;
    }

    /// The durable state as records, for a store to compact into: restoring these
    /// and then every record with a token above [`Snapshot::upto`] rebuilds the
    /// same broker as restoring everything. Holds persistent sessions with their
    /// subscriptions, topic sequences, QoS 1 messages still retained or owed to a
    /// durable queue (each followed by acks for the durable queues that no longer
    /// hold it) and the deduplication window. Costs time proportional to that state.
    ///
    /// Returns `None` while `poll_store` still has records to hand out: take the
    /// snapshot right after draining it, so that `upto` covers exactly what the
    /// store was given.
    pub fn snapshot(&self) -> Option<Snapshot> {
        if !self.store.is_empty() {
            return None;
        }
        let mut out: Vec<Arc<[u8]>> = Vec::new();
        let mut emit = |r: Record<'_>| out.push(r.encode_shared());
        let durable = |b: &Self, t: Target| match t {
            Target::Sub(k) => b
                .subs
                .get(k)
                .and_then(|s| b.sessions.get(s.session))
                .is_some_and(|s| s.persistent),
            Target::Group(g) => b.groups.get(g).is_some_and(|g| g.durable),
        };
        // Sessions and subscriptions, so the messages below route to them.
        for (_, s) in self.sessions.iter().filter(|(_, s)| s.persistent) {
            emit(Record::SessionOpen { client: &s.client });
            for (&id, &k) in &s.subs {
                let Some(sub) = self.subs.get(k) else {
                    continue;
                };
                let group = sub
                    .group
                    .and_then(|g| self.groups.get(g))
                    .map(|g| g.name.as_str());
                emit(Record::Subscribe {
                    client: &s.client,
                    sub: id,
                    filter: &sub.filter,
                    group,
                    qos: sub.qos,
                    credit: sub.window,
                });
            }
        }
        for t in self.topics.values() {
            emit(Record::SeqReserve {
                topic: &t.name,
                until: t.next_seq.max(t.reserved_until),
            });
        }
        // What each durable queue still holds (waiting or in flight), and every QoS 1
        // message still needed at all.
        type Held = BTreeMap<u64, (Msg, Vec<Target>)>;
        fn note(held: &mut Held, m: &Msg, holder: Option<Target>) {
            if m.qos == QoS::AtLeastOnce {
                let e = held.entry(m.id).or_insert_with(|| (m.clone(), Vec::new()));
                e.1.extend(holder);
            }
        }
        let mut held: Held = BTreeMap::new();
        for (k, sub) in self.subs.iter() {
            if sub.group.is_none() && durable(self, Target::Sub(k)) {
                sub.queue.for_each_waiting(&mut |q: &Queued| {
                    note(&mut held, &q.msg, Some(Target::Sub(k)))
                });
            }
        }
        for (g, group) in self.groups.iter() {
            if group.durable {
                group.queue.for_each_waiting(&mut |q: &Queued| {
                    note(&mut held, &q.msg, Some(Target::Group(g)))
                });
            }
        }
        for (_, s) in self.sessions.iter().filter(|(_, s)| s.persistent) {
            for f in s.inflight.values() {
                if durable(self, f.target) {
                    note(&mut held, &f.msg, Some(f.target));
                }
            }
        }
        // Admitted and still waiting for the store: owed to the queues chosen then.
        for p in &self.pending {
            if let Pending::Release { msg, targets, .. } = p {
                note(&mut held, msg, None);
                for &t in targets.iter().filter(|&&t| durable(self, t)) {
                    note(&mut held, msg, Some(t));
                }
            }
        }
        for t in self.topics.values() {
            for m in &t.retained {
                note(&mut held, m, None);
            }
        }
        for (msg, holders) in held.values() {
            out.push(msg.record.clone());
            // Restore routes the message to every matching durable queue: those
            // done with it get an ack right after.
            let Ok(topic) = Topic::new(&msg.topic) else {
                continue;
            };
            let mut matching = Vec::new();
            self.index.for_each_match(topic, |t| matching.push(*t));
            for t in matching {
                if holders.contains(&t) || !durable(self, t) {
                    continue;
                }
                match t {
                    Target::Sub(k) => {
                        let (Some(sub), Some(s)) = (
                            self.subs.get(k),
                            self.subs.get(k).and_then(|x| self.sessions.get(x.session)),
                        ) else {
                            continue;
                        };
                        out.push(
                            Record::Ack {
                                client: &s.client,
                                sub: sub.id,
                                msg: msg.id,
                            }
                            .encode_shared(),
                        );
                    }
                    Target::Group(g) => {
                        let Some(group) = self.groups.get(g) else {
                            continue;
                        };
                        out.push(
                            Record::GroupAck {
                                filter: &group.filter,
                                group: &group.name,
                                msg: msg.id,
                            }
                            .encode_shared(),
                        );
                    }
                }
            }
        }
        for (producer, seq, topic_seq) in self.dedup.entries() {
            out.push(
                Record::DedupMark {
                    producer,
                    seq,
                    topic_seq,
                }
                .encode_shared(),
            );
        }
        // Last: restore skips message records with ids below it.
        out.push(
            Record::NextId {
                next: self.next_msg,
            }
            .encode_shared(),
        );
        Some(Snapshot {
            records: out,
            upto: self.next_token - 1,
        })
    }

    /// Highest token reported persisted.
    pub fn persisted_token(&self) -> u64 {
        self.persisted
    }

    // ------------------------------------------------------------------- polls

    /// The next record to write, in order.
    pub fn poll_store(&mut self) -> Option<StoreOp> {
        self.store.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Writes bytes for one connection into `buf`: as many whole frames as fit,
    /// connections taking turns. `buf` should hold at least 1 KiB; deliveries are
    /// fragmented to fit it and the peer's maximum frame.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        while let Some(id) = self.ready.pop_front() {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            conn.in_ready = false;
            if conn.paused {
                // Picked up again by `resume_transmit`.
                continue;
            }
            let was_backed_up = conn.out.len() >= self.cfg.max_pending_frames;
            let len = write_frames(conn, buf, &mut self.stats);
            if len > 0 {
                conn.last_tx = now;
            }
            if !conn.out.is_empty() && len > 0 {
                conn.in_ready = true;
                self.ready.push_back(id);
            } else if conn.out.is_empty()
                && conn.state == ConnState::Closing
                && !conn.close_event_sent
            {
                conn.close_event_sent = true;
                self.events.push_back(Event::Close(id));
            }
            // Sending freed room in the connection's queue: deliver more.
            if was_backed_up {
                self.pump_session_of(id, now);
            }
            if len > 0 {
                return Some(Transmit { conn: id, len });
            }
        }
        None
    }

    /// Stops handing out bytes for `conn` from `poll_transmit` (its socket or
    /// outgoing queue is full). Deliveries for it stop once its frame queue reaches
    /// `Config::max_pending_frames`, so memory stays bounded.
    pub fn pause_transmit(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.paused = true;
        }
    }

    /// Hands out bytes for `conn` again after [`pause_transmit`](Self::pause_transmit).
    pub fn resume_transmit(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.paused = false;
            if !c.out.is_empty() && !c.in_ready {
                c.in_ready = true;
                self.ready.push_back(conn);
            }
        }
    }

    // ------------------------------------------------------------- connections

    /// A transport connected; the broker now expects `Hello` on it.
    pub fn accept(&mut self, now: Instant, framing: Framing) -> Result<ConnId, AcceptError> {
        if self.shutting_down {
            return Err(AcceptError::ShuttingDown);
        }
        if self.conns.len() >= self.cfg.max_connections {
            return Err(AcceptError::TooManyConnections);
        }
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                state: ConnState::AwaitHello,
                framing,
                decoder: StreamDecoder::new(self.cfg.limits.max_frame),
                peer: Limits {
                    max_frame: MIN_CLIENT_FRAME,
                    credit: self.cfg.limits.credit,
                    keepalive_ms: 0,
                },
                keepalive: None,
                last_rx: now,
                last_tx: now,
                out: VecDeque::new(),
                in_ready: false,
                partial: None,
                parked: None,
                ping_seq: 0,
                close_event_sent: false,
                paused: false,
                leftover: 0,
            },
        );
        self.stats.connections_total += 1;
        self.set_timer(now + self.cfg.handshake_timeout, Timer::Handshake(id));
        Ok(id)
    }

    /// Bytes arrived on a stream-framed connection: `bytes` is everything received
    /// and not yet consumed, oldest first (what an earlier call left, then what is
    /// new). Returns how many were consumed: whole frames only, and fewer when the
    /// connection must wait ([`input_blocked`](Self::input_blocked)) or the last
    /// frame is incomplete; keep the rest and offer it again with the next bytes.
    /// After a protocol error all input is consumed and discarded, and the
    /// connection closes.
    pub fn handle_input(&mut self, conn: ConnId, now: Instant, bytes: &[u8]) -> usize {
        let used = self.consume_input(conn, now, bytes);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.leftover = bytes.len() - used;
        }
        used
    }

    /// True while the connection's input cannot be consumed: its publish is held
    /// for room in a full queue, or its output queue is full. Offer its leftover
    /// input again once this turns false.
    pub fn input_blocked(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| {
            c.state != ConnState::Closing
                && (c.parked.is_some() || c.out.len() >= self.cfg.max_pending_frames)
        })
    }

    fn consume_input(&mut self, conn: ConnId, now: Instant, bytes: &[u8]) -> usize {
        let mut used = 0;
        if let Some(c) = self.conns.get_mut(&conn) {
            // Offering the same unconsumed bytes again is not activity.
            if bytes.len() > c.leftover {
                c.last_rx = now;
            }
        }
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return bytes.len();
            };
            if c.state == ConnState::Closing {
                return bytes.len();
            }
            if c.parked.is_some() || c.out.len() >= self.cfg.max_pending_frames {
                return used;
            }
            let decoded = c.decoder.decode(&bytes[used..]);
            match decoded {
                Ok(Decoded::Frame { frame, consumed }) => {
                    used += consumed;
                    self.on_frame(conn, now, frame);
                }
                Ok(Decoded::Incomplete { .. }) => return used,
                Err(e) => {
                    self.stats.protocol_errors += 1;
                    let (reason, text) = match e {
                        stream::StreamError::FrameTooLarge { .. } => {
                            (Reason::FrameTooLarge, "frame exceeds the broker's maximum")
                        }
                        _ => (Reason::Malformed, "malformed frame"),
                    };
                    self.close_conn(conn, now, Ctrl::Error(reason, text));
                    return bytes.len();
                }
            }
        }
    }

    /// One decoded frame arrived (for transports that decode frames themselves, such
    /// as serial lines). Returns `false` when the connection must wait; offer the
    /// frame again after draining the polls.
    pub fn handle_frame(&mut self, conn: ConnId, now: Instant, frame: Frame<'_>) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return true;
        };
        c.last_rx = now;
        if c.state == ConnState::Closing {
            return true;
        }
        if c.parked.is_some() || c.out.len() >= self.cfg.max_pending_frames {
            return false;
        }
        self.on_frame(conn, now, frame);
        true
    }

    /// The connection's transport is gone (the peer closed it, it failed, or the
    /// adapter closed it after [`Event::Close`]).
    pub fn handle_closed(&mut self, conn: ConnId, now: Instant) {
        self.detach(conn, now);
        self.conns.remove(&conn);
        self.parked.retain(|c| *c != conn);
    }

    /// Starts a graceful shutdown: new connections and new publishes are refused
    /// with [`Reason::ShuttingDown`], while deliveries to connected subscribers go
    /// on. Poll [`is_drained`](Self::is_drained), then call
    /// [`shutdown`](Self::shutdown).
    pub fn begin_shutdown(&mut self) {
        self.shutting_down = true;
    }

    /// True once nothing is owed to a connected subscriber (no message waiting in
    /// a queue someone connected consumes, nothing in flight) and nothing waits
    /// for the store.
    pub fn is_drained(&self) -> bool {
        if !self.pending.is_empty() {
            return false;
        }
        self.sessions.iter().all(|(_, s)| {
            s.conn.is_none()
                || (s.inflight.is_empty()
                    && s.subs.values().all(|&k| {
                        let t = self.target_of(k);
                        // Not re-asserted since a resume: nothing is owed there.
                        !self.subs.get(k).is_some_and(|x| x.active)
                            || self.queue(t).is_none_or(|q| q.waiting() == 0)
                    }))
        })
    }

    /// Stops accepting connections and closes every open one with
    /// [`Reason::ShuttingDown`]. Persistent sessions stay stored.
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.close_conn(id, now, Ctrl::Close(Reason::ShuttingDown));
        }
    }

    /// Whether every record handed out by `poll_store` has been reported persisted
    /// and nothing waits for the store.
    pub fn is_store_idle(&self) -> bool {
        self.store.is_empty() && self.pending.is_empty()
    }

    // ------------------------------------------------------------------ timers

    fn set_timer(&mut self, at: Instant, timer: Timer) {
        self.timers.push(Reverse((at, timer)));
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Handshake(id) => {
                    if self
                        .conns
                        .get(&id)
                        .is_some_and(|c| c.state == ConnState::AwaitHello)
                    {
                        self.close_conn(id, now, Ctrl::Error(Reason::Timeout, "no hello in time"));
                    }
                }
                Timer::Keepalive(id) => self.keepalive(id, now),
                Timer::Parked(id) => self.retry_parked(id, now),
                Timer::AckDeadline(session, tag) => self.ack_deadline(session, tag, now),
                Timer::Retry(target) => self.pump(target, now),
                Timer::Sweep => {
                    if self.sweep_scheduled == Some(at) {
                        self.sweep_scheduled = None;
                        self.sweep(now);
                    }
                }
            }
        }
    }

    fn keepalive(&mut self, id: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(ka) = c.keepalive else { return };
        if c.state == ConnState::Closing {
            return;
        }
        let dead_at = c.last_rx + ka * 3 / 2;
        if now >= dead_at {
            self.close_conn(
                id,
                now,
                Ctrl::Error(Reason::KeepaliveTimeout, "keepalive timeout"),
            );
            return;
        }
        let ping_at = c.last_tx + ka / 2;
        if now >= ping_at {
            c.ping_seq += 1;
            let seq = c.ping_seq;
            c.last_tx = now;
            push_out(c, id, &mut self.ready, Out::Ctrl(Ctrl::Ping(seq)));
        }
        let c = &self.conns[&id];
        let next = (c.last_rx + ka * 3 / 2)
            .min(c.last_tx + ka / 2)
            .max(now + Duration::from_millis(1));
        self.set_timer(next, Timer::Keepalive(id));
    }

    // -------------------------------------------------------------- frames in

    fn on_frame(&mut self, conn: ConnId, now: Instant, frame: Frame<'_>) {
        let state = match self.conns.get(&conn) {
            Some(c) => c.state,
            None => return,
        };
        match (state, frame) {
            (ConnState::AwaitHello, Frame::Hello(h)) => self.on_hello(conn, now, h),
            (ConnState::AwaitHello, _) => {
                self.violation(conn, now, "expected hello");
            }
            (ConnState::Open(session), frame) => self.on_session_frame(conn, session, now, frame),
            (ConnState::Closing, _) => {}
        }
    }

    fn on_hello(&mut self, conn: ConnId, now: Instant, h: Hello<'_>) {
        if self.shutting_down {
            self.close_conn(
                conn,
                now,
                Ctrl::Error(Reason::ShuttingDown, "shutting down"),
            );
            return;
        }
        if h.version != PROTOCOL_VERSION {
            self.close_conn(
                conn,
                now,
                Ctrl::Error(Reason::UnsupportedVersion, "protocol version 1 only"),
            );
            return;
        }
        if h.client_id.is_empty()
            || h.client_id.len() > MAX_CLIENT_ID
            || h.client_id.bytes().any(|b| !(0x21..=0x7e).contains(&b))
        {
            self.close_conn(
                conn,
                now,
                Ctrl::Error(Reason::ProtocolViolation, "invalid client id"),
            );
            return;
        }
        if h.limits.max_frame < MIN_CLIENT_FRAME {
            self.close_conn(
                conn,
                now,
                Ctrl::Error(Reason::LimitReached, "client max_frame below 512"),
            );
            return;
        }
        let Some(perms) = self.cfg.auth.permissions(h.token) else {
            self.stats.auth_failures += 1;
            self.close_conn(conn, now, Ctrl::Error(Reason::BadToken, "unknown token"));
            return;
        };

        let mut session_present = false;
        if let Some(&existing) = self.by_client.get(h.client_id) {
            // Take over from a connection still attached to the session.
            if let Some(old) = self.sessions.get(existing).and_then(|s| s.conn) {
                self.close_conn(
                    old,
                    now,
                    Ctrl::Error(Reason::SessionTakenOver, "session taken over"),
                );
            }
            let persistent = self.sessions.get(existing).is_some_and(|s| s.persistent);
            if h.session == SessionMode::Resume && persistent {
                session_present = true;
            } else {
                self.destroy_session(existing, true, now);
            }
        }
        let session = if session_present {
            self.by_client[h.client_id]
        } else {
            self.create_session(h.client_id, h.session == SessionMode::Resume, true)
        };
        let s = self
            .sessions
            .get_mut(session)
            .expect("session just found or made");
        s.conn = Some(conn);
        s.perms = perms;
        s.default_credit = h.limits.credit;
        // Credit windows restart with the connection: nothing is in flight. A
        // resumed subscription delivers again once the client re-asserts it.
        for &sub in s.subs.values() {
            if let Some(sub) = self.subs.get_mut(sub) {
                sub.credit = sub.window;
                sub.active = !session_present;
            }
        }

        let keepalive = match (h.limits.keepalive_ms, self.cfg.limits.keepalive_ms) {
            (0, 0) => None,
            (0, b) => Some(b),
            (c, 0) => Some(c),
            (c, b) => Some(c.min(b)),
        }
        .map(|ms| Duration::from_millis(u64::from(ms)));
        let c = self.conns.get_mut(&conn).expect("conn exists");
        c.state = ConnState::Open(session);
        c.peer = h.limits;
        c.keepalive = keepalive;
        push_out(
            c,
            conn,
            &mut self.ready,
            Out::Ctrl(Ctrl::Welcome(Welcome {
                version: PROTOCOL_VERSION,
                session_present,
                limits: self.cfg.limits,
            })),
        );
        if let Some(ka) = keepalive {
            self.set_timer(now + ka / 2, Timer::Keepalive(conn));
        }
        self.pump_session(session, now);
    }

    fn on_session_frame(&mut self, conn: ConnId, session: Key, now: Instant, frame: Frame<'_>) {
        match frame {
            Frame::Publish(p) => self.on_publish(conn, session, now, p),
            Frame::Subscribe(s) => self.on_subscribe(conn, session, now, s),
            Frame::Unsubscribe(u) => self.on_unsubscribe(conn, session, now, u.sub),
            Frame::Ack(a) => self.settle(session, a.tag, Settle::Ack, now),
            Frame::Nack(n) => {
                let how = if n.requeue {
                    Settle::Requeue
                } else {
                    Settle::DeadLetter
                };
                self.settle(session, n.tag, how, now);
            }
            Frame::Credit(c) => {
                let key = self
                    .sessions
                    .get(session)
                    .and_then(|s| s.subs.get(&c.sub).copied());
                if let Some(sub) = key.and_then(|k| self.subs.get_mut(k)) {
                    sub.credit = sub.credit.saturating_add(c.credit).min(self.cfg.max_credit);
                    let target = sub
                        .group
                        .map_or(Target::Sub(key.expect("found")), Target::Group);
                    self.pump(target, now);
                }
            }
            Frame::Ping(n) => self.send(conn, Ctrl::Pong(n)),
            Frame::Pong(_) => {}
            Frame::Close(_) | Frame::Error(_) => {
                self.detach(conn, now);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.state = ConnState::Closing;
                    if c.out.is_empty() && !c.close_event_sent {
                        c.close_event_sent = true;
                        self.events.push_back(Event::Close(conn));
                    }
                }
            }
            Frame::Hello(_)
            | Frame::Welcome(_)
            | Frame::PubAck(_)
            | Frame::PubReject(_)
            | Frame::SubAck(_)
            | Frame::SubReject(_)
            | Frame::UnsubAck(_)
            | Frame::Deliver(_) => {
                self.violation(conn, now, "unexpected frame");
            }
        }
    }

    fn send(&mut self, conn: ConnId, ctrl: Ctrl) {
        if let Some(c) = self.conns.get_mut(&conn)
            && c.state != ConnState::Closing
        {
            push_out(c, conn, &mut self.ready, Out::Ctrl(ctrl));
        }
    }

    /// A frame that is not allowed here: counted, answered with an error, closed.
    fn violation(&mut self, conn: ConnId, now: Instant, text: &'static str) {
        self.stats.protocol_errors += 1;
        self.close_conn(conn, now, Ctrl::Error(Reason::ProtocolViolation, text));
    }

    /// Queues a final frame, detaches the session, and closes once flushed.
    fn close_conn(&mut self, conn: ConnId, now: Instant, last: Ctrl) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.state == ConnState::Closing {
            return;
        }
        // Deliveries not yet written are requeued by `detach`; drop them here.
        c.out.retain(|o| matches!(o, Out::Ctrl(_)));
        push_out(c, conn, &mut self.ready, Out::Ctrl(last));
        self.detach(conn, now);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.state = ConnState::Closing;
            c.parked = None;
            c.partial = None;
        }
    }

    /// Unbinds the connection from its session: a persistent session keeps its
    /// in-flight deliveries for later; a clean one is discarded.
    fn detach(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let ConnState::Open(session) = c.state else {
            return;
        };
        c.state = ConnState::Closing;
        c.out.retain(|o| matches!(o, Out::Ctrl(_)));
        c.parked = None;
        c.partial = None;
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if s.conn != Some(conn) {
            return;
        }
        s.conn = None;
        if s.persistent {
            self.requeue_inflight(session, now);
        } else {
            self.destroy_session(session, false, now);
        }
    }

    // ---------------------------------------------------------------- sessions

    fn create_session(&mut self, client: &str, persistent: bool, record: bool) -> Key {
        let key = self.sessions.insert(Session {
            client: client.to_owned(),
            persistent,
            conn: None,
            perms: Permissions::all(),
            default_credit: self.cfg.limits.credit,
            subs: BTreeMap::new(),
            next_tag: 1,
            inflight: Map::default(),
            cursors: BTreeMap::new(),
        });
        self.by_client.insert(client.to_owned(), key);
        if persistent && record {
            self.emit(&Record::SessionOpen { client });
        }
        key
    }

    /// Removes a session with its subscriptions; in-flight group deliveries go back
    /// to their groups.
    fn destroy_session(&mut self, session: Key, record: bool, now: Instant) {
        self.requeue_inflight(session, now);
        let Some(s) = self.sessions.remove(session) else {
            return;
        };
        self.by_client.remove(&s.client);
        for (_, sub) in s.subs {
            self.remove_subscription(sub, now);
        }
        if s.persistent && record {
            self.emit(&Record::SessionEnd { client: &s.client });
        }
    }

    /// Puts a session's in-flight deliveries back into their queues, oldest first.
    fn requeue_inflight(&mut self, session: Key, now: Instant) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        let mut by_target: BTreeMap<Target, Vec<Queued>> = BTreeMap::new();
        for (_, f) in s.inflight.drain() {
            self.stats.current_inflight = self.stats.current_inflight.saturating_sub(1);
            let avoid = matches!(f.target, Target::Group(_)).then_some(f.sub);
            by_target.entry(f.target).or_default().push(Queued {
                msg: f.msg,
                attempt: f.attempt,
                avoid,
            });
        }
        for (target, items) in by_target {
            let mut keep = Vec::with_capacity(items.len());
            for q in items {
                if let Some(queue) = self.queue_mut(target) {
                    queue.end_inflight(q.msg.payload_len);
                }
                if q.attempt >= self.cfg.max_attempts {
                    self.finish(target, &q.msg);
                    self.dead_letter(now, &q.msg);
                } else {
                    keep.push(q);
                }
            }
            self.stats.current_queued += keep.len() as u64;
            if let Some(queue) = self.queue_mut(target) {
                queue.requeue_front(keep);
            }
            self.pump(target, now);
        }
    }

    // ----------------------------------------------------------- subscriptions

    fn on_subscribe(&mut self, conn: ConnId, session: Key, now: Instant, s: Subscribe<'_>) {
        let reject = |b: &mut Self, reason| {
            b.send(conn, Ctrl::SubReject(SubReject { sub: s.sub, reason }));
        };
        let Ok(filter) = Filter::new(s.filter) else {
            return reject(self, Reason::InvalidFilter);
        };
        if let Some(g) = s.group
            && (g.is_empty()
                || g.len() > MAX_GROUP_NAME
                || g.bytes().any(|b| !(0x21..=0x7e).contains(&b)))
        {
            return reject(self, Reason::InvalidFilter);
        }
        let Some(sess) = self.sessions.get(session) else {
            return;
        };
        if let Some(&existing) = sess.subs.get(&s.sub) {
            let same = self.subs.get(existing).is_some_and(|x| {
                x.filter == s.filter
                    && x.group
                        .and_then(|g| self.groups.get(g))
                        .map(|g| g.name.as_str())
                        == s.group
            });
            return if same {
                if let Some(sub) = self.subs.get_mut(existing) {
                    sub.active = true;
                }
                self.send(conn, Ctrl::SubAck(SubAck { sub: s.sub }));
                let target = self.target_of(existing);
                self.pump(target, now);
            } else {
                reject(self, Reason::IdInUse)
            };
        }
        if !sess.perms.may_subscribe(filter) {
            self.stats.auth_failures += 1;
            return reject(self, Reason::NotAuthorized);
        }
        if sess.subs.len() >= self.cfg.max_subscriptions {
            return reject(self, Reason::LimitReached);
        }
        let credit = match s.credit {
            0 => sess.default_credit,
            c => c,
        }
        .clamp(1, self.cfg.max_credit);
        let persistent = sess.persistent;
        let client = sess.client.clone();
        let key = self.add_subscription(
            session,
            s.sub,
            filter,
            s.group,
            s.qos,
            credit,
            Some(s.start),
            now,
        );
        if persistent {
            let token = self.emit(&Record::Subscribe {
                client: &client,
                sub: s.sub,
                filter: s.filter,
                group: s.group,
                qos: s.qos,
                credit,
            });
            self.pending.push_back(Pending::Reply {
                token,
                conn,
                ctrl: Ctrl::SubAck(SubAck { sub: s.sub }),
            });
        } else {
            self.send(conn, Ctrl::SubAck(SubAck { sub: s.sub }));
        }
        let target = self.target_of(key);
        self.pump(target, now);
    }

    #[allow(clippy::too_many_arguments)]
    fn add_subscription(
        &mut self,
        session: Key,
        id: u32,
        filter: Filter<'_>,
        group: Option<&str>,
        qos: QoS,
        credit: u32,
        start: Option<Start>,
        now: Instant,
    ) -> Key {
        let limits = self.cfg.queue_for(filter);
        let persistent = self.sessions.get(session).is_some_and(|s| s.persistent);
        let group_key = group.map(|name| {
            let k = (filter.as_str().to_owned(), name.to_owned());
            match self.group_by_name.get(&k) {
                Some(&g) => g,
                None => {
                    let g = self.groups.insert(Group {
                        filter: k.0.clone(),
                        name: k.1.clone(),
                        members: Vec::new(),
                        next_member: 0,
                        queue: Queue::new(limits),
                        durable: false,
                    });
                    self.group_by_name.insert(k, g);
                    self.index.insert(filter, Target::Group(g));
                    if let Some(start) = start {
                        self.replay(Target::Group(g), session, filter, start, now);
                    }
                    g
                }
            }
        });
        let key = self.subs.insert(Subscription {
            session,
            id,
            filter: filter.as_str().to_owned(),
            group: group_key,
            qos,
            window: credit,
            credit,
            queue: Queue::new(limits),
            active: true,
        });
        if let Some(s) = self.sessions.get_mut(session) {
            s.subs.insert(id, key);
        }
        match group_key {
            Some(g) => {
                let group = self.groups.get_mut(g).expect("group just found or made");
                group.members.push(key);
                group.durable |= persistent;
            }
            None => {
                self.index.insert(filter, Target::Sub(key));
                if let Some(start) = start {
                    self.replay(Target::Sub(key), session, filter, start, now);
                }
            }
        }
        key
    }

    /// Queues retained messages for a new subscription or group, up to its bound.
    fn replay(
        &mut self,
        target: Target,
        session: Key,
        filter: Filter<'_>,
        start: Start,
        now: Instant,
    ) {
        if start == Start::New {
            return;
        }
        let cursors = self
            .sessions
            .get(session)
            .and_then(|s| s.cursors.get(filter.as_str()).cloned());
        if start == Start::Cursor && cursors.is_none() {
            return;
        }
        let mut picked: Vec<Msg> = Vec::new();
        for t in self.topics.values() {
            let Ok(topic) = Topic::new(&t.name) else {
                continue;
            };
            if !filter.matches(topic) {
                continue;
            }
            match start {
                Start::New => {}
                Start::Seq(from) => {
                    picked.extend(t.retained.iter().filter(|m| m.seq >= from).cloned())
                }
                Start::Last(n) => {
                    let skip = t.retained.len().saturating_sub(n as usize);
                    picked.extend(t.retained.iter().skip(skip).cloned());
                }
                Start::Cursor => {
                    let after = cursors.as_ref().and_then(|c| c.get(&t.name)).copied();
                    picked.extend(
                        t.retained
                            .iter()
                            .filter(|m| after.is_none_or(|a| m.seq > a))
                            .cloned(),
                    );
                }
            }
        }
        picked.sort_by_key(|m| m.id);
        let mut queued = 0;
        if let Some(queue) = self.queue_mut(target) {
            for msg in picked {
                if msg.is_expired(now) || queue.is_full_for(msg.payload_len) {
                    continue;
                }
                queue.push_back(Queued {
                    msg,
                    attempt: 0,
                    avoid: None,
                });
                queued += 1;
            }
        }
        self.stats.current_queued += queued;
    }

    fn on_unsubscribe(&mut self, conn: ConnId, session: Key, now: Instant, id: u32) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        let Some(key) = s.subs.remove(&id) else {
            // Unknown id: acknowledge anyway, unsubscribing is idempotent.
            self.send(conn, Ctrl::UnsubAck(UnsubAck { sub: id }));
            return;
        };
        let persistent = s.persistent;
        let client = s.client.clone();
        // In-flight deliveries of this subscription: group ones go back.
        let tags: Vec<u64> = s
            .inflight
            .iter()
            .filter(|(_, f)| f.sub == key)
            .map(|(t, _)| *t)
            .collect();
        for tag in tags {
            if let Some(f) = self
                .sessions
                .get_mut(session)
                .and_then(|s| s.inflight.remove(&tag))
            {
                self.stats.current_inflight = self.stats.current_inflight.saturating_sub(1);
                if let Some(q) = self.queue_mut(f.target) {
                    q.end_inflight(f.msg.payload_len);
                }
                if let Target::Group(_) = f.target {
                    self.stats.current_queued += 1;
                    if let Some(q) = self.queue_mut(f.target) {
                        q.requeue_front(alloc::vec![Queued {
                            msg: f.msg,
                            attempt: f.attempt,
                            avoid: None,
                        }]);
                    }
                }
            }
        }
        self.remove_subscription(key, now);
        if persistent {
            let token = self.emit(&Record::Unsubscribe {
                client: &client,
                sub: id,
            });
            self.pending.push_back(Pending::Reply {
                token,
                conn,
                ctrl: Ctrl::UnsubAck(UnsubAck { sub: id }),
            });
        } else {
            self.send(conn, Ctrl::UnsubAck(UnsubAck { sub: id }));
        }
    }

    /// Drops a subscription (and its group when it was the last member).
    fn remove_subscription(&mut self, key: Key, now: Instant) {
        let Some(mut sub) = self.subs.remove(key) else {
            return;
        };
        let filter = Filter::new(&sub.filter).expect("stored filters are valid");
        match sub.group {
            None => {
                self.index.remove(filter, &Target::Sub(key));
                let dropped = sub.queue.drain_waiting().count();
                self.stats.current_queued =
                    self.stats.current_queued.saturating_sub(dropped as u64);
            }
            Some(g) => {
                let Some(group) = self.groups.get_mut(g) else {
                    return;
                };
                group.members.retain(|m| *m != key);
                if group.members.is_empty() {
                    let mut group = self.groups.remove(g).expect("group exists");
                    self.group_by_name
                        .remove(&(group.filter.clone(), group.name.clone()));
                    self.index.remove(filter, &Target::Group(g));
                    let dropped = group.queue.drain_waiting().count();
                    self.stats.current_queued =
                        self.stats.current_queued.saturating_sub(dropped as u64);
                } else {
                    self.pump(Target::Group(g), now);
                }
            }
        }
    }

    fn target_of(&self, sub: Key) -> Target {
        match self.subs.get(sub).and_then(|s| s.group) {
            Some(g) => Target::Group(g),
            None => Target::Sub(sub),
        }
    }

    fn queue_mut(&mut self, target: Target) -> Option<&mut Queue> {
        match target {
            Target::Sub(k) => self.subs.get_mut(k).map(|s| &mut s.queue),
            Target::Group(k) => self.groups.get_mut(k).map(|g| &mut g.queue),
        }
    }

    fn queue(&self, target: Target) -> Option<&Queue> {
        match target {
            Target::Sub(k) => self.subs.get(k).map(|s| &s.queue),
            Target::Group(k) => self.groups.get(k).map(|g| &g.queue),
        }
    }

    // -------------------------------------------------------------- publishing

    fn on_publish(&mut self, conn: ConnId, session: Key, now: Instant, p: Publish<'_>) {
        let Some(frag) = p.fragment else {
            if self.conns.get(&conn).is_some_and(|c| c.partial.is_some()) {
                self.violation(conn, now, "publish inside a fragmented publish");
                return;
            }
            if let Some(deadline) = self.accept_publish(conn, session, now, &p, None) {
                let mut inc = Incoming::from_publish(&p, p.payload.len() as u64);
                inc.payload.extend_from_slice(p.payload);
                self.park(conn, inc, deadline);
            }
            return;
        };
        let max_message = self.cfg.max_message as u64;
        let c = self.conns.get_mut(&conn).expect("conn exists");
        if frag.offset == 0 {
            if c.partial.is_some() {
                self.violation(conn, now, "new fragmented publish before the last ended");
                return;
            }
            let mut inc = Incoming::from_publish(&p, frag.total);
            if frag.total > max_message {
                inc.refused = true;
            } else {
                inc.payload.reserve_exact(frag.total as usize);
            }
            c.partial = Some(inc);
        }
        let Some(inc) = c.partial.as_mut() else {
            self.violation(conn, now, "fragment without a first fragment");
            return;
        };
        let received = if inc.refused {
            frag.offset
        } else {
            inc.payload.len() as u64
        };
        if inc.id != p.id
            || frag.offset != received
            || frag.total != inc.total
            || received + p.payload.len() as u64 > inc.total
        {
            self.violation(conn, now, "fragments out of order");
            return;
        }
        if !inc.refused {
            inc.payload.extend_from_slice(p.payload);
        }
        if frag.offset + p.payload.len() as u64 == inc.total {
            let inc = c.partial.take().expect("partial exists");
            if inc.refused {
                self.reject_publish(conn, inc.id, inc.qos, Reason::MessageTooLarge);
            } else {
                let publish = inc.as_publish();
                let parked = self.accept_publish(conn, session, now, &publish, None);
                if let Some(deadline) = parked {
                    self.park(conn, inc, deadline);
                }
            }
        }
    }

    fn reject_publish(&mut self, conn: ConnId, id: u32, qos: QoS, reason: Reason) {
        self.stats.rejected += 1;
        if qos == QoS::AtLeastOnce || id != 0 {
            self.send(conn, Ctrl::PubReject(PubReject { id, reason }));
        }
    }

    /// Validates, deduplicates and admits a whole publish. Returns the deadline to
    /// hold the publisher until, when a `Block` queue is full (the caller parks it);
    /// `held_until` is that deadline when the publish was held already.
    fn accept_publish(
        &mut self,
        conn: ConnId,
        session: Key,
        now: Instant,
        p: &Publish<'_>,
        held_until: Option<Instant>,
    ) -> Option<Instant> {
        let Ok(topic) = Topic::new(p.topic) else {
            self.reject_publish(conn, p.id, p.qos, Reason::InvalidTopic);
            return None;
        };
        if p.topic.starts_with('$') {
            self.reject_publish(conn, p.id, p.qos, Reason::NotAuthorized);
            return None;
        }
        if self.shutting_down {
            self.reject_publish(conn, p.id, p.qos, Reason::ShuttingDown);
            return None;
        }
        if self.store_full && p.qos == QoS::AtLeastOnce {
            self.reject_publish(conn, p.id, p.qos, Reason::StorageFull);
            return None;
        }
        if p.payload.len() > self.cfg.max_message {
            self.reject_publish(conn, p.id, p.qos, Reason::MessageTooLarge);
            return None;
        }
        if !self
            .sessions
            .get(session)
            .is_some_and(|s| s.perms.may_publish(topic))
        {
            self.stats.auth_failures += 1;
            self.reject_publish(conn, p.id, p.qos, Reason::NotAuthorized);
            return None;
        }
        if let Some(d) = p.dedup
            && let Seen::Duplicate(seq) = self.dedup.check(d.producer, d.seq)
        {
            self.stats.duplicates += 1;
            if p.qos == QoS::AtLeastOnce {
                self.ack_duplicate(conn, p.id, d, seq);
            }
            return None;
        }

        // Where it goes, and whether every queue has room.
        let mut targets: Vec<Target> = Vec::new();
        self.index.for_each_match(topic, |t| targets.push(*t));
        let size = p.payload.len();
        let mut full_block: Option<Duration> = None;
        let mut full_reject = false;
        for &t in &targets {
            let Some(q) = self.queue(t) else { continue };
            if q.is_full_for(size) {
                match q.limits.overflow {
                    Overflow::RejectNew => full_reject = true,
                    Overflow::Block { deadline } => {
                        full_block = Some(full_block.map_or(deadline, |d| d.min(deadline)));
                    }
                    Overflow::DropOldest => {}
                }
            }
        }
        if full_reject && p.qos == QoS::AtLeastOnce {
            self.reject_publish(conn, p.id, p.qos, Reason::QueueFull);
            return None;
        }
        if let Some(deadline) = full_block {
            let deadline = held_until.unwrap_or(now + deadline);
            if now >= deadline {
                self.reject_publish(conn, p.id, p.qos, Reason::Timeout);
                return None;
            }
            return Some(deadline);
        }

        // Admitted: number it, encode its record once, reserve room in its queues.
        let msg = self.new_message(now, topic, p.qos, p.dedup, p.meta, p.payload);
        if let Some(d) = p.dedup {
            self.dedup.record(d.producer, d.seq, msg.seq);
        }
        self.stats.messages_in += 1;
        self.stats.bytes_in += size as u64;
        let before = targets.len();
        targets.retain(|&t| {
            // QoS 0 into a full RejectNew queue: dropped for that queue only.
            self.queue(t)
                .is_some_and(|q| !(q.limits.overflow == Overflow::RejectNew && q.is_full_for(size)))
        });
        self.stats.dropped += (before - targets.len()) as u64;
        self.reserve(&targets, size);
        let token = if p.qos == QoS::AtLeastOnce {
            Some(self.emit_shared(msg.record.clone()))
        } else {
            // Not stored: make sure its sequence number is never handed out again
            // after a restart (one small record per block of numbers).
            self.reserve_seq(&msg)
        };
        let acks = if p.qos == QoS::AtLeastOnce {
            alloc::vec![(conn, p.id)]
        } else {
            Vec::new()
        };
        self.pending.push_back(Pending::Release {
            token,
            msg,
            targets,
            acks,
            dedup: p.dedup,
        });
        self.release(now);
        None
    }

    fn ack_duplicate(&mut self, conn: ConnId, id: u32, d: wire::Dedup, seq: Option<u64>) {
        // The original may still wait for the store: answer when it is released.
        for p in self.pending.iter_mut() {
            if let Pending::Release {
                dedup: Some(pd),
                acks,
                ..
            } = p
                && *pd == d
            {
                acks.push((conn, id));
                return;
            }
        }
        self.send(
            conn,
            Ctrl::PubAck(PubAck {
                id,
                seq: seq.unwrap_or(0),
                duplicate: true,
            }),
        );
    }

    fn new_message(
        &mut self,
        now: Instant,
        topic: Topic<'_>,
        qos: QoS,
        dedup: Option<wire::Dedup>,
        meta: Meta<'_>,
        payload: &[u8],
    ) -> Msg {
        let id = self.next_msg;
        self.next_msg += 1;
        let t = self.topic_state(topic);
        let seq = t.next_seq;
        t.next_seq += 1;
        let record = Record::Message(MessageRecord {
            id,
            topic: topic.as_str(),
            seq,
            qos,
            published_us: now.as_micros(),
            dedup,
            meta,
            payload,
        })
        .encode_shared();
        Arc::new(Message {
            id,
            seq,
            topic: t.name.clone(),
            qos,
            published_at: now,
            expires_at: meta
                .ttl_ms
                .map(|ms| now + Duration::from_millis(u64::from(ms))),
            payload_len: payload.len(),
            record,
        })
    }

    fn reserve_seq(&mut self, msg: &Msg) -> Option<u64> {
        let t = self.topics.get_mut(&*msg.topic)?;
        if msg.seq < t.reserved_until {
            return None;
        }
        t.reserved_until = msg.seq + SEQ_BLOCK;
        let until = t.reserved_until;
        let name = t.name.clone();
        Some(self.emit(&Record::SeqReserve {
            topic: &name,
            until,
        }))
    }

    fn topic_state(&mut self, topic: Topic<'_>) -> &mut TopicState {
        if !self.topics.contains_key(topic.as_str()) {
            let name: Arc<str> = Arc::from(topic.as_str());
            let state = TopicState {
                name: name.clone(),
                next_seq: 1,
                reserved_until: 0,
                retained: VecDeque::new(),
                retained_bytes: 0,
                retention: self.cfg.retention_for(topic),
            };
            self.topics.insert(name, state);
        }
        self.topics.get_mut(topic.as_str()).expect("inserted above")
    }

    fn park(&mut self, conn: ConnId, publish: Incoming, deadline: Instant) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.parked = Some(Parked { publish, deadline });
            if !self.parked.contains(&conn) {
                self.parked.push(conn);
            }
            self.set_timer(deadline, Timer::Parked(conn));
        }
    }

    /// Offers a held publish again (room may have appeared, or its deadline passed).
    fn retry_parked(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(parked) = c.parked.take() else {
            return;
        };
        let ConnState::Open(session) = c.state else {
            return;
        };
        let publish = parked.publish.as_publish();
        match self.accept_publish(conn, session, now, &publish, Some(parked.deadline)) {
            Some(deadline) => {
                let c = self.conns.get_mut(&conn).expect("conn exists");
                c.parked = Some(Parked {
                    publish: parked.publish,
                    deadline,
                });
            }
            None => self.parked.retain(|c| *c != conn),
        }
    }

    fn retry_all_parked(&mut self, now: Instant) {
        if self.parked.is_empty() {
            return;
        }
        for conn in self.parked.clone() {
            self.retry_parked(conn, now);
        }
    }

    /// Releases, in order, every pending entry whose record is persisted.
    fn release(&mut self, now: Instant) {
        while let Some(front) = self.pending.front() {
            if front.token().is_some_and(|t| t > self.persisted) {
                break;
            }
            match self.pending.pop_front().expect("front exists") {
                Pending::Reply { conn, ctrl, .. } => self.send(conn, ctrl),
                Pending::Release {
                    msg, targets, acks, ..
                } => {
                    for (conn, id) in acks {
                        self.send(
                            conn,
                            Ctrl::PubAck(PubAck {
                                id,
                                seq: msg.seq,
                                duplicate: false,
                            }),
                        );
                    }
                    self.retain(&msg, now);
                    for t in targets {
                        if let Some(q) = self.queue_mut(t) {
                            q.unreserve(msg.payload_len);
                        }
                        self.enqueue(t, msg.clone(), now);
                    }
                }
            }
        }
    }

    /// The store made every record up to `token` durable.
    pub fn handle_persisted(&mut self, token: u64, now: Instant) {
        self.persisted = self.persisted.max(token);
        self.release(now);
    }

    /// Holds room in each target queue for an admitted message until `release`
    /// offers it.
    fn reserve(&mut self, targets: &[Target], size: usize) {
        for &t in targets {
            if let Some(q) = self.queue_mut(t) {
                q.reserve(size);
            }
        }
    }

    fn enqueue(&mut self, target: Target, msg: Msg, now: Instant) {
        let needs_sweep = msg.expires_at.is_some();
        let Some(queue) = self.queue_mut(target) else {
            return;
        };
        match queue.offer(Queued {
            msg,
            attempt: 0,
            avoid: None,
        }) {
            Offer::Accepted => self.stats.current_queued += 1,
            Offer::DroppedOldest(old) => {
                self.stats.dropped += 1;
                self.finish(target, &old.msg);
            }
            Offer::Full(q) => {
                // Room was reserved at admission; only a queue whose limits
                // shrank since (a restart with a new configuration) drops it.
                self.stats.dropped += 1;
                self.finish(target, &q.msg);
            }
        }
        if needs_sweep {
            self.schedule_sweep(now + SWEEP_INTERVAL);
        }
        self.pump(target, now);
    }

    fn retain(&mut self, msg: &Msg, now: Instant) {
        let Some(t) = self.topics.get_mut(&*msg.topic) else {
            return;
        };
        let r = t.retention;
        if r.max_messages == 0 {
            return;
        }
        t.retained.push_back(msg.clone());
        t.retained_bytes += msg.payload_len;
        self.stats.current_retained += 1;
        while t.retained.len() > r.max_messages
            || (t.retained_bytes > r.max_bytes && t.retained.len() > 1)
        {
            let old = t.retained.pop_front().expect("non-empty");
            t.retained_bytes -= old.payload_len;
            self.stats.current_retained -= 1;
        }
        if r.max_age.is_some() {
            self.schedule_sweep(now + SWEEP_INTERVAL);
        }
    }

    // ---------------------------------------------------------------- delivery

    fn pump_session_of(&mut self, conn: ConnId, now: Instant) {
        if let Some(ConnState::Open(session)) = self.conns.get(&conn).map(|c| c.state) {
            self.pump_session(session, now);
        }
    }

    fn pump_session(&mut self, session: Key, now: Instant) {
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        let subs: Vec<Key> = s.subs.values().copied().collect();
        for sub in subs {
            let t = self.target_of(sub);
            self.pump(t, now);
        }
    }

    /// Delivers from a queue while its consumers have credit and room.
    /// Delivers what the target's consumers can take. A message leaving the queue
    /// may make room for a publisher held by a `Block` queue (a QoS 0 delivery
    /// leaves at once; QoS 1 ones at their ack, see `settle`): those are retried
    /// then, not at their deadline.
    fn pump(&mut self, target: Target, now: Instant) {
        if self.pump_queue(target, now) {
            self.retry_all_parked(now);
        }
    }

    /// [`pump`](Self::pump) without the retry; true when a message left the queue.
    fn pump_queue(&mut self, target: Target, now: Instant) -> bool {
        let mut popped = false;
        loop {
            let Some(sub) = self.pick_consumer(target, now) else {
                return popped;
            };
            let Some(queue) = self.queue_mut(target) else {
                return popped;
            };
            let Some(q) = queue.pop(now) else {
                if let Some(at) = queue.next_retry() {
                    self.set_timer(at, Timer::Retry(target));
                }
                return popped;
            };
            popped = true;
            self.stats.current_queued = self.stats.current_queued.saturating_sub(1);
            if q.msg.is_expired(now) {
                self.stats.expired += 1;
                self.finish(target, &q.msg);
                continue;
            }
            // A group message should not go straight back to the member that
            // failed it, when another can take it.
            if let (Target::Group(_), Some(avoid)) = (target, q.avoid)
                && avoid == sub
                && let Some(other) = self.pick_consumer_except(target, sub)
            {
                self.deliver(other, target, q, now);
                continue;
            }
            self.deliver(sub, target, q, now);
        }
    }

    fn can_take(&self, sub: Key) -> bool {
        let Some(s) = self.subs.get(sub) else {
            return false;
        };
        if s.credit == 0 || !s.active {
            return false;
        }
        let Some(conn) = self.sessions.get(s.session).and_then(|x| x.conn) else {
            return false;
        };
        self.conns.get(&conn).is_some_and(|c| {
            matches!(c.state, ConnState::Open(_)) && c.out.len() < self.cfg.max_pending_frames
        })
    }

    fn pick_consumer(&mut self, target: Target, now: Instant) -> Option<Key> {
        if !self.queue(target).is_some_and(|q| q.has_ready(now)) {
            if let Some(at) = self.queue(target).and_then(Queue::next_retry) {
                self.set_timer(at, Timer::Retry(target));
            }
            return None;
        }
        match target {
            Target::Sub(k) => self.can_take(k).then_some(k),
            Target::Group(g) => {
                let group = self.groups.get(g)?;
                let n = group.members.len();
                for i in 0..n {
                    let idx = (group.next_member + i) % n;
                    let m = group.members[idx];
                    if self.can_take(m) {
                        let group = self.groups.get_mut(g)?;
                        group.next_member = (idx + 1) % n;
                        return Some(m);
                    }
                }
                None
            }
        }
    }

    fn pick_consumer_except(&self, target: Target, except: Key) -> Option<Key> {
        let Target::Group(g) = target else {
            return None;
        };
        self.groups
            .get(g)?
            .members
            .iter()
            .copied()
            .find(|&m| m != except && self.can_take(m))
    }

    fn deliver(&mut self, sub_key: Key, target: Target, q: Queued, now: Instant) {
        let attempt = q.attempt.saturating_add(1);
        let ack_timeout = self.cfg.ack_timeout;
        let Some(sub) = self.subs.get_mut(sub_key) else {
            return;
        };
        let qos = sub.qos.min(q.msg.qos);
        sub.credit -= 1;
        let sub_id = sub.id;
        let session_key = sub.session;
        let Some(session) = self.sessions.get_mut(session_key) else {
            return;
        };
        let Some(conn_id) = session.conn else { return };
        let tag = session.next_tag;
        session.next_tag += 1;
        if attempt > 1 {
            self.stats.redelivered += 1;
        }
        self.stats.messages_out += 1;
        self.stats.bytes_out += q.msg.payload_len as u64;
        let size = q.msg.payload_len;
        if qos == QoS::AtLeastOnce {
            let deadline = ack_timeout.map(|d| now + d);
            session.inflight.insert(
                tag,
                InFlight {
                    sub: sub_key,
                    target,
                    msg: q.msg.clone(),
                    attempt,
                    deadline,
                },
            );
            self.stats.current_inflight += 1;
            if let Some(queue) = self.queue_mut(target) {
                queue.mark_inflight(size);
            }
            if let Some(at) = deadline {
                self.set_timer(at, Timer::AckDeadline(session_key, tag));
            }
        } else {
            // Nothing to ack: the queue is done with it now.
            self.finish(target, &q.msg);
        }
        if let Some(c) = self.conns.get_mut(&conn_id) {
            push_out(
                c,
                conn_id,
                &mut self.ready,
                Out::Deliver {
                    msg: q.msg,
                    sub: sub_id,
                    tag,
                    attempt,
                    qos,
                    offset: 0,
                },
            );
        }
    }

    /// A queue is done with a message: for durable queues, record it.
    fn finish(&mut self, target: Target, msg: &Msg) {
        if msg.qos != QoS::AtLeastOnce {
            return;
        }
        match target {
            Target::Sub(k) => {
                let Some(sub) = self.subs.get(k) else { return };
                let Some(s) = self.sessions.get(sub.session) else {
                    return;
                };
                if s.persistent {
                    let (client, id) = (s.client.clone(), sub.id);
                    self.emit(&Record::Ack {
                        client: &client,
                        sub: id,
                        msg: msg.id,
                    });
                }
            }
            Target::Group(g) => {
                let Some(group) = self.groups.get(g) else {
                    return;
                };
                if group.durable {
                    let (filter, name) = (group.filter.clone(), group.name.clone());
                    self.emit(&Record::GroupAck {
                        filter: &filter,
                        group: &name,
                        msg: msg.id,
                    });
                }
            }
        }
    }

    fn settle(&mut self, session: Key, tag: u64, how: Settle, now: Instant) {
        let Some(f) = self
            .sessions
            .get_mut(session)
            .and_then(|s| s.inflight.remove(&tag))
        else {
            return; // unknown tag: from before a reconnect, or settled already
        };
        self.stats.current_inflight = self.stats.current_inflight.saturating_sub(1);
        if let Some(sub) = self.subs.get_mut(f.sub) {
            sub.credit = sub.credit.saturating_add(1).min(self.cfg.max_credit);
        }
        if let Some(q) = self.queue_mut(f.target) {
            q.end_inflight(f.msg.payload_len);
        }
        match how {
            Settle::Ack => {
                self.stats.acked += 1;
                self.finish(f.target, &f.msg);
                self.advance_cursor(session, f.sub, &f.msg);
            }
            Settle::Requeue if f.attempt < self.cfg.max_attempts => {
                self.stats.nacked += 1;
                let at = now + self.backoff(f.attempt);
                let avoid = matches!(f.target, Target::Group(_)).then_some(f.sub);
                if let Some(q) = self.queue_mut(f.target) {
                    q.retry_at(
                        at,
                        Queued {
                            msg: f.msg,
                            attempt: f.attempt,
                            avoid,
                        },
                    );
                    self.stats.current_queued += 1;
                }
                self.set_timer(at, Timer::Retry(f.target));
            }
            Settle::Requeue | Settle::DeadLetter => {
                self.stats.nacked += 1;
                self.finish(f.target, &f.msg);
                self.dead_letter(now, &f.msg);
            }
        }
        let sub_target = self.target_of(f.sub);
        self.pump(f.target, now);
        if sub_target != f.target {
            self.pump(sub_target, now);
        }
        self.retry_all_parked(now);
    }

    fn ack_deadline(&mut self, session: Key, tag: u64, now: Instant) {
        let due = self
            .sessions
            .get(session)
            .and_then(|s| s.inflight.get(&tag))
            .and_then(|f| f.deadline)
            .is_some_and(|d| d <= now);
        if due {
            self.settle(session, tag, Settle::Requeue, now);
        }
    }

    fn advance_cursor(&mut self, session: Key, sub: Key, msg: &Msg) {
        let Some(filter) = self.subs.get(sub).map(|s| s.filter.clone()) else {
            return;
        };
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if !s.persistent {
            return;
        }
        let c = s
            .cursors
            .entry(filter)
            .or_default()
            .entry(msg.topic.clone())
            .or_insert(0);
        *c = (*c).max(msg.seq);
    }

    fn backoff(&mut self, attempt: u16) -> Duration {
        let b = self.cfg.backoff;
        let factor =
            u64::from(b.multiplier.max(1)).saturating_pow(u32::from(attempt.saturating_sub(1)));
        let base = b
            .initial
            .as_micros()
            .saturating_mul(u128::from(factor))
            .min(b.max.as_micros()) as u64;
        let spread = (base as f32 * b.jitter.clamp(0.0, 1.0)) as u64;
        let jitter = if spread == 0 {
            0
        } else {
            self.next_rand() % (2 * spread + 1)
        };
        Duration::from_micros(base - spread + jitter)
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Publishes a copy of `msg` to `$dlq.<topic>`.
    fn dead_letter(&mut self, now: Instant, msg: &Msg) {
        if msg.topic.starts_with('$') {
            self.stats.dropped += 1;
            return;
        }
        let name = alloc::format!("$dlq.{}", msg.topic);
        let Ok(topic) = Topic::new(&name) else {
            self.stats.dropped += 1;
            return;
        };
        self.stats.dead_lettered += 1;
        let view = msg.view();
        let dl = self.new_message(now, topic, QoS::AtLeastOnce, None, view.meta, view.payload);
        let mut targets = Vec::new();
        self.index.for_each_match(topic, |t| targets.push(*t));
        self.reserve(&targets, dl.payload_len);
        let token = Some(self.emit_shared(dl.record.clone()));
        self.pending.push_back(Pending::Release {
            token,
            msg: dl,
            targets,
            acks: Vec::new(),
            dedup: None,
        });
        self.release(now);
    }

    // ------------------------------------------------------------------- sweep

    fn schedule_sweep(&mut self, at: Instant) {
        if self.sweep_scheduled.is_none() {
            self.sweep_scheduled = Some(at);
            self.set_timer(at, Timer::Sweep);
        }
    }

    /// Drops expired messages from every queue and retention past its age.
    fn sweep(&mut self, now: Instant) {
        let mut again = false;
        let mut expired: Vec<(Target, Msg)> = Vec::new();
        let targets: Vec<Target> = self
            .subs
            .iter()
            .filter(|(_, s)| s.group.is_none())
            .map(|(k, _)| Target::Sub(k))
            .chain(self.groups.iter().map(|(k, _)| Target::Group(k)))
            .collect();
        for t in targets {
            if let Some(q) = self.queue_mut(t) {
                q.remove_where(|q| q.msg.is_expired(now), |q| expired.push((t, q.msg)));
                again |= q.waiting() > 0;
            }
        }
        self.stats.current_queued = self
            .stats
            .current_queued
            .saturating_sub(expired.len() as u64);
        self.stats.expired += expired.len() as u64;
        for (t, m) in expired {
            self.finish(t, &m);
        }
        for t in self.topics.values_mut() {
            let Some(age) = t.retention.max_age else {
                continue;
            };
            while t
                .retained
                .front()
                .is_some_and(|m| m.published_at + age <= now || m.is_expired(now))
            {
                let old = t.retained.pop_front().expect("non-empty");
                t.retained_bytes -= old.payload_len;
                self.stats.current_retained -= 1;
            }
            again |= !t.retained.is_empty();
        }
        if again {
            self.schedule_sweep(now + SWEEP_INTERVAL);
        }
    }

    // ------------------------------------------------------------------- store

    fn emit(&mut self, record: &Record<'_>) -> u64 {
        self.emit_shared(record.encode_shared())
    }

    fn emit_shared(&mut self, bytes: Arc<[u8]>) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        self.stats.store_ops += 1;
        self.store.push_back(StoreOp::new(token, bytes));
        token
    }

    /// Applies one stored record (in the order they were written). Call for every
    /// record before accepting connections. A record that does not decode is
    /// reported and skipped; the rest still apply.
    pub fn restore(&mut self, now: Instant, bytes: &[u8]) -> Result<(), RecordError> {
        match Record::decode(bytes)? {
            Record::Message(m) => {
                let Ok(topic) = Topic::new(m.topic) else {
                    return Err(RecordError::Malformed);
                };
                // Ids only grow in a log: a lower one was restored already (a store
                // that wrote a record again, or one a snapshot also holds).
                if m.id < self.next_msg {
                    return Ok(());
                }
                self.next_msg = self.next_msg.max(m.id + 1);
                let t = self.topic_state(topic);
                t.next_seq = t.next_seq.max(m.seq + 1);
                let published_at = Instant::from_micros(m.published_us);
                let msg = Arc::new(Message {
                    id: m.id,
                    seq: m.seq,
                    topic: t.name.clone(),
                    qos: m.qos,
                    published_at,
                    expires_at: m
                        .meta
                        .ttl_ms
                        .map(|ms| published_at + Duration::from_millis(u64::from(ms))),
                    payload_len: m.payload.len(),
                    record: Arc::from(bytes),
                });
                if let Some(d) = m.dedup {
                    self.dedup.record(d.producer, d.seq, m.seq);
                }
                self.retain(&msg, now);
                if msg.is_expired(now) {
                    return Ok(());
                }
                let mut targets = Vec::new();
                self.index.for_each_match(topic, |t| targets.push(*t));
                for t in targets {
                    if let Some(q) = self.queue_mut(t) {
                        q.push_back(Queued {
                            msg: msg.clone(),
                            attempt: 0,
                            avoid: None,
                        });
                        self.stats.current_queued += 1;
                    }
                }
                if msg.expires_at.is_some() {
                    self.schedule_sweep(now + SWEEP_INTERVAL);
                }
            }
            Record::SessionOpen { client } => {
                if !self.by_client.contains_key(client) {
                    self.create_session(client, true, false);
                }
            }
            Record::SessionEnd { client } => {
                if let Some(&k) = self.by_client.get(client) {
                    self.destroy_session(k, false, now);
                }
            }
            Record::Subscribe {
                client,
                sub,
                filter,
                group,
                qos,
                credit,
            } => {
                let Ok(f) = Filter::new(filter) else {
                    return Err(RecordError::Malformed);
                };
                let session = match self.by_client.get(client) {
                    Some(&k) => k,
                    None => self.create_session(client, true, false),
                };
                if self
                    .sessions
                    .get(session)
                    .is_some_and(|s| !s.subs.contains_key(&sub))
                {
                    self.add_subscription(session, sub, f, group, qos, credit, None, now);
                }
            }
            Record::Unsubscribe { client, sub } => {
                if let Some(&session) = self.by_client.get(client)
                    && let Some(key) = self
                        .sessions
                        .get_mut(session)
                        .and_then(|s| s.subs.remove(&sub))
                {
                    self.remove_subscription(key, now);
                }
            }
            Record::Ack { client, sub, msg } => {
                let key = self
                    .by_client
                    .get(client)
                    .and_then(|&s| self.sessions.get(s))
                    .and_then(|s| s.subs.get(&sub).copied());
                if let Some(key) = key {
                    let session = self.subs.get(key).map(|s| s.session);
                    let removed = self.subs.get_mut(key).and_then(|s| s.queue.remove_id(msg));
                    if let (Some(session), Some(q)) = (session, removed) {
                        self.stats.current_queued = self.stats.current_queued.saturating_sub(1);
                        self.advance_cursor(session, key, &q.msg);
                    }
                }
            }
            Record::SeqReserve { topic, until } => {
                let Ok(topic) = Topic::new(topic) else {
                    return Err(RecordError::Malformed);
                };
                let t = self.topic_state(topic);
                t.next_seq = t.next_seq.max(until);
                t.reserved_until = t.reserved_until.max(until);
            }
            Record::NextId { next } => self.next_msg = self.next_msg.max(next),
            Record::DedupMark {
                producer,
                seq,
                topic_seq,
            } => self.dedup.record(producer, seq, topic_seq),
            Record::GroupAck { filter, group, msg } => {
                let key = (filter.to_owned(), group.to_owned());
                if let Some(&g) = self.group_by_name.get(&key)
                    && let Some(group) = self.groups.get_mut(g)
                    && group.queue.remove_id(msg).is_some()
                {
                    self.stats.current_queued = self.stats.current_queued.saturating_sub(1);
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Settle {
    Ack,
    Requeue,
    DeadLetter,
}

fn push_out(c: &mut Conn, id: ConnId, ready: &mut VecDeque<ConnId>, out: Out) {
    c.out.push_back(out);
    if !c.in_ready {
        c.in_ready = true;
        ready.push_back(id);
    }
}

/// Encodes queued frames for `c` into `buf`; returns the bytes written.
fn write_frames(c: &mut Conn, buf: &mut [u8], stats: &mut Stats) -> usize {
    let mut pos = 0;
    let max_frame = c.peer.max_frame;
    while let Some(out) = c.out.front_mut() {
        let room = &mut buf[pos..];
        match out {
            Out::Ctrl(ctrl) => {
                let frame = ctrl_frame(ctrl);
                match c.framing.encode(&frame, max_frame, room) {
                    Ok(n) => {
                        pos += n;
                        c.out.pop_front();
                    }
                    Err(_) if pos > 0 => break,
                    Err(_) => {
                        // Cannot fit even alone in the caller's buffer: drop it.
                        c.out.pop_front();
                    }
                }
            }
            Out::Deliver {
                msg,
                sub,
                tag,
                attempt,
                qos,
                offset,
            } => {
                let view = msg.view();
                let mut d = Deliver {
                    sub: *sub,
                    topic: view.topic,
                    seq: view.seq,
                    tag: *tag,
                    attempt: *attempt,
                    qos: *qos,
                    meta: view.meta,
                    fragment: None,
                    payload: view.payload,
                };
                let limit =
                    (max_frame as usize).min(room.len().saturating_sub(stream::MAX_PREFIX + 8));
                let whole = Frame::Deliver(d).encoded_len();
                let n = if *offset == 0 && whole <= limit {
                    c.framing.encode(&Frame::Deliver(d), max_frame, room)
                } else {
                    let overhead = wire::publish_overhead(view.topic, &view.meta);
                    let chunk = limit.saturating_sub(overhead);
                    if chunk == 0 {
                        if pos > 0 {
                            break;
                        }
                        // The headers alone exceed the limit: it cannot be sent.
                        c.out.pop_front();
                        continue;
                    }
                    let end = (*offset + chunk).min(view.payload.len());
                    d.fragment = Some(Fragment {
                        offset: *offset as u64,
                        total: view.payload.len() as u64,
                    });
                    d.payload = &view.payload[*offset..end];
                    c.framing
                        .encode(&Frame::Deliver(d), max_frame, room)
                        .inspect(|_| {
                            *offset = end;
                        })
                };
                match n {
                    Ok(n) => {
                        pos += n;
                        let done = match c.out.front() {
                            Some(Out::Deliver { offset, msg, .. }) => {
                                *offset == 0 || *offset >= msg.payload_len
                            }
                            _ => true,
                        };
                        if done {
                            c.out.pop_front();
                        }
                    }
                    Err(_) if pos > 0 => break,
                    Err(_) => {
                        stats.protocol_errors += 1;
                        c.out.pop_front();
                    }
                }
            }
        }
    }
    pos
}

fn ctrl_frame(ctrl: &Ctrl) -> Frame<'static> {
    match *ctrl {
        Ctrl::Welcome(w) => Frame::Welcome(w),
        Ctrl::PubAck(a) => Frame::PubAck(a),
        Ctrl::PubReject(r) => Frame::PubReject(r),
        Ctrl::SubAck(a) => Frame::SubAck(a),
        Ctrl::SubReject(r) => Frame::SubReject(r),
        Ctrl::UnsubAck(a) => Frame::UnsubAck(a),
        Ctrl::Ping(n) => Frame::Ping(n),
        Ctrl::Pong(n) => Frame::Pong(n),
        Ctrl::Close(reason) => Frame::Close(wire::Close {
            reason,
            text: reason.as_str(),
        }),
        Ctrl::Error(code, text) => Frame::Error(ErrorFrame { code, text }),
    }
}
