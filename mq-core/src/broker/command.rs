//! The seam between a connection's protocol codec and the router.
//!
//! A codec turns what a client sent into [`Command`]s, borrowing topics and
//! payloads from the received bytes (nothing is copied on the way in), and turns
//! the router's [`Output`]s back into frames of its protocol. The router never
//! sees bytes and does not know which protocol a connection speaks.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use crate::time::Instant;
use crate::wire::{Dedup, Headers, Meta, QoS, Reason, Start};

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
    /// A delivery failed: deliver it again, or dead-letter it.
    Nack { tag: u64, requeue: bool },
    /// More deliveries may be outstanding on a subscription.
    Credit { sub: u32, credit: u32 },
    /// The client is leaving: the connection ends after what is queued for it.
    Disconnect,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Connect<'a> {
    pub client_id: &'a str,
    /// Keep the session while the client is away, and resume a stored one.
    pub persistent: bool,
    pub token: Option<&'a str>,
    /// Credit of subscriptions that ask for none.
    pub default_credit: u32,
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
}

/// What the router decided about a command, when the codec must know at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    /// `Connect` refused: the codec answers with this error and closes.
    Refused(Reason, &'static str),
    /// The publish waits for room in a full `Block` queue until this deadline:
    /// the connection's input is held meanwhile.
    Held(Instant),
}

/// What the router sends a connection, in order.
pub(crate) enum Output {
    /// The session is open (after `Connect`).
    Connected {
        session_present: bool,
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
    Deliver(Delivery),
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
    /// Unique within the session; acks name it.
    pub tag: u64,
    /// 1 for the first delivery.
    pub attempt: u16,
    pub qos: QoS,
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
        }
    }
}
