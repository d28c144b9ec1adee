//! A session's deliveries not settled yet: found by tag, and kept in delivery
//! order so the earliest ack deadline is always at the front.
//!
//! Tags grow with time and every ack deadline is the same timeout after its
//! delivery (or after the deadline it missed, when it is re-armed and moves
//! to the back), so the order kept is deadline order. The order is a queue of tags
//! from which settled ones are removed lazily (at the front, or all at once
//! when they outnumber the live ones), so it never holds more than about three
//! times what is outstanding. It counts the settled ones it still holds, so
//! that acks in delivery order (the usual case) never look a tag up twice.
//!
//! The map is hashed by [`CounterHash`]: a session's tags count up by one,
//! and runs of them go to neighbouring buckets, so deliveries and their acks
//! in order walk the table instead of missing the cache at every one (the
//! load of the bucket's key was three quarters of `remove`'s time in a
//! profile of the peers, BENCHMARKS.md). A publisher decides which tags
//! stay here (QoS 0 deliveries take tags too); the hash spreads them
//! whatever their spacing.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::InFlight;
use crate::counter_hash::CounterHash;
use crate::time::Instant;

#[derive(Default)]
pub(crate) struct InFlights {
    by_tag: hashbrown::HashMap<u64, InFlight, CounterHash>,
    /// Tags in delivery order; some may be settled already.
    order: VecDeque<u64>,
    /// How many tags in `order` are settled.
    settled: usize,
}

impl InFlights {
    pub(crate) fn is_empty(&self) -> bool {
        self.by_tag.is_empty()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &InFlight> {
        self.by_tag.values()
    }

    /// Adds a delivery; its tag is higher than every earlier one's.
    pub(crate) fn insert(&mut self, tag: u64, f: InFlight) {
        self.by_tag.insert(tag, f);
        self.order.push_back(tag);
    }

    pub(crate) fn get(&self, tag: u64) -> Option<&InFlight> {
        self.by_tag.get(&tag)
    }

    pub(crate) fn remove(&mut self, tag: u64) -> Option<InFlight> {
        let f = self.by_tag.remove(&tag)?;
        if self.order.front() == Some(&tag) {
            self.order.pop_front();
            self.skip_settled();
        } else if self.order.len() > 2 * self.by_tag.len() + 32 {
            let live = &self.by_tag;
            self.order.retain(|t| live.contains_key(t));
            self.settled = 0;
        } else {
            self.settled += 1;
        }
        Some(f)
    }

    /// Gives a delivery a later deadline (`at`, no earlier than any other
    /// delivery's) and counts another attempt: it moves to the back of the
    /// order. Due deliveries are at the front, so this is cheap for them.
    pub(crate) fn rearm(&mut self, tag: u64, at: Instant) {
        let Some(f) = self.by_tag.get_mut(&tag) else {
            return;
        };
        f.deadline = Some(at);
        f.attempt = f.attempt.saturating_add(1);
        if self.order.front() == Some(&tag) {
            self.order.pop_front();
        } else {
            self.order.retain(|t| *t != tag);
        }
        self.order.push_back(tag);
        self.skip_settled();
    }

    fn skip_settled(&mut self) {
        while self.settled > 0
            && let Some(t) = self.order.front()
            && !self.by_tag.contains_key(t)
        {
            self.order.pop_front();
            self.settled -= 1;
        }
    }

    /// The deadline of the earliest delivery.
    pub(crate) fn first_deadline(&self) -> Option<Instant> {
        let tag = self.order.front()?;
        self.by_tag.get(tag)?.deadline
    }

    /// Tags of the deliveries whose deadline has passed at `now`, oldest first.
    pub(crate) fn due(&self, now: Instant) -> Vec<u64> {
        self.order
            .iter()
            .filter_map(|t| self.by_tag.get(t).map(|f| (*t, f)))
            .take_while(|(_, f)| f.deadline.is_some_and(|d| d <= now))
            .map(|(t, _)| t)
            .collect()
    }

    /// Tags of the deliveries `pred` selects.
    pub(crate) fn tags_where(&self, pred: impl Fn(&InFlight) -> bool) -> Vec<u64> {
        self.by_tag
            .iter()
            .filter(|(_, f)| pred(f))
            .map(|(t, _)| *t)
            .collect()
    }

    /// Takes every delivery out.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = InFlight> + '_ {
        self.order.clear();
        self.settled = 0;
        self.by_tag.drain().map(|(_, f)| f)
    }
}
