//! Request-reply's bookkeeping: the client's private reply topic, its
//! subscription, and the requesters waiting for a reply by correlation id.

use std::collections::HashMap;

use mq_core::client::SubId;

use super::command::ReplyTo;
use super::error::Error;
use super::message::Message;
use super::options::Outgoing;
use super::random::random_u64;

/// The reply subscription of request-reply.
pub(super) enum ReplySub {
    None,
    Pending(SubId),
    Active(SubId),
}

/// Requests and the private topic their replies come back on.
pub(super) struct Requests {
    pub(super) topic: String,
    pub(super) sub: ReplySub,
    /// Requests held until the reply subscription is active.
    pub(super) held: Vec<(u64, Outgoing)>,
    /// Requesters waiting for their reply, by correlation id.
    pub(super) waiting: HashMap<u64, ReplyTo<Result<Message, Error>>>,
    pub(super) next: u64,
}

impl Requests {
    /// No request yet; replies will come back on `client_id`'s reply topic.
    pub(super) fn new(client_id: &str) -> Requests {
        Requests {
            topic: reply_topic(client_id),
            sub: ReplySub::None,
            held: Vec::new(),
            waiting: HashMap::new(),
            next: 1,
        }
    }

    pub(super) fn is_reply_sub(&self, sub: SubId) -> bool {
        matches!(self.sub, ReplySub::Active(s) | ReplySub::Pending(s) if s == sub)
    }

    pub(super) fn fail(&mut self, corr: u64, error: Error) {
        if let Some(reply) = self.waiting.remove(&corr) {
            reply.send(Err(error));
        }
    }
}

/// The private topic this client's replies come back on: `_reply.<client id>`
/// when that is a valid topic, else `_reply.<random hex>`.
fn reply_topic(client_id: &str) -> String {
    let topic = format!("_reply.{client_id}");
    if mq_core::topic::Topic::new(&topic).is_ok() {
        topic
    } else {
        format!("_reply.{:016x}", random_u64())
    }
}
