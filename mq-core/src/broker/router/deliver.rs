//! Delivery: moving messages from a queue to the consumers that have credit
//! and room, and recording when a durable queue is done with a message.

use alloc::vec::Vec;

use super::{InFlight, Router};
use crate::broker::command::{Delivery, Output};
use crate::broker::queue::Queued;
use crate::broker::record::Record;
use crate::broker::slab::Key;
use crate::broker::timers::{Target, Timer};
use crate::broker::{ConnId, message::Msg};
use crate::time::Instant;
use crate::wire::QoS;

impl Router {
    /// The connection's output queue has room again: deliver to its session.
    pub(crate) fn pump_conn(&mut self, conn: ConnId, now: Instant) {
        if let Some(session) = self.links.session(conn) {
            self.pump_session(session, now);
        }
    }

    pub(super) fn pump_session(&mut self, session: Key, now: Instant) {
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        let subs: Vec<Key> = s.subs.values().copied().collect();
        for sub in subs {
            let t = self.target_of(sub);
            self.pump(t, now);
        }
    }

    /// Delivers what the target's consumers can take. A message leaving the
    /// queue may make room for a publisher held by a `Block` queue (a QoS 0
    /// delivery leaves at once; QoS 1 ones at their ack, see `settle`): those
    /// are retried then, not at their deadline.
    pub(super) fn pump(&mut self, target: Target, now: Instant) {
        if self.pump_queue(target, now) {
            self.retry_all_parked(now);
        }
    }

    /// [`pump`](Self::pump) without the retry; true when a message left the queue.
    fn pump_queue(&mut self, target: Target, now: Instant) -> bool {
        let mut popped = false;
        loop {
            let Some(sub) = self.pick_consumer(target, now) else {
                return popped;
            };
            let Some(queue) = super::queue_in(&mut self.subs, &mut self.groups, target) else {
                return popped;
            };
            let Some((q, was_waiting)) = queue.pop(now, &self.topics) else {
                self.arm_retry(target);
                return popped;
            };
            // A replayed message held no room in the queue.
            popped |= was_waiting;
            if was_waiting {
                self.stats.current_queued = self.stats.current_queued.saturating_sub(1);
            }
            if q.msg.is_expired(now) {
                self.stats.expired += 1;
                self.finish(target, &q.msg);
                continue;
            }
            // A session that wants none of its own messages gets none: a
            // group hands them to another member that can take them now
            // (or to none, as NATS does).
            if self.is_own(sub, &q.msg) {
                match self.pick_member_except(target, sub, &q.msg) {
                    Some(other) => self.deliver(other, target, q, now),
                    None => self.finish(target, &q.msg),
                }
                continue;
            }
            // A group message should not go straight back to the member that
            // failed it, when another can take it.
            if let (Target::Group(_), Some(avoid)) = (target, q.avoid)
                && avoid == sub
                && let Some(other) = self.pick_member_except(target, sub, &q.msg)
            {
                self.deliver(other, target, q, now);
                continue;
            }
            self.deliver(sub, target, q, now);
        }
    }

    /// Sets the queue's retry timer for its earliest held-back redelivery.
    fn arm_retry(&mut self, target: Target) {
        if let Some(q) = super::queue_in(&mut self.subs, &mut self.groups, target) {
            let at = q.next_retry();
            self.timers
                .reset(&mut q.retry_timer, Timer::Retry(target), at);
        }
    }

    pub(super) fn can_take(&self, sub: Key) -> bool {
        let Some(s) = self.subs.get(sub) else {
            return false;
        };
        if s.credit == 0 || !s.active {
            return false;
        }
        self.sessions
            .get(s.session)
            .and_then(|x| x.conn)
            .is_some_and(|conn| self.links.has_room(conn))
    }

    fn pick_consumer(&mut self, target: Target, now: Instant) -> Option<Key> {
        if !self.queue(target).is_some_and(|q| q.has_ready(now)) {
            self.arm_retry(target);
            return None;
        }
        match target {
            Target::Sub(k) => (self.can_take(k) && !self.outbox_held(k)).then_some(k),
            Target::Group(g) => {
                let group = self.groups.get(g)?;
                let n = group.members.len();
                // Local members first: a peer's only when there is none.
                let local = self.mesh.has_outboxes() && self.has_local_member(&group.members);
                for i in 0..n {
                    let idx = (group.next_member + i) % n;
                    let m = group.members[idx];
                    if !(local && self.is_outbox(m)) && self.can_take(m) {
                        let group = self.groups.get_mut(g)?;
                        group.next_member = (idx + 1) % n;
                        return Some(m);
                    }
                }
                None
            }
        }
    }

    /// Another member of a group that can take `msg` now and does not
    /// refuse its own messages.
    fn pick_member_except(&self, target: Target, except: Key, msg: &Msg) -> Option<Key> {
        let Target::Group(g) = target else {
            return None;
        };
        let members = &self.groups.get(g)?.members;
        let local = self.mesh.has_outboxes() && self.has_local_member(members);
        members.iter().copied().find(|&m| {
            m != except && !(local && self.is_outbox(m)) && self.can_take(m) && !self.is_own(m, msg)
        })
    }

    /// Whether `msg` was published on the connection of subscription
    /// `sub`'s session, and that session wants none of its own messages.
    fn is_own(&self, sub: Key, msg: &Msg) -> bool {
        let Some(publisher) = msg.publisher else {
            return false;
        };
        self.subs
            .get(sub)
            .and_then(|s| self.sessions.get(s.session))
            .is_some_and(|s| s.no_local && s.conn == Some(publisher))
    }

    fn deliver(&mut self, sub_key: Key, target: Target, q: Queued, now: Instant) {
        let attempt = q.attempt.saturating_add(1);
        let ack_timeout = self.cfg.ack_timeout;
        let Some(sub) = self.subs.get_mut(sub_key) else {
            return;
        };
        let qos = sub.qos.min(q.msg.qos);
        sub.credit -= 1;
        let sub_id = sub.id;
        let seq = if sub.outbox { q.msg.id } else { q.msg.seq };
        let session_key = sub.session;
        let Some(session) = self.sessions.get_mut(session_key) else {
            return;
        };
        let Some(conn) = session.conn else { return };
        let tag = session.next_tag;
        session.next_tag += 1;
        if attempt > 1 {
            self.stats.redelivered += 1;
        }
        self.stats.messages_out += 1;
        self.stats.bytes_out += q.msg.payload_len as u64;
        let size = q.msg.payload_len;
        if qos == QoS::AtLeastOnce {
            let deadline = ack_timeout
                .filter(|_| session.ack_deadlines)
                .map(|d| now + d);
            session.inflight.insert(
                tag,
                InFlight {
                    sub: sub_key,
                    target,
                    msg: q.msg.clone(),
                    attempt,
                    deadline,
                },
            );
            // Later deliveries have later deadlines: only the first one arms.
            if let Some(at) = deadline
                && session.timer.is_none()
            {
                self.timers
                    .set(&mut session.timer, Timer::Session(session_key), at);
            }
            self.stats.current_inflight += 1;
            if let Some(queue) = self.queue_mut(target) {
                queue.mark_inflight(size);
            }
        } else {
            // Nothing to ack: the queue is done with it now.
            self.finish(target, &q.msg);
        }
        self.links.push(
            conn,
            Output::Deliver(Delivery {
                msg: q.msg,
                sub: sub_id,
                seq,
                tag,
                attempt,
                qos,
                retained: q.retained,
            }),
        );
    }

    /// A queue is done with a message: for durable queues, record it.
    pub(super) fn finish(&mut self, target: Target, msg: &Msg) {
        if msg.qos != QoS::AtLeastOnce {
            return;
        }
        // The record borrows the session's or group's names where they are
        // (this runs at every ack): only the store and the count change.
        let mut ended = None;
        let mut group_ended = None;
        let record = match target {
            Target::Sub(k) => {
                let Some(sub) = self.subs.get(k) else { return };
                let Some(s) = self.sessions.get(sub.session) else {
                    return;
                };
                if !s.persistent {
                    return;
                }
                if !s.once_pids.is_empty() {
                    ended = Some((sub.session, sub.id));
                }
                Record::Ack {
                    client: &s.client,
                    sub: sub.id,
                    msg: msg.id,
                }
            }
            Target::Group(g) => {
                let Some(group) = self.groups.get(g) else {
                    return;
                };
                if !group.durable {
                    return;
                }
                group_ended = Some(g);
                Record::GroupAck {
                    filter: &group.filter,
                    group: &group.name,
                    msg: msg.id,
                }
            }
        };
        self.stats.store_ops += 1;
        let token = self.store.emit(&record);
        if let Some((session, sub)) = ended {
            self.once_pid_ended(session, sub, msg.id, token);
        }
        if let Some(g) = group_ended {
            self.once_pids_group_ended(g, msg.id, Some(token));
        }
    }
}
