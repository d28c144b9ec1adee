//! Replay: a new subscription (or group) that starts at a sequence number, the
//! last N messages or its cursor reads what its topics retain, in the order the
//! broker accepted them, paced by its consumers' credit like any delivery.
//!
//! A replay does not copy retained messages into the queue (the queue's bound
//! is for live traffic, and a topic may retain far more): it keeps a cursor per
//! matching topic and takes the next message from retention when a consumer
//! can take one. It covers the messages accepted before it started (ids below
//! `until`); live messages queue meanwhile and follow once it is done. A
//! message that retention drops before the replay reaches it is skipped.

use alloc::collections::{BinaryHeap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;

use super::message::Msg;
use super::router::Topics;
use crate::time::Instant;

pub(crate) struct Replay {
    /// Message ids below this are the replay's; later ones arrive live.
    until: u64,
    /// Per matching topic, the next sequence number to replay.
    topics: Vec<(Arc<str>, u64)>,
    /// (message id, topic index) of each topic's next message: the smallest
    /// id goes first.
    heads: BinaryHeap<Reverse<(u64, usize)>>,
}

impl Replay {
    /// A replay of `topics` (name, first sequence number to replay) over
    /// messages with ids below `until`; `None` when there is nothing to replay.
    pub(crate) fn new(topics: Vec<(Arc<str>, u64)>, until: u64, table: &Topics) -> Option<Replay> {
        let mut r = Replay {
            until,
            topics,
            heads: BinaryHeap::new(),
        };
        for i in 0..r.topics.len() {
            r.push_head(i, table);
        }
        (!r.heads.is_empty()).then_some(r)
    }

    /// Finds topic `i`'s next message at or after its cursor and lists it.
    fn push_head(&mut self, i: usize, table: &Topics) {
        let Some((name, from)) = self.topics.get(i) else {
            return;
        };
        if let Some(m) = first_from(table.get(name).map(|t| &t.retained), *from)
            && m.id < self.until
        {
            self.heads.push(Reverse((m.id, i)));
        }
    }

    /// Whether a message may follow (retention can still drop it first).
    pub(crate) fn has_next(&self) -> bool {
        !self.heads.is_empty()
    }

    /// The next message in acceptance order, skipping expired ones.
    pub(crate) fn next(&mut self, now: Instant, table: &Topics) -> Option<Msg> {
        while let Some(Reverse((id, i))) = self.heads.pop() {
            let (name, from) = self.topics.get(i)?;
            let Some(m) = first_from(table.get(name).map(|t| &t.retained), *from) else {
                continue;
            };
            if m.id != id {
                // Retention dropped the listed one: list what is there now.
                if m.id < self.until {
                    self.heads.push(Reverse((m.id, i)));
                }
                continue;
            }
            let m = m.clone();
            if let Some(t) = self.topics.get_mut(i) {
                t.1 = m.seq + 1;
            }
            self.push_head(i, table);
            if !m.is_expired(now) {
                return Some(m);
            }
        }
        None
    }

    /// Every message still to replay (for snapshots and drain checks).
    pub(crate) fn for_each_pending(&self, table: &Topics, mut f: impl FnMut(&Msg)) {
        for (name, from) in &self.topics {
            let Some(msgs) = table.get(name).map(|t| &t.retained) else {
                continue;
            };
            let start = msgs.partition_point(|m| m.seq < *from);
            msgs.range(start..)
                .take_while(|m| m.id < self.until)
                .for_each(&mut f);
        }
    }
}

/// The first retained message with a sequence number of at least `from`.
fn first_from(msgs: Option<&VecDeque<Msg>>, from: u64) -> Option<&Msg> {
    let msgs = msgs?;
    msgs.get(msgs.partition_point(|m| m.seq < from))
}
