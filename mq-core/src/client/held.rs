//! Held deliveries: QoS 1 messages the application has not acked yet, acks waiting
//! to be transmitted, and a ring of recently acked messages.
//!
//! A [`DeliveryId`] is a slot index and the slot's generation, so an id can never
//! name a later occupant of its slot. Messages are recognised across redeliveries
//! (which carry a fresh broker tag) by subscription, FNV-1a hash of the topic and
//! sequence number.

use super::DeliveryId;

/// Recently acked messages remembered for deduplication.
pub(crate) const RECENT: usize = 64;

/// What the application decided about a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    Ack,
    Nack { requeue: bool },
}

/// Identifies one message of one subscription across redeliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MessageKey {
    pub sub: u32,
    pub topic_hash: u64,
    pub seq: u64,
}

/// FNV-1a, 64 bits.
pub(crate) fn topic_hash(topic: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Free,
    /// The application holds the delivery.
    Held {
        key: MessageKey,
        tag: u64,
        /// The connection the tag belongs to.
        epoch: u32,
    },
    /// An ack or nack waits for `poll_transmit`.
    Settling {
        tag: u64,
        settle: Settle,
    },
}

/// The held table and the recently acked ring.
#[derive(Debug)]
pub(crate) struct Held<const N: usize> {
    slots: [Slot; N],
    generations: [u32; N],
    recent: [Option<(MessageKey, Settle)>; RECENT],
    recent_next: usize,
}

impl<const N: usize> Held<N> {
    pub(crate) const fn new() -> Self {
        Held {
            slots: [Slot::Free; N],
            generations: [1; N],
            recent: [None; RECENT],
            recent_next: 0,
        }
    }

    fn id(&self, slot: usize) -> DeliveryId {
        DeliveryId((u64::from(self.generations[slot]) << 16) | slot as u64)
    }

    /// The slot an id names, if it is still that delivery.
    pub(crate) fn lookup(&self, id: DeliveryId) -> Option<usize> {
        let slot = (id.0 & 0xFFFF) as usize;
        let generation = (id.0 >> 16) as u32;
        match self.slots.get(slot) {
            Some(Slot::Free) | None => None,
            Some(_) if self.generations[slot] == generation => Some(slot),
            Some(_) => None,
        }
    }

    pub(crate) fn slot(&self, slot: usize) -> Slot {
        self.slots.get(slot).copied().unwrap_or(Slot::Free)
    }

    pub(crate) fn has_free(&self) -> bool {
        self.slots.contains(&Slot::Free)
    }

    /// Slots in use.
    pub(crate) fn len(&self) -> usize {
        self.slots.iter().filter(|s| **s != Slot::Free).count()
    }

    /// Takes a free slot for `state`.
    pub(crate) fn insert(&mut self, state: Slot) -> Option<DeliveryId> {
        // Slot indexes must fit the id's 16 bits.
        let slot = self
            .slots
            .iter()
            .take(1 << 16)
            .position(|s| *s == Slot::Free)?;
        self.slots[slot] = state;
        Some(self.id(slot))
    }

    pub(crate) fn set(&mut self, slot: usize, state: Slot) {
        if let Some(s) = self.slots.get_mut(slot) {
            *s = state;
        }
    }

    /// Frees a slot; its id becomes unknown.
    pub(crate) fn free(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            *s = Slot::Free;
            let g = self.generations[slot].wrapping_add(1);
            self.generations[slot] = if g == 0 { 1 } else { g };
        }
    }

    /// The held slot with this message.
    pub(crate) fn find(&self, key: &MessageKey) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| matches!(s, Slot::Held { key: k, .. } if k == key))
    }

    /// The first ack or nack waiting to be sent.
    pub(crate) fn next_settling(&self) -> Option<(usize, u64, Settle)> {
        self.slots.iter().enumerate().find_map(|(i, s)| match *s {
            Slot::Settling { tag, settle } => Some((i, tag, settle)),
            _ => None,
        })
    }

    /// The connection ended: acks not sent yet are dropped (the ring repeats them
    /// on redelivery); held deliveries keep their now useless tags.
    pub(crate) fn connection_lost(&mut self) {
        for slot in 0..N {
            if matches!(self.slots[slot], Slot::Settling { .. }) {
                self.free(slot);
            }
        }
    }

    /// Remembers how a message was settled, evicting the oldest entry.
    pub(crate) fn remember(&mut self, key: MessageKey, settle: Settle) {
        self.recent[self.recent_next] = Some((key, settle));
        self.recent_next = (self.recent_next + 1) % RECENT;
    }

    /// How a recently settled message was settled.
    pub(crate) fn recall(&self, key: &MessageKey) -> Option<Settle> {
        self.recent
            .iter()
            .flatten()
            .find(|(k, _)| k == key)
            .map(|(_, s)| *s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seq: u64) -> MessageKey {
        MessageKey {
            sub: 1,
            topic_hash: topic_hash("a.b"),
            seq,
        }
    }

    #[test]
    fn ids_are_generational() {
        let mut h = Held::<2>::new();
        let held = |seq| Slot::Held {
            key: key(seq),
            tag: seq,
            epoch: 0,
        };
        let a = h.insert(held(1)).unwrap();
        let b = h.insert(held(2)).unwrap();
        assert!(h.insert(held(3)).is_none());
        assert_ne!(a, b);
        assert!(a.needs_ack());
        let slot = h.lookup(a).unwrap();
        h.free(slot);
        assert_eq!(h.lookup(a), None);
        let c = h.insert(held(3)).unwrap();
        assert_ne!(a, c);
        assert_eq!(h.lookup(c), Some(slot));
        assert_eq!(h.find(&key(2)), h.lookup(b));
        assert_eq!(h.lookup(DeliveryId::NONE), None);
    }

    #[test]
    fn ring_forgets_oldest() {
        let mut h = Held::<1>::new();
        for seq in 0..=RECENT as u64 {
            h.remember(key(seq), Settle::Ack);
        }
        assert_eq!(h.recall(&key(0)), None);
        assert_eq!(h.recall(&key(1)), Some(Settle::Ack));
        assert_eq!(h.recall(&key(RECENT as u64)), Some(Settle::Ack));
        // FNV-1a test vector.
        assert_eq!(topic_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
