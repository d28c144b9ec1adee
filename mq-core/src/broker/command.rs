//! The seam between a connection's protocol codec and the router.
//!
//! A codec turns what a client sent into [`Command`]s, borrowing topics and
//! payloads from the received bytes (nothing is copied on the way in), and turns
//! the router's [`Output`]s back into frames of its protocol. The router never
//! sees bytes and does not know which protocol a connection speaks.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use crate::time::Instant;
use crate::wire::mesh::Interest;
use crate::wire::{AdminRequest, Dedup, Headers, Meta, QoS, Reason, Start};

use super::admin::AdminReply;

use super::message::Msg;

/// What a client asks of the router.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Command<'a> {
    /// Open (or resume) the client's session on this connection.
    Connect(Connect<'a>),
    /// A whole message (a codec reassembles fragments first).
    Publish(Publish<'a>),
    /// Subscribe, or re-assert a subscription of a resumed session.
    Subscribe(Subscribe<'a>),
    /// End a subscription.
    Unsubscribe { sub: u32 },
    /// A delivery is processed.
    Ack { tag: u64 },
    /// A message the client acked before its session was resumed (see
    /// [`AckMessage`](crate::wire::AckMessage)).
    AckMessage(crate::wire::AckMessage),
    /// A delivery failed: deliver it again, or dead-letter it.
    Nack { tag: u64, requeue: bool },
    /// More deliveries may be outstanding on a subscription.
    Credit { sub: u32, credit: u32 },
    /// The client is leaving: the connection ends after what is queued for it.
    /// Its will (MQTT) is published only when `publish_will` says so.
    Disconnect { publish_will: bool },
    /// An exactly-once publish (MQTT QoS 2) is released: its packet id may be
    /// used again. Answered with [`Output::Released`] once that is stored.
    Release { pid: u16 },
    /// An exactly-once delivery (MQTT QoS 2) was received (PUBREC): settled
    /// like `Ack`, and its packet id kept until `Complete`, so that a resumed
    /// session releases it again ([`Output::PubRel`]).
    AckOnce { tag: u64, pid: u16 },
    /// The client completed the exactly-once delivery with this packet id.
    Complete { pid: u16 },
    /// An operator's request (see `broker::admin`), answered with
    /// [`Output::AdminAnswer`] of the same id.
    Admin { id: u32, request: AdminRequest<'a> },
    /// A peer node declares what its local sessions want (node links only).
    Interest(Interest<'a>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Connect<'a> {
    pub client_id: &'a str,
    /// Keep the session while the client is away, and resume a stored one.
    pub persistent: bool,
    pub token: Option<&'a str>,
    /// Credit of subscriptions that ask for none.
    pub default_credit: u32,
    /// Resume a stored session rather than start afresh (the mq protocol:
    /// the same as `persistent`; MQTT: clean start unset).
    pub resume: bool,
    /// A resumed session's subscriptions deliver at once (MQTT clients do not
    /// subscribe again); otherwise only once the client re-asserts them.
    pub keep_subscriptions: bool,
    /// Deliveries not acked within `Config::ack_timeout` count a missed
    /// attempt while connected: a group's go to another member, and after
    /// `Config::max_attempts` a message is dead-lettered (MQTT and NATS
    /// clients have no such deadline).
    pub ack_deadlines: bool,
    /// A persistent session ends after being away this long (MQTT 5's
    /// session expiry); `None`: it waits for its client forever.
    pub expiry: Option<Duration>,
    /// Published when the connection ends without a normal disconnect.
    pub will: Option<Will<'a>>,
    /// None of the connection's own messages come back to it (NATS's
    /// `echo: false`): a group hands them to another member.
    pub no_local: bool,
}

impl<'a> Connect<'a> {
    /// An mq protocol client's: a persistent session is resumed (and its
    /// subscriptions deliver once the client re-asserts them), deliveries not
    /// acked in time count missed attempts while connected.
    pub(crate) fn mq(
        client_id: &'a str,
        persistent: bool,
        token: Option<&'a str>,
        default_credit: u32,
    ) -> Self {
        Connect {
            client_id,
            persistent,
            token,
            default_credit,
            resume: persistent,
            keep_subscriptions: false,
            ack_deadlines: true,
            expiry: None,
            will: None,
            no_local: false,
        }
    }
}

/// A will message (MQTT): published when its connection ends abnormally,
/// after `delay` unless the session resumes meanwhile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Will<'a> {
    pub publish: Publish<'a>,
    pub delay: Duration,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Publish<'a> {
    /// The client's id for it, echoed in the answer (0: no answer for QoS 0).
    pub id: u32,
    pub topic: &'a str,
    pub qos: QoS,
    pub dedup: Option<Dedup>,
    pub meta: Meta<'a>,
    pub payload: &'a [u8],
    /// Also keep it as the topic's retained message (MQTT), or clear that
    /// slot when the payload is empty.
    pub retain: bool,
    /// Exactly once (MQTT QoS 2): the client's packet id, remembered from
    /// admission until [`Command::Release`]; a publish with a remembered id
    /// is a resend and is answered without being published again.
    pub once: Option<u16>,
    /// A client's, or a peer node's delivery over a node link.
    pub via: Via<'a>,
}

/// Where a publish comes from, for the mesh (see `broker::mesh`): what a
/// peer forwarded goes to local subscribers only, and only to those it was
/// forwarded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via<'a> {
    /// A local client's publish.
    Client,
    /// Forwarded for the local fan-out subscriptions.
    Link,
    /// Forwarded to be served by the local members of this group.
    LinkGroup { filter: &'a str, group: &'a str },
}

/// Whether a subscribe sends the retained messages (MQTT) its filter matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendRetained {
    Never,
    Always,
    /// Only when the subscription is new.
    IfNew,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Subscribe<'a> {
    pub sub: u32,
    pub filter: &'a str,
    pub group: Option<&'a str>,
    pub start: Start,
    pub qos: QoS,
    /// 0: the session's default credit.
    pub credit: u32,
    /// Group subscriptions never get retained messages.
    pub retained: SendRetained,
}

/// What the router decided about a command, when the codec must know at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    /// `Connect` refused: the codec answers with this error and closes.
    Refused(Reason, &'static str),
    /// The publish waits for room in a full `Block` or `Pace` queue, or for
    /// the catalog's first listing, until this deadline: the connection's
    /// input is held meanwhile.
    Held(Instant),
}

/// What the router sends a connection, in order.
pub(crate) enum Output {
    /// The session is open (after `Connect`).
    Connected {
        session_present: bool,
        /// The store's epoch, to a node link; 0 to a client.
        epoch: u64,
    },
    PubAck {
        id: u32,
        seq: u64,
        duplicate: bool,
    },
    PubReject {
        id: u32,
        reason: Reason,
    },
    SubAck {
        sub: u32,
    },
    SubReject {
        sub: u32,
        reason: Reason,
    },
    UnsubAck {
        sub: u32,
    },
    /// The exactly-once publish with this packet id is released (after
    /// `Command::Release`).
    Released {
        pid: u16,
    },
    /// A resumed session's exactly-once delivery still to complete: release
    /// it again (MQTT PUBREL).
    PubRel {
        pid: u16,
    },
    Deliver(Delivery),
    /// The answer to `Command::Admin`.
    AdminAnswer {
        id: u32,
        reply: AdminReply,
    },
    /// The router ends the connection with an error (taken over); nothing
    /// follows.
    Error(Reason, &'static str),
    /// The router ends the connection in order (shutdown); nothing follows.
    Close(Reason),
}

/// One message for one subscription.
pub(crate) struct Delivery {
    pub msg: Msg,
    /// The client's subscription id.
    pub sub: u32,
    /// The sequence number it is delivered with: the topic's, or to a peer
    /// node's outbox the message's id, which never restarts with the topic
    /// (see [`crate::wire::mesh`]).
    pub seq: u64,
    /// Unique within the session; acks name it.
    pub tag: u64,
    /// 1 for the first delivery.
    pub attempt: u16,
    pub qos: QoS,
    /// From the topic's retained slot (MQTT), sent because of a subscribe.
    pub retained: bool,
}

/// A publish held in memory: one being reassembled from fragments, or one
/// waiting for room in a full queue.
pub(crate) struct OwnedPublish {
    pub id: u32,
    pub topic: String,
    pub qos: QoS,
    pub dedup: Option<Dedup>,
    pub ttl_ms: Option<u32>,
    pub priority: u8,
    pub reply_to: Option<String>,
    pub correlation: Option<Vec<u8>>,
    pub headers: Vec<u8>,
    pub payload: Vec<u8>,
    pub retain: bool,
    pub once: Option<u16>,
    pub via: OwnedVia,
}

/// A [`Via`] that owns its group's filter and name.
pub(crate) enum OwnedVia {
    Client,
    Link,
    LinkGroup(String, String),
}

impl OwnedPublish {
    /// A copy of `p`'s fields, with `payload` as its payload.
    pub(crate) fn new(p: &Publish<'_>, payload: Vec<u8>) -> Self {
        OwnedPublish {
            id: p.id,
            topic: p.topic.to_owned(),
            qos: p.qos,
            dedup: p.dedup,
            ttl_ms: p.meta.ttl_ms,
            priority: p.meta.priority,
            reply_to: p.meta.reply_to.map(ToOwned::to_owned),
            correlation: p.meta.correlation.map(ToOwned::to_owned),
            headers: p.meta.headers.as_encoded().to_vec(),
            payload,
            retain: p.retain,
            once: p.once,
            via: match p.via {
                Via::Client => OwnedVia::Client,
                Via::Link => OwnedVia::Link,
                Via::LinkGroup { filter, group } => {
                    OwnedVia::LinkGroup(filter.to_owned(), group.to_owned())
                }
            },
        }
    }

    pub(crate) fn as_publish(&self) -> Publish<'_> {
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
                headers: Headers::from_encoded(&self.headers).unwrap_or_default(),
            },
            payload: &self.payload,
            retain: self.retain,
            once: self.once,
            via: match &self.via {
                OwnedVia::Client => Via::Client,
                OwnedVia::Link => Via::Link,
                OwnedVia::LinkGroup(filter, group) => Via::LinkGroup { filter, group },
            },
        }
    }
}
