//! One batch of offline items handed on to the catalog.

use alloc::string::String;
use alloc::vec::{IntoIter, Vec};

use crate::broker::OfflineItem;

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
/// [`Broker::poll_offline`](crate::broker::Broker::poll_offline), stored one
/// after the other in the catalog: take each with
/// [`next_item`](Self::next_item), report it with [`handle`](Self::handle),
/// then give the broker [`into_results`](Self::into_results). Once the
/// catalog could not be reached, the rest of the batch fails without being
/// tried (it goes back to the outbox, in order, for a later round).
#[derive(Debug)]
pub struct HandOn {
    items: IntoIter<OfflineItem>,
    /// The item given out and not reported yet: (recipient, id).
    current: Option<(String, u64)>,
    results: Vec<(String, u64, Handed)>,
}

impl HandOn {
    /// A batch of `items`, in the order the broker gave them.
    pub fn new(items: Vec<OfflineItem>) -> HandOn {
        HandOn {
            results: Vec::with_capacity(items.len()),
            items: items.into_iter(),
            current: None,
        }
    }

    /// The next item to store in its recipient's queue, until `None`. One
    /// not reported before the next is asked for failed (with the rest).
    pub fn next_item(&mut self) -> Option<OfflineItem> {
        if self.current.is_some() {
            self.handle(Handed::Failed);
        }
        let item = self.items.next()?;
        self.current = Some((item.recipient.clone(), item.id));
        Some(item)
    }

    /// What became of the item [`next_item`](Self::next_item) gave out
    /// last. [`Handed::Failed`] (the catalog cannot be reached) fails the
    /// rest of the batch too.
    pub fn handle(&mut self, handed: Handed) {
        let Some((recipient, id)) = self.current.take() else {
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
        if self.current.is_some() {
            self.handle(Handed::Failed);
        }
        self.fail_rest();
        self.results
    }

    fn fail_rest(&mut self) {
        for item in self.items.by_ref() {
            (self.results).push((item.recipient, item.id, Handed::Failed));
        }
    }
}
