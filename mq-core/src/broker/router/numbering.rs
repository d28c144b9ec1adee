//! New messages: each gets the broker's next id and its topic's next
//! sequence number, and its record is encoded once.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use super::{Router, Slot, TopicState};
use crate::broker::command::Via;
use crate::broker::message::{Message, Msg, tail_offsets};
use crate::broker::record::{MessageRecord, Record};
use crate::time::Instant;
use crate::topic::Topic;
use crate::wire::{self, Meta, QoS};

/// Sequence numbers reserved per `SeqReserve` record.
const SEQ_BLOCK: u64 = 1 << 20;

/// Message ids reserved per `IdReserve` record (one sync each; a few in
/// unit tests, which cross blocks).
#[cfg(not(test))]
const ID_BLOCK: u64 = 1 << 20;
#[cfg(test)]
const ID_BLOCK: u64 = 8;

impl Router {
    /// A new message on `topic`: its id, sequence number and record (with the
    /// client and packet id of an exactly-once publish). So that a sequence
    /// number is not handed out again after a restart, one small record
    /// reserves a block of them: a QoS 0 message is not stored, and a QoS 1
    /// one's record can be taken by a power cut (a store that syncs now and
    /// then), so a QoS 1 message's reservation is one the store must sync.
    /// (A QoS 0 message's is not: a subject per request, as NATS clients
    /// reply to, would cost an fsync each; a power cut may then give its
    /// number again.) The reservation's token is returned with the message
    /// when this one starts a block (or the token of the message ids'
    /// reservation, when it starts theirs): a QoS 0 message goes out only
    /// once they are stored; a QoS 1 message's own record comes after
    /// them.
    /// `topic` comes with where its state was found, if it was; the message
    /// is returned with where it is.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_message(
        &mut self,
        now: Instant,
        (found, topic): (Option<Slot>, Topic<'_>),
        qos: QoS,
        dedup: Option<wire::Dedup>,
        meta: Meta<'_>,
        payload: &[u8],
        once: Option<(&str, u16)>,
        via: Via<'_>,
    ) -> (Msg, Option<u64>, Slot) {
        let ids_reserved = (self.next_msg >= self.ids_until).then(|| self.reserve_ids());
        // A new topic's first id is this message's.
        let id = self.next_msg;
        let (slot, t) = self.topic_state(found, topic);
        let seq = t.next_seq;
        t.next_seq += 1;
        t.active_at = now;
        t.messages_in += 1;
        t.bytes_in += payload.len() as u64;
        let synced = qos == QoS::AtLeastOnce;
        let until = if synced {
            t.synced_until
        } else {
            t.reserved_until
        };
        let reserve = (seq >= until).then(|| {
            t.reserved_until = seq + SEQ_BLOCK;
            if synced {
                t.synced_until = t.reserved_until;
            }
            t.reserved_until
        });
        let name = t.name.clone();
        self.next_msg += 1;
        // The later of the two tokens covers both.
        let reserved = reserve
            .map(|until| {
                let record = Record::SeqReserve {
                    topic: &name,
                    until,
                };
                if synced {
                    self.emit_synced(&record)
                } else {
                    self.emit(&record)
                }
            })
            .or(ids_reserved);
        let message = MessageRecord {
            id,
            topic: topic.as_str(),
            seq,
            qos,
            published_us: now.as_micros(),
            dedup,
            meta,
            payload,
        };
        let record = match (once, via) {
            (Some((client, pid)), _) => Record::MessageOnce {
                client,
                pid,
                message,
            },
            (None, Via::Client) => Record::Message(message),
            (None, Via::Link) => Record::Forwarded {
                group: None,
                message,
            },
            (None, Via::LinkGroup { filter, group }) => Record::Forwarded {
                group: Some((filter, group)),
                message,
            },
        };
        // A spare message (and its record) is written over, not allocated.
        let mut spare = self.spare_msgs.take();
        let spare_record = spare
            .as_mut()
            .and_then(Arc::get_mut)
            .map(|m| core::mem::take(&mut m.record));
        let record = record.encode_reusing(spare_record);
        let (meta_at, payload_at) = tail_offsets(&record, &meta, payload.len());
        let message = Message {
            id,
            seq,
            meta_at,
            payload_at,
            topic: name,
            qos,
            published_at: now,
            expires_at: meta
                .ttl_ms
                .map(|ms| now + Duration::from_millis(u64::from(ms))),
            priority: meta.priority,
            payload_len: payload.len(),
            publisher: None,
            record,
        };
        let msg = match spare.as_mut().and_then(Arc::get_mut) {
            Some(m) => {
                *m = message;
                spare.expect("written over")
            }
            None => Arc::new(message),
        };
        (msg, reserved, slot)
    }

    /// Reserves the next block of message ids with a record the store must
    /// sync ([`StoreOp::must_sync`]), written before any message with one
    /// of them, and returns its token: a power cut that loses the log's
    /// tail (under a policy that syncs now and then) cannot lose the
    /// reservation, so no id is handed out twice under the store's epoch.
    /// The first of a run starts past the reservation restored (a restart
    /// skips what is left of the block: ids are 64-bit).
    #[cold]
    fn reserve_ids(&mut self) -> u64 {
        self.next_msg = self.next_msg.max(self.ids_restored);
        self.ids_until = self.next_msg + ID_BLOCK;
        self.stats.store_ops += 1;
        self.store.emit_synced(&Record::IdReserve {
            until: self.ids_until,
        })
    }

    /// The state of `topic`, made when it is new (one lookup either way, none
    /// when `found` says where it is), and where it is.
    pub(super) fn topic_state(
        &mut self,
        found: Option<Slot>,
        topic: Topic<'_>,
    ) -> (Slot, &mut TopicState) {
        let (retention, since_id, floor) = (&self.cfg, self.next_msg, self.seq_floor);
        self.topics
            .get_or_insert_with(found, topic.as_str(), || TopicState {
                name: Arc::from(topic.as_str()),
                next_seq: floor.max(1),
                reserved_until: 0,
                synced_until: 0,
                retained: Default::default(),
                retained_bytes: 0,
                retention: retention.retention_for(topic),
                messages_in: 0,
                bytes_in: 0,
                since_id,
                routes: Vec::new(),
                routes_at: None,
                client_routes: Vec::new(),
                client_routes_at: None,
                active_at: Instant::ZERO,
            })
    }
}
