//! The router: sessions, subscriptions and groups, publishing, delivery,
//! settling, retention, and the records that make them durable.
//!
//! It takes [`Command`]s from connection codecs and answers with [`Output`]s
//! queued per connection in [`Links`]; it never sees bytes and does not know
//! which protocol a connection speaks. One concern per file:
//!
//! - `session`: connect, take over, detach, end sessions;
//! - `reauth`: checking live sessions again when auth changes;
//! - `subscribe`: subscriptions and groups, credit;
//! - `publish`: admission (validation, dedup, queue room), held publishers,
//!   release once stored;
//! - `deliver`: moving messages from queues to consumers within their credit;
//! - `settle`: acks, nacks, ack deadlines, redelivery backoff, dead letters;
//! - `retention`: what topics keep for replay, and the sweep of expired
//!   messages;
//! - `snapshot` and `restore`: the durable state as records, and back;
//! - `admin`: an operator's requests: listing topics, sessions and messages,
//!   purging and deleting topics;
//! - `inspect`: queue depths, drain state and invariants for adapters and tests;
//! - `retained`: the retained slot of each topic (MQTT's one retained message,
//!   not mq's per-topic retention for replay);
//! - `once`: exactly-once publishes (MQTT QoS 2) remembered until released;
//! - `once_pid`: the packet ids exactly-once deliveries go out under;
//! - `spares`: emptied per-message lists kept for reuse;
//! - `will`: will messages and the expiry of sessions that are away;
//! - `mesh` and `offline`: peers' interest and outboxes, and the outboxes of
//!   peers that are away, handed on to the catalog.

mod admin;
mod catalog_interest;
mod catalog_wait;
mod deliver;
mod forget;
mod inflight;
mod inspect;
mod mesh;
mod numbering;
mod offline;
mod once;
mod once_pid;
mod parked;
mod publish;
mod reauth;
mod release;
mod restore;
mod retained;
mod retention;
mod session;
mod settle;
mod snapshot;
mod spares;
mod subscribe;
mod topics;
mod unreachable;
mod will;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use super::auth::Permissions;
use super::command::{Command, Outcome, Output};
use super::config::{Config, Retention};
use super::dedup::Dedup;
use super::links::Links;
use super::mesh::Mesh;
use super::message::Msg;
use super::queue::Queue;
use super::record::Record;
use super::slab::{Key, Slab};
use super::stats::Stats;
use super::store::StoreOps;
use super::timers::{Target, Timer, Timers};
use super::{ConnId, Map};
use crate::time::Instant;
use crate::topic::SubscriptionIndex;
use crate::wire;

pub(crate) use catalog_wait::SnapshotsDue;
use inflight::InFlights;
use parked::Holds;
pub(crate) use parked::Parked;
pub(crate) use settle::Settle;
use spares::{SpareMessages, Spares};
pub(crate) use topics::{Slot, Topics};
use will::PendingWill;

pub(crate) struct InFlight {
    pub sub: Key,
    pub target: Target,
    pub msg: Msg,
    pub attempt: u16,
    pub deadline: Option<Instant>,
}

pub(crate) struct Session {
    pub client: String,
    pub persistent: bool,
    pub conn: Option<ConnId>,
    pub perms: Permissions,
    /// Credit of subscriptions that ask for none.
    pub default_credit: u32,
    /// The client's subscription ids.
    pub subs: BTreeMap<u32, Key>,
    pub next_tag: u64,
    /// Deliveries not settled yet, earliest deadline first.
    pub inflight: InFlights,
    /// filter -> topic -> highest sequence acked (for `Start::Cursor`).
    pub cursors: BTreeMap<String, BTreeMap<Arc<str>, u64>>,
    /// Slot of the session's ack-deadline timer: at or before the earliest
    /// deadline (an ack does not move it; when it fires early it is set again).
    pub timer: Option<Instant>,
    /// Unacked deliveries are redelivered at their deadline while connected.
    pub ack_deadlines: bool,
    /// How long a persistent session lives while away (`None`: forever).
    pub expiry: Option<Duration>,
    /// Slot of the expiry timer, set while the session is away.
    pub expiry_timer: Option<Instant>,
    /// The connected client's will, or one waiting out its delay.
    pub will: Option<PendingWill>,
    /// Packet ids of exactly-once publishes admitted and not yet released.
    pub once: BTreeSet<u16>,
    /// Packet ids of exactly-once deliveries received and not yet completed.
    pub delivered_once: BTreeSet<u16>,
    /// Exactly-once deliveries sent under a packet id not their message's
    /// own, by that id: subscription id, message id, and the token of the
    /// `OncePid` record saying so (see `once_pid`).
    pub once_pids: BTreeMap<u16, (u32, u64, u64)>,
    /// Packet ids freed by a record the store may not have yet, with its
    /// token: not taken again before it is stored (see `once_pid`).
    pub once_freed: BTreeMap<u16, u64>,
    /// Its connection's own messages do not come back to it (`Connect::no_local`).
    pub no_local: bool,
}

pub(crate) struct Subscription {
    pub session: Key,
    pub id: u32,
    pub filter: String,
    pub group: Option<Key>,
    pub qos: wire::QoS,
    pub window: u32,
    pub credit: u32,
    /// Fan-out subscriptions only; group members use the group's queue.
    pub queue: Queue,
    /// False after a session resumes, until the client subscribes again with
    /// the same id: only then does the broker deliver for it.
    pub active: bool,
    /// Made by a node link's session: the peer node's outbox, or one of the
    /// groups the peer joined here. It gets only what the peer's interest
    /// matches, and its deliveries carry the message id as their sequence
    /// (see `broker::mesh`).
    pub outbox: bool,
}

pub(crate) struct Group {
    pub filter: String,
    pub name: String,
    pub members: Vec<Key>,
    pub next_member: usize,
    pub queue: Queue,
    /// Some member's session is persistent: its acks are recorded.
    pub durable: bool,
}

pub(crate) struct TopicState {
    pub name: Arc<str>,
    pub next_seq: u64,
    /// Sequence numbers below this are reserved in the store (see
    /// `Record::SeqReserve`).
    pub reserved_until: u64,
    /// Those below this are reserved by a record the store synced (a QoS 1
    /// message's reservation; a QoS 0 message's is an ordinary record).
    pub synced_until: u64,
    /// Kept for replay, oldest first (ascending sequence numbers).
    pub retained: VecDeque<Msg>,
    pub retained_bytes: usize,
    pub retention: Retention,
    /// Accepted since start (or since the topic was deleted): for rates.
    pub messages_in: u64,
    pub bytes_in: u64,
    /// Lowest message id of this incarnation of the topic: acks of older
    /// messages (from before a delete) move no cursor.
    pub since_id: u64,
    /// The queues whose filters match the topic, as the subscription index
    /// said at `routes_at` (its generation): one lookup per publish instead
    /// of a walk of the index.
    pub routes: Vec<Target>,
    pub routes_at: Option<u64>,
    /// `routes` less the outboxes of peers that do not want the topic: where
    /// a client's message goes, as the subscription index and the peers'
    /// interest said at `client_routes_at` (their generations).
    pub client_routes: Vec<Target>,
    pub client_routes_at: Option<(u64, u64)>,
    /// When it took its last message (`Instant::ZERO` when restored: idle
    /// since before the start), for `Retention::forget_after`.
    pub active_at: Instant,
}

/// Waiting for the store, in the order records were emitted.
pub(crate) enum Pending {
    /// A message to route once persisted (or at once, behind earlier ones).
    Release {
        token: Option<u64>,
        msg: Msg,
        /// Where its topic's state was when it was admitted.
        slot: Slot,
        targets: Vec<Target>,
        /// Publishers to answer with `PubAck` on release.
        acks: Vec<(ConnId, u32)>,
        /// Its dedup key, with whether a node link published it.
        dedup: Option<(bool, wire::Dedup)>,
        /// Also the topic's retained message (MQTT).
        retain: bool,
        /// The session and packet id of an exactly-once publish.
        once: Option<(Key, u16)>,
        /// Purged (or its topic deleted) while waiting for the store: the
        /// publisher is answered, and nothing else happens.
        cut: bool,
    },
    /// An answer to send once a record is persisted.
    Reply {
        token: u64,
        conn: Option<ConnId>,
        out: Output,
    },
    /// A connection to write again once a record is persisted (a delivery
    /// waits for it: see `once_pid`).
    Wake { token: u64, conn: ConnId },
}

impl Pending {
    fn token(&self) -> Option<u64> {
        match self {
            Pending::Release { token, .. } => *token,
            Pending::Reply { token, .. } | Pending::Wake { token, .. } => Some(*token),
        }
    }
}

pub(crate) struct Router {
    pub cfg: Config,
    pub stats: Stats,
    pub timers: Timers,
    pub links: Links,
    pub store: StoreOps,
    pub mesh: Mesh,
    rng: u64,
    sessions: Slab<Session>,
    by_client: Map<String, Key>,
    subs: Slab<Subscription>,
    groups: Slab<Group>,
    group_by_name: Map<(String, String), Key>,
    index: SubscriptionIndex<Target>,
    topics: Topics,
    /// Each topic's retained message (MQTT's retained slot).
    retained: Map<Arc<str>, Msg>,
    dedup: Dedup,
    next_msg: u64,
    /// Ids below this are covered by an `IdReserve` this run wrote (0 before
    /// the first): the next id at or past it writes another.
    ids_until: u64,
    /// The highest `IdReserve` restored: this run's first id is at least
    /// that (restore leaves `next_msg` to the messages, which it skips below).
    ids_restored: u64,
    pending: VecDeque<Pending>,
    /// Publishers held by full `Block` queues, in the order they were held.
    parked: Vec<(ConnId, Parked)>,
    /// Emptied target and publisher lists of released messages, for the
    /// next publishes.
    spare_targets: Spares<Target>,
    spare_acks: Spares<(ConnId, u32)>,
    /// Messages retention let go of that nobody else held: the next ones are
    /// built in their allocations.
    spare_msgs: SpareMessages,
    /// `retry_all_parked` is running (it loops instead of recursing), and a
    /// message left a queue meanwhile.
    retrying: bool,
    retry_again: bool,
    sweep_timer: Option<Instant>,
    forget_timer: Option<Instant>,
    /// Above every sequence number a forgotten topic gave: a topic made
    /// afterwards starts here (see `forget`).
    seq_floor: u64,
    /// Packet ids recorded for exactly-once deliveries (`OncePid`) and not
    /// yet ended: while none is, an ack in a group walks none of its
    /// members (see `once_pids_group_ended`). An id dropped with its
    /// session is not counted out: that only costs the walk.
    recorded_pids: usize,
    pub shutting_down: bool,
    /// Why the last publish nobody is answered for (a will, a message from
    /// the catalog) was refused.
    unanswered_refusal: Option<crate::wire::Reason>,
}

impl Router {
    pub(crate) fn new(cfg: Config) -> Self {
        Router {
            rng: cfg.seed | 1,
            dedup: Dedup::new(cfg.dedup_window, cfg.max_producers),
            links: Links::new(cfg.max_pending_frames),
            store: StoreOps::new(cfg.seed),
            cfg,
            stats: Stats::default(),
            timers: Timers::default(),
            mesh: Mesh::default(),
            sessions: Slab::new(),
            by_client: Map::default(),
            subs: Slab::new(),
            groups: Slab::new(),
            group_by_name: Map::default(),
            index: SubscriptionIndex::new(),
            topics: Topics::default(),
            retained: Map::default(),
            next_msg: 1,
            ids_until: 0,
            ids_restored: 0,
            pending: VecDeque::new(),
            parked: Vec::new(),
            spare_targets: Spares::new(),
            spare_msgs: SpareMessages::new(),
            spare_acks: Spares::new(),
            retrying: false,
            retry_again: false,
            sweep_timer: None,
            forget_timer: None,
            seq_floor: 0,
            recorded_pids: 0,
            shutting_down: false,
            unanswered_refusal: None,
        }
    }

    /// [`handle`](Self::handle)`(Command::Publish(p))`, without moving the
    /// publish into a command (a copy of some 200 bytes per message).
    pub(crate) fn handle_publish(
        &mut self,
        conn: ConnId,
        now: Instant,
        p: &super::command::Publish<'_>,
    ) -> Outcome {
        match self.links.session(conn) {
            Some(session) => self.publish(conn, session, now, p),
            None => Outcome::Done,
        }
    }

    /// Carries out a command from `conn`'s codec. A publish goes to
    /// `publish` here as in [`handle_publish`](Self::handle_publish): a check
    /// belongs in `publish`, which both reach.
    pub(crate) fn handle(&mut self, conn: ConnId, now: Instant, cmd: Command<'_>) -> Outcome {
        if let Command::Connect(c) = cmd {
            return self.connect(conn, now, c);
        }
        // Commands of a connection without a session (ended, taken over) are moot.
        let Some(session) = self.links.session(conn) else {
            return Outcome::Done;
        };
        match cmd {
            Command::Publish(ref p) => return self.publish(conn, session, now, p),
            Command::Subscribe(s) => self.subscribe(conn, session, now, s),
            Command::Unsubscribe { sub } => self.unsubscribe(conn, session, now, sub),
            Command::Ack { tag } => self.settle(session, tag, Settle::Ack, now),
            Command::AckMessage(a) => self.ack_message(session, a, now),
            Command::Nack { tag, requeue } => {
                let how = if requeue {
                    Settle::Requeue
                } else {
                    Settle::DeadLetter
                };
                self.settle(session, tag, how, now);
            }
            Command::Credit { sub, credit } => self.credit(session, sub, credit, now),
            Command::Disconnect { publish_will } => {
                if !publish_will {
                    self.drop_will(session);
                }
                self.end_conn(conn, now);
            }
            Command::Release { pid } => self.release_once(conn, session, pid),
            Command::AckOnce { tag, pid } => self.ack_once(conn, session, tag, pid, now),
            Command::Complete { pid } => {
                self.delivered_once(session, pid, None);
            }
            Command::Admin { id, request } => self.admin_command(conn, session, now, id, &request),
            Command::Interest(i) => self.peer_interest(conn, session, now, i),
            Command::Connect(_) => {}
        }
        Outcome::Done
    }

    /// Runs a due timer (not a connection's: those are the codec's).
    pub(crate) fn on_timer(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::Conn(_) => {}
            Timer::Parked(conn) => self.retry_parked(conn, now, true),
            Timer::Session(session) => self.ack_deadlines(session, now),
            Timer::Retry(target) => {
                if let Some(q) = self.queue_mut(target) {
                    q.retry_timer = None;
                }
                self.pump(target, now);
            }
            Timer::Sweep => {
                self.sweep_timer = None;
                self.sweep(now);
            }
            Timer::Forget => {
                self.forget_timer = None;
                self.forget_idle_topics(now);
            }
            Timer::Will(session) => self.will_due(session, now),
            Timer::Expiry(session) => self.session_expired(session, now),
        }
    }

    /// Whether `conn`'s input must wait: its publish is held, or its output
    /// queue is full.
    pub(crate) fn input_blocked(&self, conn: ConnId) -> bool {
        self.links.input_blocked(conn)
    }

    fn emit(&mut self, record: &Record<'_>) -> u64 {
        self.stats.store_ops += 1;
        self.store.emit(record)
    }

    /// [`emit`](Self::emit) of a record the store must sync
    /// ([`StoreOp::must_sync`](crate::broker::StoreOp::must_sync)).
    fn emit_synced(&mut self, record: &Record<'_>) -> u64 {
        self.stats.store_ops += 1;
        self.store.emit_synced(record)
    }

    fn emit_shared(&mut self, bytes: Arc<[u8]>) -> u64 {
        self.stats.store_ops += 1;
        self.store.emit_shared(bytes)
    }

    /// Queues `out` for `conn`.
    fn send(&mut self, conn: ConnId, out: Output) {
        self.links.push(conn, out);
    }

    /// Queues `out` for `conn` once the record with `token` (and every one
    /// before it) is stored: at once when there is none, or it is.
    fn send_once_stored(&mut self, conn: ConnId, token: Option<u64>, out: Output) {
        match token.filter(|&t| !self.store.is_persisted(Some(t))) {
            Some(token) => self.pending.push_back(Pending::Reply {
                token,
                conn: Some(conn),
                out,
            }),
            None => self.send(conn, out),
        }
    }

    fn target_of(&self, sub: Key) -> Target {
        match self.subs.get(sub).and_then(|s| s.group) {
            Some(g) => Target::Group(g),
            None => Target::Sub(sub),
        }
    }

    fn queue_mut(&mut self, target: Target) -> Option<&mut Queue> {
        queue_in(&mut self.subs, &mut self.groups, target)
    }

    fn queue(&self, target: Target) -> Option<&Queue> {
        match target {
            Target::Sub(k) => self.subs.get(k).map(|s| &s.queue),
            Target::Group(k) => self.groups.get(k).map(|g| &g.queue),
        }
    }

    /// Every queue: each fan-out subscription's and each group's.
    fn all_targets(&self) -> Vec<Target> {
        self.subs
            .iter()
            .filter(|(_, s)| s.group.is_none())
            .map(|(k, _)| Target::Sub(k))
            .chain(self.groups.iter().map(|(k, _)| Target::Group(k)))
            .collect()
    }

    /// Whether the queue of `target` survives its consumers' sessions.
    fn is_durable(&self, target: Target) -> bool {
        match target {
            Target::Sub(k) => self
                .subs
                .get(k)
                .and_then(|s| self.sessions.get(s.session))
                .is_some_and(|s| s.persistent),
            Target::Group(g) => self.groups.get(g).is_some_and(|g| g.durable),
        }
    }
}

/// The queue of `target`, borrowing only the tables that hold queues.
fn queue_in<'a>(
    subs: &'a mut Slab<Subscription>,
    groups: &'a mut Slab<Group>,
    target: Target,
) -> Option<&'a mut Queue> {
    match target {
        Target::Sub(k) => subs.get_mut(k).map(|s| &mut s.queue),
        Target::Group(k) => groups.get_mut(k).map(|g| &mut g.queue),
    }
}
