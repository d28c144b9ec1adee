//! One batch of offline items handed on to the catalog.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::iter::Peekable;
use core::time::Duration;

use crate::broker::{OFFLINE_BATCH, OfflineItem};

/// What became of an offline item the adapter tried to store in the
/// catalog; the broker takes it with
/// [`Broker::handle_offline_handed`](crate::broker::Broker::handle_offline_handed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handed {
    /// The catalog stored it (or had it already).
    Stored,
    /// The recipient's queue in the catalog is full.
    Full,
    /// The catalog could not be reached, or the item was not tried.
    Failed,
}

/// One batch of items from
/// [`Broker::poll_offline`](crate::broker::Broker::poll_offline), stored in
/// the catalog in order: take each with [`next_item`](Self::next_item), or
/// each run of items for one recipient with [`next_run`](Self::next_run)
/// (to store in one call), report each item given out, in order, with
/// [`handle`](Self::handle), then give the broker
/// [`into_results`](Self::into_results). Once the catalog could not be
/// reached, the rest of the batch fails without being tried (it goes back
/// to the outbox, in order, for a later round).
#[derive(Debug)]
pub struct HandOn {
    items: Peekable<alloc::vec::IntoIter<OfflineItem>>,
    /// The items given out and not reported yet, in order: (recipient, id).
    given: VecDeque<(String, u64)>,
    results: Vec<(String, u64, Handed)>,
}

impl HandOn {
    /// A batch of `items`, in the order the broker gave them.
    pub fn new(items: Vec<OfflineItem>) -> HandOn {
        HandOn {
            results: Vec::with_capacity(items.len()),
            items: items.into_iter().peekable(),
            given: VecDeque::new(),
        }
    }

    /// The next item to store in its recipient's queue, until `None`. One
    /// not reported before the next is asked for failed (with the rest).
    pub fn next_item(&mut self) -> Option<OfflineItem> {
        self.fail_unreported();
        let item = self.items.next()?;
        self.given.push_back((item.recipient.clone(), item.id));
        Some(item)
    }

    /// The next items, in order, that go to one recipient's queue (up to
    /// the next item for another, and no more than [`RUN_BYTES`] of them
    /// but the first), until an empty run. Those not reported before the
    /// next run is asked for failed (with the rest).
    pub fn next_run(&mut self) -> Vec<OfflineItem> {
        self.fail_unreported();
        let mut run: Vec<OfflineItem> = Vec::new();
        let mut bytes = 0;
        while let Some(item) = self.items.next_if(|i| match run.first() {
            None => true,
            Some(f) => f.recipient == i.recipient && bytes + size(i) <= RUN_BYTES,
        }) {
            bytes += size(&item);
            self.given.push_back((item.recipient.clone(), item.id));
            run.push(item);
        }
        run
    }

    /// What became of the first item given out and not reported yet.
    /// [`Handed::Failed`] (the catalog cannot be reached) fails the rest of
    /// the batch too.
    pub fn handle(&mut self, handed: Handed) {
        let Some((recipient, id)) = self.given.pop_front() else {
            return;
        };
        self.results.push((recipient, id, handed));
        if handed == Handed::Failed {
            self.fail_rest();
        }
    }

    /// What became of each item, as (recipient, id, what), in batch order;
    /// those not tried (or not reported) failed.
    pub fn into_results(mut self) -> Vec<(String, u64, Handed)> {
        self.fail_unreported();
        self.fail_rest();
        self.results
    }

    fn fail_unreported(&mut self) {
        if !self.given.is_empty() {
            self.handle(Handed::Failed);
        }
    }

    fn fail_rest(&mut self) {
        for (recipient, id) in self.given.drain(..) {
            self.results.push((recipient, id, Handed::Failed));
        }
        for item in self.items.by_ref() {
            (self.results).push((item.recipient, item.id, Handed::Failed));
        }
    }
}

/// How many bytes of messages one run holds at most (its first message
/// whatever its size): one catalog call takes no more, so a run of large
/// messages does not hold a shared catalog (a Redis script runs alone) for
/// long.
pub const RUN_BYTES: usize = 1 << 20;

/// What an item weighs in a run.
fn size(item: &OfflineItem) -> usize {
    item.payload.len() + item.topic.len() + item.meta.len()
}

/// Whether a round hands on another batch, after one of `handed` items
/// (what [`Broker::poll_offline`](crate::broker::Broker::poll_offline) gave
/// it, at most [`OFFLINE_BATCH`]) and `elapsed` since the round began: while
/// batches come full and within half of the `heartbeat`, so a backlog goes
/// out at the catalog's pace and still never holds back the next heartbeat
/// (which renews the node's lease).
pub fn hand_on_again(handed: usize, elapsed: Duration, heartbeat: Duration) -> bool {
    handed >= OFFLINE_BATCH && elapsed < heartbeat / 2
}
