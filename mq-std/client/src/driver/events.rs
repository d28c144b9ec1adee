//! The session's events, each answered: callers waiting for a publish,
//! a subscribe, a request or the first connection; messages placed in
//! their subscription's sink.

use std::io;
use std::sync::atomic::{Ordering, fence};

use bytes::Bytes;
use mq_core::client::{Event, RequestFailure, SubId};
use mq_core::{Instant, Reason};
use tracing::debug;

use super::assemble::reassemble;
use super::{Driver, Error, Message, Offer, PubAck};

impl Driver {
    /// The next session event, with what it borrows copied out.
    pub(super) fn next_event(&mut self) -> Option<Happened> {
        let settler = &self.settler;
        let partial = &mut self.partial;
        Some(match self.session.poll_event()? {
            Event::Connect => Happened::Connect,
            Event::Connected { session_present } => Happened::Connected(session_present),
            Event::Disconnected { reason } => Happened::Disconnected(reason),
            Event::Published { id, seq, duplicate } => Happened::Published {
                id: id.0,
                ack: PubAck {
                    seq: Some(seq),
                    duplicate,
                },
            },
            Event::PublishRejected { id, reason } => Happened::PublishRejected(id.0, reason),
            Event::Subscribed { sub } => Happened::Subscribed(sub),
            Event::SubscribeRejected { sub, reason } => Happened::SubscribeRejected(sub, reason),
            Event::Unsubscribed { sub } => Happened::Unsubscribed(sub),
            Event::Message(d) => {
                Happened::Message(Message::new(&d, Bytes::copy_from_slice(d.payload), settler))
            }
            Event::Chunk(c) => match reassemble(partial, &c, settler) {
                Some(msg) => Happened::Message(msg),
                None => Happened::Piece,
            },
            Event::Reply { id, delivery } => Happened::Reply(
                id.0,
                Message::new(&delivery, Bytes::copy_from_slice(delivery.payload), settler),
            ),
            Event::RequestFailed { id, reason } => Happened::RequestFailed(id.0, reason),
            Event::AdminAnswer { id, body } => Happened::AdminAnswer(id.0, body.to_vec()),
            Event::Closed => Happened::Closed,
        })
    }

    pub(super) fn on_event(&mut self, now: Instant, happened: Happened) {
        match happened {
            Happened::Connect => self.want_connect = true,
            Happened::Connected(session_present) => {
                debug!("connected, session present: {session_present}");
                self.welcomed = true;
                self.size_output();
                if let Some(w) = self.connect_waiter.take() {
                    // What the caller sees first says connected.
                    self.publish_stats();
                    w.send(Ok(()));
                }
            }
            Happened::Disconnected(reason) => {
                debug!("disconnected: {reason}");
                self.last_reason = reason;
                self.want_disconnect = true;
                self.admins_lost();
                if !self.welcomed
                    && let Some(w) = self.connect_waiter.take()
                {
                    w.send(Err(self.first_failure(reason)));
                    self.session.close(now);
                }
            }
            Happened::Published { id, ack } => {
                if let Some(then) = self.publishes.remove(&id) {
                    self.answer(then, Ok(ack));
                }
            }
            Happened::PublishRejected(id, reason) => {
                if let Some(then) = self.publishes.remove(&id) {
                    self.answer(then, Err(Error::Rejected(reason)));
                }
            }
            Happened::Subscribed(sub) => {
                if let Some(reply) = self.subscribes.remove(&sub.0) {
                    if reply.is_closed() {
                        self.unsubscribe(now, sub);
                    } else {
                        reply.send(Ok(sub));
                    }
                }
            }
            Happened::SubscribeRejected(sub, reason) => {
                self.subscribers.remove(&sub.0);
                if let Some(reply) = self.subscribes.remove(&sub.0) {
                    reply.send(Err(Error::Rejected(reason)));
                }
            }
            Happened::Unsubscribed(sub) => {
                self.subscribers.remove(&sub.0);
                if let Some(reply) = self.subscribes.remove(&sub.0) {
                    reply.send(Err(self.closed_error()));
                }
            }
            Happened::Message(msg) => self.offer(now, msg),
            Happened::Reply(id, msg) => {
                self.request_ended();
                if let Some(reply) = self.requests.remove(&id) {
                    reply.send(Ok(msg));
                }
            }
            Happened::RequestFailed(id, failure) => {
                self.request_ended();
                if let Some(reply) = self.requests.remove(&id) {
                    reply.send(Err(request_error(failure)));
                }
            }
            Happened::AdminAnswer(id, body) => self.admin_answered(id, &body),
            Happened::Piece => {}
            Happened::Closed => {
                debug!("session closed: {}", self.final_reason());
                self.stopping = true;
            }
        }
    }

    /// Why the first connection attempt failed, for `connect`.
    fn first_failure(&mut self, reason: Reason) -> Error {
        if let Some(e) = self.connect_error.take() {
            return Error::Io(e);
        }
        match reason {
            Reason::Normal => Error::Io(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the connection closed before the broker's welcome",
            )),
            Reason::Timeout => Error::Timeout,
            reason => Error::Refused(reason),
        }
    }

    /// Places a message in its sink, or parks it when the sink is full.
    pub(super) fn offer(&mut self, now: Instant, msg: Message) {
        let sub = msg.sub;
        let Some(s) = self.subscribers.get_mut(&sub.0) else {
            // Unsubscribed: deliveries may arrive until the broker confirms.
            self.requeue(msg);
            return;
        };
        let msg = match s.sink.offer(msg) {
            Offer::Taken => return,
            Offer::Full(msg) => {
                s.waiting.store(true, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                match s.sink.offer(msg) {
                    Offer::Taken => return,
                    Offer::Full(msg) => {
                        self.parked = Some(msg);
                        return;
                    }
                    Offer::Closed(msg) => msg,
                }
            }
            Offer::Closed(msg) => msg,
        };
        // The application dropped the subscription.
        self.unsubscribe(now, sub);
        self.requeue(msg);
    }
}

/// A session event with its borrowed parts copied out.
pub(super) enum Happened {
    Connect,
    Connected(bool),
    Disconnected(Reason),
    Published {
        id: u32,
        ack: PubAck,
    },
    PublishRejected(u32, Reason),
    Subscribed(SubId),
    SubscribeRejected(SubId, Reason),
    Unsubscribed(SubId),
    Message(Message),
    /// A reply to the session's request with this id.
    Reply(u64, Message),
    RequestFailed(u64, RequestFailure),
    AdminAnswer(u32, Vec<u8>),
    /// A piece of a large message, kept until the last one.
    Piece,
    Closed,
}

/// What a requester sees when the session gives up on its request.
fn request_error(failure: RequestFailure) -> Error {
    match failure {
        RequestFailure::Timeout => Error::Timeout,
        RequestFailure::Rejected(reason) | RequestFailure::ReplySubscriptionRejected(reason) => {
            Error::Rejected(reason)
        }
        RequestFailure::SessionLost => Error::Io(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the session ended before the reply came",
        )),
        RequestFailure::ReplyTooLarge => Error::TooLarge,
        _ => Error::Invalid("request failed"),
    }
}
