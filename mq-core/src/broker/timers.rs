//! The broker's timers: one slot per owner, so a stopped or moved timer leaves
//! nothing behind.
//!
//! Each owner (a connection, a session's earliest ack deadline, a queue's next
//! retry, a held publisher, the sweep) keeps the instant its timer is set for in a
//! slot of its own (`Option<Instant>`). [`Timers::set`] replaces whatever that slot
//! held and [`Timers::stop`] removes it, so the table holds at most one entry per
//! owner: its size follows the number of connections, sessions and queues, never
//! the message rate.

use alloc::collections::BTreeSet;

use super::ConnId;
use super::slab::Key;
use crate::time::Instant;

/// Where matched messages go: a fan-out subscription's queue or a group's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Target {
    Sub(Key),
    Group(Key),
}

/// What a timer is for; each names its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A connection's handshake deadline or keepalive.
    Conn(ConnId),
    /// A publisher held by a full `Block` queue reaches its deadline.
    Parked(ConnId),
    /// A session's earliest ack deadline.
    Session(Key),
    /// A queue's earliest held-back redelivery becomes due.
    Retry(Target),
    /// Expired messages and aged retention are swept.
    Sweep,
    /// The first topic that keeps nothing may be idle long enough to be
    /// forgotten.
    Forget,
    /// A session's will is due (its delay passed, the client did not return).
    Will(Key),
    /// A session away for its whole expiry interval ends.
    Expiry(Key),
}

#[derive(Default)]
pub(crate) struct Timers {
    due: BTreeSet<(Instant, Timer)>,
}

impl Timers {
    /// Sets `timer` to fire at `at`, replacing what `slot` held.
    pub(crate) fn set(&mut self, slot: &mut Option<Instant>, timer: Timer, at: Instant) {
        if *slot == Some(at) {
            return;
        }
        if let Some(old) = slot.replace(at) {
            self.due.remove(&(old, timer));
        }
        self.due.insert((at, timer));
    }

    /// Sets `timer` to `at` if that is earlier than what `slot` holds.
    pub(crate) fn set_earlier(&mut self, slot: &mut Option<Instant>, timer: Timer, at: Instant) {
        if slot.is_none_or(|old| at < old) {
            self.set(slot, timer, at);
        }
    }

    /// Stops `timer` (nothing happens when `slot` is empty).
    pub(crate) fn stop(&mut self, slot: &mut Option<Instant>, timer: Timer) {
        if let Some(old) = slot.take() {
            self.due.remove(&(old, timer));
        }
    }

    /// Sets or stops `timer` as `at` says.
    pub(crate) fn reset(&mut self, slot: &mut Option<Instant>, timer: Timer, at: Option<Instant>) {
        match at {
            Some(at) => self.set(slot, timer, at),
            None => self.stop(slot, timer),
        }
    }

    /// The earliest timer.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.due.first().map(|&(at, _)| at)
    }

    /// Removes and returns a timer due at `now`. Its owner's slot still names
    /// it: the handler empties the slot first.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        match self.due.first() {
            Some(&(at, _)) if at <= now => self.due.pop_first(),
            _ => None,
        }
    }

    /// Timers set, for tests and metrics.
    pub(crate) fn len(&self) -> usize {
        self.due.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_holds_one_timer() {
        let mut t = Timers::default();
        let mut slot = None;
        let at = |ms| Instant::from_millis(ms);
        t.set(&mut slot, Timer::Sweep, at(5));
        t.set(&mut slot, Timer::Sweep, at(9));
        assert_eq!(t.len(), 1);
        assert_eq!(t.next(), Some(at(9)));
        t.set_earlier(&mut slot, Timer::Sweep, at(20));
        assert_eq!(t.next(), Some(at(9)));
        t.set_earlier(&mut slot, Timer::Sweep, at(3));
        assert_eq!(t.next(), Some(at(3)));
        assert_eq!(t.pop_due(at(2)), None);
        assert_eq!(t.pop_due(at(3)), Some((at(3), Timer::Sweep)));
        assert_eq!(t.len(), 0);
        slot = None;
        t.set(&mut slot, Timer::Sweep, at(4));
        t.stop(&mut slot, Timer::Sweep);
        assert_eq!((t.len(), slot), (0, None));
    }
}
