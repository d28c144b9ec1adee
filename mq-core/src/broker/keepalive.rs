//! The mq protocol's keepalive (see [`crate::wire`], "Handshake"): the
//! interval in force is the smaller non-zero one of the two sides'; a side
//! pings after half of it without sending, and declares the peer dead after
//! one and a half without receiving. Both mq codecs of the broker keep one:
//! an accepted connection's and a node link's.

use core::time::Duration;

use super::timers::{Timer, Timers};
use crate::time::Instant;

pub(crate) struct Keepalive {
    interval: Option<Duration>,
    last_rx: Instant,
    last_tx: Instant,
    ping_seq: u64,
}

/// The peer sent nothing for too long.
pub(crate) struct Dead;

impl Keepalive {
    /// None in force yet (the handshake has not agreed one).
    pub(crate) fn new(now: Instant) -> Self {
        Keepalive {
            interval: None,
            last_rx: now,
            last_tx: now,
            ping_seq: 0,
        }
    }

    /// The handshake announced `ours` and `theirs` (milliseconds, 0: none):
    /// when to check first, if a keepalive is in force.
    pub(crate) fn start(&mut self, ours: u32, theirs: u32, now: Instant) -> Option<Instant> {
        self.interval = match (ours, theirs) {
            (0, 0) => None,
            (0, k) | (k, 0) => Some(k),
            (a, b) => Some(a.min(b)),
        }
        .map(|ms| Duration::from_millis(u64::from(ms)));
        self.interval.map(|ka| now + ka / 2)
    }

    /// The connection ended: no keepalive until the next handshake.
    pub(crate) fn stop(&mut self) {
        self.interval = None;
    }

    pub(crate) fn received(&mut self, now: Instant) {
        self.last_rx = now;
    }

    pub(crate) fn sent(&mut self, now: Instant) {
        self.last_tx = now;
    }

    /// The connection's keepalive timer (`slot`, as `timer`) fired at
    /// `now`: the ping to send, if one is due, with the timer set again; or
    /// the peer is dead.
    pub(crate) fn tick(
        &mut self,
        now: Instant,
        timers: &mut Timers,
        slot: &mut Option<Instant>,
        timer: Timer,
    ) -> Result<Option<u64>, Dead> {
        let Some(ka) = self.interval else {
            return Ok(None);
        };
        if now >= self.last_rx + ka * 3 / 2 {
            return Err(Dead);
        }
        let ping = (now >= self.last_tx + ka / 2).then(|| {
            self.ping_seq += 1;
            self.last_tx = now;
            self.ping_seq
        });
        let next = (self.last_rx + ka * 3 / 2)
            .min(self.last_tx + ka / 2)
            .max(now + Duration::from_millis(1));
        timers.set(slot, timer, next);
        Ok(ping)
    }
}
