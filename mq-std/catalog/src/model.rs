//! What the catalog stores: nodes, the interest of away sessions, offline
//! messages; and the checks every backend applies to them before storing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mq_core::QoS;

use crate::Error;

/// What [`Catalog::register`](crate::Catalog::register) hands a node: its
/// incarnation, to quote in every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The node id.
    pub node: String,
    /// Strictly greater than every earlier incarnation of any node in this
    /// catalog (one counter for all), so a restarted node fences off its old
    /// self. The counter never falls behind the catalog's clock in
    /// microseconds since 1970, so this holds even after the catalog lost its
    /// data (a Redis that keeps nothing on disk, a restored backup).
    pub incarnation: u64,
}

/// A node with a live lease, as [`Catalog::live_nodes`](crate::Catalog::live_nodes)
/// lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node id.
    pub id: String,
    /// Its current incarnation.
    pub incarnation: u64,
    /// Where it listens for links, as it registered (`host:port`).
    pub addr: String,
    /// When its lease ends, by the catalog's clock.
    pub lease_expires: SystemTime,
}

/// The live nodes, as [`Catalog::live_nodes`](crate::Catalog::live_nodes)
/// lists them: the nodes it could decode, and the rows it could not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nodes {
    /// Every live node that could be decoded, by id.
    pub nodes: Vec<Node>,
    /// The rows of live nodes that could not be (an incarnation that is
    /// negative or no number, an expiry or an address of the wrong type, a
    /// Redis node hash missing a field), by id: skipped and left as they
    /// are. Such a row says nothing of its node: neither its incarnation
    /// nor its address nor how long it is live.
    pub unreadable: Vec<UnreadableNode>,
}

impl Nodes {
    /// Adds the row of node `id`: the node decoded from it, or why it could
    /// not be.
    pub(crate) fn push(&mut self, id: String, row: Result<Node, Error>) {
        match row {
            Ok(node) => self.nodes.push(node),
            Err(reason) => self.unreadable.push(UnreadableNode { id, reason }),
        }
    }
}

/// A node row that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableNode {
    /// Its id, as stored (decoded lossily if it is not UTF-8 text).
    pub id: String,
    /// Why it could not be decoded ([`Error::Malformed`]).
    pub reason: Error,
}

/// The interest of one session in one filter, kept while the session is away
/// so that the other nodes keep messages for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interest {
    /// The session (client id).
    pub session: String,
    /// The node the session was last attached to.
    pub node: String,
    /// The topic filter.
    pub filter: String,
    /// The group, for a group subscription.
    pub group: Option<String>,
    /// The subscription's QoS.
    pub qos: QoS,
}

/// Who published a message first: the dedup key of an offline message is
/// (recipient, origin node, origin incarnation, origin sequence).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The node the message entered the mesh at.
    pub node: String,
    /// That node's incarnation.
    pub incarnation: u64,
    /// Its sequence number at that origin.
    pub seq: u64,
}

/// A message to keep for a recipient that is away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The topic it was published to.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// Headers and other metadata, encoded by the caller.
    pub meta: Vec<u8>,
    /// Where it came from (the dedup key).
    pub origin: Origin,
    /// How long it may wait; `None`: until delivered.
    pub ttl: Option<Duration>,
}

/// A message in an offline queue, as [`Catalog::read`](crate::Catalog::read)
/// returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offline {
    /// Its id in the queue: ids grow in enqueue order; quote it to ack.
    pub id: u64,
    /// The topic it was published to.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// Headers and other metadata, as enqueued.
    pub meta: Vec<u8>,
    /// Where it came from.
    pub origin: Origin,
    /// When it was enqueued, by the catalog's clock.
    pub enqueued_at: SystemTime,
    /// When it expires, by the catalog's clock.
    pub expires_at: Option<SystemTime>,
}

/// A page of an offline queue, as [`Catalog::read`](crate::Catalog::read)
/// returns it: the messages it could decode, and the rows it could not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// The messages, in queue order.
    pub messages: Vec<Offline>,
    /// The rows of the page that could not be decoded (a field out of range
    /// or of the wrong type, a Redis message hash gone), in queue order:
    /// skipped, so that they do not hold back the messages behind them. They
    /// stay in the queue (and count towards its bound) until acked by id.
    pub unreadable: Vec<Unreadable>,
}

impl Page {
    /// The id of the page's last row, decoded or not: the next page starts
    /// after it.
    pub fn last_id(&self) -> Option<u64> {
        let last = self.messages.last().map(|m| m.id);
        last.max(self.unreadable.last().map(|u| u.id))
    }

    /// How many rows the page has, decoded or not.
    pub fn rows(&self) -> usize {
        self.messages.len() + self.unreadable.len()
    }
}

/// A row of an offline queue that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Its id in the queue: [`Catalog::ack`](crate::Catalog::ack) removes it.
    pub id: u64,
    /// Why it could not be decoded ([`Error::Malformed`]).
    pub reason: Error,
}

/// The interest the catalog lists, as
/// [`Catalog::interests`](crate::Catalog::interests) returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interests {
    /// Every interest that could be decoded, by session and filter.
    pub interests: Vec<Interest>,
    /// The rows that could not be (a QoS code from a newer version, a
    /// malformed field): skipped and left as they are.
    pub unreadable: Vec<UnreadableInterest>,
}

impl Interests {
    /// Adds a row of session `session` and filter `filter`: the interest
    /// decoded from it, or why it could not be.
    pub(crate) fn push(&mut self, session: String, filter: String, row: Result<Interest, Error>) {
        match row {
            Ok(interest) => self.interests.push(interest),
            Err(reason) => self.unreadable.push(UnreadableInterest {
                session,
                filter,
                reason,
            }),
        }
    }
}

/// An interest row that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableInterest {
    /// Its session, as stored.
    pub session: String,
    /// Its filter, as stored.
    pub filter: String,
    /// Why it could not be decoded ([`Error::Malformed`]).
    pub reason: Error,
}

/// What [`Catalog::enqueue`](crate::Catalog::enqueue) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored under this id.
    Stored(u64),
    /// The queue already holds this (recipient, origin) under this id: nothing
    /// was added.
    Duplicate(u64),
}

impl Enqueued {
    /// The message's id in the queue, new or earlier.
    pub fn id(self) -> u64 {
        match self {
            Enqueued::Stored(id) | Enqueued::Duplicate(id) => id,
        }
    }
}

/// How a catalog is opened, besides its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Keeps several catalogs apart in one database: the Redis key prefix, the
    /// PostgreSQL schema. Letters, digits and `_`, starting with a letter.
    /// SQLite takes only the default: there the file is the namespace.
    pub namespace: String,
    /// The most messages one recipient's offline queue holds (expired ones do
    /// not count).
    pub queue_limit: u64,
    /// How long one call may take before it fails with
    /// [`Error::Unavailable`] (the next call connects again): PostgreSQL's
    /// and Redis' answer, SQLite's wait for another process's write. Keep it
    /// well below the leases, so that a heartbeat to a partitioned database
    /// fails while the node can still act on it rather than hang past its
    /// lease. Default 5 s.
    pub call_timeout: Duration,
}

/// The call timeout [`Options::default`] sets.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest lease or TTL: 100 years, so that the catalog's clock plus it
/// fits every backend (SQLite's and PostgreSQL's `i64`, Redis' `PEXPIRE`
/// and Lua's doubles) for millennia.
pub const MAX_LEASE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The namespace [`Options::default`] names.
pub const DEFAULT_NAMESPACE: &str = "mq";

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            queue_limit: 10_000,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

impl Options {
    pub(crate) fn check(&self) -> Result<(), Error> {
        let ns = &self.namespace;
        let mut chars = ns.chars();
        let first_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        if !first_letter
            || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || ns.len() > 48
        {
            return Err(Error::Invalid(format!(
                "namespace `{ns}`: use 1 to 48 lowercase letters, digits and `_`, starting with a letter"
            )));
        }
        if self.queue_limit == 0 {
            return Err(Error::Invalid("queue_limit is 0".to_owned()));
        }
        if self.call_timeout.is_zero() {
            return Err(Error::Invalid("call_timeout is 0".to_owned()));
        }
        Ok(())
    }
}

/// Checks an id (node, session, address, topic) the catalog keys by.
pub(crate) fn check_id(what: &str, id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::Invalid(format!("the {what} is empty")));
    }
    if id.contains('\0') {
        return Err(Error::Invalid(format!("the {what} `{id}` contains NUL")));
    }
    Ok(())
}

/// A lease in whole milliseconds, 1 ms to [`MAX_LEASE`].
pub(crate) fn lease_ms(lease: Duration) -> Result<i64, Error> {
    span_ms("lease", lease)
}

/// A TTL in whole milliseconds (1 ms to [`MAX_LEASE`]), if any.
pub(crate) fn ttl_ms(ttl: Option<Duration>) -> Result<Option<i64>, Error> {
    ttl.map(|ttl| span_ms("ttl", ttl)).transpose()
}

/// The same range for leases and TTLs on every backend: beyond it, the
/// expiry time would overflow (SQLite, PostgreSQL's `bigint`) or be refused
/// (Redis' `PEXPIRE`).
fn span_ms(what: &str, span: Duration) -> Result<i64, Error> {
    let ms = span.as_millis();
    if ms == 0 || span > MAX_LEASE {
        return Err(Error::Invalid(format!(
            "{what} {span:?}: use 1 ms to 100 years"
        )));
    }
    Ok(ms as i64)
}

/// The time `ms` milliseconds after the UNIX epoch (the catalogs store times so).
pub(crate) fn time_of(ms: i64) -> Result<SystemTime, Error> {
    u64::try_from(ms)
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
        .map_err(|_| Error::Malformed(format!("time {ms} ms is before 1970")))
}

/// A stored count or id that must fit `u64`.
pub(crate) fn unsigned(what: &str, value: i64) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::Malformed(format!("{what} {value} is negative")))
}

/// A count or id the caller gives that the databases store as `i64`.
pub(crate) fn signed(what: &str, value: u64) -> Result<i64, Error> {
    i64::try_from(value).map_err(|_| Error::Invalid(format!("{what} {value} exceeds i64::MAX")))
}

/// QoS as the catalogs store it.
pub(crate) fn qos_code(qos: QoS) -> i16 {
    match qos {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
    }
}

/// The QoS a stored code names.
pub(crate) fn qos_of(code: i64) -> Result<QoS, Error> {
    match code {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        other => Err(Error::Malformed(format!("QoS code {other}"))),
    }
}

/// Checks what the caller asks to enqueue.
pub(crate) fn check_envelope(recipient: &str, message: &Envelope) -> Result<(), Error> {
    check_id("recipient", recipient)?;
    check_id("topic", &message.topic)?;
    check_id("origin node", &message.origin.node)?;
    signed("origin incarnation", message.origin.incarnation)?;
    signed("origin sequence", message.origin.seq)?;
    ttl_ms(message.ttl).map(drop)
}

/// Why a heartbeat renewed nothing: a newer incarnation, or an expired lease.
pub(crate) fn refused(node: String, held: i64, current: Option<i64>) -> Error {
    match current {
        Some(current) if current > held => fenced(node, held, current),
        _ => Error::LeaseExpired {
            node,
            incarnation: held as u64,
        },
    }
}

pub(crate) fn fenced(node: String, held: i64, current: i64) -> Error {
    Error::Fenced {
        node,
        held: held as u64,
        current: current as u64,
    }
}
