//! Deduplication of retried publishes by producer id and sequence.
//!
//! Per producer the broker remembers the sequence numbers of its last `window`
//! stored messages (with the topic sequence each got, to answer a duplicate with the
//! same `PubAck`). A sequence inside the window that was seen is a duplicate; one
//! older than the window is treated as a duplicate too (producers number their
//! messages in order and resend in order, so it was stored long ago), except
//! for a node link's publish, which is stored: a link's is dropped only when its
//! sequence is remembered as stored. The least recently active producers are
//! forgotten first when there are too many (a forgotten producer's publishes
//! are new, so a link's redelivery is never dropped for that either).

use alloc::collections::{BTreeMap, VecDeque};

use super::Map;

/// A producer: a node link's (`true`: [`mesh_producer`](crate::wire::mesh::mesh_producer)
/// ids) or a client's, apart, so a client cannot pose as a link's producer.
pub(crate) type ProducerKey = (bool, u64);

struct Producer {
    /// (producer sequence, topic sequence), ascending by producer sequence.
    recent: VecDeque<(u64, u64)>,
    last_active: u64,
}

/// The outcome of checking a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not seen: store it.
    New,
    /// Seen; the topic sequence it was stored with, when still remembered.
    Duplicate(Option<u64>),
    /// Older than the window: a client's is a duplicate (clients resend in
    /// order, so it was stored long ago), a node link's is not known to be
    /// one (a peer redelivers what this node refused, after newer messages
    /// were stored), and is stored.
    Below,
}

impl Seen {
    /// What a sequence below the window is: a duplicate (`true`) or new.
    pub(crate) fn below(self, duplicate: bool) -> Seen {
        match self {
            Seen::Below if duplicate => Seen::Duplicate(None),
            Seen::Below => Seen::New,
            seen => seen,
        }
    }
}

pub(crate) struct Dedup {
    producers: Map<ProducerKey, Producer>,
    /// last_active -> producer, for eviction.
    by_age: BTreeMap<u64, ProducerKey>,
    clock: u64,
    /// The producer recorded last: already the most recent in `by_age`, so
    /// its next records leave the age index alone (a producer publishing
    /// alone touches only its window).
    latest: Option<ProducerKey>,
    window: usize,
    max_producers: usize,
}

impl Dedup {
    pub(crate) fn new(window: usize, max_producers: usize) -> Self {
        Dedup {
            producers: Map::default(),
            by_age: BTreeMap::new(),
            clock: 0,
            latest: None,
            window: window.max(1),
            max_producers: max_producers.max(1),
        }
    }

    pub(crate) fn check(&self, producer: ProducerKey, seq: u64) -> Seen {
        let Some(p) = self.producers.get(&producer) else {
            return Seen::New;
        };
        // Producers number their publishes 1, 2, 3, ...: past the newest is new.
        if p.recent.back().is_some_and(|&(newest, _)| seq > newest) {
            return Seen::New;
        }
        match p.recent.binary_search_by_key(&seq, |&(s, _)| s) {
            Ok(i) => Seen::Duplicate(Some(p.recent[i].1)),
            Err(0) if p.recent.len() >= self.window => Seen::Below,
            Err(_) => Seen::New,
        }
    }

    /// Remembers that `seq` of `producer` was stored as `topic_seq`.
    pub(crate) fn record(&mut self, producer: ProducerKey, seq: u64, topic_seq: u64) {
        if self.latest == Some(producer)
            && let Some(p) = self.producers.get_mut(&producer)
        {
            Self::remember(p, seq, topic_seq, self.window);
            return;
        }
        self.latest = Some(producer);
        self.clock += 1;
        let clock = self.clock;
        if !self.producers.contains_key(&producer)
            && self.producers.len() >= self.max_producers
            && let Some((_, oldest)) = self.by_age.pop_first()
        {
            self.producers.remove(&oldest);
        }
        let p = self.producers.entry(producer).or_insert(Producer {
            recent: VecDeque::new(),
            last_active: clock,
        });
        self.by_age.remove(&p.last_active);
        p.last_active = clock;
        self.by_age.insert(clock, producer);
        Self::remember(p, seq, topic_seq, self.window);
    }

    /// Adds `seq` to a producer's window, in order, forgetting the oldest.
    fn remember(p: &mut Producer, seq: u64, topic_seq: u64, window: usize) {
        // Usually appended in order; a late one is inserted in place.
        if p.recent.back().is_none_or(|&(newest, _)| seq > newest) {
            p.recent.push_back((seq, topic_seq));
        } else if let Err(i) = p.recent.binary_search_by_key(&seq, |&(s, _)| s) {
            p.recent.insert(i, (seq, topic_seq));
        }
        while p.recent.len() > window {
            p.recent.pop_front();
        }
    }

    /// Every remembered (producer, sequence, topic sequence).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (ProducerKey, u64, u64)> + '_ {
        self.producers
            .iter()
            .flat_map(|(&id, p)| p.recent.iter().map(move |&(seq, ts)| (id, seq, ts)))
    }

    #[cfg(test)]
    pub(crate) fn producers(&self) -> usize {
        self.producers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_and_eviction() {
        let mut d = Dedup::new(3, 2);
        assert_eq!(d.check((false, 1), 1), Seen::New);
        d.record((false, 1), 1, 10);
        d.record((false, 1), 2, 11);
        assert_eq!(d.check((false, 1), 1), Seen::Duplicate(Some(10)));
        assert_eq!(d.check((false, 1), 3), Seen::New);
        d.record((false, 1), 3, 12);
        d.record((false, 1), 4, 13);
        // 1 fell out of the window: a client's is still a duplicate, seq
        // unknown; a link's is stored.
        assert_eq!(d.check((false, 1), 1), Seen::Below);
        assert_eq!(d.check((false, 1), 1).below(true), Seen::Duplicate(None));
        assert_eq!(d.check((false, 1), 1).below(false), Seen::New);
        assert_eq!(d.check((false, 1), 4), Seen::Duplicate(Some(13)));
        // Out of order (a retry after a gap) is placed in order.
        d.record((false, 1), 6, 15);
        d.record((false, 1), 5, 14);
        assert_eq!(d.check((false, 1), 5), Seen::Duplicate(Some(14)));
        assert_eq!(d.check((false, 1), 6), Seen::Duplicate(Some(15)));
        assert_eq!(d.check((false, 1), 7), Seen::New);
        d.record((false, 2), 1, 1);
        d.record((false, 2), 2, 2); // producer 2 again: stays the most recent
        d.record((false, 1), 7, 16); // producer 1 becomes the most recent
        d.record((false, 3), 1, 1); // evicts producer 2, the least recently active
        assert_eq!(d.producers(), 2);
        assert_eq!(d.check((false, 2), 1), Seen::New);
        assert_eq!(d.check((false, 1), 7), Seen::Duplicate(Some(16)));
        d.record((false, 4), 1, 1); // evicts producer 1
        assert_eq!(d.producers(), 2);
        assert_eq!(d.check((false, 1), 7), Seen::New);
        assert_eq!(d.check((false, 3), 1), Seen::Duplicate(Some(1)));
    }
}
