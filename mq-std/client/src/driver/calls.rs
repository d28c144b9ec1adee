//! The driver's side towards the application: each call ([`Command`]) becomes
//! a session command, and the caller is kept until the session's answer (or
//! the end of the session) settles it. Publishers that find the outbox full
//! wait here, first come first served.

use bytes::Bytes;
use mq_core::client::{self as core_client, PublishError, PublishId, SubId, SubscribeError};
use mq_core::wire::QoS;
use mq_core::{Instant, Reason};
use tracing::debug;

use super::command::{Command, ReplyTo};
use super::error::Error;
use super::message::{Message, PubAck};
use super::options::{Outgoing, SubscribeOptions, window};
use super::requests::ReplySub;
use super::{Driver, Subscriber, Then};

impl Driver {
    /// An application call.
    pub(crate) fn handle_command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Publish { msg, reply } => {
                if self.stopping {
                    reply.send(Err(self.closed_error()));
                } else {
                    self.enqueue(now, msg, Then::Reply(reply));
                }
            }
            Command::Request { msg, reply } => self.request(now, msg, reply),
            Command::Subscribe {
                filter,
                opts,
                sink,
                waiting,
                reply,
            } => self.subscribe(now, &filter, &opts, Subscriber { sink, waiting }, reply),
            Command::Unsubscribe(sub) => self.unsubscribe(now, sub),
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
            // stays full (a long outage with retrying callers).
            self.prune_waiting();
            self.waiting.push_back((msg, then));
            return;
        }
        if let Some(back) = self.try_publish(now, msg, then) {
            self.waiting_outbox = self.session.outbox_bytes();
            self.waiting.push_back(back);
        }
    }

    /// Hands a publish to the session; gives it back when the outbox is full.
    fn try_publish(&mut self, now: Instant, msg: Outgoing, then: Then) -> Option<(Outgoing, Then)> {
        let opts = core_client::PublishOptions {
            qos: msg.qos,
            meta: msg.meta(),
        };
        match self.session.publish(now, &msg.topic, &msg.payload, &opts) {
            Ok(PublishId(id)) => {
                match (msg.qos, then) {
                    (QoS::AtMostOnce, Then::Reply(reply)) => reply.send(Ok(PubAck {
                        seq: None,
                        duplicate: false,
                    })),
                    (QoS::AtMostOnce, Then::Request(_)) => {}
                    (QoS::AtLeastOnce, then) => {
                        self.publishes.insert(id, then);
                    }
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

    /// Answers whoever waits on a publish.
    pub(super) fn answer(&mut self, then: Then, result: Result<PubAck, Error>) {
        match (then, result) {
            (Then::Reply(reply), result) => reply.send(result),
            (Then::Request(corr), Err(e)) => self.requests.fail(corr, e),
            (Then::Request(_), Ok(_)) => {}
        }
    }

    /// Retries waiting publishers, first come first served, once
    /// acknowledgements (or writes, for QoS 0) freed outbox room. True when one
    /// was placed.
    pub(super) fn retry_waiting(&mut self, now: Instant) -> bool {
        if self.waiting.is_empty() || self.session.outbox_bytes() >= self.waiting_outbox {
            return false;
        }
        self.prune_waiting();
        let mut placed = false;
        while let Some((msg, then)) = self.waiting.pop_front() {
            match self.try_publish(now, msg, then) {
                None => placed = true,
                Some(back) => {
                    self.waiting_outbox = self.session.outbox_bytes();
                    self.waiting.push_front(back);
                    break;
                }
            }
        }
        placed
    }

    /// Forgets waiting publishers whose callers stopped waiting.
    fn prune_waiting(&mut self) {
        let requests = &self.requests.waiting;
        self.waiting.retain(|(_, then)| match then {
            Then::Reply(reply) => !reply.is_closed(),
            Then::Request(corr) => requests.get(corr).is_some_and(|r| !r.is_closed()),
        });
    }

    fn request(&mut self, now: Instant, mut msg: Outgoing, reply: ReplyTo<Result<Message, Error>>) {
        if self.stopping {
            reply.send(Err(self.closed_error()));
            return;
        }
        let corr = self.requests.next;
        self.requests.next += 1;
        msg.reply_to = Some(self.requests.topic.clone());
        msg.correlation = Some(Bytes::copy_from_slice(&corr.to_be_bytes()));
        // Requesters that gave up (timed out) leave nothing behind.
        self.requests.waiting.retain(|_, r| !r.is_closed());
        self.requests.waiting.insert(corr, reply);
        match self.requests.sub {
            ReplySub::Active(_) => self.enqueue(now, msg, Then::Request(corr)),
            ReplySub::Pending(_) => self.requests.held.push((corr, msg)),
            ReplySub::None => {
                let opts = core_client::SubscribeOptions {
                    credit: self.default_credit,
                    ..core_client::SubscribeOptions::default()
                };
                match self.session.subscribe(now, &self.requests.topic, &opts) {
                    Ok(sub) => {
                        self.requests.sub = ReplySub::Pending(sub);
                        self.requests.held.push((corr, msg));
                    }
                    Err(e) => self.requests.fail(corr, subscribe_error(e)),
                }
            }
        }
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
