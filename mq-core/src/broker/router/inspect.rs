//! What adapters and tests may ask of the router: counters, queue depths,
//! whether everything owed is delivered, and its invariants.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use super::Router;
use crate::broker::queue::Queued;
use crate::broker::slab::Key;
use crate::broker::stats::Stats;
use crate::broker::timers::Target;
use crate::broker::{ConnId, QueueInfo};
use crate::topic::Topic;

impl Router {
    /// Whether the session on `conn` may publish to `topic`.
    pub(crate) fn may_publish(&self, conn: ConnId, topic: Topic<'_>) -> bool {
        self.links
            .session(conn)
            .and_then(|k| self.sessions.get(k))
            .is_some_and(|s| s.perms.may_publish(topic))
    }

    /// Whether any subscription (connected or not) matches `topic`.
    pub(crate) fn has_subscribers(&self, topic: Topic<'_>) -> bool {
        let mut any = false;
        self.index.for_each_match(topic, |_| any = true);
        any
    }

    /// Counters, with the current sizes filled in.
    pub(crate) fn current_stats(&self, connections: usize) -> Stats {
        let mut s = self.stats;
        s.current_connections = connections as u64;
        s.current_sessions = self.sessions.len() as u64;
        s.current_topics = self.topics.len() as u64;
        s.current_subscriptions = self.subs.len() as u64;
        s
    }

    /// Every queue with its depth and bound.
    pub(crate) fn queues(&self) -> Vec<QueueInfo> {
        let mut out = Vec::new();
        for (_, sub) in self.subs.iter() {
            if sub.group.is_some() {
                continue;
            }
            let owner = self
                .sessions
                .get(sub.session)
                .map(|s| s.client.clone())
                .unwrap_or_default();
            out.push(QueueInfo {
                owner,
                filter: sub.filter.clone(),
                group: false,
                waiting: sub.queue.waiting(),
                inflight: sub.queue.inflight(),
                occupancy: sub.queue.occupancy(),
                max_messages: sub.queue.limits.max_messages,
            });
        }
        for (_, g) in self.groups.iter() {
            out.push(QueueInfo {
                owner: g.name.clone(),
                filter: g.filter.clone(),
                group: true,
                waiting: g.queue.waiting(),
                inflight: g.queue.inflight(),
                occupancy: g.queue.occupancy(),
                max_messages: g.queue.limits.max_messages,
            });
        }
        out
    }

    /// True once nothing is owed to a connected subscriber (no message waiting
    /// in, or still to be replayed to, a queue someone connected consumes;
    /// nothing in flight) and nothing waits for the store.
    pub(crate) fn is_drained(&self) -> bool {
        if !self.pending.is_empty() {
            return false;
        }
        self.sessions.iter().all(|(_, s)| {
            s.conn.is_none()
                || (s.inflight.is_empty()
                    && s.subs.values().all(|&k| {
                        let t = self.target_of(k);
                        // Not re-asserted since a resume: nothing is owed there.
                        !self.subs.get(k).is_some_and(|x| x.active)
                            || self.queue(t).is_none_or(|q| q.is_idle())
                    }))
        })
    }

    /// Nothing waits to be handed to the store or to be released by it.
    pub(crate) fn is_store_idle(&self) -> bool {
        self.store.is_drained() && self.pending.is_empty()
    }

    /// Timers set, for tests that check that nothing is left behind.
    pub(crate) fn timers_len(&self) -> usize {
        self.timers.len()
    }

    /// See [`Broker::check_invariants`](crate::broker::Broker::check_invariants).
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        use alloc::format;
        let mut queued = 0u64;
        for info in self.queues() {
            if info.occupancy > info.max_messages {
                return Err(format!(
                    "queue {}/{} holds {} > {}",
                    info.owner, info.filter, info.occupancy, info.max_messages
                ));
            }
            queued += info.waiting as u64;
        }
        if queued != self.stats.current_queued {
            return Err(format!(
                "current_queued {} but queues hold {queued}",
                self.stats.current_queued
            ));
        }
        let mut inflight = 0u64;
        let mut group_held: BTreeMap<(Key, u64), u32> = BTreeMap::new();
        for (key, s) in self.sessions.iter() {
            for f in s.inflight.values() {
                inflight += 1;
                if let Target::Group(g) = f.target {
                    *group_held.entry((g, f.msg.id)).or_default() += 1;
                }
            }
            let first = s.inflight.first_deadline();
            if first.is_some_and(|d| s.timer.is_none_or(|t| t > d)) {
                return Err(format!(
                    "session {key:?}: ack timer {:?}, earliest deadline {first:?}",
                    s.timer
                ));
            }
        }
        if inflight != self.stats.current_inflight {
            return Err(format!(
                "current_inflight {} but sessions hold {inflight}",
                self.stats.current_inflight
            ));
        }
        for (&(g, id), &n) in &group_held {
            if n > 1 {
                return Err(format!("group message {id} in flight with {n} members"));
            }
            let group = self
                .groups
                .get(g)
                .ok_or("in-flight delivery of a removed group")?;
            let mut waiting = false;
            let mut probe = |q: &Queued| waiting |= q.msg.id == id;
            group.queue.for_each_waiting(&mut probe);
            if waiting {
                return Err(format!("group message {id} both in flight and waiting"));
            }
        }
        Ok(())
    }
}
