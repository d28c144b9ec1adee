//! What the session tells the application: [`Event`]s, the messages they lend
//! ([`Delivery`], [`Chunk`]), and the queue that keeps events other than messages
//! in order with the messages waiting in the inbox.

use crate::framing::Framer;
use heapless::Deque;

use super::held::Settle;
use super::request::correlation_id;
use super::{AdminId, DeliveryId, PublishId, RequestFailure, RequestId, Session, SubId};
use crate::wire::{Meta, QoS, Reason};

/// What happened; returned by [`Session::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event<'a> {
    /// Open a transport to the broker now, then call
    /// [`Session::handle_connected`] (or [`Session::handle_disconnected`] if that
    /// fails).
    Connect,
    /// The broker accepted the session.
    Connected {
        /// A stored session was resumed: subscriptions and unacked deliveries
        /// survived.
        session_present: bool,
    },
    /// The connection is over. If the transport is still open, write what
    /// `poll_transmit` still returns (an `ErrorFrame` when the broker sent bad
    /// input), close it, then call [`Session::handle_disconnected`]. Every
    /// [`Event::Connect`] is eventually followed by a `Disconnected` or an
    /// [`Event::Closed`].
    Disconnected {
        /// Why: the broker's `Close` / `Error` reason, `KeepaliveTimeout`,
        /// `Timeout` (no `Welcome` in time), `Malformed` / `ProtocolViolation` /
        /// `FrameTooLarge` (bad input from the broker), or `Normal` when the
        /// transport closed without any of these.
        reason: Reason,
    },
    /// A QoS 1 publish is stored by the broker; its outbox entry is freed.
    Published {
        /// The publish.
        id: PublishId,
        /// Per-topic sequence number the broker gave it.
        seq: u64,
        /// The broker had already stored it (a resend after reconnect).
        duplicate: bool,
    },
    /// A publish was refused; its outbox entry (if any) is freed.
    PublishRejected {
        /// The publish.
        id: PublishId,
        /// Why; `MessageTooLarge` also when its headers alone exceed the broker's
        /// maximum frame.
        reason: Reason,
    },
    /// A subscription is active.
    Subscribed {
        /// The subscription.
        sub: SubId,
    },
    /// A subscription was refused and removed.
    SubscribeRejected {
        /// The subscription.
        sub: SubId,
        /// Why.
        reason: Reason,
    },
    /// A subscription ended and was removed.
    Unsubscribed {
        /// The subscription.
        sub: SubId,
    },
    /// A whole message; its bytes are valid until the next `poll_event`.
    Message(Delivery<'a>),
    /// A piece of a message too large for the inbox; valid until the next
    /// `poll_event`.
    Chunk(Chunk<'a>),
    /// The reply to a request of [`Session::request`]; valid until the next
    /// `poll_event`. The session acknowledged it (`delivery.id` is
    /// [`DeliveryId::NONE`]); `delivery.sub` is the session's reply
    /// subscription.
    Reply {
        /// The request.
        id: RequestId,
        /// The reply.
        delivery: Delivery<'a>,
    },
    /// The broker's answer to `Session::admin` (with `alloc`): the
    /// postcard encoding of its `AdminReply` (`broker::admin::AdminReply::decode`),
    /// valid until the next `poll_event`.
    AdminAnswer {
        /// The request.
        id: AdminId,
        /// The encoded answer.
        body: &'a [u8],
    },
    /// A request ended without a reply; its slot in the table is free again.
    RequestFailed {
        /// The request.
        id: RequestId,
        /// Why.
        reason: RequestFailure,
    },
    /// The session is closed: after [`Session::close`] (its `Close` frame was
    /// written by `poll_transmit`), or after the broker refused it for good
    /// (`BadToken`, `UnsupportedVersion`, `SessionTakenOver`). Close the
    /// transport; nothing reconnects.
    Closed,
}

/// A message delivered to a subscription, borrowing the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Delivery<'a> {
    /// Ack or nack it with this (QoS 1); [`DeliveryId::NONE`] for QoS 0.
    pub id: DeliveryId,
    /// The subscription it arrived on.
    pub sub: SubId,
    /// The topic it was published to.
    pub topic: &'a str,
    /// Its per-topic sequence number.
    pub seq: u64,
    /// 1 for the first delivery, higher for redeliveries.
    pub attempt: u16,
    /// QoS it was delivered with.
    pub qos: QoS,
    /// Properties (reply-to, correlation, headers, ...).
    pub meta: Meta<'a>,
    /// The payload.
    pub payload: &'a [u8],
}

/// One piece of a message larger than the inbox, in order, borrowing the inbox.
///
/// Ack the [`DeliveryId`] once, after the chunk with `last` set. If the connection
/// drops before `last`, the pieces stop; a QoS 1 message then arrives again from
/// offset 0 under a new id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Chunk<'a> {
    /// The delivery, the same for every chunk of the message.
    pub id: DeliveryId,
    /// The subscription it arrived on.
    pub sub: SubId,
    /// The topic it was published to.
    pub topic: &'a str,
    /// Its per-topic sequence number.
    pub seq: u64,
    /// 1 for the first delivery, higher for redeliveries.
    pub attempt: u16,
    /// QoS it was delivered with.
    pub qos: QoS,
    /// Properties: on the first chunk (offset 0) only; empty on the others.
    pub meta: Meta<'a>,
    /// Where `data` starts in the whole payload.
    pub offset: u64,
    /// Length of the whole payload.
    pub total: u64,
    /// This piece.
    pub data: &'a [u8],
    /// The last piece: `offset + data.len() == total`.
    pub last: bool,
}

/// Events queued besides messages (messages live in the inbox).
const EVENTS: usize = 16;
/// Event slots input handling leaves free for lifecycle events (`Disconnected`,
/// `Connect`, `Closed`), which are produced without a way to push back.
const RESERVE: usize = 4;

/// An event other than a message, stored compactly until polled: the session
/// queues these ([`Session::push_event`]), and [`Note::event`] makes the
/// [`Event`] the application sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Note {
    Connect,
    Connected(bool),
    Disconnected(Reason),
    Published(u32, u64, bool),
    PublishRejected(u32, Reason),
    Subscribed(u32),
    SubscribeRejected(u32, Reason),
    Unsubscribed(u32),
    Closed,
}

impl Note {
    /// The event the note stands for.
    ///
    /// Out of line on devices: inlined into `poll_event`, its one caller,
    /// the firmware was 4 bytes larger.
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(super) fn event(self) -> Event<'static> {
        match self {
            Note::Connect => Event::Connect,
            Note::Connected(session_present) => Event::Connected { session_present },
            Note::Disconnected(reason) => Event::Disconnected { reason },
            Note::Published(id, seq, duplicate) => Event::Published {
                id: PublishId(id),
                seq,
                duplicate,
            },
            Note::PublishRejected(id, reason) => Event::PublishRejected {
                id: PublishId(id),
                reason,
            },
            Note::Subscribed(sub) => Event::Subscribed { sub: SubId(sub) },
            Note::SubscribeRejected(sub, reason) => Event::SubscribeRejected {
                sub: SubId(sub),
                reason,
            },
            Note::Unsubscribed(sub) => Event::Unsubscribed { sub: SubId(sub) },
            Note::Closed => Event::Closed,
        }
    }
}

/// Notes waiting for `poll_event`, each stamped with the number of messages
/// queued in the inbox before it, so that it comes out after them.
#[derive(Debug)]
pub(super) struct Events {
    queue: Deque<(u32, Note), EVENTS>,
    /// Messages (and chunks) placed in the inbox so far.
    msgs_queued: u32,
    /// Messages (and chunks) shown to the application so far.
    msgs_emitted: u32,
}

impl Events {
    // Devices leave the zeroed slot's bytes as they are instead.
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(super) const fn new() -> Self {
        Events {
            queue: Deque::new(),
            msgs_queued: 0,
            msgs_emitted: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether `n` more notes fit while keeping the lifecycle reserve.
    pub(super) fn room(&self, n: usize) -> bool {
        self.queue.len() + n + RESERVE <= EVENTS
    }

    /// Queues an event behind the messages queued so far; when the queue
    /// overflows the event is lost and `overflowed` counted. Messages are not
    /// queued here: they live in the inbox (and request failures in their
    /// table), so only the events a [`Note`] can say are taken.
    ///
    /// Out of line on devices: inlined, the deque's push and the count were
    /// copied to each of the session's dozen call sites.
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(super) fn push(&mut self, note: Note, overflowed: &mut u64) {
        if self.queue.push_back((self.msgs_queued, note)).is_err() {
            warn!("event queue overflow: poll_event is not being drained");
            *overflowed += 1;
        }
    }

    /// A message (or chunk) became ready in the inbox.
    pub(super) fn message_queued(&mut self) {
        self.msgs_queued = self.msgs_queued.wrapping_add(1);
    }

    /// A message (or chunk) was shown to the application.
    pub(super) fn message_emitted(&mut self) {
        self.msgs_emitted = self.msgs_emitted.wrapping_add(1);
    }

    /// Whether the oldest note is due: no message queued before it is still
    /// waiting.
    pub(super) fn front_is_due(&self) -> bool {
        matches!(self.queue.front(), Some(&(stamp, _)) if stamp == self.msgs_emitted)
    }

    /// The oldest note, whatever its stamp.
    pub(super) fn pop(&mut self) -> Option<Note> {
        self.queue.pop_front().map(|(_, note)| note)
    }
}

impl<B, const SUBS: usize, const HELD: usize, const REQS: usize, F: Framer>
    Session<B, SUBS, HELD, REQS, F>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    /// The next event, in order. A [`Event::Message`] or [`Event::Chunk`] borrows
    /// the inbox until the next call, which releases its space.
    // Out of line on devices: inlined into the application's loop it made
    // the firmware 256 bytes larger (the receive path's `on_first`,
    // `on_fragment`, `on_deliver` or `settle` out of line as well made it
    // larger again).
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        // A note due before the next message comes first; the message shown
        // last is released either way. One pop for both cases.
        let head = if self.events.front_is_due() {
            self.inbox.release_shown();
            None
        } else {
            self.inbox.take_next()
        };
        let Some((head, lens)) = head else {
            // The due note, or with no message ready whatever is queued (all
            // of it is due then); request failures last.
            return match self.events.pop() {
                Some(note) => Some(note.event()),
                None => self
                    .requests
                    .take_failed()
                    .map(|(id, reason)| Event::RequestFailed { id, reason }),
            };
        };
        self.events.message_emitted();
        #[cfg(feature = "alloc")]
        if head.admin {
            let view = self.inbox.shown(&lens)?;
            return Some(Event::AdminAnswer {
                id: AdminId(head.sub),
                body: view.data,
            });
        }
        let complete = !head.chunk || head.last;
        if complete {
            self.stats.deliveries += 1;
            if head.qos == QoS::AtMostOnce
                && let Some(s) = self.subs.by_id_mut(head.sub)
            {
                s.owed = s.owed.saturating_add(1);
            }
        }
        let (mut id, sub) = (DeliveryId(head.id), SubId(head.sub));
        let reply = Self::REQUESTS && head.reply;
        if reply {
            // The application does not see the reply subscription: the session
            // acknowledges its deliveries (a stale ack is repeated on
            // redelivery).
            let _ = self.settle(id, Settle::Ack);
            id = DeliveryId::NONE;
        }
        let view = self.inbox.shown(&lens)?;
        if head.chunk {
            return Some(Event::Chunk(Chunk {
                id,
                sub,
                topic: view.topic,
                seq: head.seq,
                attempt: head.attempt,
                qos: head.qos,
                meta: view.meta,
                offset: head.offset,
                total: head.total,
                data: view.data,
                last: head.last,
            }));
        }
        // Built where it is returned: a `Delivery` built first and moved
        // into its event was a copy of it.
        let delivery = || Delivery {
            id,
            sub,
            topic: view.topic,
            seq: head.seq,
            attempt: head.attempt,
            qos: head.qos,
            meta: view.meta,
            payload: view.data,
        };
        if reply {
            return Some(Event::Reply {
                id: RequestId(correlation_id(view.meta.correlation).unwrap_or(0)),
                delivery: delivery(),
            });
        }
        Some(Event::Message(delivery()))
    }

    /// Queues an event for the application (counted when the queue overflows).
    pub(super) fn push_event(&mut self, note: Note) {
        self.events.push(note, &mut self.stats.events_overflowed);
    }
}

#[cfg(test)]
mod tests {
    use super::{EVENTS, Events, Note};

    /// A device's session leaves its event queue as the zeroed slot holds
    /// it: zeros are `Events::new()`.
    #[test]
    fn zeros_are_new() {
        // SAFETY: every field is an integer, a `bool` or uninitialised
        // storage, for which zeros are valid.
        let zeros: Events = unsafe { core::mem::zeroed() };
        assert_eq!(
            alloc::format!("{zeros:?}"),
            alloc::format!("{:?}", Events::new())
        );
        assert!(zeros.is_empty() && zeros.room(EVENTS - super::RESERVE));
    }

    #[test]
    fn a_full_queue_keeps_what_it_has_and_counts_what_it_loses() {
        let mut events = Events::new();
        let mut lost = 0;
        let total = EVENTS as u32 + 3;
        for sub in 0..total {
            events.push(Note::Subscribed(sub), &mut lost);
        }
        assert_eq!(lost, 3);
        for sub in 0..EVENTS as u32 {
            assert_eq!(events.pop(), Some(Note::Subscribed(sub)));
        }
        assert_eq!(events.pop(), None);
        events.push(Note::Closed, &mut lost);
        assert_eq!((events.pop(), lost), (Some(Note::Closed), 3));
    }
}
