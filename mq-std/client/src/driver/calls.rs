//! The driver's side towards the application: each call ([`Command`]) becomes
//! a session command, and the caller is kept until the session's answer (or
//! the end of the session) settles it. Publishers that find the outbox full
//! wait here, first come first served.

use std::time::Duration;

use mq_core::client::{
    self as core_client, PublishError, PublishId, RequestError, SubId, SubscribeError,
};
use mq_core::wire::QoS;
use mq_core::{Instant, Reason};
use tracing::debug;

use super::command::{Command, ReplyTo};
use super::error::Error;
use super::message::{Message, PubAck};
use super::options::{Outgoing, SubscribeOptions, window};
use super::room::Reserved;
use super::{Driver, Subscriber, Then};

impl Driver {
    /// An application call.
    pub(crate) fn handle_command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Publish { msg, reply } => {
                let then = reply.map_or(Then::Forget, Then::Reply);
                if self.stopping {
                    self.answer(then, Err(self.closed_error()));
                } else {
                    self.enqueue(now, msg, then);
                }
            }
            Command::Request {
                msg,
                timeout,
                reply,
            } => {
                if self.stopping {
                    reply.send(Err(self.closed_error()));
                } else {
                    // Requesters that gave up (timed out) leave nothing behind.
                    self.requests.retain(|_, r| !r.is_closed());
                    self.enqueue(now, *msg, Then::Request(reply, timeout));
                }
            }
            Command::Subscribe {
                filter,
                opts,
                sink,
                waiting,
                reply,
            } => self.subscribe(now, &filter, &opts, Subscriber { sink, waiting }, reply),
            Command::Unsubscribe(sub) => self.unsubscribe(now, sub),
            Command::Admin { request, reply } => self.admin(request, reply),
            Command::Ack(id) => {
                if let Err(e) = self.session.ack(id) {
                    debug!("ack not sent: {e}");
                }
            }
            Command::Nack { id, requeue } => {
                if let Err(e) = self.session.nack(id, requeue) {
                    debug!("nack not sent: {e}");
                }
            }
            Command::Room => {}
            Command::Close(reply) => {
                if let Some(reply) = reply {
                    if self.finished {
                        reply.send(());
                    } else {
                        self.closers.push(reply);
                    }
                }
                if !self.stopping {
                    self.user_closed = true;
                }
                // Subscriptions end now: a full sink must not keep the session's
                // `Closed` event queued behind messages nobody will read.
                self.subscribers.clear();
                if let Some(msg) = self.parked.take() {
                    self.requeue(msg);
                }
                self.session.close(now);
            }
        }
    }

    pub(super) fn closed_error(&self) -> Error {
        Error::Closed(self.final_reason())
    }

    pub(super) fn final_reason(&self) -> Reason {
        if self.user_closed {
            Reason::Normal
        } else {
            self.last_reason
        }
    }

    /// A publish, or a waiting publisher at the back of the line.
    pub(super) fn enqueue(&mut self, now: Instant, msg: Outgoing, then: Then) {
        if !self.waiting.is_empty() {
            // Callers that gave up leave nothing behind, even while the outbox
            // stays full (a long outage with retrying callers): a short line
            // is pruned at every publish, as before; a long one each time it
            // has doubled, so that a publish costs amortised O(1) however
            // long the line (a walk at every publish made a line of tens of
            // thousands of fire-and-forget publishes quadratic), and the line
            // holds at most about twice its live callers.
            if self.waiting.len() < PRUNE_FROM || self.waiting.len() >= self.prune_at {
                self.prune_waiting();
                self.prune_at = (2 * self.waiting.len()).max(PRUNE_FROM);
            }
            self.waiting.push_back((msg, then));
            return;
        }
        if let Some(back) = self.try_publish(now, msg, then) {
            self.waiting_outbox = self.session.outbox_bytes();
            self.waiting.push_back(back);
        }
    }

    /// Keeps the room of a publish the session took until the end of the
    /// driver's pass ([`Driver::poll`]), with the others of the pass.
    /// (Requests reserve no room.)
    fn handed_over(&mut self, reserved: Option<Reserved>) {
        match (&mut self.handed, reserved) {
            (Some(handed), Some(r)) => handed.absorb(r),
            (handed @ None, r) => *handed = r,
            (Some(_), None) => {}
        }
    }

    /// Hands a publish (or a request) to the session; gives it back when the
    /// outbox (or the table of requests) is full.
    fn try_publish(
        &mut self,
        now: Instant,
        mut msg: Outgoing,
        then: Then,
    ) -> Option<(Outgoing, Then)> {
        let then = match then {
            Then::Request(reply, timeout) => return self.try_request(now, msg, reply, timeout),
            then => then,
        };
        let opts = core_client::PublishOptions {
            qos: msg.qos,
            meta: msg.meta(),
        };
        match self.session.publish(now, &msg.topic, &msg.payload, &opts) {
            Ok(PublishId(id)) => {
                self.handed_over(msg.reserved.take());
                match (msg.qos, then) {
                    (QoS::AtMostOnce, Then::Reply(reply)) => reply.send(Ok(PubAck {
                        seq: None,
                        duplicate: false,
                    })),
                    (QoS::AtLeastOnce, then) => {
                        self.publishes.insert(id, then);
                    }
                    // Requests went to `try_request` above.
                    (QoS::AtMostOnce, Then::Request(..) | Then::Forget) => {}
                }
                None
            }
            Err(PublishError::OutboxFull) => Some((msg, then)),
            Err(e) => {
                let error = match e {
                    PublishError::InvalidTopic => Error::Invalid("invalid topic"),
                    PublishError::TooLarge => Error::TooLarge,
                    _ => Error::Invalid("publish refused"),
                };
                self.answer(then, Err(error));
                None
            }
        }
    }

    /// Hands a request to the session, which publishes it with its reply
    /// topic and a correlation id and reports its reply (or failure) later.
    fn try_request(
        &mut self,
        now: Instant,
        msg: Outgoing,
        reply: ReplyTo<Result<Message, Error>>,
        timeout: Duration,
    ) -> Option<(Outgoing, Then)> {
        let meta = msg.meta();
        let opts = core_client::RequestOptions {
            qos: msg.qos,
            ttl_ms: meta.ttl_ms,
            priority: meta.priority,
            headers: meta.headers,
            timeout: Some(timeout),
        };
        match self.session.request(now, &msg.topic, &msg.payload, &opts) {
            Ok(id) => {
                self.requests.insert(id.0, reply);
                None
            }
            Err(RequestError::OutboxFull | RequestError::TableFull) => {
                Some((msg, Then::Request(reply, timeout)))
            }
            Err(RequestError::InvalidTopic) => {
                reply.send(Err(Error::Invalid("invalid topic")));
                None
            }
            Err(RequestError::TooLarge) => {
                reply.send(Err(Error::TooLarge));
                None
            }
            Err(_) => {
                reply.send(Err(Error::Invalid("request refused")));
                None
            }
        }
    }

    /// A request's slot in the session's table is free: a request waiting
    /// for one may go.
    pub(super) fn request_ended(&mut self) {
        self.waiting_outbox = usize::MAX;
    }

    /// Answers whoever waits on a publish.
    pub(super) fn answer(&mut self, then: Then, result: Result<PubAck, Error>) {
        match (then, result) {
            (Then::Reply(reply), result) => reply.send(result),
            (Then::Forget, Ok(_)) => {}
            (then @ Then::Forget, Err(e)) => {
                self.unsent_qos0 += 1;
                then.fail(e);
            }
            // Requests are answered by their reply, never by a PubAck.
            (then @ Then::Request(..), Err(e)) => then.fail(e),
            (Then::Request(..), Ok(_)) => {}
        }
    }

    /// Retries waiting publishers, first come first served, once
    /// acknowledgements (or writes, for QoS 0) freed outbox room. True when one
    /// was placed.
    pub(super) fn retry_waiting(&mut self, now: Instant) -> bool {
        if self.waiting.is_empty() || self.session.outbox_bytes() >= self.waiting_outbox {
            return false;
        }
        let mut placed = false;
        while let Some((msg, then)) = self.waiting.pop_front() {
            // A caller that gave up is never published.
            if gave_up(&then) {
                continue;
            }
            match self.try_publish(now, msg, then) {
                None => placed = true,
                Some(back) => {
                    self.waiting_outbox = self.session.outbox_bytes();
                    self.waiting.push_front(back);
                    break;
                }
            }
        }
        // A line that shrank is pruned again once it has doubled from here.
        self.prune_at = self.prune_at.min((2 * self.waiting.len()).max(PRUNE_FROM));
        placed
    }

    /// Forgets waiting publishers whose callers stopped waiting.
    fn prune_waiting(&mut self) {
        self.waiting.retain(|(_, then)| !gave_up(then));
    }

    fn subscribe(
        &mut self,
        now: Instant,
        filter: &str,
        opts: &SubscribeOptions,
        subscriber: Subscriber,
        reply: ReplyTo<Result<SubId, Error>>,
    ) {
        if self.stopping {
            reply.send(Err(self.closed_error()));
            return;
        }
        let core_opts = core_client::SubscribeOptions {
            group: opts.group.as_deref(),
            start: opts.start,
            qos: opts.qos,
            credit: match window(opts.credit, self.default_credit) {
                Ok(w) => w,
                Err(e) => return reply.send(Err(e)),
            },
        };
        match self.session.subscribe(now, filter, &core_opts) {
            Ok(sub) => {
                self.subscribers.insert(sub.0, subscriber);
                self.subscribes.insert(sub.0, reply);
            }
            Err(e) => reply.send(Err(subscribe_error(e))),
        }
    }

    pub(super) fn unsubscribe(&mut self, now: Instant, sub: SubId) {
        self.subscribers.remove(&sub.0);
        if self.parked.as_ref().is_some_and(|m| m.sub == sub)
            && let Some(msg) = self.parked.take()
        {
            self.requeue(msg);
        }
        if let Err(e) = self.session.unsubscribe(now, sub) {
            debug!("unsubscribe {}: {e}", sub.0);
        }
    }

    /// Gives a message nobody will take back to the broker.
    pub(super) fn requeue(&mut self, mut msg: Message) {
        if let Some(id) = msg.disarm() {
            let _ = self.session.nack(id, true);
        }
    }
}

fn subscribe_error(e: SubscribeError) -> Error {
    match e {
        SubscribeError::InvalidFilter => Error::Invalid("invalid filter"),
        SubscribeError::FilterTooLong => Error::Invalid("filter longer than 128 bytes"),
        SubscribeError::InvalidGroup => Error::Invalid("group name empty or longer than 64 bytes"),
        SubscribeError::TableFull => Error::TooManySubscriptions,
        _ => Error::Invalid("subscription refused"),
    }
}

/// Below this length the line of waiting publishers is pruned of callers
/// that gave up at every publish; from it on, each time it has doubled
/// since the last pruning (or since it was half as long).
pub(super) const PRUNE_FROM: usize = 16;

/// Whether the caller waiting on a publish stopped waiting.
fn gave_up(then: &Then) -> bool {
    match then {
        Then::Reply(reply) => reply.is_closed(),
        Then::Request(reply, _) => reply.is_closed(),
        Then::Forget => false,
    }
}
