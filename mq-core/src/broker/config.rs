//! Broker configuration: limits, retention, queue bounds, redelivery and auth
//! (the auth types are in `auth`).

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::auth::{Auth, covers};
use crate::topic::{Filter, Topic};
use crate::wire::Limits;

/// What happens when a message arrives for a full queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Refuse the publish with [`Reason::QueueFull`](crate::Reason::QueueFull)
    /// (QoS 0 messages are dropped for that queue and counted).
    RejectNew,
    /// Drop the oldest queued message to make room (counted).
    DropOldest,
    /// Hold the publisher (stop reading from its connection) until there is room
    /// or `deadline` passes, then refuse with [`Reason::Timeout`](crate::Reason::Timeout).
    Block {
        /// How long a publisher may be held.
        deadline: Duration,
    },
    /// Pace publishers to the consumer, and shed a consumer that stops: hold
    /// the publisher while the queue is full, as `Block` does, but a queue
    /// still full after a publisher was held for `hold` belongs to a slow
    /// consumer and is *shed*: it no longer holds anyone back; QoS 0 messages
    /// for it are dropped and QoS 1 publishes refused with
    /// [`Reason::QueueFull`](crate::Reason::QueueFull) (both counted), until it
    /// has drained to half its bounds. Every shedding is counted
    /// ([`Stats::shed`](super::Stats::shed)).
    Pace {
        /// How long a full queue may hold a publisher before it is shed.
        hold: Duration,
    },
}

/// Bounds of one queue (a subscription's, or a group's shared one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most messages waiting (not counting deliveries in flight).
    pub max_messages: usize,
    /// Most payload bytes waiting.
    pub max_bytes: usize,
    /// What to do when either bound is reached.
    pub overflow: Overflow,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            max_messages: 10_000,
            max_bytes: 64 << 20,
            overflow: Overflow::RejectNew,
        }
    }
}

/// How long a topic keeps its messages for replay (`Start::Seq`, `Start::Last`,
/// `Start::Cursor`), independent of any queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Most messages kept per topic (0: none, the topic is not replayable).
    pub max_messages: usize,
    /// Most payload bytes kept per topic.
    pub max_bytes: usize,
    /// Oldest message kept; `None` keeps them regardless of age.
    pub max_age: Option<Duration>,
    /// A topic that keeps no message for replay (none retained, by
    /// `max_messages = 0`, age or a purge) and took none for this long is
    /// forgotten: its state is freed, as after a delete, except that its
    /// sequence numbers do not start again (a topic made afterwards, of any
    /// name, numbers above every number a forgotten topic gave). So a
    /// broker that sees a stream of new topic names (a NATS client's reply
    /// subjects, one per request) keeps only the recent ones. `None` (the
    /// default): a topic is kept until an operator deletes it.
    pub forget_after: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_messages: 1_000,
            max_bytes: 16 << 20,
            max_age: None,
            forget_after: None,
        }
    }
}

/// A rule that applies to the topics (retention) or subscription filters (queue
/// bounds) its pattern matches. The first matching rule wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule<T> {
    /// A topic filter (`orders.>`); for queue rules it is matched against the
    /// subscription's filter as if that were a topic, with `*` and `>` in the
    /// subscription filter matching only the same wildcard in the pattern.
    pub pattern: String,
    /// The setting.
    pub value: T,
}

/// Redelivery timing: after a nack or a missed ack deadline, a message is offered
/// again after `initial * multiplier^(attempt-1)`, capped at `max`, with ±`jitter`
/// (a fraction) drawn from the broker's seeded generator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first redelivery.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Growth per attempt.
    pub multiplier: u32,
    /// Random spread as a fraction of the delay, 0.0 to 1.0.
    pub jitter: f32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2,
            jitter: 0.2,
        }
    }
}

/// Everything the broker needs to know up front.
#[derive(Debug, Clone)]
pub struct Config {
    /// Limits announced to clients: largest frame the broker accepts, default
    /// credit, keepalive.
    pub limits: Limits,
    /// Largest message payload accepted (may exceed `limits.max_frame`: larger
    /// messages arrive as fragments).
    pub max_message: usize,
    /// Seed for jitter and for the epoch of a store that starts empty
    /// (see [`mesh`](crate::wire::mesh)): give a different one at every
    /// start (the default is a constant), or a node on a memory store takes
    /// the same epoch each time and the nodes it sends to drop its new
    /// messages as duplicates of its old ones.
    pub seed: u64,
    /// How long a delivery may stay unacked before it counts a missed
    /// attempt: a group's message then goes to another member; any other
    /// stays with its subscriber (sent again only after a reconnect) until
    /// `max_attempts` deadlines have passed and it is dead-lettered. `None`
    /// waits for the connection to end.
    pub ack_timeout: Option<Duration>,
    /// Redelivery timing.
    pub backoff: Backoff,
    /// Deliveries (and missed ack deadlines) per message before it is
    /// dead-lettered.
    pub max_attempts: u16,
    /// Per producer, how many recent sequence numbers are remembered for
    /// deduplication.
    pub dedup_window: usize,
    /// Most producers remembered for deduplication (least recently seen ones are
    /// forgotten first).
    pub max_producers: usize,
    /// Retention per topic; the first matching rule wins, else `default_retention`.
    pub retention: Vec<Rule<Retention>>,
    /// Retention for topics no rule matches.
    pub default_retention: Retention,
    /// Queue bounds per subscription filter; the first matching rule wins.
    pub queues: Vec<Rule<QueueLimits>>,
    /// Queue bounds no rule matches.
    pub default_queue: QueueLimits,
    /// Largest credit window a subscription may ask for.
    pub max_credit: u32,
    /// Most subscriptions per session.
    pub max_subscriptions: usize,
    /// Most connections at once.
    pub max_connections: usize,
    /// Frames queued for one connection before the broker stops reading from it.
    pub max_pending_frames: usize,
    /// Tokens and their permissions.
    pub auth: Auth,
    /// How long a client has to send `Hello` after connecting.
    pub handshake_timeout: Duration,
    /// For a mesh node that learns its peers' interest from a catalog: how
    /// long a QoS 1 publish from a local client is held (its publisher
    /// paused, as by a full `Block` queue) until the broker has had the
    /// catalog's listing once
    /// ([`Broker::handle_catalog_listing`](super::Broker::handle_catalog_listing))
    /// and, if this node restarted (its store brought records back), each
    /// peer that listing says is live has declared its interest on its link
    /// again (waited for up to this long after the listing, then the
    /// catalog's word goes); held past its own deadline before the listing
    /// came, it is refused with [`Reason::Timeout`](crate::Reason::Timeout).
    /// Before that listing the node does not know what the peers it has not
    /// linked to want, and a message acknowledged then would never reach
    /// them. `None` (the default): nothing is held.
    pub await_catalog: Option<Duration>,
    /// For a mesh node with a catalog: how long the link of a peer that is
    /// live (its lease runs) may stay down before what the peer wants is
    /// handed to the catalog's queue of the peer, as for a peer away (see
    /// `broker::mesh::offline`): a partition between two nodes that both
    /// reach the catalog then fills no outbox and holds back no publisher.
    /// Its link back takes its outbox again. `None` (the default): only a
    /// peer whose lease expired is handed on.
    pub link_grace: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits {
                max_frame: 1 << 20,
                credit: 256,
                keepalive_ms: 30_000,
            },
            max_message: 64 << 20,
            seed: 0x6d71_5eed,
            ack_timeout: Some(Duration::from_secs(30)),
            backoff: Backoff::default(),
            max_attempts: 10,
            dedup_window: 4096,
            max_producers: 100_000,
            retention: Vec::new(),
            default_retention: Retention::default(),
            queues: Vec::new(),
            default_queue: QueueLimits::default(),
            max_credit: 65_535,
            max_subscriptions: 1_000,
            max_connections: 100_000,
            max_pending_frames: 4_096,
            auth: Auth::default(),
            handshake_timeout: Duration::from_secs(10),
            await_catalog: None,
            link_grace: None,
        }
    }
}

impl Config {
    /// Retention for `topic`.
    pub fn retention_for(&self, topic: Topic<'_>) -> Retention {
        self.retention
            .iter()
            .find(|r| Filter::new(&r.pattern).is_ok_and(|f| f.matches(topic)))
            .map_or(self.default_retention, |r| r.value)
    }

    /// Queue bounds for a subscription with `filter`.
    pub fn queue_for(&self, filter: Filter<'_>) -> QueueLimits {
        self.queues
            .iter()
            .find(|r| Filter::new(&r.pattern).is_ok_and(|p| covers(p, filter)))
            .map_or(self.default_queue, |r| r.value)
    }
}
