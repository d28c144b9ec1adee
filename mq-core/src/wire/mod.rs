//! The wire protocol: every frame two mq peers exchange, as serde types.
//!
//! Frames are encoded as postcard encodes these types, by hand (`codec`, no
//! serde code on the way). Decoding borrows: topic names, payloads, tokens
//! and header values are slices of the receive buffer, so a decoded [`Frame`] copies
//! nothing. A frame's encoding carries no length; the transports add one
//! ([`crate::framing`]).
//!
//! # Protocol rules
//!
//! **Handshake.** The client's first frame is [`Hello`]; it sends nothing else
//! until the broker answers [`Welcome`] (or an [`ErrorFrame`] and closes: wrong
//! version, bad token, invalid client id). Anything before `Hello` is a protocol
//! violation. Each side's [`Limits::max_frame`] bounds the frames it *receives*;
//! the sender fragments messages to fit. The keepalive in force is the smaller
//! non-zero value of the two; each side sends [`Frame::Ping`] when it has sent
//! nothing for half of it, answers every ping with a [`Frame::Pong`] of the same
//! value, and declares the peer dead after 1.5 intervals without receiving
//! anything.
//!
//! **Sessions.** [`SessionMode::Clean`] discards any stored session for the client
//! id and keeps nothing after the connection ends. [`SessionMode::Resume`] keeps the
//! session (subscriptions with their credit windows, unacked deliveries, queued
//! messages) while the client is away; `Welcome::session_present` says whether one
//! was found. After every `Welcome` the client subscribes again to everything it
//! still wants (the same ids, filters and groups): on a resumed session that
//! re-asserts the stored subscription, which keeps its state and queue, and the
//! broker delivers nothing for a resumed subscription until it is re-asserted (so
//! a client that restarted gets no deliveries it cannot place yet). Before
//! re-asserting them, a client resuming its session sends [`AckMessage`] for
//! each message it remembers acking last: its acks on the old connection, or
//! the broker's record of them (lost with a crash), may not have arrived, and
//! such a message would otherwise come again. A new
//! connection with the same client id takes the session over and the old
//! connection is closed with [`Reason::SessionTakenOver`].
//!
//! **Publishing.** The client picks a [`Publish::id`] unique among its unacked
//! publishes. QoS 1: the broker answers [`PubAck`] only once the message is stored,
//! or [`PubReject`] with a reason. QoS 0: no `PubAck`; a refused QoS 0 publish is
//! answered with `PubReject` only when its id is non-zero. With [`Dedup`], a
//! producer numbers its messages 1, 2, 3, ...; the broker answers a publish whose
//! sequence it has already stored with `PubAck { duplicate: true }` and stores
//! nothing. The client resends unacked QoS 1 publishes after reconnecting, with the
//! same id and dedup sequence, in their original order.
//!
//! **Fragments.** A message whose publish or deliver frame would exceed the peer's
//! `max_frame` is sent as consecutive frames with the same id (publish) or tag
//! (deliver), each with a [`Fragment`]: offsets start at 0, are contiguous, and the
//! last fragment ends at `total`. Headers (topic, QoS, meta, dedup) are taken from
//! the first fragment. No other publish from the same client is interleaved between
//! a publish's fragments, and no other deliver between a deliver's fragments. A
//! receiver refuses a message whose `total` exceeds its limit (the broker answers
//! `PubReject { MessageTooLarge }` after the last fragment) and swallows its
//! fragments meanwhile. [`fragment`] implements these rules, for both sides.
//!
//! **Subscribing.** The client picks [`Subscribe::sub`], unique within its session.
//! Subscribing again with the same id, filter and group on a resumed session is
//! acknowledged and keeps the subscription's state; with a different filter or group
//! it is refused with [`Reason::IdInUse`]. A [`Subscribe::group`] makes the
//! subscription a member of a group shared by every subscription with the same
//! filter and group name: each message goes to one member.
//!
//! **Credit.** A subscription may have at most `credit` deliveries outstanding; the
//! broker never sends beyond it. Each deliver frame that starts a message (the first
//! fragment, or an unfragmented deliver) uses one credit. Acking or nacking a QoS 1
//! delivery returns its credit; for QoS 0 deliveries the client returns credit with
//! [`Credit`] frames as the application consumes them. `Credit` can also widen the
//! window at any time.
//!
//! **Delivering.** Each delivery of a message to a session gets a fresh
//! [`Deliver::tag`], unique within the session; a redelivery (after a nack, an ack
//! timeout, a reconnect or a broker restart) has a new tag and a higher
//! [`Deliver::attempt`]. Acks or nacks of unknown tags are ignored (they may predate
//! a reconnect). Per subscription and topic, first deliveries of messages of the
//! same [`Meta::priority`] arrive in sequence order. A nack with `requeue: false`,
//! or running out of attempts, moves the message to the dead-letter topic
//! `$dlq.<topic>`.
//!
//! **Priority.** Among the messages waiting in a subscription's queue (or a
//! group's), a higher [`Meta::priority`] is delivered first, first in first out
//! within a priority; a message that comes back (nacked, timed out, its
//! consumer gone) keeps its priority, and redeliveries whose backoff has passed
//! go before waiting messages. Priority does not change sequence numbers, and a
//! replay delivers in the order messages were accepted. When a `DropOldest`
//! queue is full, the oldest message of the lowest priority makes room (or the
//! new one is dropped when its priority is below all that wait). A dead-lettered
//! copy keeps its priority.
//!
//! **Admin.** A client whose token has the admin permission may send
//! [`Admin`] (list topics or sessions, read, purge or delete a topic, as an
//! encoded [`AdminRequest`], with an id of its choosing) once connected; a
//! request that does not decode is a protocol violation; the broker answers each with an
//! [`AdminAnswer`] of the same id, whose body is the postcard encoding of
//! `broker::admin::AdminReply` (a refusal, `NotAuthorized` for other tokens,
//! is an answer too: the session goes on). A purge or delete is answered once
//! its record is stored. An answer fits the client's maximum frame: a list
//! too long for it is cut short and says so.
//!
//! **Closing.** Either side may send [`Close`] and then close the transport. A
//! malformed, oversized or out-of-place frame is answered with an [`ErrorFrame`] and
//! the connection is closed. A frame only clients send is out of place at a
//! client whatever it holds: the client answers [`Reason::ProtocolViolation`]
//! without reading it ([`Frame::decode_from_broker`]).
//!
//! **Serial lines.** A serial line (COBS + CRC framing,
//! [`crate::framing::serial`]) has no connect and no close: it carries one
//! connection after another. A connection starts with the client's `Hello`, and a
//! `Hello` on a line whose connection already had one starts a new connection on
//! the same line: the broker closes the old one first (its session is detached,
//! as when a TCP client drops; a persistent session stays) and discards its output
//! not yet written. An idle line holds no connection. Before each new connection's
//! first frame a side writes a lone delimiter, which ends whatever partial frame
//! the peer's decoder holds (an empty frame is skipped). Frames of an earlier
//! connection may still be on the line while the client waits for `Welcome`:
//! deliveries and the answers [`PubAck`], [`PubReject`], [`SubAck`],
//! [`SubReject`] and [`UnsubAck`] that arrive before `Welcome` are stale, and the
//! client drops them (on a stream they are a protocol violation). A damaged frame
//! (its CRC or COBS fails, or it overruns the receiver's buffer) on a connection
//! past its handshake ends that connection, as a broken stream would: whatever
//! it carried is recovered the usual way (the client resends unacknowledged
//! publishes after reconnecting, the broker redelivers unacknowledged
//! deliveries), in order, where carrying on would deliver the frames after it
//! first. During the handshake a damaged frame is dropped (it may be the tail
//! of an earlier connection's). A lost peer, and a frame lost whole with its
//! delimiter, are noticed by the handshake timeout, keepalive or ack timeouts.
//!
//! **Versions.** [`Hello::version`] is the version the client speaks, and
//! [`Welcome::version`] the one the broker will speak to it. A client speaks
//! [`PROTOCOL_VERSION`] and refuses a `Welcome` of any other. A broker
//! answers a client of an older version it still serves
//! ([`MIN_PROTOCOL_VERSION`] on) in that version: to a version-2 client a
//! `Welcome` of version 2, without [`Welcome::epoch`] (the only field
//! version 3 added, which an ordinary client gets as 0 anyway), and every
//! other frame as to any client, as nothing else changed. A node link
//! (client id `$node.<id>` or `$link.<id>`) needs the epoch: a version-2
//! `Hello` with such an id is refused with [`Reason::UnsupportedVersion`],
//! as is any version outside the ones the broker serves.
//!
//! **Node links.** Nodes of a mesh link to each other over this protocol: a
//! link is a connection whose client is a node (client id `$node.<id>`) and
//! which also carries [`Frame::Interest`]; [`mesh`] has its rules.

mod admin;
pub(crate) mod codec;
#[cfg(feature = "alloc")]
pub(crate) mod deliver;
mod encoding;
pub mod fragment;
mod headers;
pub mod mesh;
mod reason;
#[cfg(feature = "alloc")]
pub(crate) mod v2;

pub use admin::{Admin, AdminAnswer, AdminRequest};
pub use encoding::{DecodeError, EncodeError};
pub use headers::{HeaderIter, Headers, HeadersBuilder, HeadersError, MAX_HEADER_KEY};
pub use reason::Reason;

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks: 2 added [`AckMessage`], which a
/// version-1 broker could not decode; 3 added [`Welcome::epoch`], which a
/// version-2 client could not decode. A client and a node link speak this
/// one only; a broker also serves the ordinary clients of every version
/// from [`MIN_PROTOCOL_VERSION`] on, in their version (see "Versions" in the
/// protocol rules). Any other version is refused with
/// [`Reason::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u16 = 3;

/// The oldest protocol version a broker still serves (to ordinary clients,
/// not to node links): 2, whose `Welcome` has no `epoch`.
pub const MIN_PROTOCOL_VERSION: u16 = 2;

/// Delivery guarantee of a publish or subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QoS {
    /// At most once: no acknowledgement, no redelivery.
    AtMostOnce,
    /// At least once: stored before acknowledged, redelivered until acked.
    AtLeastOnce,
}

/// Whether a connection starts a fresh session or resumes a stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SessionMode {
    /// Discard any stored session; nothing is kept after disconnect.
    Clean,
    /// Resume the stored session for this client id (or create one) and keep it
    /// across disconnects: subscriptions, cursors, unacked deliveries, offline queue.
    Resume,
}

/// Limits one side announces in the handshake; the peer must respect them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Limits {
    /// Largest frame (encoded, without the transport's length prefix) this side
    /// accepts.
    pub max_frame: u32,
    /// Default credit: how many unacked deliveries this side can hold per
    /// subscription when a subscribe names none.
    pub credit: u32,
    /// Keepalive interval in milliseconds; 0 disables keepalive.
    pub keepalive_ms: u32,
}

/// Producer id and sequence of a publish, for deduplication of retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dedup {
    /// Identifies the producer; stable across its reconnects.
    pub producer: u64,
    /// Increases by one per message of this producer.
    pub seq: u64,
}

/// Where a fragment's payload belongs within the whole message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fragment {
    /// Byte offset of this fragment's payload in the whole payload.
    pub offset: u64,
    /// Length of the whole payload.
    pub total: u64,
}

impl Fragment {
    /// True when more fragments follow one of `len` bytes at this offset.
    pub fn more_follow(&self, len: usize) -> bool {
        self.offset.saturating_add(len as u64) < self.total
    }
}

/// Message properties carried from publisher to subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Meta<'a> {
    /// Time to live in milliseconds from when the broker accepted the message.
    pub ttl_ms: Option<u32>,
    /// Priority; higher is delivered first among the messages waiting in a
    /// queue (see the protocol rules on priority).
    pub priority: u8,
    /// Topic a reply should be published to (request-reply).
    #[serde(borrow)]
    pub reply_to: Option<&'a str>,
    /// Correlation id linking a reply to its request.
    #[serde(borrow)]
    pub correlation: Option<&'a [u8]>,
    /// Application headers.
    #[serde(borrow)]
    pub headers: Headers<'a>,
}

/// postcard's encoding of [`Meta::default()`]: every field absent or zero.
#[cfg(feature = "alloc")]
pub(crate) const EMPTY_META: [u8; 5] = [0; 5];

impl<'a> Meta<'a> {
    /// Whether every field is absent or zero (as in [`Meta::default()`]):
    /// most messages, whose meta hosts write as [`EMPTY_META`] at once.
    #[cfg(feature = "alloc")]
    pub(crate) fn is_empty(&self) -> bool {
        self.ttl_ms.is_none()
            && self.priority == 0
            && self.reply_to.is_none()
            && self.correlation.is_none()
            && self.headers.as_encoded().is_empty()
    }

    /// Bytes of its encoding. Most messages carry no properties: on hosts
    /// (the broker's hot path) their meta is counted, written and read without
    /// a pass over the fields; devices skip that shortcut, which is code more.
    pub fn encoded_len(&self) -> usize {
        #[cfg(feature = "alloc")]
        if self.is_empty() {
            return EMPTY_META.len();
        }
        codec::encoded_len(self)
    }

    /// Writes its encoding into `out`, which is [`encoded_len`](Self::encoded_len)
    /// bytes long; false when it is not.
    pub fn encode_into(&self, out: &mut [u8]) -> bool {
        #[cfg(feature = "alloc")]
        if self.is_empty() {
            return match out {
                [a, b, c, d, e] => {
                    for x in [a, b, c, d, e] {
                        *x = 0;
                    }
                    true
                }
                _ => false,
            };
        }
        codec::encode_exact(self, out)
    }

    /// Reads a meta from exactly its encoding.
    pub fn decode_from(bytes: &'a [u8]) -> Option<Meta<'a>> {
        #[cfg(feature = "alloc")]
        if bytes == EMPTY_META {
            return Some(Meta::default());
        }
        codec::decode_meta(bytes)
    }
}

/// Client → broker: open the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Hello<'a> {
    /// Protocol version the client speaks.
    pub version: u16,
    /// The client's identity; sessions are keyed by it.
    pub client_id: &'a str,
    /// Fresh or resumed session.
    pub session: SessionMode,
    /// Auth token, if the broker requires one.
    pub token: Option<&'a str>,
    /// The client's limits.
    pub limits: Limits,
}

/// Broker → client: the handshake succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Welcome {
    /// Protocol version the broker will speak.
    pub version: u16,
    /// True when a stored session was resumed.
    pub session_present: bool,
    /// The broker's limits.
    pub limits: Limits,
    /// To a node link, the epoch of the broker's store (see
    /// [`mesh`]); 0 to a client.
    pub epoch: u64,
}

/// Client → broker: publish a message (or one fragment of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Publish<'a> {
    /// Client-chosen id, echoed in [`PubAck`] / [`PubReject`]; the same for every
    /// fragment of one message.
    pub id: u32,
    /// Topic name.
    pub topic: &'a str,
    /// Delivery guarantee.
    pub qos: QoS,
    /// Producer id and sequence, for deduplication.
    pub dedup: Option<Dedup>,
    /// Properties (read from the first fragment only).
    #[serde(borrow)]
    pub meta: Meta<'a>,
    /// Present when the message is split into several frames.
    pub fragment: Option<Fragment>,
    /// The payload (or this fragment of it).
    pub payload: &'a [u8],
}

/// Broker → client: a QoS 1 publish is stored (or a duplicate of one that was).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PubAck {
    /// The publish id.
    pub id: u32,
    /// Per-topic sequence number the message was given.
    pub seq: u64,
    /// True when the broker recognised the publish as a duplicate and did not store
    /// it again.
    pub duplicate: bool,
}

/// Broker → client: a publish was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PubReject {
    /// The publish id.
    pub id: u32,
    /// Why.
    pub reason: Reason,
}

/// Where a new subscription starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Start {
    /// Only messages published after the subscribe.
    New,
    /// From this per-topic sequence number on (0: everything retained).
    Seq(u64),
    /// The last N retained messages of each matching topic, then new ones.
    Last(u32),
    /// Where this session's stored cursor for the subscription points (new
    /// messages only when there is none).
    Cursor,
}

/// Client → broker: subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Subscribe<'a> {
    /// Client-chosen subscription id; deliveries name it.
    pub sub: u32,
    /// Topic filter (`*` one token, `>` one or more trailing tokens).
    pub filter: &'a str,
    /// Group name: members of a group share the messages (competing consumers).
    pub group: Option<&'a str>,
    /// Where to start.
    pub start: Start,
    /// Highest QoS the subscriber wants.
    pub qos: QoS,
    /// Initial credit (unacked deliveries it can hold); 0 means the handshake
    /// default.
    pub credit: u32,
}

/// Broker → client: subscription active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubAck {
    /// The subscription id.
    pub sub: u32,
}

/// Broker → client: subscription refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubReject {
    /// The subscription id.
    pub sub: u32,
    /// Why.
    pub reason: Reason,
}

/// Client → broker: end a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Unsubscribe {
    /// The subscription id.
    pub sub: u32,
}

/// Broker → client: subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnsubAck {
    /// The subscription id.
    pub sub: u32,
}

/// Broker → client: a message (or one fragment of it) for a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Deliver<'a> {
    /// The subscription it is delivered for.
    pub sub: u32,
    /// The topic it was published to.
    pub topic: &'a str,
    /// Its per-topic sequence number.
    pub seq: u64,
    /// Delivery tag to ack or nack (QoS 1); unique within the session.
    pub tag: u64,
    /// 1 for the first delivery, higher for redeliveries.
    pub attempt: u16,
    /// QoS it is delivered with; QoS 0 deliveries need no ack.
    pub qos: QoS,
    /// Properties.
    #[serde(borrow)]
    pub meta: Meta<'a>,
    /// Present when the message is split into several frames.
    pub fragment: Option<Fragment>,
    /// The payload (or this fragment of it).
    pub payload: &'a [u8],
}

/// Client → broker: a delivery is processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ack {
    /// The delivery tag.
    pub tag: u64,
}

/// Client → broker, after a resumed session's `Welcome` and before its
/// subscriptions are re-asserted: a message the application acked, named by
/// what identifies it across redeliveries rather than by a delivery tag
/// (which a new connection does not know). The client sends one for each
/// message it remembers acking last (its acks on the old connection, or the
/// broker's record of them, may have been lost): a matching message waiting
/// for the subscription (a group's: for the group) is settled as acked
/// instead of delivered again. An unknown subscription or message is
/// ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AckMessage {
    /// The subscription id.
    pub sub: u32,
    /// The message's topic, hashed by [`topic_hash`].
    pub topic_hash: u64,
    /// The sequence number its delivery carried.
    pub seq: u64,
}

/// 64-bit FNV-1a of a topic name: how [`AckMessage`] names a topic.
pub fn topic_hash(topic: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Client → broker: a delivery could not be processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Nack {
    /// The delivery tag.
    pub tag: u64,
    /// True: deliver it again (possibly to another group member); false: give up
    /// on it now (dead-letter it).
    pub requeue: bool,
}

/// Client → broker: allow more unacked deliveries on a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Credit {
    /// The subscription id.
    pub sub: u32,
    /// Additional deliveries granted.
    pub credit: u32,
}

/// Either side: close the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Close<'a> {
    /// Why.
    pub reason: Reason,
    /// Human-readable detail.
    pub text: &'a str,
}

/// Either side: something went wrong; a fatal error is followed by closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ErrorFrame<'a> {
    /// What went wrong.
    pub code: Reason,
    /// Human-readable detail.
    pub text: &'a str,
}

/// One protocol frame. The variant order is the wire tag: append, never reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Frame<'a> {
    /// See [`Hello`].
    #[serde(borrow)]
    Hello(Hello<'a>),
    /// See [`Welcome`].
    Welcome(Welcome),
    /// See [`Publish`].
    #[serde(borrow)]
    Publish(Publish<'a>),
    /// See [`PubAck`].
    PubAck(PubAck),
    /// See [`PubReject`].
    PubReject(PubReject),
    /// See [`Subscribe`].
    #[serde(borrow)]
    Subscribe(Subscribe<'a>),
    /// See [`SubAck`].
    SubAck(SubAck),
    /// See [`SubReject`].
    SubReject(SubReject),
    /// See [`Unsubscribe`].
    Unsubscribe(Unsubscribe),
    /// See [`UnsubAck`].
    UnsubAck(UnsubAck),
    /// See [`Deliver`].
    #[serde(borrow)]
    Deliver(Deliver<'a>),
    /// See [`Ack`].
    Ack(Ack),
    /// See [`Nack`].
    Nack(Nack),
    /// See [`Credit`].
    Credit(Credit),
    /// Keepalive probe; the peer answers [`Frame::Pong`] with the same value.
    Ping(u64),
    /// Keepalive answer.
    Pong(u64),
    /// See [`Close`].
    #[serde(borrow)]
    Close(Close<'a>),
    /// See [`ErrorFrame`].
    #[serde(borrow)]
    Error(ErrorFrame<'a>),
    /// See [`Admin`].
    #[serde(borrow)]
    Admin(Admin<'a>),
    /// See [`AdminAnswer`].
    #[serde(borrow)]
    AdminAnswer(AdminAnswer<'a>),
    /// Node link, receiver → sender: see [`mesh::Interest`].
    #[serde(borrow)]
    Interest(mesh::Interest<'a>),
    /// See [`AckMessage`].
    AckMessage(AckMessage),
}

#[cfg(test)]
mod tests;
