//! Records on their way to the store: numbered by token, handed out in order by
//! `poll_store`, reported back durable by `handle_persisted`.

use alloc::collections::VecDeque;
use alloc::sync::Arc;

use super::record::{Record, StoreOp};

mod epoch;
pub(crate) use epoch::Epoch;

pub(crate) struct StoreOps {
    ops: VecDeque<StoreOp>,
    next_token: u64,
    /// Every token up to this one is durable.
    persisted: u64,
    /// The store is at its size limit: QoS 1 publishes are refused.
    pub full: bool,
    /// Written before the first record the broker writes to the store.
    pub epoch: Epoch,
}

impl StoreOps {
    pub(crate) fn new(seed: u64) -> Self {
        StoreOps {
            ops: VecDeque::new(),
            next_token: 1,
            persisted: 0,
            full: false,
            epoch: Epoch::new(seed),
        }
    }

    /// Queues a record; returns its token.
    pub(crate) fn emit(&mut self, record: &Record<'_>) -> u64 {
        if self.epoch.is_due() {
            self.emit_epoch();
        }
        // An `Ack` (at every acknowledgement) travels in its op, unallocated.
        let token = self.next_token;
        let Some(op) = StoreOp::inline(token, record) else {
            return self.emit_shared(record.encode_shared());
        };
        self.next_token += 1;
        self.ops.push_back(op);
        token
    }

    /// Queues an encoded record; returns its token.
    pub(crate) fn emit_shared(&mut self, bytes: Arc<[u8]>) -> u64 {
        self.push(|token| StoreOp::new(token, bytes))
    }

    /// Queues a record the store must sync ([`StoreOp::must_sync`]);
    /// returns its token.
    pub(crate) fn emit_synced(&mut self, record: &Record<'_>) -> u64 {
        let bytes = record.encode_shared();
        self.push(|token| StoreOp::synced(token, bytes))
    }

    /// Queues the op `make` builds with the next token (after the store's
    /// epoch, when that is still to write); returns the token.
    #[inline]
    fn push(&mut self, make: impl FnOnce(u64) -> StoreOp) -> u64 {
        if self.epoch.is_due() {
            self.emit_epoch();
        }
        let token = self.next_token;
        self.next_token += 1;
        self.ops.push_back(make(token));
        token
    }

    /// Queues the store's epoch, ahead of every other record of this run.
    #[cold]
    fn emit_epoch(&mut self) {
        self.epoch.written();
        let epoch = self.epoch.get();
        self.emit_shared(Record::StoreEpoch { epoch }.encode_shared());
    }

    pub(crate) fn poll(&mut self) -> Option<StoreOp> {
        self.ops.pop_front()
    }

    /// How many ops wait to be handed out.
    pub(crate) fn pending(&self) -> usize {
        self.ops.len()
    }

    /// Nothing waits to be handed out.
    pub(crate) fn is_drained(&self) -> bool {
        self.ops.is_empty()
    }

    /// The last token handed out or queued.
    pub(crate) fn last_token(&self) -> u64 {
        self.next_token - 1
    }

    pub(crate) fn persisted(&self) -> u64 {
        self.persisted
    }

    pub(crate) fn mark_persisted(&mut self, token: u64) {
        self.persisted = self.persisted.max(token);
    }

    /// Whether the record with `token` (if any) is durable.
    pub(crate) fn is_persisted(&self, token: Option<u64>) -> bool {
        token.is_none_or(|t| t <= self.persisted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_is_queued_in_its_op_in_order() {
        let mut ops = StoreOps::new(7);
        let epoch = Record::StoreEpoch {
            epoch: ops.epoch.get(),
        };
        let ack = Record::Ack {
            client: "c",
            sub: 1,
            msg: 2,
        };
        let open = Record::SessionOpen { client: "c" };
        let tokens = [ops.emit(&open), ops.emit(&ack), ops.emit(&open)];
        // The store's epoch goes first.
        assert_eq!(tokens, [2, 3, 4]);
        assert_eq!(ops.pending(), 4);
        let got: alloc::vec::Vec<_> = core::iter::from_fn(|| ops.poll()).collect();
        let got: alloc::vec::Vec<_> = got
            .iter()
            .map(|o| (o.token, o.is_inline(), o.record()))
            .collect();
        let want = [
            (1, false, epoch),
            (2, false, open),
            (3, true, ack),
            (4, false, open),
        ];
        assert_eq!(got, want);
        assert_eq!(ops.pending(), 0);
    }

    #[test]
    fn only_a_record_emitted_synced_must_be_synced() {
        let mut ops = StoreOps::new(7);
        ops.emit(&Record::SessionOpen { client: "c" });
        ops.emit_synced(&Record::IdReserve { until: 9 });
        let got: alloc::vec::Vec<_> = core::iter::from_fn(|| ops.poll())
            .map(|o| (o.token, o.must_sync()))
            .collect();
        assert_eq!(got, [(1, false), (2, false), (3, true)]);
    }

    #[test]
    fn pending_counts_what_poll_hands_out() {
        let mut ops = StoreOps::new(7);
        let open = Record::SessionOpen { client: "c" };
        for _ in 0..5 {
            ops.emit(&open);
        }
        // The store's epoch, then the five.
        assert_eq!(ops.pending(), 6);
        assert_eq!(ops.poll().map(|o| o.token), Some(1));
        assert_eq!(ops.pending(), 5);
        assert_eq!(core::iter::from_fn(|| ops.poll()).count(), 5);
        assert!(ops.is_drained());
    }
}
