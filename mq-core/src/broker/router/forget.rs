//! Idle topics forgotten (`Retention::forget_after`): a topic that keeps no
//! message for replay and took none for that long is freed, so that the
//! topics a broker holds are the recent ones, not every name it ever saw (a
//! NATS client replies to a subject of its own per request).
//!
//! A forgotten topic's sequence numbers are not given again: the numbering
//! floor rises above every number it gave (its reservation's end), and a
//! topic made afterwards, of any name, starts there. A subscriber that
//! resumes after the last number it saw, or a client that suppresses a
//! delivery it has settled by topic and number, never mistakes a message of
//! the new topic for one of the old. The floor is a record
//! ([`Record::SeqFloor`]), written once per sweep that forgot something
//! and into every snapshot.

use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::retention::SWEEP_INTERVAL;
use super::{Pending, Router};
use crate::broker::record::Record;
use crate::time::Instant;

impl Router {
    /// Forgets the topics idle past their `forget_after` that keep nothing;
    /// true while some topic keeps nothing and is not idle long enough yet
    /// (the sweep is to come again).
    pub(super) fn forget_idle_topics(&mut self, now: Instant) -> bool {
        let mut waiting = false;
        let mut idle: Vec<Arc<str>> = Vec::new();
        for t in self.topics.values() {
            let Some(after) = t.retention.forget_after else {
                continue;
            };
            if !t.retained.is_empty() {
                continue;
            }
            if t.active_at + after <= now {
                idle.push(t.name.clone());
            } else {
                waiting = true;
            }
        }
        if idle.is_empty() {
            return waiting;
        }
        // A message still waiting for the store goes into its topic's
        // retention when released: its topic stays until then.
        let held_back = |name: &str| {
            self.pending.iter().any(|p| match p {
                Pending::Release { msg, .. } => &*msg.topic == name,
                Pending::Reply { .. } => false,
            })
        };
        idle.retain(|name| {
            let held = held_back(name);
            waiting |= held;
            !held
        });
        let floor = self.seq_floor;
        for name in &idle {
            if let Some(t) = self.topics.remove(name) {
                self.seq_floor = self.seq_floor.max(t.next_seq.max(t.reserved_until));
            }
        }
        // Cursors name the topic: a session resuming by its cursor would
        // find nothing to replay from the old topic anyway.
        let gone: BTreeSet<&str> = idle.iter().map(|n| &**n).collect();
        for s in self.sessions.iter_mut() {
            for per_topic in s.cursors.values_mut() {
                per_topic.retain(|topic, _| !gone.contains(&**topic));
            }
        }
        if self.seq_floor > floor {
            self.stats.store_ops += 1;
            self.store.emit(&Record::SeqFloor {
                until: self.seq_floor,
            });
        }
        self.stats.topics_forgotten += idle.len() as u64;
        waiting
    }

    /// After `topic` let go of messages (a purge): if it now keeps nothing
    /// and may be forgotten, the sweep is to come.
    pub(super) fn may_forget(&mut self, topic: &str, now: Instant) {
        if self
            .topics
            .get(topic)
            .is_some_and(|t| t.retention.forget_after.is_some() && t.retained.is_empty())
        {
            self.schedule_sweep(now + SWEEP_INTERVAL);
        }
    }
}
