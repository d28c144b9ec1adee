//! This node's own queue in the catalog, read page by page.

use alloc::vec::Vec;
use core::time::Duration;

use super::CatalogRound;
use crate::broker::OfflineError;

/// The page of this node's catalog queue to read (see
/// [`CatalogRound::next_page`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Read after this catalog id (`None`: from the queue's head).
    pub after: Option<u64>,
    /// At most this many messages.
    pub max: usize,
}

impl CatalogRound {
    /// The page to read next: each after the last, so that what stays in
    /// the queue (malformed) does not keep the pages behind it waiting
    /// (another in the same round while [`drain_again`](Self::drain_again)
    /// says so). A round whose read fails starts from the head next time.
    pub fn next_page(&mut self) -> PageRequest {
        self.acking_after = None;
        PageRequest {
            after: self.drain_after.take(),
            max: self.page,
        }
    }

    /// The page read has these catalog `ids`, in queue order, and the
    /// broker's [`deliver_offline`](crate::broker::Broker::deliver_offline)
    /// said `results` of them (one each), all stored: returns the ids to
    /// ack in the catalog, those taken and those the node will never take
    /// ([`OfflineError::Rejected`]). The others stay. The next page starts
    /// after this one if it was full and nothing was
    /// [`Refused`](OfflineError::Refused) (else from the head again, in
    /// order), once the ack is done ([`handle_acked`](Self::handle_acked);
    /// at once when there is nothing to ack).
    pub fn handle_page(&mut self, ids: &[u64], results: &[Result<(), OfflineError>]) -> Vec<u64> {
        debug_assert_eq!(ids.len(), results.len(), "one result per message");
        let mut ack = Vec::with_capacity(ids.len());
        let mut refused = false;
        for (&id, result) in ids.iter().zip(results) {
            match result {
                Ok(()) | Err(OfflineError::Rejected) => ack.push(id),
                Err(e) => refused |= *e == OfflineError::Refused,
            }
        }
        let full = ids.len() >= self.page;
        let after = ids.last().copied().filter(|_| full && !refused);
        match ack.is_empty() {
            true => self.drain_after = after,
            false => self.acking_after = after,
        }
        ack
    }

    /// The ack [`handle_page`](Self::handle_page) asked for is done (`ok`),
    /// or failed: then the next page starts from the head.
    pub fn handle_acked(&mut self, ok: bool) {
        let after = self.acking_after.take();
        if ok {
            self.drain_after = after;
        }
    }

    /// Whether a round reads another page now, `elapsed` since it began:
    /// when the last page was full, nothing in it was refused and its ack
    /// is done (the next page starts after it), within half of the
    /// `heartbeat`, so a backlog drains at the pace this node stores it and
    /// never holds back the heartbeat that renews its lease.
    pub fn drain_again(&self, elapsed: Duration, heartbeat: Duration) -> bool {
        self.drain_after.is_some() && self.acking_after.is_none() && elapsed < heartbeat / 2
    }
}
