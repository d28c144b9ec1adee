//! Durable records: what the broker asks a store to keep, and rebuilds itself from.
//!
//! The broker emits each record as a [`StoreOp`] holding its postcard encoding; the
//! store writes the bytes (WAL, flash ring, database) and reports
//! [`Broker::handle_persisted`](super::Broker::handle_persisted). On start the
//! adapter hands every stored record back, in order, to
//! [`Broker::restore`](super::Broker::restore). Stores need not understand records,
//! but may decode them ([`Record::decode`]) to compact: a message is no longer
//! needed once every `Ack`/`GroupAck` naming it has been written, or once it has
//! expired or been removed by retention.

use alloc::sync::Arc;
use core::fmt;
use serde::{Deserialize, Serialize};

mod encode;

use crate::wire::{Dedup, Meta, QoS};

/// An accepted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord<'a> {
    /// Broker-wide message id, increasing in acceptance order.
    pub id: u64,
    /// Topic name.
    pub topic: &'a str,
    /// Per-topic sequence number.
    pub seq: u64,
    /// QoS it was published with.
    pub qos: QoS,
    /// When it was accepted, in the adapter's clock (microseconds).
    pub published_us: u64,
    /// Producer id and sequence, for deduplication after a restart.
    pub dedup: Option<Dedup>,
    /// Properties.
    #[serde(borrow)]
    pub meta: Meta<'a>,
    /// The payload.
    pub payload: &'a [u8],
}

/// One durable fact. The variant order is the on-disk tag: append, never reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record<'a> {
    /// A message was accepted.
    #[serde(borrow)]
    Message(MessageRecord<'a>),
    /// A persistent session was created for a client.
    SessionOpen {
        /// Client id.
        client: &'a str,
    },
    /// A client's persistent session was discarded.
    SessionEnd {
        /// Client id.
        client: &'a str,
    },
    /// A persistent session subscribed.
    Subscribe {
        /// Client id.
        client: &'a str,
        /// The client's subscription id.
        sub: u32,
        /// Filter.
        filter: &'a str,
        /// Group, for competing consumers.
        group: Option<&'a str>,
        /// Highest QoS wanted.
        qos: QoS,
        /// Credit window.
        credit: u32,
    },
    /// A persistent session unsubscribed.
    Unsubscribe {
        /// Client id.
        client: &'a str,
        /// The client's subscription id.
        sub: u32,
    },
    /// A persistent session's subscription is done with a message (acked, dead-
    /// lettered, expired or dropped).
    Ack {
        /// Client id.
        client: &'a str,
        /// The client's subscription id.
        sub: u32,
        /// Message id.
        msg: u64,
    },
    /// A group is done with a message.
    GroupAck {
        /// The group's filter.
        filter: &'a str,
        /// The group's name.
        group: &'a str,
        /// Message id.
        msg: u64,
    },
    /// Sequence numbers of a topic below `until` may be in use by messages that
    /// are not stored (QoS 0) or whose records a power cut took: after a
    /// restart the topic continues at `until`. A QoS 1 message's is one the
    /// store must sync ([`StoreOp::must_sync`]).
    SeqReserve {
        /// Topic name.
        topic: &'a str,
        /// First sequence number not reserved.
        until: u64,
    },
    /// Message ids below `next` were used: after a restart ids continue there.
    NextId {
        /// First unused message id.
        next: u64,
    },
    /// A producer's message was stored (keeps the deduplication window across a
    /// compaction that dropped the message itself).
    DedupMark {
        /// Producer id.
        producer: u64,
        /// Producer sequence.
        seq: u64,
        /// The topic sequence it was stored with.
        topic_seq: u64,
    },
    /// The topic's retained message (MQTT's retained slot, one per topic):
    /// the whole message, so a QoS 0 one is kept too.
    Retain(MessageRecord<'a>),
    /// The topic's retained message was cleared (an empty retained publish).
    Unretain {
        /// Topic name.
        topic: &'a str,
    },
    /// A persistent session admitted an exactly-once publish (MQTT QoS 2)
    /// with this packet id: a resend with the same id is not published again.
    OnceReceived {
        /// Client id.
        client: &'a str,
        /// The client's packet id.
        pid: u16,
    },
    /// The exactly-once publish with this packet id was released.
    OnceReleased {
        /// Client id.
        client: &'a str,
        /// The client's packet id.
        pid: u16,
    },
    /// A persistent session received an exactly-once delivery (MQTT PUBREC):
    /// its packet id is released again after a reconnect until completed, and
    /// the subscription is done with the message (as `Ack` says, in the same
    /// record, so that a crash keeps both or neither).
    OnceDelivered {
        /// Client id.
        client: &'a str,
        /// The delivery's packet id.
        pid: u16,
        /// The client's subscription id.
        sub: u32,
        /// Message id (0: none, in a snapshot).
        msg: u64,
    },
    /// The exactly-once delivery with this packet id was completed.
    OnceCompleted {
        /// Client id.
        client: &'a str,
        /// The delivery's packet id.
        pid: u16,
    },
    /// A message admitted exactly once (MQTT QoS 2) from a session, and its
    /// packet id, remembered until released (as `OnceReceived`): one record,
    /// so that a crash keeps both or neither.
    MessageOnce {
        /// Client id.
        client: &'a str,
        /// The client's packet id.
        pid: u16,
        /// The message.
        #[serde(borrow)]
        message: MessageRecord<'a>,
    },
    /// An operator purged the topic's messages below a sequence number (see
    /// `broker::admin`): they leave its retention and the queues they wait in.
    Purge {
        /// Topic name.
        topic: &'a str,
        /// First sequence number kept.
        before: u64,
    },
    /// An operator deleted the topic: its messages, sequence state and
    /// retained slot (see `broker::admin`).
    DeleteTopic {
        /// Topic name.
        topic: &'a str,
    },
    /// A message that arrived over a node link (see [`crate::wire::mesh`]):
    /// for the local fan-out subscriptions (no `group`), or for the local
    /// members of `group` (filter, name). A restart routes it there again,
    /// and to no link.
    Forwarded {
        /// The group it was forwarded for.
        #[serde(borrow)]
        group: Option<(&'a str, &'a str)>,
        /// The message.
        #[serde(borrow)]
        message: MessageRecord<'a>,
    },
    /// A peer node's link session (`$node.<id>`) declared interest in a
    /// filter (`held`), or withdrew it: see [`crate::wire::mesh`].
    Interest {
        /// The link session's client id.
        client: &'a str,
        /// Filter.
        filter: &'a str,
        /// Declared (true) or withdrawn.
        held: bool,
    },
    /// [`DedupMark`](Record::DedupMark) of a message that arrived over a
    /// node link: its producer is the link's, apart from clients' ids.
    LinkDedupMark {
        /// Producer id ([`mesh_producer`](crate::wire::mesh::mesh_producer)).
        producer: u64,
        /// Producer sequence.
        seq: u64,
        /// The topic sequence it was stored with.
        topic_seq: u64,
    },
    /// The store's epoch (see [`crate::wire::mesh`]): written before the
    /// first record of a store (and of a log written before epochs, as 0).
    StoreEpoch {
        /// A random nonzero number, or 0.
        epoch: u64,
    },
    /// Message ids below `until` may be handed out before another such
    /// record: after a restart ids continue there. Written ahead of the ids
    /// it covers, and synced by a store that syncs only now and then (see
    /// [`StoreOp::must_sync`]), so that a power cut that loses the tail of
    /// the log cannot make the store hand out an id again: its node's peers
    /// would take the new message for a duplicate of the lost one. (A
    /// topic's sequence numbers have their own: [`Record::SeqReserve`].)
    IdReserve {
        /// First message id not reserved.
        until: u64,
    },
    /// Topics were forgotten (`Retention::forget_after`): a topic made after
    /// this numbers its messages from `until` at least, above every number
    /// the forgotten ones gave.
    SeqFloor {
        /// The lowest sequence number of a topic made afterwards.
        until: u64,
    },
    /// A persistent session's exactly-once delivery (MQTT QoS 2) goes out
    /// under this packet id, not its message's own: written before it is
    /// sent, so that a resumed session sends it again under the id the
    /// client may hold it by. Ends with the delivery (an `Ack` or
    /// `OnceDelivered` naming the subscription and message; for a group
    /// member's subscription, the group's `GroupAck` of the message).
    OncePid {
        /// Client id.
        client: &'a str,
        /// The delivery's packet id.
        pid: u16,
        /// The client's subscription id.
        sub: u32,
        /// Message id.
        msg: u64,
    },
}

/// A stored record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// Not a valid record encoding.
    Malformed,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed store record")
    }
}

impl core::error::Error for RecordError {}

impl<'a> Record<'a> {
    /// Decodes a record that occupies all of `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<Record<'a>, RecordError> {
        match postcard::take_from_bytes::<Record<'a>>(bytes) {
            Ok((record, [])) => Ok(record),
            _ => Err(RecordError::Malformed),
        }
    }

    /// The encoding, in one shared allocation of exactly the right size.
    pub fn encode_shared(&self) -> Arc<[u8]> {
        self.encode_reusing(None)
    }

    /// [`encode_shared`](Self::encode_shared), into `spare` (a record nobody
    /// else holds) when it is a record encoded by hand and as long.
    pub(crate) fn encode_reusing(&self, spare: Option<Arc<[u8]>>) -> Arc<[u8]> {
        if let Some(bytes) = self.encode_by_hand(spare) {
            return bytes;
        }
        let len = postcard::serialize_with_flavor(self, postcard::ser_flavors::Size::default())
            .unwrap_or(0);
        let mut bytes: Arc<[u8]> = core::iter::repeat_n(0u8, len).collect();
        if let Some(buf) = Arc::get_mut(&mut bytes) {
            // Sized above from the same value, so it fits.
            let _ = postcard::to_slice(self, buf);
        }
        bytes
    }
}

/// A record for the store to write. Report it with
/// [`Broker::handle_persisted`](super::Broker::handle_persisted)`(token)` once it
/// is durable; tokens increase, and persisting a token means every smaller one is
/// persisted too.
#[derive(Clone)]
pub struct StoreOp {
    /// Order and identity of the operation.
    pub token: u64,
    bytes: OpBytes,
}

/// Bytes of a record this short travel in the [`StoreOp`] itself: an `Ack`,
/// written at every acknowledgement of a persistent session, whose client id
/// has up to about a dozen bytes (`$node.<name>` for a short name). 22 keeps
/// the op at 32 bytes (from 24): ops are moved in batches to the store, and
/// at 64 bytes the copies cost what the allocation saved.
const INLINE: usize = 22;

#[derive(Clone)]
enum OpBytes {
    Shared(Arc<[u8]>),
    /// Shared, and to be synced before its token counts as stored.
    Synced(Arc<[u8]>),
    Inline {
        len: u8,
        buf: [u8; INLINE],
    },
}

impl StoreOp {
    pub(crate) fn new(token: u64, bytes: Arc<[u8]>) -> Self {
        StoreOp {
            token,
            bytes: OpBytes::Shared(bytes),
        }
    }

    /// An op the store syncs before it reports it (and every op before it)
    /// stored ([`must_sync`](Self::must_sync)).
    pub(crate) fn synced(token: u64, bytes: Arc<[u8]>) -> Self {
        StoreOp {
            token,
            bytes: OpBytes::Synced(bytes),
        }
    }

    /// Whether the store must make this record (and every one before it)
    /// durable before it reports the batch written, even under a policy
    /// that syncs only now and then (`fsync = "interval"`, say: it syncs
    /// the batch that holds it). One comes every 1,048,576 message ids, and
    /// with the first message after every start (a [`Record::IdReserve`]);
    /// and every 1,048,576 QoS 1 messages of a topic, and with a topic's
    /// first QoS 1 message after every start, or after it was forgotten
    /// and made again (a [`Record::SeqReserve`]).
    /// A store that promises nothing across a power cut (`fsync =
    /// "never"`) may leave it unsynced: its node's peers may then drop new
    /// messages as duplicates of lost ones, and a topic may give a lost
    /// message's sequence number again.
    pub fn must_sync(&self) -> bool {
        matches!(self.bytes, OpBytes::Synced(_))
    }

    /// `record` encoded into the op itself, without an allocation: for an
    /// `Ack` that fits; `None` for any other.
    pub(crate) fn inline(token: u64, record: &Record<'_>) -> Option<Self> {
        let mut buf = [0; INLINE];
        let len = record.encode_ack_into(&mut buf)?;
        Some(StoreOp {
            token,
            bytes: OpBytes::Inline {
                len: u8::try_from(len).ok()?,
                buf,
            },
        })
    }

    /// Whether the bytes travel in the op itself.
    #[cfg(test)]
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self.bytes, OpBytes::Inline { .. })
    }

    /// The record's encoding, to be written as is.
    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            OpBytes::Shared(bytes) | OpBytes::Synced(bytes) => bytes,
            OpBytes::Inline { len, buf } => &buf[..usize::from(*len)],
        }
    }

    /// The record.
    pub fn record(&self) -> Record<'_> {
        // Encoded by the broker from a valid record.
        Record::decode(self.bytes()).unwrap_or(Record::SessionEnd { client: "" })
    }
}

impl fmt::Debug for StoreOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOp")
            .field("token", &self.token)
            .field("must_sync", &self.must_sync())
            .field("record", &self.record())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let records = [
            Record::Message(MessageRecord {
                id: 1,
                topic: "a.b",
                seq: 9,
                qos: QoS::AtLeastOnce,
                published_us: 5,
                dedup: Some(Dedup {
                    producer: 3,
                    seq: 4,
                }),
                meta: Meta::default(),
                payload: b"x",
            }),
            Record::SessionOpen { client: "c" },
            Record::Subscribe {
                client: "c",
                sub: 1,
                filter: "a.*",
                group: Some("g"),
                qos: QoS::AtMostOnce,
                credit: 4,
            },
            Record::Ack {
                client: "c",
                sub: 1,
                msg: 1,
            },
            Record::OncePid {
                client: "c",
                pid: 7,
                sub: 1,
                msg: 1 << 40,
            },
        ];
        for r in records {
            let bytes = r.encode_shared();
            assert_eq!(Record::decode(&bytes), Ok(r));
        }
        assert_eq!(Record::decode(&[200]), Err(RecordError::Malformed));
    }

    #[test]
    fn a_short_ack_travels_in_its_op_a_long_one_and_others_shared() {
        let ack = |client| Record::Ack {
            client,
            sub: 7,
            msg: 1 << 20,
        };
        let short = ack("$node.peer-a");
        let op = StoreOp::inline(3, &short).expect("a short ack fits");
        assert!(op.is_inline());
        assert_eq!((op.token, op.bytes()), (3, &*short.encode_shared()));
        assert_eq!(op.record(), short);
        let long = "c".repeat(INLINE);
        assert!(StoreOp::inline(3, &ack(&long)).is_none());
        assert!(StoreOp::inline(3, &Record::SessionOpen { client: "c" }).is_none());
        assert_eq!(core::mem::size_of::<StoreOp>(), 32);
    }
}
