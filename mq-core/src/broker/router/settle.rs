//! Settling deliveries: acks, nacks, missed ack deadlines, redelivery backoff,
//! dead letters, and the cursors that `Start::Cursor` resumes from.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use super::{InFlight, Pending, Router};
use crate::broker::command::Via;
use crate::broker::message::Msg;
use crate::broker::queue::Queued;
use crate::broker::slab::Key;
use crate::broker::timers::{Target, Timer};
use crate::time::Instant;
use crate::topic::Topic;
use crate::wire::{AckMessage, QoS, topic_hash};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    Ack,
    Requeue,
    DeadLetter,
}

impl Router {
    /// Removes an in-flight delivery. The session's timer stays where it is:
    /// moving it at every ack would cost more than the rare early wake-up.
    pub(super) fn take_inflight(&mut self, session: Key, tag: u64) -> Option<InFlight> {
        let s = self.sessions.get_mut(session)?;
        let f = s.inflight.remove(tag)?;
        self.stats.current_inflight = self.stats.current_inflight.saturating_sub(1);
        Some(f)
    }

    /// Ends an in-flight delivery: its credit comes back to the subscription
    /// and its queue no longer counts it.
    pub(super) fn end_delivery(&mut self, session: Key, tag: u64) -> Option<InFlight> {
        let f = self.take_inflight(session, tag)?;
        if let Some(sub) = self.subs.get_mut(f.sub) {
            sub.credit = sub.credit.saturating_add(1).min(self.cfg.max_credit);
        }
        if let Some(q) = self.queue_mut(f.target) {
            q.end_inflight(f.msg.payload_len);
        }
        Some(f)
    }

    pub(super) fn settle(&mut self, session: Key, tag: u64, how: Settle, now: Instant) {
        // Unknown tag: from before a reconnect, or settled already.
        let Some(f) = self.end_delivery(session, tag) else {
            return;
        };
        match how {
            Settle::Ack => {
                self.stats.acked += 1;
                self.finish(f.target, &f.msg);
                self.advance_cursor(session, f.sub, &f.msg);
                // Usually its last holder: the next message is written over it.
                self.spare_msgs.give(f.msg);
            }
            Settle::Requeue if f.attempt < self.cfg.max_attempts => {
                self.stats.nacked += 1;
                let at = now + self.backoff(f.attempt);
                let avoid = matches!(f.target, Target::Group(_)).then_some(f.sub);
                let target = f.target;
                if let Some(q) = super::queue_in(&mut self.subs, &mut self.groups, target) {
                    q.retry_at(
                        at,
                        Queued {
                            msg: f.msg,
                            attempt: f.attempt,
                            avoid,
                            retained: false,
                        },
                    );
                    self.timers
                        .set_earlier(&mut q.retry_timer, Timer::Retry(target), at);
                    self.stats.current_queued += 1;
                }
            }
            Settle::Requeue | Settle::DeadLetter => {
                self.stats.nacked += 1;
                if let Some(q) = self.queue_mut(f.target) {
                    q.dead_lettered += 1;
                }
                self.finish(f.target, &f.msg);
                self.dead_letter(now, &f.msg);
            }
        }
        let sub_target = self.target_of(f.sub);
        self.pump(f.target, now);
        if sub_target != f.target {
            self.pump(sub_target, now);
        }
        self.retry_all_parked(now);
    }

    /// A resumed client's ack of a message by what identifies it: the
    /// message, if it waits to come again for the subscription (or its
    /// group: returned, restored or held back for a retry), is settled as
    /// acked instead. Only those are searched, so that a client cannot make
    /// the broker walk a whole backlog with each frame. (Node links, whose
    /// deliveries carry the message id as their sequence, never send it.)
    pub(super) fn ack_message(&mut self, session: Key, a: AckMessage, now: Instant) {
        let Some(&sub) = self.sessions.get(session).and_then(|s| s.subs.get(&a.sub)) else {
            return;
        };
        let target = self.target_of(sub);
        let Some(queue) = super::queue_in(&mut self.subs, &mut self.groups, target) else {
            return;
        };
        let Some(q) = queue
            .remove_returned(|q| q.msg.seq == a.seq && topic_hash(&q.msg.topic) == a.topic_hash)
        else {
            return;
        };
        self.stats.current_queued = self.stats.current_queued.saturating_sub(1);
        self.stats.acked += 1;
        self.finish(target, &q.msg);
        self.advance_cursor(session, sub, &q.msg);
        self.pump(target, now);
        self.retry_all_parked(now);
    }

    /// The session's timer fired: every delivery past its ack deadline counts
    /// a missed attempt (see [`missed_deadline`](Self::missed_deadline)).
    pub(super) fn ack_deadlines(&mut self, session: Key, now: Instant) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        s.timer = None;
        for tag in s.inflight.due(now) {
            self.missed_deadline(session, tag, now);
        }
        if let Some(s) = self.sessions.get_mut(session) {
            let next = s.inflight.first_deadline();
            self.timers
                .reset(&mut s.timer, Timer::Session(session), next);
        }
    }

    /// A delivery missed its ack deadline. A group's message goes back to
    /// the group for another member (the late member's ack no longer counts).
    /// Otherwise the delivery stays where it is, with its tag and its credit,
    /// under a new deadline: sending it again on the same connection would
    /// reach a client that still holds it (and absorbs the copy) or has acked
    /// it already (its ack on the way), and a client that has acked more
    /// messages since than it remembers would show the copy to its
    /// application as new. Either way, after `max_attempts` deadlines the
    /// message is dead-lettered.
    fn missed_deadline(&mut self, session: Key, tag: u64, now: Instant) {
        let Some(f) = self.sessions.get(session).and_then(|s| s.inflight.get(tag)) else {
            return;
        };
        let (sub, target, attempt) = (f.sub, f.target, f.attempt);
        // A node link's far end drops copies by message id: its deliveries
        // are sent again as before.
        let link = self.subs.get(sub).is_none_or(|s| s.outbox);
        let stays = attempt < self.cfg.max_attempts && !link && !self.has_other_member(target, sub);
        let Some(at) = self.cfg.ack_timeout.filter(|_| stays).map(|t| now + t) else {
            // `settle` requeues below the limit and dead-letters at it.
            self.settle(session, tag, Settle::Requeue, now);
            return;
        };
        self.stats.ack_timeouts += 1;
        if let Some(s) = self.sessions.get_mut(session) {
            s.inflight.rearm(tag, at);
        }
    }

    /// Whether `target` is a group with a member besides `sub` that is
    /// active and connected (one that could take the message).
    fn has_other_member(&self, target: Target, sub: Key) -> bool {
        let Target::Group(g) = target else {
            return false;
        };
        let connected = |m: &Key| {
            self.subs.get(*m).is_some_and(|s| {
                s.active
                    && self
                        .sessions
                        .get(s.session)
                        .is_some_and(|x| x.conn.is_some())
            })
        };
        self.groups
            .get(g)
            .is_some_and(|g| g.members.iter().any(|m| *m != sub && connected(m)))
    }

    /// Only persistent sessions keep cursors: the others pay for nothing
    /// here (this runs at every ack).
    pub(super) fn advance_cursor(&mut self, session: Key, sub: Key, msg: &Msg) {
        let Some(sub) = self.subs.get(sub) else {
            return;
        };
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if !s.persistent {
            return;
        }
        // A message from before its topic was deleted moves no cursor.
        if self
            .topics
            .get(&msg.topic)
            .is_none_or(|t| msg.id < t.since_id)
        {
            return;
        }
        // One look-up on the way every ack takes: the filter's map exists
        // after its first ack (`entry` would take an owned key each time).
        if let Some(cursors) = s.cursors.get_mut(&sub.filter) {
            raise_cursor(cursors, msg);
            return;
        }
        raise_cursor(s.cursors.entry(sub.filter.clone()).or_default(), msg);
    }

    fn backoff(&mut self, attempt: u16) -> Duration {
        let b = self.cfg.backoff;
        let factor =
            u64::from(b.multiplier.max(1)).saturating_pow(u32::from(attempt.saturating_sub(1)));
        let base = b
            .initial
            .as_micros()
            .saturating_mul(u128::from(factor))
            .min(b.max.as_micros()) as u64;
        let spread = (base as f32 * b.jitter.clamp(0.0, 1.0)) as u64;
        let jitter = if spread == 0 {
            0
        } else {
            self.next_rand() % (2 * spread + 1)
        };
        Duration::from_micros(base - spread + jitter)
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Publishes a copy of `msg` to `$dlq.<topic>`.
    pub(super) fn dead_letter(&mut self, now: Instant, msg: &Msg) {
        if msg.topic.starts_with('$') {
            self.stats.dropped += 1;
            return;
        }
        let name = alloc::format!("$dlq.{}", msg.topic);
        let Ok(topic) = Topic::new(&name) else {
            self.stats.dropped += 1;
            return;
        };
        self.stats.dead_lettered += 1;
        let view = msg.view();
        let (dl, _, slot) = self.new_message(
            now,
            (None, topic),
            QoS::AtLeastOnce,
            None,
            view.meta,
            view.payload,
            None,
            Via::Client,
        );
        let mut targets = Vec::new();
        self.index.for_each_match(topic, |t| targets.push(*t));
        self.reserve(&targets, dl.payload_len);
        let token = Some(self.emit_shared(dl.record.clone()));
        self.pending.push_back(Pending::Release {
            token,
            msg: dl,
            slot,
            targets,
            acks: Vec::new(),
            dedup: None,
            retain: false,
            once: None,
            cut: false,
        });
        self.release(now);
    }
}

/// Moves `msg`'s topic's cursor in `cursors` up to `msg`.
fn raise_cursor(cursors: &mut BTreeMap<Arc<str>, u64>, msg: &Msg) {
    match cursors.get_mut(&msg.topic) {
        Some(c) => *c = (*c).max(msg.seq),
        None => {
            cursors.insert(msg.topic.clone(), msg.seq);
        }
    }
}
