//! A bounded message queue: a subscription's own, or a group's shared one.
//!
//! A queue holds the messages its consumer has not acked yet: those waiting
//! (`ready` by priority, first in first out within a priority, plus `retry`,
//! redeliveries held back until their backoff passes) and those in flight. The bound counts all of them, so a queue never
//! holds more than its limits, whatever the consumers do. A queue that started
//! with a [`Replay`] serves it before its live messages.

use alloc::collections::BTreeMap;

use super::config::{Overflow, QueueLimits};
use super::message::Msg;
use super::ready::Ready;
use super::replay::Replay;
use super::router::Topics;
use super::slab::Key;
use crate::time::Instant;

/// A message waiting in a queue.
#[derive(Clone)]
pub(crate) struct Queued {
    pub msg: Msg,
    /// Deliveries made so far.
    pub attempt: u16,
    /// A group member that should not get it next (it just failed it).
    pub avoid: Option<Key>,
    /// From the topic's retained slot (MQTT), queued by a subscribe.
    pub retained: bool,
}

/// What happened to an offered message.
pub(crate) enum Offer {
    /// Queued.
    Accepted,
    /// Queued after dropping the oldest waiting message, returned here.
    DroppedOldest(Queued),
    /// Not queued: the queue is full (the policy decides what that means).
    Full(Queued),
}

pub(crate) struct Queue {
    ready: Ready,
    retry: BTreeMap<(Instant, u64), Queued>,
    retry_order: u64,
    waiting_bytes: usize,
    inflight: usize,
    inflight_bytes: usize,
    /// Room promised to admitted messages still waiting for the store: they
    /// count against the bounds from admission, so a queue never takes more
    /// than its bound (or acks what it must then drop) when the store is slow.
    reserved: usize,
    reserved_bytes: usize,
    pub limits: QueueLimits,
    /// Retained messages to deliver before the live ones.
    pub replay: Option<Replay>,
    /// Slot of the timer for the earliest held-back retry.
    pub retry_timer: Option<Instant>,
    /// Shed as a slow consumer's ([`Overflow::Pace`]): refuses instead of
    /// holding publishers until it has drained to half its bounds.
    pub shed: bool,
    /// Messages dead-lettered from it (for the admin view).
    pub dead_lettered: u64,
}

impl Queue {
    pub(crate) fn new(limits: QueueLimits) -> Self {
        Queue {
            ready: Ready::default(),
            retry: BTreeMap::new(),
            retry_order: 0,
            waiting_bytes: 0,
            inflight: 0,
            inflight_bytes: 0,
            reserved: 0,
            reserved_bytes: 0,
            limits,
            replay: None,
            retry_timer: None,
            shed: false,
            dead_lettered: 0,
        }
    }

    /// Whether a full queue refuses new messages (rather than holding the
    /// publisher or dropping its oldest): `RejectNew`, or a shed `Pace` one.
    pub(crate) fn refuses_when_full(&self) -> bool {
        match self.limits.overflow {
            Overflow::RejectNew => true,
            Overflow::Pace { .. } => self.shed,
            Overflow::Block { .. } | Overflow::DropOldest => false,
        }
    }

    /// A shed queue that has drained to half its bounds paces publishers
    /// again.
    pub(crate) fn unshed_if_drained(&mut self) {
        if self.shed
            && self.occupancy() + self.reserved <= self.limits.max_messages / 2
            && self.bytes() + self.reserved_bytes <= self.limits.max_bytes / 2
        {
            self.shed = false;
        }
    }

    /// Messages waiting (ready or held for retry).
    pub(crate) fn waiting(&self) -> usize {
        self.ready.len() + self.retry.len()
    }

    /// Everything the queue is responsible for: waiting plus in flight.
    pub(crate) fn occupancy(&self) -> usize {
        self.waiting() + self.inflight
    }

    pub(crate) fn bytes(&self) -> usize {
        self.waiting_bytes + self.inflight_bytes
    }

    pub(crate) fn inflight(&self) -> usize {
        self.inflight
    }

    /// Would one more message of `size` bytes exceed the bounds, counting the
    /// room reserved for admitted messages? (The admission test.)
    pub(crate) fn is_full_for(&self, size: usize) -> bool {
        self.over_bounds(self.reserved, self.reserved_bytes, size)
    }

    /// Would one more message of `size` bytes exceed the bounds with what the
    /// queue holds now? (The test when a message arrives: its room was
    /// reserved, and the others' reservations are theirs.)
    fn has_no_room_for(&self, size: usize) -> bool {
        self.over_bounds(0, 0, size)
    }

    fn over_bounds(&self, count: usize, bytes: usize, size: usize) -> bool {
        let bytes = self.bytes() + bytes;
        self.occupancy() + count >= self.limits.max_messages
            || (bytes > 0 && bytes + size > self.limits.max_bytes)
    }

    /// Holds room for an admitted message until it is offered.
    pub(crate) fn reserve(&mut self, size: usize) {
        self.reserved += 1;
        self.reserved_bytes += size;
    }

    /// Gives back the room [`reserve`](Self::reserve) held, just before the
    /// message is offered.
    pub(crate) fn unreserve(&mut self, size: usize) {
        self.reserved = self.reserved.saturating_sub(1);
        self.reserved_bytes = self.reserved_bytes.saturating_sub(size);
    }

    /// Appends a new message, applying the overflow policy.
    pub(crate) fn offer(&mut self, q: Queued) -> Offer {
        let size = q.msg.payload_len;
        if !self.has_no_room_for(size) {
            self.push_back(q);
            return Offer::Accepted;
        }
        // The oldest of the lowest priority makes room, unless the new one is
        // of a lower priority than everything waiting: then it is the one to go.
        if self.limits.overflow == Overflow::DropOldest
            && self
                .ready
                .least_priority()
                .is_some_and(|least| least <= q.msg.priority)
            && let Some((old, place)) = self.ready.pop_least()
        {
            self.waiting_bytes -= old.msg.payload_len;
            if !self.has_no_room_for(size) {
                self.push_back(q);
                return Offer::DroppedOldest(old);
            }
            // Still full (bytes): keep the new one out, put the old one back.
            self.waiting_bytes += old.msg.payload_len;
            self.ready.put_back(old, place);
        }
        Offer::Full(q)
    }

    /// Appends without checking the bounds (replays the caller checked).
    pub(crate) fn push_back(&mut self, q: Queued) {
        self.waiting_bytes += q.msg.payload_len;
        self.ready.push_back(q);
    }

    /// Appends a message restored from the store, without checking the
    /// bounds: behind the others restored, ahead of every later message
    /// whatever its priority (it may have been delivered before the restart).
    pub(crate) fn push_restored(&mut self, q: Queued) {
        self.waiting_bytes += q.msg.payload_len;
        self.ready.push_restored(q);
    }

    /// The next message that may be delivered now: due retries first, then
    /// the replay, then live messages. `topics` is the router's topic table,
    /// which a replay reads from. The flag says whether the message was
    /// waiting in the queue (a replayed one was not).
    pub(crate) fn pop(&mut self, now: Instant, topics: &Topics) -> Option<(Queued, bool)> {
        let q = match self.retry.first_key_value() {
            Some((&(at, _), _)) if at <= now => self.retry.pop_first().map(|(_, q)| q),
            _ => {
                if let Some(replay) = self.replay.as_mut() {
                    if let Some(msg) = replay.next(now, topics) {
                        let q = Queued {
                            msg,
                            attempt: 0,
                            avoid: None,
                            retained: false,
                        };
                        return Some((q, false));
                    }
                    self.replay = None;
                }
                self.ready.pop_front()
            }
        }?;
        self.waiting_bytes -= q.msg.payload_len;
        Some((q, true))
    }

    /// A popped message went out as a delivery.
    pub(crate) fn mark_inflight(&mut self, size: usize) {
        self.inflight += 1;
        self.inflight_bytes += size;
    }

    /// A delivery ended (acked, or about to be requeued or dead-lettered).
    pub(crate) fn end_inflight(&mut self, size: usize) {
        self.inflight = self.inflight.saturating_sub(1);
        self.inflight_bytes = self.inflight_bytes.saturating_sub(size);
    }

    /// Holds a message back until `at` (redelivery backoff).
    pub(crate) fn retry_at(&mut self, at: Instant, q: Queued) {
        self.waiting_bytes += q.msg.payload_len;
        self.retry_order += 1;
        self.retry.insert((at, self.retry_order), q);
    }

    /// Puts messages that were in flight back ahead of every waiting one (of
    /// any priority), oldest first.
    pub(crate) fn requeue_front(&mut self, mut items: alloc::vec::Vec<Queued>) {
        items.sort_by_key(|q| core::cmp::Reverse(q.msg.id));
        for q in items {
            self.waiting_bytes += q.msg.payload_len;
            self.ready.push_returned(q);
        }
    }

    /// When the earliest held-back retry becomes deliverable.
    pub(crate) fn next_retry(&self) -> Option<Instant> {
        self.retry.first_key_value().map(|(&(at, _), _)| at)
    }

    /// Whether anything can be delivered at `now`.
    pub(crate) fn has_ready(&self, now: Instant) -> bool {
        !self.ready.is_empty()
            || self.replay.as_ref().is_some_and(Replay::has_next)
            || self.next_retry().is_some_and(|at| at <= now)
    }

    /// Nothing waits and nothing is left to replay.
    pub(crate) fn is_idle(&self) -> bool {
        self.waiting() == 0 && self.replay.is_none()
    }

    /// Removes a waiting message by id (restore applies acks this way).
    pub(crate) fn remove_id(&mut self, id: u64) -> Option<Queued> {
        if let Some(q) = self.ready.remove_id(id) {
            self.waiting_bytes -= q.msg.payload_len;
            return Some(q);
        }
        let key = self
            .retry
            .iter()
            .find(|(_, q)| q.msg.id == id)
            .map(|(k, _)| *k)?;
        let q = self.retry.remove(&key)?;
        self.waiting_bytes -= q.msg.payload_len;
        Some(q)
    }

    /// Removes the first message `pick` selects among those that wait to
    /// come again: returned or restored ones, and retries held back.
    pub(crate) fn remove_returned(&mut self, pick: impl Fn(&Queued) -> bool) -> Option<Queued> {
        let q = match self.ready.remove_returned(&pick) {
            Some(q) => q,
            None => {
                let key = *self.retry.iter().find(|(_, q)| pick(q))?.0;
                self.retry.remove(&key)?
            }
        };
        self.waiting_bytes -= q.msg.payload_len;
        Some(q)
    }

    /// Removes every waiting message `drop` selects, handing each to `on_drop`.
    pub(crate) fn remove_where(
        &mut self,
        mut drop: impl FnMut(&Queued) -> bool,
        mut on_drop: impl FnMut(Queued),
    ) {
        let mut freed = 0;
        self.ready.remove_where(&mut drop, |q| {
            freed += q.msg.payload_len;
            on_drop(q);
        });
        self.waiting_bytes -= freed;
        let keys: alloc::vec::Vec<_> = self
            .retry
            .iter()
            .filter(|(_, q)| drop(q))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some(q) = self.retry.remove(&k) {
                self.waiting_bytes -= q.msg.payload_len;
                on_drop(q);
            }
        }
    }

    /// Visits every waiting message.
    pub(crate) fn for_each_waiting(&self, f: &mut impl FnMut(&Queued)) {
        self.ready.iter().for_each(&mut *f);
        self.retry.values().for_each(f);
    }

    /// Empties the queue of waiting messages.
    pub(crate) fn drain_waiting(&mut self) -> impl Iterator<Item = Queued> + '_ {
        self.waiting_bytes = 0;
        let retry = core::mem::take(&mut self.retry);
        self.ready.drain().chain(retry.into_values())
    }
}
