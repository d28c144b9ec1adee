//! Managing a running broker: what an operator asks ([`AdminRequest`]) and
//! what the broker answers ([`AdminReply`]), the same for every interface
//! (wire frames, mqd's HTTP API, the CLI, the web console).
//!
//! Reading operations (topics, sessions, messages) change nothing. The two
//! writing ones are durable: [`Record::Purge`](super::Record::Purge) and
//! [`Record::DeleteTopic`](super::Record::DeleteTopic) are written to the
//! store, so they hold across a restart.
//!
//! - **Purge** `topic` before `seq`: the topic's retained messages (kept for
//!   replay) with a lower sequence number are dropped, and so are the copies
//!   of them still *waiting* in subscription and group queues (counted as
//!   acked for durable queues). Copies in flight stay with their consumer and
//!   settle as usual. A message admitted but not yet stored when the purge
//!   arrives is purged too when its sequence number is below `seq` (the
//!   record order decides, live and after a restart alike).
//! - **Delete** `topic`: a purge of everything, and the topic's sequence
//!   state, its retained slot (MQTT) and its counters are gone; the next
//!   publish to it starts again at sequence 1 (at the numbering floor once
//!   some topic was forgotten, see below), and persistent sessions'
//!   replay cursors for it are forgotten (so `Start::Cursor` does not skip
//!   the new numbers). Subscriptions are left alone: their filters name no
//!   single topic, and they receive what is published to it afterwards.
//!
//! A topic may also leave the listing by itself: one that keeps nothing for
//! replay is forgotten after its retention's
//! [`forget_after`](super::Retention::forget_after), as by a delete except
//! that its numbers do not start again, and that nothing is written: a
//! restart before the store's next compaction brings it back, idle, and it
//! is forgotten again.
//!
//! On the wire, a reply's body is the postcard encoding of [`AdminReply`]
//! ([`AdminReply::decode`]), so that the frame itself borrows, as every frame
//! does, and a client without `alloc` can pass it on undecoded.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

pub use crate::wire::AdminRequest;
use crate::wire::{QoS, Reason};

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    /// Its name.
    pub name: String,
    /// Sequence number of the oldest message kept for replay (0: none kept).
    pub first_seq: u64,
    /// The topic's numbering so far: the sequence number of the last message
    /// accepted, or after a restart the last its reservation covered (the
    /// numbering continues past it, so that no number is given twice; 0:
    /// none yet).
    pub last_seq: u64,
    /// Messages kept for replay.
    pub retained: u64,
    /// Their payload bytes.
    pub retained_bytes: u64,
    /// Subscriptions whose filter matches it (a group counts once).
    pub subscribers: u32,
    /// Messages accepted on it since the broker started (a rate is the
    /// difference between two readings).
    pub messages_in: u64,
    /// Their payload bytes.
    pub bytes_in: u64,
}

/// One subscription of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionInfo {
    /// The client's subscription id.
    pub id: u32,
    /// Its filter.
    pub filter: String,
    /// The group it consumes with (its queue is the group's, shared).
    pub group: Option<String>,
    /// Messages waiting in its queue.
    pub waiting: u64,
    /// Deliveries of its queue in flight.
    pub inflight: u64,
    /// Messages its queue dead-lettered.
    pub dead_lettered: u64,
}

/// A session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Client id.
    pub client: String,
    /// A connection is attached.
    pub connected: bool,
    /// Kept while the client is away.
    pub persistent: bool,
    /// Deliveries to it not settled yet.
    pub inflight: u64,
    /// Its subscriptions.
    pub subscriptions: Vec<SubscriptionInfo>,
}

/// A message a topic keeps for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageInfo {
    /// Per-topic sequence number.
    pub seq: u64,
    /// Broker-wide message id.
    pub id: u64,
    /// When it was accepted (the broker's clock, microseconds).
    pub published_us: u64,
    /// QoS it was published with.
    pub qos: QoS,
    /// Its priority.
    pub priority: u8,
    /// Its whole payload's length.
    pub size: u64,
    /// The first bytes of its payload (as many as asked for).
    pub payload: Vec<u8>,
}

/// Messages of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageList {
    /// Topic name.
    pub topic: String,
    /// Messages the topic keeps in all.
    pub total: u64,
    /// The ones asked for, oldest first.
    pub messages: Vec<MessageInfo>,
}

/// What the broker answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminReply {
    /// Topics, by name.
    Topics {
        /// The topics.
        topics: Vec<TopicInfo>,
        /// Some were left out to fit the peer's maximum frame.
        truncated: bool,
    },
    /// Sessions, by client id.
    Sessions {
        /// The sessions.
        sessions: Vec<SessionInfo>,
        /// Some were left out to fit the peer's maximum frame.
        truncated: bool,
    },
    /// Messages of a topic.
    Messages(MessageList),
    /// A purge was carried out.
    Purged {
        /// Messages dropped from the topic's retention.
        retained: u64,
        /// Waiting copies dropped from queues.
        queued: u64,
    },
    /// A topic was deleted.
    Deleted {
        /// Messages dropped from the topic's retention.
        retained: u64,
        /// Waiting copies dropped from queues.
        queued: u64,
    },
    /// The request was refused.
    Refused {
        /// Why: `NotAuthorized`, `InvalidTopic`, `UnknownId` (no such topic).
        reason: Reason,
        /// What to do about it.
        text: String,
    },
}

impl AdminReply {
    /// A refusal.
    pub fn refused(reason: Reason, text: &str) -> Self {
        AdminReply::Refused {
            reason,
            text: String::from(text),
        }
    }

    /// The postcard encoding (a reply frame's body).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// The encoding in at most `max` bytes: a list that does not fit loses
    /// entries from its end (and says it is truncated), message payloads are
    /// cut short; the bare reply when even that does not fit.
    pub fn encode_within(&self, max: usize) -> Vec<u8> {
        let body = self.encode();
        if body.len() <= max {
            return body;
        }
        let mut reply = self.clone();
        // Start near the size that fits, then drop one at a time.
        let keep = |n: usize| n * max / body.len() + 1;
        match &mut reply {
            AdminReply::Topics { topics, .. } => topics.truncate(keep(topics.len())),
            AdminReply::Sessions { sessions, .. } => sessions.truncate(keep(sessions.len())),
            AdminReply::Messages(list) => list.messages.truncate(keep(list.messages.len())),
            _ => {}
        }
        loop {
            let more = match &mut reply {
                AdminReply::Topics { topics, truncated } => {
                    *truncated = true;
                    topics.pop().is_some()
                }
                AdminReply::Sessions {
                    sessions,
                    truncated,
                } => {
                    *truncated = true;
                    sessions.pop().is_some()
                }
                AdminReply::Messages(list) => list.messages.pop().is_some(),
                _ => false,
            };
            let body = reply.encode();
            if body.len() <= max || !more {
                return body;
            }
        }
    }

    /// Decodes a reply frame's body.
    pub fn decode(body: &[u8]) -> Result<Self, crate::wire::DecodeError> {
        match postcard::take_from_bytes::<AdminReply>(body) {
            Ok((reply, [])) => Ok(reply),
            Ok(_) => Err(crate::wire::DecodeError::TrailingBytes),
            Err(_) => Err(crate::wire::DecodeError::Malformed),
        }
    }
}
