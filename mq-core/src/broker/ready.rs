//! The messages waiting in a queue for their first delivery (or a requeue),
//! by priority: higher priority goes first, first in first out within a
//! priority. Priority 0 (the default) is one plain deque, so a queue whose
//! messages carry no priority pays nothing for the others.
//!
//! Deliveries that come back (their connection ended, or the node they were
//! handed to failed them) go ahead of every priority: the client may have
//! acked them on the way, and it recognises a copy only among the deliveries
//! it settled last (see the client's held table), so newer messages must
//! not come between. So do messages restored after a restart, in the order
//! they were published: any of them may have been delivered before.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use super::queue::Queued;

/// Where [`Ready::pop_least`] took a message from.
#[derive(Clone, Copy)]
pub(crate) enum Place {
    /// The lane of deliveries that came back, at this index.
    Again(usize),
    /// The front of its priority.
    Level,
}

#[derive(Default)]
pub(crate) struct Ready {
    /// Deliveries that came back, in the order they go out again.
    again: VecDeque<Queued>,
    /// Priority 0.
    normal: VecDeque<Queued>,
    /// Priorities above 0, each non-empty.
    high: BTreeMap<u8, VecDeque<Queued>>,
    len: usize,
}

impl Ready {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn level(&mut self, priority: u8) -> &mut VecDeque<Queued> {
        match priority {
            0 => &mut self.normal,
            p => self.high.entry(p).or_default(),
        }
    }

    /// Behind the others of its priority.
    pub(crate) fn push_back(&mut self, q: Queued) {
        self.len += 1;
        self.level(q.msg.priority).push_back(q);
    }

    /// Ahead of everything, whatever its priority: a delivery that comes back.
    pub(crate) fn push_returned(&mut self, q: Queued) {
        self.len += 1;
        self.again.push_front(q);
    }

    /// Behind the other deliveries that came back, ahead of every priority:
    /// a message restored after a restart, which may have been delivered
    /// (and acked, the ack lost with the restart).
    pub(crate) fn push_restored(&mut self, q: Queued) {
        self.len += 1;
        self.again.push_back(q);
    }

    /// The next to deliver: a delivery that came back, else the oldest of the
    /// highest priority.
    pub(crate) fn pop_front(&mut self) -> Option<Queued> {
        if let Some(q) = self.again.pop_front() {
            self.len -= 1;
            return Some(q);
        }
        let q = match self.high.last_entry() {
            Some(mut level) => {
                let q = level.get_mut().pop_front();
                if level.get().is_empty() {
                    level.remove();
                }
                q
            }
            None => self.normal.pop_front(),
        }?;
        self.len -= 1;
        Some(q)
    }

    /// The lowest priority waiting.
    pub(crate) fn least_priority(&self) -> Option<u8> {
        let level = match self.normal.is_empty() {
            false => Some(0),
            true => self.high.keys().next().copied(),
        };
        let again = self.again.iter().map(|q| q.msg.priority).min();
        level.into_iter().chain(again).min()
    }

    /// The one to give up first when the queue is full: the oldest of the
    /// lowest priority (a delivery that came back is older than those
    /// waiting at its priority), and where to [`put_back`](Self::put_back)
    /// it should it stay after all.
    pub(crate) fn pop_least(&mut self) -> Option<(Queued, Place)> {
        let least = self.least_priority()?;
        let (q, place) = match self.again.iter().position(|q| q.msg.priority == least) {
            Some(i) => (self.again.remove(i)?, Place::Again(i)),
            None => {
                let level = self.level(least);
                let q = level.pop_front();
                if level.is_empty() && least > 0 {
                    self.high.remove(&least);
                }
                (q?, Place::Level)
            }
        };
        self.len -= 1;
        Some((q, place))
    }

    /// Puts back what [`pop_least`](Self::pop_least) took, where it was.
    pub(crate) fn put_back(&mut self, q: Queued, place: Place) {
        self.len += 1;
        match place {
            Place::Again(i) => self.again.insert(i, q),
            Place::Level => self.level(q.msg.priority).push_front(q),
        }
    }

    /// Every waiting message, in the order they go out.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Queued> {
        self.again.iter().chain(
            self.high
                .values()
                .rev()
                .flat_map(|level| level.iter())
                .chain(self.normal.iter()),
        )
    }

    /// Removes the first delivery that came back which `pick` selects.
    pub(crate) fn remove_returned(&mut self, pick: impl Fn(&Queued) -> bool) -> Option<Queued> {
        let i = self.again.iter().position(pick)?;
        let q = self.again.remove(i)?;
        self.len -= 1;
        Some(q)
    }

    /// Removes the message with `id`.
    pub(crate) fn remove_id(&mut self, id: u64) -> Option<Queued> {
        let take = |level: &mut VecDeque<Queued>| {
            let i = level.iter().position(|q| q.msg.id == id)?;
            level.remove(i)
        };
        let q = match take(&mut self.normal).or_else(|| take(&mut self.again)) {
            Some(q) => q,
            None => {
                let p = *self
                    .high
                    .iter()
                    .find(|(_, level)| level.iter().any(|q| q.msg.id == id))?
                    .0;
                let level = self.high.get_mut(&p)?;
                let q = take(level)?;
                if level.is_empty() {
                    self.high.remove(&p);
                }
                q
            }
        };
        self.len -= 1;
        Some(q)
    }

    /// Removes every message `drop` selects, handing each to `on_drop`.
    pub(crate) fn remove_where(
        &mut self,
        mut drop: impl FnMut(&Queued) -> bool,
        mut on_drop: impl FnMut(Queued),
    ) {
        let mut removed = 0;
        let mut sift = |level: &mut VecDeque<Queued>| {
            if !level.iter().any(&mut drop) {
                return;
            }
            let mut kept = VecDeque::with_capacity(level.len());
            for q in level.drain(..) {
                if drop(&q) {
                    removed += 1;
                    on_drop(q);
                } else {
                    kept.push_back(q);
                }
            }
            *level = kept;
        };
        sift(&mut self.normal);
        sift(&mut self.again);
        let priorities: Vec<u8> = self.high.keys().copied().collect();
        for p in priorities {
            if let Some(level) = self.high.get_mut(&p) {
                sift(level);
                if level.is_empty() {
                    self.high.remove(&p);
                }
            }
        }
        self.len -= removed;
    }

    /// Takes every waiting message out, in the order they would go out.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Queued> {
        self.len = 0;
        let again = core::mem::take(&mut self.again);
        let high = core::mem::take(&mut self.high);
        let normal = core::mem::take(&mut self.normal);
        again
            .into_iter()
            .chain(high.into_values().rev().flatten())
            .chain(normal)
    }
}
