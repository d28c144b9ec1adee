//! A message as the broker holds it: one shared allocation of its durable record,
//! referenced by the topic's retention and every queue that holds it.

use alloc::sync::Arc;

use super::ConnId;
use super::record::{MessageRecord, Record};
use crate::time::Instant;
use crate::wire::deliver::varint_len;
use crate::wire::{Meta, QoS};

pub(crate) type Msg = Arc<Message>;

pub(crate) struct Message {
    pub id: u64,
    pub seq: u64,
    pub topic: Arc<str>,
    pub qos: QoS,
    pub published_at: Instant,
    pub expires_at: Option<Instant>,
    /// Higher goes first among the messages waiting in a queue.
    pub priority: u8,
    pub payload_len: usize,
    /// The connection that published it (not kept across a restart): NATS
    /// clients that ask for no echo get none of their own messages.
    pub publisher: Option<ConnId>,
    /// The encoded `Record::Message` (or `MessageOnce`, or `Forwarded`), shared with
    /// the store operation.
    pub record: Arc<[u8]>,
    /// Where the record's encoded [`Meta`] starts; the encoded payload (its
    /// length, then its bytes) follows it to the record's end.
    pub meta_at: usize,
    /// Where the record's encoded payload starts (its varint length).
    pub payload_at: usize,
}

/// Where a message record's encoded meta and payload start: both variants of
/// the record end with the [`MessageRecord`], which ends with its meta and then
/// its payload, as postcard encodes them.
pub(crate) fn tail_offsets(record: &[u8], meta: &Meta<'_>, payload_len: usize) -> (usize, usize) {
    let payload_at = record.len() - payload_len - varint_len(payload_len as u64);
    let meta_at = payload_at - meta.encoded_len();
    // The record read back must find its meta and payload exactly there.
    #[cfg(debug_assertions)]
    if let Ok(
        Record::Message(m)
        | Record::MessageOnce { message: m, .. }
        | Record::Forwarded { message: m, .. },
    ) = Record::decode(record)
    {
        debug_assert_eq!(
            Meta::decode_from(&record[meta_at..payload_at]),
            Some(m.meta)
        );
        debug_assert_eq!(
            m.payload.as_ptr(),
            record[record.len() - payload_len..].as_ptr()
        );
    }
    (meta_at, payload_at)
}

impl Message {
    /// The record's encoded meta and encoded payload (with its length), as a
    /// [`Deliver`](crate::wire::Deliver) frame carries them.
    pub(crate) fn encoded_tail(&self) -> (&[u8], &[u8]) {
        (
            &self.record[self.meta_at..self.payload_at],
            &self.record[self.payload_at..],
        )
    }

    /// The record's fields (topic, meta, payload borrow the shared encoding).
    pub(crate) fn view(&self) -> MessageRecord<'_> {
        match Record::decode(&self.record) {
            Ok(
                Record::Message(m)
                | Record::MessageOnce { message: m, .. }
                | Record::Forwarded { message: m, .. },
            ) => m,
            // The broker only builds messages from message records.
            _ => unreachable!("message holds a non-message record"),
        }
    }

    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}
