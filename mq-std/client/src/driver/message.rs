//! What a subscription receives ([`Message`]) and what a publish returns
//! ([`PubAck`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mq_core::QoS;
use mq_core::client::{Delivery, DeliveryId, SubId};

use super::error::Error;

/// The broker's answer to a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PubAck {
    /// The per-topic sequence number the broker gave the message; `None` for
    /// QoS 0, which the broker does not acknowledge.
    pub seq: Option<u64>,
    /// The broker had already stored this message (a resend after reconnecting,
    /// recognised by its dedup tag) and did not store it again.
    pub duplicate: bool,
}

/// A message delivered to a subscription.
///
/// A QoS 1 message must be settled: [`ack`](Self::ack) once processed, or
/// [`nack`](Self::nack). **Dropping an unsettled QoS 1 message nacks it with
/// `requeue: true`**, so the broker delivers it again (to this or another group
/// member) instead of the client holding it forever. QoS 0 messages need
/// nothing.
pub struct Message {
    /// The subscription it arrived on.
    pub sub: SubId,
    /// The topic it was published to.
    pub topic: String,
    /// Its per-topic sequence number.
    pub seq: u64,
    /// 1 for the first delivery, higher for redeliveries.
    pub attempt: u16,
    /// QoS it was delivered with.
    pub qos: QoS,
    /// The payload.
    pub payload: Bytes,
    /// Topic a reply should be published to (request-reply).
    pub reply_to: Option<String>,
    /// Correlation id linking a reply to its request.
    pub correlation: Option<Bytes>,
    /// Application headers, in the order they were added.
    pub headers: Vec<(String, Bytes)>,
    /// Time to live the publisher set.
    pub ttl: Option<Duration>,
    /// Priority the publisher set.
    pub priority: u8,
    settle: Option<Settle>,
}

/// What the application decided about a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settlement {
    /// Processed: the broker forgets it.
    Ack,
    /// Refused: delivered again (`requeue`) or dead-lettered.
    Nack { requeue: bool },
}

/// Where a message's ack or nack goes: the driver's command channel. A trait,
/// so that messages need not know the commands (which carry messages).
pub(crate) trait Settler: Send + Sync {
    /// Hands the verdict on delivery `id` to the driver; fails when the client
    /// is closed.
    fn settle(&self, id: DeliveryId, how: Settlement) -> Result<(), Error>;
}

/// How an unsettled message reaches the driver.
struct Settle {
    id: DeliveryId,
    to: Arc<dyn Settler>,
}

impl Message {
    /// A message from a delivery's fields and `payload` (the delivery's own
    /// payload is not read); `settler` settles it when it needs an ack.
    pub(crate) fn new(d: &Delivery<'_>, payload: Bytes, settler: &Arc<dyn Settler>) -> Message {
        let meta = &d.meta;
        Message {
            sub: d.sub,
            topic: d.topic.to_string(),
            seq: d.seq,
            attempt: d.attempt,
            qos: d.qos,
            payload,
            reply_to: meta.reply_to.map(str::to_string),
            correlation: meta.correlation.map(Bytes::copy_from_slice),
            headers: meta
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), Bytes::copy_from_slice(v)))
                .collect(),
            ttl: meta.ttl_ms.map(|ms| Duration::from_millis(u64::from(ms))),
            priority: meta.priority,
            settle: d.id.needs_ack().then(|| Settle {
                id: d.id,
                to: Arc::clone(settler),
            }),
        }
    }

    /// The value of the first header named `key`.
    pub fn header(&self, key: &str) -> Option<&Bytes> {
        self.headers.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether the message waits for an ack or nack (QoS 1, not settled yet).
    pub fn needs_ack(&self) -> bool {
        self.settle.is_some()
    }

    /// Acknowledges the message: the broker forgets it. Does nothing for QoS 0.
    /// Fails only when the client is closed (the broker then redelivers the
    /// message to the session, if it was kept, or to another group member).
    pub fn ack(mut self) -> Result<(), Error> {
        self.settle_with(Settlement::Ack)
    }

    /// Refuses the message: `requeue` asks the broker to deliver it again
    /// (possibly to another group member) after its redelivery backoff; without
    /// it the message goes to the dead-letter topic `$dlq.<topic>`.
    pub fn nack(mut self, requeue: bool) -> Result<(), Error> {
        self.settle_with(Settlement::Nack { requeue })
    }

    fn settle_with(&mut self, how: Settlement) -> Result<(), Error> {
        match self.settle.take() {
            Some(s) => s.to.settle(s.id, how),
            None => Ok(()),
        }
    }

    /// Takes the settlement away from the message (the driver settles it
    /// itself): the id, or `None` when there is nothing to settle.
    pub(crate) fn disarm(&mut self) -> Option<DeliveryId> {
        self.settle.take().map(|s| s.id)
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        let _ = self.settle_with(Settlement::Nack { requeue: true });
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("sub", &self.sub)
            .field("topic", &self.topic)
            .field("seq", &self.seq)
            .field("attempt", &self.attempt)
            .field("qos", &self.qos)
            .field("payload", &self.payload)
            .field("reply_to", &self.reply_to)
            .field("correlation", &self.correlation)
            .field("headers", &self.headers)
            .field("ttl", &self.ttl)
            .field("priority", &self.priority)
            .field("needs_ack", &self.needs_ack())
            .finish()
    }
}
