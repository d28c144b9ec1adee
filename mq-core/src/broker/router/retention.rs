//! Retention and expiry: what a topic keeps for replay, and the periodic sweep
//! that drops expired messages from queues and aged ones from retention (a
//! topic it empties may be forgotten later: `forget`).

use alloc::vec::Vec;
use core::time::Duration;

use super::{Router, Slot};
use crate::broker::message::Msg;
use crate::broker::timers::{Target, Timer};
use crate::time::Instant;

/// How often expired messages are swept while some may expire.
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

impl Router {
    /// Keeps `msg` for replay in its topic, which is at `slot` unless the
    /// table changed since.
    pub(super) fn retain(&mut self, msg: &Msg, slot: Slot, now: Instant) {
        let t = match self.topics.at_mut(slot, &msg.topic) {
            Some(t) => t,
            None => match self.topics.get_mut(&msg.topic) {
                Some(t) => t,
                None => return,
            },
        };
        let r = t.retention;
        if r.max_messages == 0 {
            if let Some(after) = r.forget_after {
                self.schedule_forget(now + after);
            }
            return;
        }
        t.retained.push_back(msg.clone());
        t.retained_bytes += msg.payload_len;
        self.stats.current_retained += 1;
        while t.retained.len() > r.max_messages
            || (t.retained_bytes > r.max_bytes && t.retained.len() > 1)
        {
            let old = t.retained.pop_front().expect("non-empty");
            t.retained_bytes -= old.payload_len;
            self.stats.current_retained -= 1;
            self.spare_msgs.give(old);
        }
        if r.max_age.is_some() {
            self.schedule_sweep(now + SWEEP_INTERVAL);
        }
    }

    pub(super) fn schedule_sweep(&mut self, at: Instant) {
        if self.sweep_timer.is_none() {
            self.timers.set(&mut self.sweep_timer, Timer::Sweep, at);
        }
    }

    /// Drops expired messages from every queue and retention past its age.
    pub(super) fn sweep(&mut self, now: Instant) {
        let mut again = false;
        let mut expired: Vec<(Target, Msg)> = Vec::new();
        for t in self.all_targets() {
            if let Some(q) = self.queue_mut(t) {
                q.remove_where(|q| q.msg.is_expired(now), |q| expired.push((t, q.msg)));
                again |= q.waiting() > 0;
            }
        }
        self.stats.current_queued = self
            .stats
            .current_queued
            .saturating_sub(expired.len() as u64);
        self.stats.expired += expired.len() as u64;
        for (t, m) in expired {
            self.finish(t, &m);
        }
        // The earliest a topic this sweep emptied may be forgotten.
        let mut forget: Option<Instant> = None;
        for t in self.topics.values_mut() {
            let Some(age) = t.retention.max_age else {
                continue;
            };
            while t
                .retained
                .front()
                .is_some_and(|m| m.published_at + age <= now || m.is_expired(now))
            {
                let old = t.retained.pop_front().expect("non-empty");
                t.retained_bytes -= old.payload_len;
                self.stats.current_retained -= 1;
            }
            again |= !t.retained.is_empty();
            if t.retained.is_empty()
                && let Some(after) = t.retention.forget_after
            {
                let at = (t.active_at + after).max(now);
                forget = Some(forget.map_or(at, |f| f.min(at)));
            }
        }
        if again {
            self.schedule_sweep(now + SWEEP_INTERVAL);
        }
        if let Some(at) = forget {
            self.schedule_forget(at);
        }
    }
}
