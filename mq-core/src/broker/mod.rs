//! The broker state machine (`alloc`): a router behind protocol codecs.
//!
//! [`Broker`] decides everything a broker decides, and does no I/O: the adapter
//! hands it connections, bytes, time and store completions, and polls out bytes
//! to send, events, store records and the next timer. See [`Broker`] for the
//! contract.
//!
//! Inside, the broker is a thin conductor over parts in modules of their own:
//!
//! - `codec`: which codec a connection speaks ([`Protocol`]), and the one
//!   place that hands each connection's bytes, timers and writes to it;
//! - `conn`: the mq wire protocol's codec (over stream or serial framing):
//!   decoding, handshake, keepalive, fragments, frames out. It turns frames
//!   into `command::Command`s for the router and the router's
//!   `command::Output`s back into frames;
//! - `mqtt`: the MQTT 3.1.1 and 5 codec, the same way for MQTT packets (its
//!   docs say how MQTT's sessions, QoS 2, retained messages, wills and
//!   properties map onto the router).
//! - `nats`: the NATS text protocol's codec, the same way for its
//!   operations (its docs say how subjects, queue groups, headers and
//!   no-responders map onto the router).
//! - `auth`: tokens and verified identities, their permissions, and the
//!   decision for one connection's credentials (also when auth changes under
//!   live connections: [`Broker::set_auth`]);
//! - `router`: sessions, subscriptions, publishing, delivery, settling,
//!   retention, snapshot and restore. It never sees bytes.
//! - `mesh`: the node links of a mesh (what this node declares and
//!   forwards, and the codec of the links it opens: [`Broker::connect_link`]);
//! - `links`: the router's view of each connection (its session, its queue of
//!   outputs); `timers`: one cancellable timer slot per owner; `store`: records
//!   on their way to the store; `queue`, `replay`, `dedup`, `message`,
//!   `record`: the router's data.

pub mod admin;
mod auth;
mod codec;
mod command;
mod config;
mod conn;
mod dedup;
mod keepalive;
mod links;
mod mesh;
mod message;
mod mqtt;
mod nats;
mod queue;
mod ready;
mod record;
mod replay;
mod router;
mod slab;
mod spill;
mod stats;
mod store;
mod timers;

#[cfg(test)]
mod tests;

pub use auth::{Auth, Credentials, Permissions, covers};
pub use codec::Protocol;
pub use config::{Backoff, Config, Overflow, QueueLimits, Retention, Rule};
pub use mesh::{
    CatalogRound, HandOn, Handed, InterestRow, InterestWrite, Listing, MeshStats, OFFLINE_BATCH,
    OFFLINE_RETRY, OfflineError, OfflineItem, OfflineMessage, OfflineTicket, PageRequest,
    PeerInterest, RUN_BYTES, Roster, RosterAction, hand_on_again,
};
pub use record::{MessageRecord, Record, RecordError, StoreOp};
pub use stats::Stats;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use codec::Codec;
use conn::After;
use router::Router;
use timers::Timer;

use crate::time::Instant;

pub(crate) type Map<K, V> = hashbrown::HashMap<K, V, foldhash::fast::FixedState>;

/// The broker's durable state as records (see [`Broker::snapshot`]).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Records that rebuild the state, in order.
    pub records: Vec<Arc<[u8]>>,
    /// The state includes every store operation with a token up to this one.
    pub upto: u64,
}

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
    /// The connection's input was held back ([`Broker::handle_input`] consumed
    /// less than it was offered because the connection had to wait) and may be
    /// read again: offer the rest once more.
    Readable(ConnId),
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

/// The broker state machine.
///
/// # Contract
///
/// Method groups, quinn-style:
///
/// - **`handle_*`**: [`connect_link`](Self::connect_link) a node link this
///   node opened to a peer (the peer accepts it as an mq connection); then
///   [`accept`](Self::accept) a connection in the
///   [`Protocol`] it speaks (the mq protocol on a TCP stream or a serial
///   line, which carries one connection after another; or MQTT or NATS on a
///   TCP stream: the same sessions, topics and queues whatever the protocol),
///   [`handle_input`](Self::handle_input) bytes from it,
///   [`handle_closed`](Self::handle_closed) when its transport is gone,
///   [`handle_timeout`](Self::handle_timeout) when `poll_timeout` is reached,
///   [`handle_persisted`](Self::handle_persisted) when the store made records
///   durable, and [`restore`](Self::restore) for each stored record at start.
/// - **commands**: [`begin_shutdown`](Self::begin_shutdown),
///   [`shutdown`](Self::shutdown), [`pause_transmit`](Self::pause_transmit),
///   [`resume_transmit`](Self::resume_transmit),
///   [`set_store_full`](Self::set_store_full), [`set_auth`](Self::set_auth)
///   and [`set_identity`](Self::set_identity) (credentials changed under live
///   connections; a connection's verified identity arrives with
///   [`accept_with_identity`](Self::accept_with_identity)), and
///   [`forget_node`](Self::forget_node) (a peer node is gone for good), and
///   the offline queues: [`node_away`](Self::node_away),
///   [`node_live`](Self::node_live),
///   [`set_away_interest`](Self::set_away_interest),
///   [`handle_offline_stored`](Self::handle_offline_stored),
///   [`handle_offline_failed`](Self::handle_offline_failed),
///   [`deliver_offline`](Self::deliver_offline).
/// - **`poll_*`**: [`poll_store`](Self::poll_store) (write these records, in
///   order), [`poll_transmit`](Self::poll_transmit) (send these bytes),
///   [`poll_event`](Self::poll_event) (close a connection, or read one again),
///   [`poll_offline`](Self::poll_offline) (store these in the catalog),
///   [`poll_timeout`](Self::poll_timeout) (call `handle_timeout` then).
/// - **getters**: [`stats`](Self::stats), [`queues`](Self::queues),
///   [`mesh_stats`](Self::mesh_stats), ...
///
/// After every `handle_*` call or command, drain `poll_store`, `poll_transmit` and
/// `poll_event` until each returns `None`, then sleep until `poll_timeout()` or
/// the next input. Every record from `poll_store` must eventually be reported
/// with `handle_persisted` (an adapter without durable storage reports it at
/// once); QoS 1 publishes are acknowledged, and delivered, only after that.
/// An adapter that syncs only now and then must sync a record whose op
/// [`must_sync`](StoreOp::must_sync) before it reports it.
///
/// Input is never lost: when a connection must wait (its publish is held by a
/// full queue, or its output is backed up), `handle_input` consumes less than
/// it is offered; keep the rest, and offer it again with the next bytes, or on
/// [`Event::Readable`], which says the wait is over.
///
/// Time is the adapter's monotonic clock. For a store that survives restarts, use
/// a clock that does too (microseconds since the Unix epoch), so TTLs and
/// retention ages stay right across a restart.
pub struct Broker {
    router: Router,
    conns: Map<ConnId, Codec>,
    next_conn: u64,
    /// Connections whose input was held back, until they may be read again.
    held_input: Vec<ConnId>,
    events: VecDeque<Event>,
}

impl Broker {
    /// A broker with `cfg`. Before accepting connections, [`restore`](Self::restore)
    /// every stored record.
    pub fn new(cfg: Config) -> Self {
        Broker {
            router: Router::new(cfg),
            conns: Map::default(),
            next_conn: 1,
            held_input: Vec::new(),
            events: VecDeque::new(),
        }
    }

    // ----------------------------------------------------------------- getters

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.router.cfg
    }

    /// The epoch of the store (see [`crate::wire::mesh`]): restored, or
    /// from [`Config::seed`] while the store is empty, or 0 for a log
    /// written before epochs.
    pub fn store_epoch(&self) -> u64 {
        self.router.store.epoch.get()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.router.current_stats(self.connections());
        s.current_mqtt_connections = self.conns.values().filter(|c| c.is_mqtt()).count() as u64;
        s.current_nats_connections = self.conns.values().filter(|c| c.is_nats()).count() as u64;
        s
    }

    /// Every queue with its depth and bound.
    pub fn queues(&self) -> Vec<QueueInfo> {
        self.router.queues()
    }

    /// Whether a session is stored for `client_id`.
    pub fn has_session(&self, client_id: &str) -> bool {
        self.router.has_session(client_id)
    }

    /// The number of open connections (an idle serial line carries none).
    pub fn connections(&self) -> usize {
        self.conns.values().filter(|c| !c.is_idle()).count()
    }

    /// True while the connection's input cannot be consumed: its publish is
    /// held for room in a full queue, or its output queue is full.
    /// [`Event::Readable`] says when this ends.
    pub fn input_blocked(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn) && self.router.input_blocked(conn)
    }

    /// Timers set; for tests that check a settled delivery leaves none behind.
    #[doc(hidden)]
    pub fn timers(&self) -> usize {
        self.router.timers_len()
    }

    /// Checks the broker's internal invariants; for tests and simulations.
    ///
    /// - no queue holds more than its bound (waiting plus in flight);
    /// - a group's message is in flight with at most one member, and never both in
    ///   flight and waiting;
    /// - the queue and in-flight counters match the queues;
    /// - each session's ack timer is set for its earliest deadline.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.router.check_invariants()
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
        self.router.snapshot()
    }

    /// Highest token reported persisted.
    pub fn persisted_token(&self) -> u64 {
        self.router.store.persisted()
    }

    /// Whether every record handed out by `poll_store` has been reported persisted
    /// and nothing waits for the store.
    pub fn is_store_idle(&self) -> bool {
        self.router.is_store_idle()
    }

    /// True once nothing is owed to a connected subscriber (no message waiting in
    /// or still to be replayed to a queue someone connected consumes, nothing in
    /// flight) and nothing waits for the store.
    pub fn is_drained(&self) -> bool {
        self.router.is_drained()
    }

    /// Answers an operator's request (see [`admin`]). A purge or delete takes
    /// effect at once and also returns the token of its record: tell the
    /// operator it is done once [`persisted_token`](Self::persisted_token)
    /// reaches it. Over the wire the same requests arrive as
    /// [`Frame::Admin`](crate::wire::Frame::Admin) from sessions whose token
    /// has the admin permission.
    pub fn admin(
        &mut self,
        now: Instant,
        request: &admin::AdminRequest<'_>,
    ) -> (admin::AdminReply, Option<u64>) {
        self.router.admin(now, request)
    }

    // ------------------------------------------------------------------- polls

    /// The next record to write, in order.
    pub fn poll_store(&mut self) -> Option<StoreOp> {
        self.router.store.poll()
    }

    /// How many records [`poll_store`](Self::poll_store) hands out before it
    /// returns `None` (unless the broker is called in between): an adapter
    /// that writes them in batches sizes each batch once.
    pub fn store_pending(&self) -> usize {
        self.router.store.pending()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        if !self.held_input.is_empty() {
            let (conns, router, events) = (&self.conns, &self.router, &mut self.events);
            self.held_input.retain(|&c| {
                if !conns.contains_key(&c) {
                    return false;
                }
                if router.input_blocked(c) {
                    return true;
                }
                events.push_back(Event::Readable(c));
                false
            });
        }
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.router.timers.next()
    }

    /// Writes bytes for one connection into `buf`: as many whole frames as fit,
    /// connections taking turns. `buf` should hold at least 1 KiB; deliveries are
    /// fragmented to fit it and the peer's maximum frame.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        while let Some(id) = self.router.links.next_ready() {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            let was_backed_up = self.router.links.backed_up(id);
            let len = c.write(id, now, buf, &mut self.router);
            if len > 0 {
                c.wrote(now);
            }
            match c.after_write(id, &self.router) {
                After::More if len > 0 => self.router.links.wake(id),
                After::More | After::Idle => {}
                After::Close => self.events.push_back(Event::Close(id)),
                After::LineIdle => c.line_idle(id, now, &mut self.router),
            }
            // Sending freed room in the connection's queue: deliver more.
            if was_backed_up && !self.router.links.backed_up(id) {
                self.router.pump_conn(id, now);
            }
            if len > 0 {
                return Some(Transmit { conn: id, len });
            }
        }
        None
    }

    // ------------------------------------------------------------- connections

    /// A transport connected, speaking `protocol`: a
    /// [`Framing`](crate::framing::Framing) for the mq protocol (which
    /// converts into a [`Protocol`]), or [`Protocol::Mqtt`]. The broker now
    /// expects `Hello` (mq) or CONNECT (MQTT) on it, within
    /// `Config::handshake_timeout`. A serial line
    /// ([`Framing::Serial`](crate::framing::Framing::Serial)) is accepted once
    /// and carries one connection after another: each starts with the
    /// device's `Hello` (see [`crate::wire`], "Serial lines").
    pub fn accept(
        &mut self,
        now: Instant,
        protocol: impl Into<Protocol>,
    ) -> Result<ConnId, AcceptError> {
        self.accept_with_identity(now, protocol, None)
    }

    /// [`accept`](Self::accept) a connection whose adapter verified who is
    /// at the other end: `identity` (the subject CN or a SAN of a TLS client
    /// certificate) is looked up in `Auth::identities` when the session opens,
    /// and its permissions apply as a token's do (see [`Auth::authorize`]).
    pub fn accept_with_identity(
        &mut self,
        now: Instant,
        protocol: impl Into<Protocol>,
        identity: Option<&str>,
    ) -> Result<ConnId, AcceptError> {
        let id = self.open_conn()?;
        if let (Some(link), Some(identity)) = (self.router.links.get_mut(id), identity) {
            link.identity = Some(String::from(identity));
        }
        let conn = Codec::new(id, now, protocol.into(), &mut self.router);
        self.conns.insert(id, conn);
        Ok(id)
    }

    /// A new connection's id, listed for the router (its codec comes next).
    fn open_conn(&mut self) -> Result<ConnId, AcceptError> {
        if self.router.shutting_down {
            return Err(AcceptError::ShuttingDown);
        }
        if self.conns.len() >= self.router.cfg.max_connections {
            return Err(AcceptError::TooManyConnections);
        }
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.router.links.open(id);
        Ok(id)
    }

    /// Bytes arrived on a connection: `bytes` starts where the last call
    /// stopped consuming, oldest first (what an earlier call left, then what
    /// is new); it may be less than all that arrived (an adapter may offer a
    /// frame an earlier read cut short, then the rest of its read buffer).
    /// Returns how many were consumed: whole frames only, and fewer when the
    /// connection must wait ([`input_blocked`](Self::input_blocked), until
    /// [`Event::Readable`]) or the last frame is incomplete; keep the rest and
    /// offer it again with the next bytes. After a protocol error on a stream
    /// all input is consumed and discarded, and the connection closes.
    pub fn handle_input(&mut self, conn: ConnId, now: Instant, bytes: &[u8]) -> usize {
        let Some(c) = self.conns.get_mut(&conn) else {
            return bytes.len();
        };
        let used = c.input(conn, now, bytes, &mut self.router);
        if used < bytes.len() && self.router.input_blocked(conn) && !self.held_input.contains(&conn)
        {
            self.held_input.push(conn);
        }
        used
    }

    /// The connection's transport is gone (the peer closed it, it failed, or the
    /// adapter closed it after [`Event::Close`]).
    pub fn handle_closed(&mut self, conn: ConnId, now: Instant) {
        if let Some(mut c) = self.conns.remove(&conn) {
            c.closed(conn, &mut self.router);
        }
        self.router.conn_gone(conn, now);
        self.held_input.retain(|c| *c != conn);
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((_, timer)) = self.router.timers.pop_due(now) {
            match timer {
                Timer::Conn(id) => {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.on_timer(id, now, &mut self.router);
                    }
                }
                other => self.router.on_timer(other, now),
            }
        }
    }

    /// The store made every record up to `token` durable.
    pub fn handle_persisted(&mut self, token: u64, now: Instant) {
        self.router.persisted(token, now);
    }

    /// Applies one stored record (in the order they were written). Call for every
    /// record before accepting connections. A record that does not decode is
    /// reported and skipped; the rest still apply.
    pub fn restore(&mut self, now: Instant, bytes: &[u8]) -> Result<(), RecordError> {
        self.router.restore(now, bytes)
    }

    // ---------------------------------------------------------------- commands

    /// Replaces the tokens and identities (a reload of the configuration)
    /// and checks every live session again: one whose token or identity is no
    /// longer accepted is closed with [`Reason::BadToken`](crate::Reason::BadToken)
    /// ("credentials revoked"), one whose subscriptions its new permissions no
    /// longer cover with [`Reason::NotAuthorized`](crate::Reason::NotAuthorized);
    /// the others stay connected under their new permissions. Returns how many
    /// connections it closed.
    pub fn set_auth(&mut self, now: Instant, auth: Auth) -> usize {
        self.router.cfg.auth = auth;
        self.router.reauthorize_all(now)
    }

    /// The adapter no longer vouches for `conn`'s identity (the CA that
    /// verified its certificate was replaced, say) or vouches for another one:
    /// the connection's session is checked again as in
    /// [`set_auth`](Self::set_auth). Returns whether it was closed.
    pub fn set_identity(&mut self, now: Instant, conn: ConnId, identity: Option<&str>) -> bool {
        let Some(link) = self.router.links.get_mut(conn) else {
            return false;
        };
        link.identity = identity.map(String::from);
        self.router.reauthorize(conn, now)
    }

    /// Stops handing out bytes for `conn` from `poll_transmit` (its socket or
    /// outgoing queue is full). Deliveries for it stop once its queue reaches
    /// `Config::max_pending_frames`, so memory stays bounded.
    pub fn pause_transmit(&mut self, conn: ConnId) {
        self.router.links.set_paused(conn, true);
    }

    /// Hands out bytes for `conn` again after [`pause_transmit`](Self::pause_transmit).
    pub fn resume_transmit(&mut self, conn: ConnId) {
        self.router.links.set_paused(conn, false);
    }

    /// The store reached its size limit (or has room again): while full, QoS 1
    /// publishes are refused with [`Reason::StorageFull`](crate::Reason::StorageFull);
    /// acks, subscriptions and QoS 0 go on.
    pub fn set_store_full(&mut self, full: bool) {
        self.router.store.full = full;
    }

    /// Starts a graceful shutdown: new connections and new publishes are refused
    /// with [`Reason::ShuttingDown`](crate::Reason::ShuttingDown), while
    /// deliveries to connected subscribers go on. Poll
    /// [`is_drained`](Self::is_drained), then call [`shutdown`](Self::shutdown).
    pub fn begin_shutdown(&mut self) {
        self.router.shutting_down = true;
    }

    /// Stops accepting connections and closes every open one with
    /// [`Reason::ShuttingDown`](crate::Reason::ShuttingDown). Persistent
    /// sessions stay stored.
    pub fn shutdown(&mut self, now: Instant) {
        self.router.shutdown(now);
    }
}
