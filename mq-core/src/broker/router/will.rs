//! Will messages and session expiry (MQTT): a session's will is published when
//! its connection ends without a normal disconnect — at once, or after its
//! delay unless the client returns meanwhile, and at the latest when the
//! session ends — and a persistent session away longer than its expiry ends.

use core::time::Duration;

use super::{Holds, Router};
use crate::broker::command::{OwnedPublish, Will};
use crate::broker::slab::Key;
use crate::broker::timers::Timer;
use crate::time::Instant;

/// A will held by its session.
pub(crate) struct PendingWill {
    publish: OwnedPublish,
    delay: Duration,
    /// Slot of the will's timer, set while it waits out its delay.
    timer: Option<Instant>,
}

impl PendingWill {
    pub(crate) fn new(w: &Will<'_>) -> Self {
        PendingWill {
            publish: OwnedPublish::new(&w.publish, w.publish.payload.to_vec()),
            delay: w.delay,
            timer: None,
        }
    }
}

impl Router {
    /// The client disconnected normally: its will is discarded.
    pub(super) fn drop_will(&mut self, session: Key) {
        if let Some(w) = self.take_will(session) {
            drop(w);
        }
    }

    /// Takes the session's will away, with its timer.
    pub(super) fn take_will(&mut self, session: Key) -> Option<PendingWill> {
        let mut w = self.sessions.get_mut(session)?.will.take()?;
        self.timers.stop(&mut w.timer, Timer::Will(session));
        Some(w)
    }

    /// A session resumes (or is replaced): a will still waiting for its delay
    /// is not sent, and the session no longer expires.
    pub(super) fn session_back(&mut self, session: Key) {
        self.drop_will(session);
        if let Some(s) = self.sessions.get_mut(session) {
            self.timers
                .stop(&mut s.expiry_timer, Timer::Expiry(session));
        }
    }

    /// The session's connection ended abnormally and the session stays: its
    /// will goes out now or after its delay, and its expiry starts.
    pub(super) fn session_away(&mut self, session: Key, now: Instant) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if let Some(d) = s.expiry {
            let at = now + d;
            self.timers
                .set(&mut s.expiry_timer, Timer::Expiry(session), at);
        }
        let Some(w) = s.will.as_mut() else { return };
        if w.delay.is_zero() {
            self.will_due(session, now);
        } else {
            let at = now + w.delay;
            self.timers.set(&mut w.timer, Timer::Will(session), at);
        }
    }

    /// Publishes the session's will, if it has one.
    pub(super) fn will_due(&mut self, session: Key, now: Instant) {
        if let Some(w) = self.take_will(session) {
            self.publish_will(w, now);
        }
    }

    /// Publishes a will whose session is gone or going.
    pub(super) fn publish_will(&mut self, w: PendingWill, now: Instant) {
        self.stats.wills_published += 1;
        let p = w.publish.as_publish();
        self.admit(None, now, &p, &mut Holds::default());
    }

    /// A persistent session was away for its whole expiry interval.
    pub(super) fn session_expired(&mut self, session: Key, now: Instant) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        s.expiry_timer = None;
        if s.conn.is_none() {
            self.destroy_session(session, true, now);
        }
    }
}
