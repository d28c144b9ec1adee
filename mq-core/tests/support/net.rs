//! A faulty network pipe and a store that loses what it had not made durable,
//! for the simulations.

use std::collections::VecDeque;

use mq_core::Instant;

use crate::rng::Rng;

/// One direction of a connection: chunks in flight, in order.
#[derive(Default)]
pub struct Pipe {
    chunks: VecDeque<(Instant, Vec<u8>)>,
    /// Arrived but not yet consumed by the endpoint.
    pub rx: Vec<u8>,
}

impl Pipe {
    /// Sends `bytes` cut into chunks at random points, arriving from `at` on,
    /// never before the chunks sent earlier.
    pub fn send(&mut self, mut at: Instant, bytes: &[u8], rng: &mut Rng) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = (1 + rng.below(rest.len() as u64 * 2) as usize).min(rest.len());
            if let Some((last, _)) = self.chunks.back() {
                at = at.max(*last);
            }
            self.chunks.push_back((at, rest[..n].to_vec()));
            rest = &rest[n..];
        }
    }

    /// Moves the chunks due at `now` into `rx`.
    pub fn arrive(&mut self, now: Instant) {
        while self.chunks.front().is_some_and(|c| c.0 <= now) {
            let (_, chunk) = self.chunks.pop_front().expect("front exists");
            self.rx.extend_from_slice(&chunk);
        }
    }

    /// When the next chunk arrives.
    pub fn next(&self) -> Option<Instant> {
        self.chunks.front().map(|c| c.0)
    }

    /// Nothing in flight, nothing left unconsumed.
    pub fn is_idle(&self) -> bool {
        self.chunks.is_empty() && self.rx.is_empty()
    }
}

/// A store that makes records durable in order, some time after they are
/// written, and loses the rest in a crash. It reports a record stored only
/// once it is durable (as `fsync = "always"` does), so an op that
/// `must_sync` asks nothing more of it.
#[derive(Default)]
pub struct Store {
    durable: Vec<Vec<u8>>,
    /// Written but not yet durable: (token, bytes, durable at).
    volatile: VecDeque<(u64, Vec<u8>, Instant)>,
}

impl Store {
    /// Writes a record; it becomes durable at `at` or after the one before.
    pub fn write(&mut self, token: u64, bytes: &[u8], at: Instant) {
        let at = self.volatile.back().map_or(at, |(_, _, t)| at.max(*t));
        self.volatile.push_back((token, bytes.to_vec(), at));
    }

    /// Makes the records due at `now` durable; the token of the last one.
    pub fn settle(&mut self, now: Instant) -> Option<u64> {
        let mut upto = None;
        while self.volatile.front().is_some_and(|v| v.2 <= now) {
            let (token, bytes, _) = self.volatile.pop_front().expect("front exists");
            self.durable.push(bytes);
            upto = Some(token);
        }
        upto
    }

    /// When the next record becomes durable.
    pub fn next(&self) -> Option<Instant> {
        self.volatile.front().map(|v| v.2)
    }

    /// The records a restart restores, in order.
    pub fn durable(&self) -> &[Vec<u8>] {
        &self.durable
    }

    /// A crash: what was not durable is lost.
    pub fn crash(&mut self) -> usize {
        let lost = self.volatile.len();
        self.volatile.clear();
        lost
    }

    /// A compaction: the snapshot (written durably) replaces the log and
    /// covers every record with a token up to `upto`.
    pub fn compact(&mut self, records: &[std::sync::Arc<[u8]>], upto: u64) {
        self.durable = records.iter().map(|r| r.to_vec()).collect();
        self.volatile.retain(|(token, _, _)| *token > upto);
    }
}
