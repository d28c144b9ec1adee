//! Records on their way to the store: numbered by token, handed out in order by
//! `poll_store`, reported back durable by `handle_persisted`.

use alloc::collections::VecDeque;
use alloc::sync::Arc;

use super::record::{Record, StoreOp};

pub(crate) struct StoreOps {
    ops: VecDeque<StoreOp>,
    next_token: u64,
    /// Every token up to this one is durable.
    persisted: u64,
    /// The store is at its size limit: QoS 1 publishes are refused.
    pub full: bool,
}

impl StoreOps {
    pub(crate) fn new() -> Self {
        StoreOps {
            ops: VecDeque::new(),
            next_token: 1,
            persisted: 0,
            full: false,
        }
    }

    /// Queues a record; returns its token.
    pub(crate) fn emit(&mut self, record: &Record<'_>) -> u64 {
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
        let token = self.next_token;
        self.next_token += 1;
        self.ops.push_back(StoreOp::new(token, bytes));
        token
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
        let mut ops = StoreOps::new();
        let ack = Record::Ack {
            client: "c",
            sub: 1,
            msg: 2,
        };
        let open = Record::SessionOpen { client: "c" };
        let tokens = [ops.emit(&open), ops.emit(&ack), ops.emit(&open)];
        assert_eq!(tokens, [1, 2, 3]);
        assert_eq!(ops.pending(), 3);
        let got: alloc::vec::Vec<_> = core::iter::from_fn(|| ops.poll()).collect();
        let got: alloc::vec::Vec<_> = got
            .iter()
            .map(|o| (o.token, o.is_inline(), o.record()))
            .collect();
        assert_eq!(got, [(1, false, open), (2, true, ack), (3, false, open)]);
        assert_eq!(ops.pending(), 0);
    }

    #[test]
    fn pending_counts_what_poll_hands_out() {
        let mut ops = StoreOps::new();
        let open = Record::SessionOpen { client: "c" };
        for _ in 0..5 {
            ops.emit(&open);
        }
        assert_eq!(ops.poll().map(|o| o.token), Some(1));
        assert_eq!(ops.pending(), 4);
        assert_eq!(core::iter::from_fn(|| ops.poll()).count(), 4);
        assert!(ops.is_drained());
    }
}
