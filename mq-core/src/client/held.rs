//! Held deliveries: QoS 1 messages the application has not acked yet, acks waiting
//! to be transmitted, and a ring of recently acked messages.
//!
//! A [`DeliveryId`] is a slot index and the slot's generation, so an id can never
//! name a later occupant of its slot. Messages are recognised across redeliveries
//! (which carry a fresh broker tag) by subscription, FNV-1a hash of the topic and
//! sequence number.
//!
//! After a resumed session's `Welcome` the acks in the ring go to the broker
//! again, by message ([`AckMessage`]): an ack sent on the old connection, or
//! the broker's record of it, may have been lost, and the message may come
//! back after more deliveries than the ring remembers.

use core::ptr::addr_of_mut;

use super::DeliveryId;
use super::fingerprints::{contains, matching};
use crate::wire::AckMessage;

/// Recently acked messages remembered for deduplication: 64 on hosts; 32 on
/// devices (without `alloc`), where the ring is most of a session's RAM
/// (26 bytes an entry: its 24-byte record and a 2-byte fingerprint) and
/// the broker's credit is a few deliveries. A
/// redelivery of a message the ring no longer remembers reaches the
/// application again, as at-least-once allows.
#[cfg(feature = "alloc")]
pub(crate) const RECENT: usize = 64;
#[cfg(not(feature = "alloc"))]
pub(crate) const RECENT: usize = 32;

/// One bit per ring entry (`Held::resend`): on devices a word, not two.
#[cfg(feature = "alloc")]
type RingBits = u64;
#[cfg(not(feature = "alloc"))]
type RingBits = u32;

/// What the application decided about a delivery.
// A tag byte of its own (`Ack` is 0) rather than `Nack`'s `bool`'s spare
// values: an unused ring entry (`Recent::UNUSED`) is then all zeros, and
// building a session fills the ring with zeros instead of copying a 24-byte
// constant into each entry (76 bytes less on devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
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

pub(crate) use crate::wire::topic_hash;

/// A slot of zeros is `Free`, so that `Held::init_on_zeros` leaves a zeroed
/// slot's slots as they are (the layout of `Slot` is the compiler's: this is
/// evaluated for each target it builds for, and evaluating it fails to
/// compile if zeros are not a valid `Slot`, or not `Free`).
const ZEROS_ARE_FREE: () = assert!(matches!(
    // SAFETY: evaluated at compile time, where an invalid value is an error.
    unsafe { core::mem::zeroed::<Slot>() },
    Slot::Free
));

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

/// The held table and the recently acked ring: the slots, with three summaries kept beside them so the per-delivery
/// operations do not scan the slot array: a count of used slots, a 16-bit
/// fingerprint per held slot (0: not held), and the settling slots in the order
/// they were settled (acks go out in that order).
#[derive(Debug)]
pub(crate) struct Held<const N: usize> {
    slots: [Slot; N],
    generations: [u32; N],
    used: usize,
    /// Where `insert` starts looking for a free slot: the one freed last, or
    /// the one after the last taken.
    free_hint: usize,
    fingerprints: [u16; N],
    /// Ring of the slots in `Slot::Settling`, oldest first.
    settling: [u16; N],
    settling_head: usize,
    settling_len: usize,
    /// Entry `i` counts only where `recent_fingerprints[i]` is non-zero.
    recent: [Recent; RECENT],
    recent_fingerprints: [u16; RECENT],
    recent_next: usize,
    /// Ring entries still to offer the broker by message: bit `i` for
    /// `recent[i]`. Overwriting an entry clears its bit.
    resend: RingBits,
}

// One bit per ring entry in `Held::resend`.
const _: () = assert!(RECENT <= RingBits::BITS as usize);

/// A recently settled message: its key's fields and how it was settled, side
/// by side (24 bytes; `Option<(MessageKey, Settle)>` takes 32, which over
/// the ring is half a kilobyte of a device's RAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Recent {
    topic_hash: u64,
    seq: u64,
    sub: u32,
    settle: Settle,
}

impl Recent {
    /// What an unused entry holds (its fingerprint, 0, says it is unused).
    const UNUSED: Recent = Recent {
        topic_hash: 0,
        seq: 0,
        sub: 0,
        settle: Settle::Ack,
    };

    fn is(&self, key: &MessageKey) -> bool {
        self.topic_hash == key.topic_hash && self.seq == key.seq && self.sub == key.sub
    }
}

impl MessageKey {
    /// A non-zero 16-bit digest; equal keys have equal fingerprints.
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    fn fingerprint(&self) -> u16 {
        let h =
            self.topic_hash ^ self.seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(self.sub);
        let folded = (h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) as u16;
        folded.max(1)
    }
}

impl<const N: usize> Held<N> {
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        let mut held = core::mem::MaybeUninit::uninit();
        // SAFETY: `init` writes all of it.
        unsafe {
            Self::init(held.as_mut_ptr());
            held.assume_init()
        }
    }

    /// Writes an empty table into `slot`, field by field and element by
    /// element: the table is most of a session's size, and a value built
    /// first and then moved takes a stack frame that size.
    ///
    /// # Safety
    ///
    /// `slot` is valid for writes and aligned; whatever it held is
    /// overwritten without being dropped (nothing in the table needs it).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) unsafe fn init(slot: *mut Self) {
        let _ = Self::FIELDS;
        // SAFETY: every field is written once through a raw pointer into
        // `slot` (`FIELDS` does not compile when a field is added).
        unsafe {
            fill(addr_of_mut!((*slot).slots), Slot::Free);
            fill(addr_of_mut!((*slot).generations), 1);
            addr_of_mut!((*slot).used).write(0);
            addr_of_mut!((*slot).free_hint).write(0);
            fill(addr_of_mut!((*slot).fingerprints), 0);
            fill(addr_of_mut!((*slot).settling), 0);
            addr_of_mut!((*slot).settling_head).write(0);
            addr_of_mut!((*slot).settling_len).write(0);
            fill(addr_of_mut!((*slot).recent), Recent::UNUSED);
            fill(addr_of_mut!((*slot).recent_fingerprints), 0);
            addr_of_mut!((*slot).recent_next).write(0);
            addr_of_mut!((*slot).resend).write(0);
        }
    }

    /// [`init`](Self::init) into a slot whose bytes are all zero: only the
    /// field whose empty value is not all zeros is written (the generations'
    /// 1). The others are integers, arrays of them, the slots (a slot of
    /// zeros is `Free`, which [`ZEROS_ARE_FREE`] checks on each target) and
    /// the ring's entries, whose `UNUSED` is all zeros (`Settle` is
    /// `#[repr(u8)]` with `Ack` 0). Devices build the session in a
    /// zeroed slot; the zero fills cost code there (the ring's alone is a
    /// call).
    ///
    /// # Safety
    ///
    /// As [`init`](Self::init), and every byte of `slot` is zero.
    #[cfg_attr(feature = "alloc", allow(dead_code))]
    pub(crate) unsafe fn init_on_zeros(slot: *mut Self) {
        let _ = Self::FIELDS;
        let () = ZEROS_ARE_FREE;
        // SAFETY: the zero fields are valid as they are (a slot of zeros is
        // `Free`: `ZEROS_ARE_FREE`); the generations are written through a
        // raw pointer into `slot`.
        unsafe {
            fill(addr_of_mut!((*slot).generations), 1);
        }
    }

    /// Names every field: adding one stops this from compiling until
    /// [`init`](Self::init) writes it.
    const FIELDS: fn(Self) = |held| {
        let Held {
            slots: _,
            generations: _,
            used: _,
            free_hint: _,
            fingerprints: _,
            settling: _,
            settling_head: _,
            settling_len: _,
            recent: _,
            recent_fingerprints: _,
            recent_next: _,
            resend: _,
        } = held;
    };

    fn id(&self, slot: usize) -> DeliveryId {
        let generation = self.generations.get(slot).copied().unwrap_or(0);
        DeliveryId((u64::from(generation) << 16) | slot as u64)
    }

    /// The slot an id names, if it is still that id's.
    pub(crate) fn lookup(&self, id: DeliveryId) -> Option<usize> {
        let slot = (id.0 & 0xFFFF) as usize;
        let generation = (id.0 >> 16) as u32;
        match self.slots.get(slot) {
            Some(Slot::Free) | None => None,
            Some(_) if self.generations.get(slot) == Some(&generation) => Some(slot),
            Some(_) => None,
        }
    }

    /// The slot, lent: returning it by value copied the whole slot (40
    /// bytes on devices) where a caller wants two or three of its fields.
    pub(crate) fn slot(&self, slot: usize) -> &Slot {
        self.slots.get(slot).unwrap_or(&Slot::Free)
    }

    pub(crate) fn has_free(&self) -> bool {
        self.used < N.min(1 << 16)
    }

    pub(crate) fn len(&self) -> usize {
        self.used
    }

    /// Takes a free slot for `state`; `None` when every slot is in use.
    pub(crate) fn insert(&mut self, state: Slot) -> Option<DeliveryId> {
        if !self.has_free() || state == Slot::Free {
            return None;
        }
        // Slot indexes must fit the id's 16 bits.
        let limit = N.min(1 << 16);
        let start = self.free_hint.min(limit - 1);
        // From `start` round to just before it: one loop rather than two
        // chained ranges, which took about twice the code on devices.
        let slot = (0..limit)
            .map(|k| (start + k) % limit)
            .find(|&i| self.slots.get(i) == Some(&Slot::Free))?;
        self.free_hint = (slot + 1) % limit;
        self.used += 1;
        self.put(slot, state);
        Some(self.id(slot))
    }

    /// Replaces a used slot's state (`Held` to `Held` or `Settling`).
    pub(crate) fn set(&mut self, slot: usize, state: Slot) {
        match (self.slots.get(slot), state) {
            (None | Some(Slot::Free), _) => {}
            (Some(_), Slot::Free) => self.free(slot),
            (Some(Slot::Settling { .. }), Slot::Settling { tag, settle }) => {
                if let Some(s) = self.slots.get_mut(slot) {
                    *s = Slot::Settling { tag, settle };
                }
            }
            (Some(Slot::Settling { .. }), held) => {
                self.unqueue(slot);
                self.put(slot, held);
            }
            (Some(Slot::Held { .. }), state) => self.put(slot, state),
        }
    }

    /// Writes a non-free state into a slot that is not settling.
    fn put(&mut self, slot: usize, state: Slot) {
        let (Some(s), Some(fingerprint)) =
            (self.slots.get_mut(slot), self.fingerprints.get_mut(slot))
        else {
            return;
        };
        *s = state;
        *fingerprint = match state {
            Slot::Held { key, .. } => key.fingerprint(),
            Slot::Settling { .. } | Slot::Free => 0,
        };
        if let Slot::Settling { .. } = state {
            let tail = (self.settling_head + self.settling_len) % N;
            if let Some(t) = self.settling.get_mut(tail) {
                *t = slot as u16;
                self.settling_len += 1;
            }
        }
    }

    /// Takes a settling slot out of the ring (normally its oldest entry).
    fn unqueue(&mut self, slot: usize) {
        let at = |i: usize| (self.settling_head + i) % N;
        let Some(pos) = (0..self.settling_len)
            .find(|&i| self.settling.get(at(i)).map(|&s| usize::from(s)) == Some(slot))
        else {
            return;
        };
        for i in pos..self.settling_len - 1 {
            if let Some(&next) = self.settling.get(at(i + 1))
                && let Some(this) = self.settling.get_mut(at(i))
            {
                *this = next;
            }
        }
        self.settling_len -= 1;
    }

    pub(crate) fn free(&mut self, slot: usize) {
        let Some(s) = self.slots.get(slot).copied() else {
            return;
        };
        match s {
            Slot::Free => return,
            Slot::Settling { .. } => {
                if self.settling_len > 0 && self.oldest_settling() == Some(slot) {
                    self.settling_head = (self.settling_head + 1) % N;
                    self.settling_len -= 1;
                } else {
                    self.unqueue(slot);
                }
            }
            Slot::Held { .. } => {
                if let Some(fingerprint) = self.fingerprints.get_mut(slot) {
                    *fingerprint = 0;
                }
            }
        }
        if let Some(s) = self.slots.get_mut(slot) {
            *s = Slot::Free;
        }
        self.free_hint = slot;
        self.used -= 1;
        if let Some(generation) = self.generations.get_mut(slot) {
            *generation = match generation.wrapping_add(1) {
                0 => 1,
                g => g,
            };
        }
    }

    /// The slot holding `key` (a message the application has not settled).
    pub(crate) fn find(&self, key: &MessageKey) -> Option<usize> {
        let fp = key.fingerprint();
        if self.used == self.settling_len || !contains(&self.fingerprints, fp) {
            return None;
        }
        matching(&self.fingerprints, fp)
            .find(|&i| matches!(self.slots.get(i), Some(Slot::Held { key: k, .. }) if k == key))
    }

    /// The slot of the oldest settlement (when there is one).
    fn oldest_settling(&self) -> Option<usize> {
        self.settling
            .get(self.settling_head)
            .map(|&s| usize::from(s))
    }

    /// The oldest settlement waiting to be transmitted.
    pub(crate) fn next_settling(&self) -> Option<(usize, u64, Settle)> {
        if self.settling_len == 0 {
            return None;
        }
        let slot = self.oldest_settling()?;
        match self.slots.get(slot)? {
            Slot::Settling { tag, settle } => Some((slot, *tag, *settle)),
            _ => None,
        }
    }

    /// The connection ended: settlements not sent are void (the broker
    /// redelivers those messages).
    pub(crate) fn connection_lost(&mut self) {
        while self.settling_len > 0
            && let Some(slot) = self.oldest_settling()
        {
            self.free(slot);
        }
    }

    /// Remembers how a message was settled, evicting the oldest entry.
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(crate) fn remember(&mut self, key: MessageKey, settle: Settle) {
        if let Some(entry) = self.recent.get_mut(self.recent_next) {
            *entry = Recent {
                topic_hash: key.topic_hash,
                seq: key.seq,
                sub: key.sub,
                settle,
            };
        }
        if let Some(fingerprint) = self.recent_fingerprints.get_mut(self.recent_next) {
            *fingerprint = key.fingerprint();
        }
        self.resend &= !(1 << self.recent_next);
        self.recent_next = (self.recent_next + 1) % RECENT;
    }

    /// A connection was welcomed: with the session resumed, the acks in the
    /// ring are offered to the broker again (oldest first); otherwise none.
    pub(crate) fn resume(&mut self, session_present: bool) {
        self.resend = 0;
        if session_present {
            for i in 0..RECENT {
                if self.recent_ack(i).is_some() {
                    self.resend |= 1 << i;
                }
            }
        }
    }

    /// Entry `i`, if it is an ack.
    fn recent_ack(&self, i: usize) -> Option<AckMessage> {
        if self.recent_fingerprints.get(i).is_none_or(|&fp| fp == 0) {
            return None;
        }
        match self.recent.get(i)? {
            r if r.settle == Settle::Ack => Some(AckMessage {
                sub: r.sub,
                topic_hash: r.topic_hash,
                seq: r.seq,
            }),
            _ => None,
        }
    }

    /// The oldest ack still to offer the broker, and what to pass
    /// [`resent`](Self::resent) once it is written.
    pub(crate) fn next_resend(&self) -> Option<(usize, AckMessage)> {
        if self.resend == 0 {
            return None;
        }
        (0..RECENT)
            .map(|k| (self.recent_next + k) % RECENT)
            .filter(|&i| self.resend & (1 << i) != 0)
            .find_map(|i| self.recent_ack(i).map(|a| (i, a)))
    }

    /// Offers the entry remembered last to the broker as well: an ack of a
    /// delivery from an earlier connection, made after the resume.
    pub(crate) fn offer_last(&mut self) {
        let last = (self.recent_next + RECENT - 1) % RECENT;
        self.resend |= 1 << last;
    }

    /// The ack of entry `i` from [`next_resend`](Self::next_resend) was
    /// written.
    pub(crate) fn resent(&mut self, i: usize) {
        self.resend &= !(1 << i);
    }

    /// How a recently settled message was settled.
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(crate) fn recall(&self, key: &MessageKey) -> Option<Settle> {
        let fp = key.fingerprint();
        if !contains(&self.recent_fingerprints, fp) {
            return None;
        }
        matching(&self.recent_fingerprints, fp).find_map(|i| match self.recent.get(i) {
            Some(entry) if entry.is(key) => Some(entry.settle),
            _ => None,
        })
    }
}

/// Writes `value` into every element of the array at `array`, in place.
///
/// # Safety
///
/// `array` is valid for writes and aligned.
unsafe fn fill<T: Copy, const N: usize>(array: *mut [T; N], value: T) {
    let first = array.cast::<T>();
    for i in 0..N {
        // SAFETY: `i < N`: inside the array.
        unsafe { first.add(i).write(value) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::debug_on_zeros;

    #[test]
    fn init_on_zeros_is_init() {
        // SAFETY: `init_on_zeros` writes what is not zeros.
        let on_zeros = unsafe { debug_on_zeros(|slot: *mut Held<8>| Held::init_on_zeros(slot)) };
        assert_eq!(on_zeros, alloc::format!("{:?}", Held::<8>::new()));
        assert_eq!(
            Recent::UNUSED,
            Recent {
                topic_hash: 0,
                seq: 0,
                sub: 0,
                settle: Settle::Ack
            }
        );
    }

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
    fn settlements_leave_in_the_order_they_were_made() {
        let mut h = Held::<4>::new();
        let held = |seq| Slot::Held {
            key: key(seq),
            tag: seq,
            epoch: 0,
        };
        let settling = |tag| Slot::Settling {
            tag,
            settle: Settle::Ack,
        };
        let ids: [DeliveryId; 4] = core::array::from_fn(|i| h.insert(held(i as u64)).unwrap());
        assert!(!h.has_free());
        assert_eq!(h.len(), 4);
        assert_eq!(h.next_settling(), None);
        let [s0, _, s2, s3] = ids.map(|id| h.lookup(id).unwrap());
        h.set(s2, settling(2));
        h.set(s0, settling(0));
        h.set(s3, settling(3));
        assert_eq!(h.find(&key(2)), None, "a settling slot is not held");
        assert_eq!(h.find(&key(1)), h.lookup(ids[1]));
        assert_eq!(h.next_settling(), Some((s2, 2, Settle::Ack)));
        h.free(s2);
        assert_eq!(h.next_settling(), Some((s0, 0, Settle::Ack)));
        // A settling slot going back to held leaves the queue.
        h.set(s0, held(0));
        assert_eq!(h.find(&key(0)), Some(s0));
        assert_eq!(h.next_settling(), Some((s3, 3, Settle::Ack)));
        // A duplicate answered at once is queued behind.
        assert!(h.has_free());
        let dup = h.insert(settling(9)).unwrap();
        let dup = h.lookup(dup).unwrap();
        h.connection_lost();
        assert_eq!(h.next_settling(), None);
        assert_eq!(*h.slot(dup), Slot::Free);
        assert_eq!(*h.slot(s3), Slot::Free);
        assert_eq!(h.len(), 2, "held slots survive, settlements do not");
        assert_eq!(h.find(&key(1)), h.lookup(ids[1]));
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
