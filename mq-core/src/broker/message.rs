//! A message as the broker holds it: one shared allocation of its durable record,
//! referenced by the topic's retention and every queue that holds it.

use alloc::sync::Arc;

use super::ConnId;
use super::record::{MessageRecord, Record};
use crate::time::Instant;
use crate::wire::QoS;

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
    /// The encoded `Record::Message` (or `Record::MessageOnce`), shared with
    /// the store operation.
    pub record: Arc<[u8]>,
}

impl Message {
    /// The record's fields (topic, meta, payload borrow the shared encoding).
    pub(crate) fn view(&self) -> MessageRecord<'_> {
        match Record::decode(&self.record) {
            Ok(Record::Message(m) | Record::MessageOnce { message: m, .. }) => m,
            // The broker only builds messages from message records.
            _ => unreachable!("message holds a non-message record"),
        }
    }

    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}
