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
//! ([`Record::SeqFloor`]), written once per pass that raised it and into
//! every snapshot. Forgetting itself writes nothing: a restart from a log
//! not compacted since brings such a topic back, idle since before the
//! start, and the first pass forgets it again.
//!
//! The pass has a timer of its own, set for the earliest moment a topic
//! may be forgotten; it walks the topics, not the queues.

use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Pending, Router};
use crate::broker::record::Record;
use crate::broker::timers::Timer;
use crate::time::Instant;

impl Router {
    /// Forgets the topics idle past their `forget_after` that keep nothing,
    /// and sets the timer for the next that may be.
    pub(super) fn forget_idle_topics(&mut self, now: Instant) {
        let mut next: Option<Instant> = None;
        let mut later = |at: Instant| next = Some(next.map_or(at, |n: Instant| n.min(at)));
        let mut idle: Vec<Arc<str>> = Vec::new();
        for t in self.topics.values() {
            let Some(after) = t.retention.forget_after else {
                continue;
            };
            if !t.retained.is_empty() {
                continue;
            }
            let at = t.active_at + after;
            if at <= now {
                idle.push(t.name.clone());
            } else {
                later(at);
            }
        }
        if !idle.is_empty() {
            // A message still waiting for the store goes into its topic's
            // retention when released: its topic stays until then (and is
            // looked at again a forget_after later).
            let waiting: BTreeSet<&str> = self
                .pending
                .iter()
                .filter_map(|p| match p {
                    Pending::Release { msg, .. } => Some(&*msg.topic),
                    Pending::Reply { .. } | Pending::Wake { .. } => None,
                })
                .collect();
            idle.retain(|name| {
                if !waiting.contains(&**name) {
                    return true;
                }
                let after = self.topics.get(name).and_then(|t| t.retention.forget_after);
                later(now + after.unwrap_or_default());
                false
            });
        }
        self.forget(&idle);
        if let Some(at) = next {
            self.schedule_forget(at);
        }
    }

    /// Frees the topics named in `idle`, raising the numbering floor above
    /// what they gave.
    fn forget(&mut self, idle: &[Arc<str>]) {
        if idle.is_empty() {
            return;
        }
        let floor = self.seq_floor;
        for name in idle {
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
    }

    /// The forget pass runs at `at`, or earlier if it is set earlier.
    pub(super) fn schedule_forget(&mut self, at: Instant) {
        self.timers
            .set_earlier(&mut self.forget_timer, Timer::Forget, at);
    }

    /// `topic` may keep nothing now (a purge, a restore): if it may be
    /// forgotten, the pass is to come when it may be.
    pub(super) fn may_forget(&mut self, topic: &str, now: Instant) {
        if let Some(t) = self.topics.get(topic)
            && t.retained.is_empty()
            && let Some(after) = t.retention.forget_after
        {
            let at = (t.active_at + after).max(now);
            self.schedule_forget(at);
        }
    }
}
