//! The messages waiting in a queue for their first delivery (or a requeue),
//! by priority: higher priority goes first, first in first out within a
//! priority. Priority 0 (the default) is one plain deque, so a queue whose
//! messages carry no priority pays nothing for the others.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use super::queue::Queued;

#[derive(Default)]
pub(crate) struct Ready {
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

    /// Ahead of the others of its priority (a delivery that comes back).
    pub(crate) fn push_front(&mut self, q: Queued) {
        self.len += 1;
        self.level(q.msg.priority).push_front(q);
    }

    /// The next to deliver: the oldest of the highest priority.
    pub(crate) fn pop_front(&mut self) -> Option<Queued> {
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
        if !self.normal.is_empty() {
            return Some(0);
        }
        self.high.keys().next().copied()
    }

    /// The one to give up first when the queue is full: the oldest of the
    /// lowest priority.
    pub(crate) fn pop_least(&mut self) -> Option<Queued> {
        let q = match self.normal.pop_front() {
            Some(q) => q,
            None => {
                let mut level = self.high.first_entry()?;
                let q = level.get_mut().pop_front();
                if level.get().is_empty() {
                    level.remove();
                }
                q?
            }
        };
        self.len -= 1;
        Some(q)
    }

    /// Every waiting message, highest priority first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Queued> {
        self.high
            .values()
            .rev()
            .flat_map(|level| level.iter())
            .chain(self.normal.iter())
    }

    /// Removes the message with `id`.
    pub(crate) fn remove_id(&mut self, id: u64) -> Option<Queued> {
        let take = |level: &mut VecDeque<Queued>| {
            let i = level.iter().position(|q| q.msg.id == id)?;
            level.remove(i)
        };
        let q = match take(&mut self.normal) {
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

    /// Takes every waiting message out, highest priority first.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Queued> {
        self.len = 0;
        let high = core::mem::take(&mut self.high);
        let normal = core::mem::take(&mut self.normal);
        high.into_values().rev().flatten().chain(normal)
    }
}
