//! The outbox: publishes waiting to be sent or acknowledged, in caller storage.
//!
//! Records lie back to back in publish order between `head` and `tail`:
//!
//! ```text
//! offset  size  field
//!      0     4  record length (header included)
//!      4     1  state: 0 dead, 1 pending (to send), 2 sent (QoS 1, awaiting PubAck)
//!      5     1  QoS (0 or 1)
//!      6     1  1 when the publish carries a dedup sequence
//!      7     1  1 when the publish is a request of the session's (request-reply)
//!      8     4  publish id
//!     12     2  topic length
//!     14     2  checked: sendable within frames of this many KiB (0: unknown)
//!     16     4  meta length
//!     20     4  payload length
//!     24     8  dedup sequence
//!     32        topic, meta (postcard), payload
//! ```
//!
//! A `cursor` marks the next record to transmit and `frag_sent` how much of its
//! payload already went out as fragments. Records before the cursor are QoS 1
//! publishes awaiting their `PubAck`, or dead. A freed record is marked dead; dead
//! records at the head are reclaimed at once, those in the middle when an append
//! needs the room (live records are then moved to the front: the mechanics are
//! [`Records`]'). All integers are little-endian.

use core::ptr::addr_of_mut;

use super::le::{field, put};
use super::records::{DEAD, Records, write_body};
use crate::wire::{Meta, QoS};

/// Bytes an outbox record takes besides its topic, encoded meta and payload.
pub const RECORD_OVERHEAD: usize = 32;

const PENDING: u8 = 1;
const SENT: u8 = 2;

/// What a record is, besides its topic, properties and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub id: u32,
    pub qos: QoS,
    pub dedup_seq: Option<u64>,
    /// A request of the session's (request-reply).
    pub request: bool,
    /// The frame limit it was found sendable within, if it was checked.
    pub sendable_within: Option<u32>,
}

/// What a freed record was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An application's publish.
    Publish,
    /// A request of the session's: its outcome is the reply, not a publish event.
    Request,
}

/// Why a record could not be appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// Not now: live records take the room.
    Full,
    /// Never: larger than the storage.
    TooLarge,
}

/// A record as stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    /// Offset of the record in storage.
    pub at: usize,
    pub id: u32,
    pub qos: QoS,
    pub dedup_seq: Option<u64>,
    /// A request of the session's: its answer is the reply, not an event.
    pub request: bool,
    pub topic: &'a str,
    pub meta: Meta<'a>,
    pub payload: &'a [u8],
}

impl Record<'_> {
    pub(crate) fn kind(&self) -> Kind {
        if self.request {
            Kind::Request
        } else {
            Kind::Publish
        }
    }
}

/// Publishes waiting to be sent or acknowledged.
#[derive(Debug)]
pub(crate) struct Outbox<B> {
    rec: Records<B>,
    cursor: usize,
    frag_sent: u64,
    live: usize,
    live_bytes: usize,
}

pub(crate) fn record_len(topic: usize, meta: usize, payload: usize) -> Option<usize> {
    RECORD_OVERHEAD
        .checked_add(topic)?
        .checked_add(meta)?
        .checked_add(payload)
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Outbox<B> {
    // Devices build it in place instead (`init_on_zeros`).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn new(storage: B) -> Self {
        Outbox {
            rec: Records::new(storage),
            cursor: 0,
            frag_sent: 0,
            live: 0,
            live_bytes: 0,
        }
    }

    /// [`new`](Self::new) into a slot whose bytes are all zero: the counts
    /// and offsets are 0 there already, so only the storage is written.
    ///
    /// # Safety
    ///
    /// `slot` is valid for writes and aligned, and every byte of it is zero.
    #[cfg_attr(feature = "alloc", allow(dead_code))]
    pub(crate) unsafe fn init_on_zeros(slot: *mut Self, storage: B) {
        // SAFETY: as `Records::init_on_zeros`, for the record store in
        // `slot`; the other fields are integers.
        unsafe { Records::init_on_zeros(addr_of_mut!((*slot).rec), storage) };
    }

    pub(crate) fn capacity(&self) -> usize {
        self.rec.capacity()
    }

    /// Live records.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Bytes of live records, headers included.
    pub(crate) fn bytes(&self) -> usize {
        self.live_bytes
    }

    /// Whether a record of `len` bytes can be appended: `Ok` now, or why not.
    pub(crate) fn check(&self, len: usize) -> Result<(), PushError> {
        if len > self.capacity() {
            Err(PushError::TooLarge)
        } else if self.live_bytes + len > self.capacity() {
            Err(PushError::Full)
        } else {
            Ok(())
        }
    }

    /// Appends a publish. On error nothing changed.
    pub(crate) fn push(
        &mut self,
        head: Head,
        topic: &str,
        meta: &Meta<'_>,
        payload: &[u8],
    ) -> Result<(), PushError> {
        let Head {
            id,
            qos,
            dedup_seq,
            request,
            sendable_within,
        } = head;
        let mlen = meta.encoded_len();
        let len = record_len(topic.len(), mlen, payload.len()).ok_or(PushError::TooLarge)?;
        if topic.len() > usize::from(u16::MAX) || u32::try_from(len).is_err() {
            return Err(PushError::TooLarge);
        }
        self.check(len)?;
        let Some((_, rec)) = self.rec.place(len, &mut self.cursor) else {
            return Err(PushError::Full);
        };
        if !write_body(rec, RECORD_OVERHEAD, topic, meta, mlen, payload) {
            return Err(PushError::TooLarge);
        }
        let mut h = [0u8; RECORD_OVERHEAD];
        let qos = match qos {
            QoS::AtMostOnce => 0,
            QoS::AtLeastOnce => 1,
        };
        put(&mut h, 0, (len as u32).to_le_bytes());
        put(
            &mut h,
            4,
            [
                PENDING,
                qos,
                u8::from(dedup_seq.is_some()),
                u8::from(request),
            ],
        );
        put(&mut h, 8, id.to_le_bytes());
        put(&mut h, 12, (topic.len() as u16).to_le_bytes());
        put(&mut h, 14, checked_stamp(sendable_within).to_le_bytes());
        put(&mut h, 16, (mlen as u32).to_le_bytes());
        put(&mut h, 20, (payload.len() as u32).to_le_bytes());
        put(&mut h, 24, dedup_seq.unwrap_or(0).to_le_bytes());
        put(rec, 0, h);
        self.rec.commit(len);
        self.live += 1;
        self.live_bytes += len;
        Ok(())
    }

    fn id_at(&self, at: usize) -> u32 {
        self.rec
            .header::<12>(at)
            .map_or(0, |h| u32::from_le_bytes(field(h, 8)))
    }

    /// Reads the record at `at`.
    fn record(&self, at: usize) -> Option<Record<'_>> {
        let h = self.rec.header::<RECORD_OVERHEAD>(at)?;
        let tlen = usize::from(u16::from_le_bytes(field(h, 12)));
        let mlen = u32::from_le_bytes(field(h, 16)) as usize;
        let plen = u32::from_le_bytes(field(h, 20)) as usize;
        // Borrowed in the `Option`, as the store's `body` borrows the meta.
        let body = self.rec.body(at, RECORD_OVERHEAD, tlen, mlen, plen);
        let body = body.as_ref()?;
        Some(Record {
            at,
            id: u32::from_le_bytes(field(h, 8)),
            qos: if h[5] == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            },
            dedup_seq: (h[6] != 0).then(|| u64::from_le_bytes(field(h, 24))),
            request: h[7] != 0,
            topic: body.topic,
            meta: body.meta,
            payload: body.data,
        })
    }

    /// Whether the next record to transmit is known to be sendable within
    /// frames of `limit` bytes (found so within `limit` or less), without
    /// reading it; `None` when there is none.
    pub(crate) fn next_known_sendable(&self, limit: u32) -> Option<bool> {
        if self.cursor >= self.rec.tail {
            return None;
        }
        let kib = self
            .rec
            .header::<16>(self.cursor)
            .map_or(0, |h| u64::from(u16::from_le_bytes(field(h, 14))));
        Some(kib != 0 && u64::from(limit) >= kib * 1024)
    }

    /// Notes that the next record to transmit is sendable within `limit`.
    pub(crate) fn mark_next_sendable(&mut self, limit: u32) {
        if self.cursor < self.rec.tail {
            let stamp = checked_stamp(Some(limit));
            put(self.rec.buf_mut(), self.cursor + 14, stamp.to_le_bytes());
        }
    }

    /// Whether there is a record to transmit.
    pub(crate) fn has_next(&self) -> bool {
        self.cursor < self.rec.tail
    }

    /// The next record to transmit ([`next_sent`](Self::next_sent) says how
    /// much of it went out). Returned as read: a record paired with its count
    /// was a copy of it.
    pub(crate) fn next(&self) -> Option<Record<'_>> {
        if self.cursor >= self.rec.tail {
            return None;
        }
        self.record(self.cursor)
    }

    /// How many payload bytes of the next record to transmit went out.
    pub(crate) fn next_sent(&self) -> u64 {
        self.frag_sent
    }

    /// Records that `sent` payload bytes of the record at `at` (the cursor record)
    /// went out in total; a record whose payload is complete is freed (QoS 0) or
    /// waits for its `PubAck` (QoS 1).
    pub(crate) fn advance(&mut self, at: usize, sent: u64, total: u64) {
        if at != self.cursor {
            return;
        }
        if sent < total {
            self.frag_sent = sent;
            return;
        }
        let qos1 = self.rec.buf().get(at + 5).copied() == Some(1);
        let len = self.rec.len_at(at);
        self.frag_sent = 0;
        if qos1 {
            self.rec.set_state(at, SENT);
            self.cursor = at + len;
        } else {
            self.kill(at);
        }
        self.settle();
    }

    /// Whether a live record has this id.
    pub(crate) fn contains_id(&self, id: u32) -> bool {
        self.rec
            .offsets()
            .any(|at| self.rec.state(at) != DEAD && self.id_at(at) == id)
    }

    /// Frees the live record with this id; returns what it was, if there was one.
    pub(crate) fn remove(&mut self, id: u32) -> Option<Kind> {
        self.remove_where(id, false, false)
    }

    /// Frees the QoS 1 record with this id unless it is half sent as fragments;
    /// returns what it was, if it did.
    pub(crate) fn remove_acked(&mut self, id: u32) -> Option<Kind> {
        self.remove_where(id, true, true)
    }

    /// Frees the record with this id unless it is half sent as fragments (the
    /// peer would see its fragments cut off); returns what it was, if it did.
    pub(crate) fn cancel(&mut self, id: u32) -> Option<Kind> {
        self.remove_where(id, false, true)
    }

    fn half_sent(&self, at: usize) -> bool {
        at == self.cursor && self.frag_sent > 0
    }

    /// Frees the live record with this id if it is QoS 1 or `qos1` is false,
    /// and if it is not half sent or `whole` is false; returns what it was.
    ///
    /// The conditions are flags, not a closure: with a closure each caller
    /// had a copy of the search of its own (on devices, `remove_acked`'s and
    /// `remove`'s were both inlined into the receive path); with flags one
    /// copy serves the three.
    fn remove_where(&mut self, id: u32, qos1: bool, whole: bool) -> Option<Kind> {
        let at = self
            .rec
            .offsets()
            .find(|&at| self.rec.state(at) != DEAD && self.id_at(at) == id)
            .filter(|&at| {
                (!qos1 || self.rec.buf().get(at + 5).copied() == Some(1))
                    && !(whole && self.half_sent(at))
            })?;
        let kind = match self.rec.buf().get(at + 7) {
            Some(1) => Kind::Request,
            _ => Kind::Publish,
        };
        self.kill(at);
        self.settle();
        Some(kind)
    }

    /// Frees the cursor record (it cannot be sent).
    pub(crate) fn drop_next(&mut self) {
        if self.cursor < self.rec.tail {
            self.kill(self.cursor);
            self.settle();
        }
    }

    fn kill(&mut self, at: usize) {
        if self.rec.state(at) == DEAD {
            return;
        }
        let len = self.rec.len_at(at);
        self.rec.set_state(at, DEAD);
        self.live = self.live.saturating_sub(1);
        self.live_bytes = self.live_bytes.saturating_sub(len);
        if at == self.cursor {
            self.frag_sent = 0;
        }
    }

    /// Moves the cursor and the head past dead records.
    fn settle(&mut self) {
        self.cursor = self.rec.skip_dead(self.cursor);
        if self.rec.settle_head() {
            self.cursor = 0;
            self.frag_sent = 0;
        }
    }

    /// Marks every live record to be sent again from its start, in order (after a
    /// reconnect).
    pub(crate) fn rewind(&mut self) {
        let mut at = self.rec.head;
        while at < self.rec.tail {
            let len = self.rec.len_at(at);
            if len == 0 {
                break;
            }
            if self.rec.state(at) != DEAD {
                self.rec.set_state(at, PENDING);
            }
            at += len;
        }
        self.cursor = self.rec.head;
        self.frag_sent = 0;
        self.settle();
    }
}

/// A frame limit as the record keeps it: KiB rounded up (a record sendable
/// within `limit` is so within any larger limit), 0 when unknown or beyond
/// what 16 bits hold.
fn checked_stamp(limit: Option<u32>) -> u16 {
    limit
        .and_then(|l| u16::try_from(l.div_ceil(1024)).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::debug_on_zeros;

    #[test]
    fn init_on_zeros_is_new() {
        let mut storage = [0u8; 64];
        // SAFETY: `init_on_zeros` writes what is not zeros.
        let on_zeros = unsafe {
            debug_on_zeros(|slot: *mut Outbox<&mut [u8]>| {
                Outbox::init_on_zeros(slot, &mut storage[..])
            })
        };
        assert_eq!(
            on_zeros,
            alloc::format!("{:?}", Outbox::new(&mut storage[..]))
        );
    }

    fn push(o: &mut Outbox<[u8; 256]>, id: u32, qos: QoS, n: usize) -> Result<(), PushError> {
        let head = Head {
            id,
            qos,
            dedup_seq: None,
            request: false,
            sendable_within: None,
        };
        o.push(head, "a.b", &Meta::default(), &[id as u8; 64][..n])
    }

    fn send_all(o: &mut Outbox<[u8; 256]>) -> [u32; 8] {
        let mut ids = [0; 8];
        let mut i = 0;
        while let Some(r) = o.next() {
            let (at, total) = (r.at, r.payload.len() as u64);
            ids[i] = r.id;
            i += 1;
            o.advance(at, total, total);
        }
        ids
    }

    #[test]
    fn compacts_holes_and_keeps_order() {
        let mut o = Outbox::new([0u8; 256]);
        // 32 + 3 + meta(5) + 40 = 80 bytes each: three fit.
        for id in 1..=3 {
            push(&mut o, id, QoS::AtLeastOnce, 40).unwrap();
        }
        assert_eq!(push(&mut o, 4, QoS::AtLeastOnce, 40), Err(PushError::Full));
        assert_eq!(send_all(&mut o)[..3], [1, 2, 3]);
        // Free the middle one: room appears only after compaction.
        assert!(o.remove_acked(2).is_some());
        push(&mut o, 4, QoS::AtLeastOnce, 40).unwrap();
        assert_eq!(o.len(), 3);
        assert!(!o.contains_id(2));
        o.rewind();
        assert_eq!(send_all(&mut o)[..3], [1, 3, 4]);
        assert!(
            o.remove_acked(1).is_some() && o.remove_acked(3).is_some() && o.remove(4).is_some()
        );
        assert_eq!((o.len(), o.bytes(), o.rec.head, o.rec.tail), (0, 0, 0, 0));
        assert_eq!(
            o.push(
                Head {
                    id: 9,
                    qos: QoS::AtMostOnce,
                    dedup_seq: None,
                    request: false,
                    sendable_within: None,
                },
                "a",
                &Meta::default(),
                &[0; 300]
            ),
            Err(PushError::TooLarge)
        );
    }

    #[test]
    fn a_checked_record_is_known_sendable_within_its_limit_or_more() {
        let mut o = Outbox::new([0u8; 256]);
        assert_eq!(o.next_known_sendable(4096), None);
        push(&mut o, 1, QoS::AtMostOnce, 10).unwrap();
        assert_eq!(o.next_known_sendable(u32::MAX), Some(false));
        o.mark_next_sendable(1500);
        // Kept as 2 KiB: known within 2048 and more, not within 1500.
        assert_eq!(o.next_known_sendable(1500), Some(false));
        assert_eq!(o.next_known_sendable(2048), Some(true));
        assert_eq!(o.next_known_sendable(1 << 20), Some(true));
        let head = Head {
            id: 2,
            qos: QoS::AtMostOnce,
            dedup_seq: None,
            request: false,
            sendable_within: Some(1024),
        };
        o.push(head, "a", &Meta::default(), &[1]).unwrap();
        let r = o.next().unwrap();
        let (at, total) = (r.at, r.payload.len() as u64);
        o.advance(at, total, total);
        assert_eq!(o.next_known_sendable(1023), Some(false));
        assert_eq!(o.next_known_sendable(1024), Some(true));
        // Beyond 64 MiB a limit is not kept.
        o.mark_next_sendable(u32::MAX);
        assert_eq!(o.next_known_sendable(u32::MAX), Some(false));
    }

    #[test]
    fn qos0_freed_when_sent_and_partial_restarts() {
        let mut o = Outbox::new([0u8; 256]);
        push(&mut o, 1, QoS::AtMostOnce, 40).unwrap();
        push(&mut o, 2, QoS::AtLeastOnce, 40).unwrap();
        let (r, sent) = (o.next().unwrap(), o.next_sent());
        assert_eq!((r.id, sent), (1, 0));
        let at = r.at;
        o.advance(at, 10, 40);
        assert_eq!((o.next().map(|r| r.id), o.next_sent()), (Some(1), 10));
        // QoS 0, and half sent: an ack cannot free it.
        assert!(o.remove_acked(1).is_none());
        o.rewind();
        assert_eq!((o.next().map(|r| r.id), o.next_sent()), (Some(1), 0));
        assert_eq!(send_all(&mut o)[..2], [1, 2]);
        assert_eq!(o.len(), 1);
        assert!(o.remove(1).is_none());
        assert!(o.remove_acked(2).is_some());
    }

    /// Each way of removing a record by id asks its own questions: an ack
    /// frees only a QoS 1 record, an ack and a cancel only one not half
    /// sent; `remove` frees any live record.
    #[test]
    fn each_removal_frees_only_the_records_it_may() {
        let mut o = Outbox::new([0u8; 256]);
        push(&mut o, 1, QoS::AtMostOnce, 10).unwrap();
        // QoS 0, not sent at all: not an ack's, but a cancel's.
        assert_eq!(o.remove_acked(1), None);
        assert!(o.contains_id(1));
        assert_eq!(o.cancel(1), Some(Kind::Publish));
        assert!(!o.contains_id(1));
        // QoS 1, half sent: neither an ack's nor a cancel's, but `remove`'s.
        push(&mut o, 2, QoS::AtLeastOnce, 40).unwrap();
        let at = o.next().unwrap().at;
        o.advance(at, 10, 40);
        assert_eq!((o.remove_acked(2), o.cancel(2)), (None, None));
        assert!(o.contains_id(2));
        assert_eq!(o.remove(2), Some(Kind::Publish));
        assert!(!o.contains_id(2));
        // QoS 1, sent whole: an ack's.
        push(&mut o, 3, QoS::AtLeastOnce, 40).unwrap();
        assert_eq!(send_all(&mut o)[..1], [3]);
        assert_eq!(o.remove_acked(3), Some(Kind::Publish));
        assert_eq!((o.len(), o.remove(3)), (0, None));
    }
}
