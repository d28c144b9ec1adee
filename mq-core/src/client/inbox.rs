//! The inbox: received deliveries waiting for the application, in caller storage.
//!
//! Records are a FIFO between `head` and `tail`, one per message or chunk:
//!
//! ```text
//! offset  size  field
//!      0     4  record length (header included)
//!      4     1  kind: 1 whole message, 2 chunk, 3 admin answer (0 would be a
//!               dead record to the record store)
//!      5     1  QoS (0 or 1)
//!      6     1  1 on the last chunk of a message
//!      7     1  1 when the message is a reply to the session's own request
//!      8     4  subscription id
//!     12     2  attempt
//!     14     2  topic length
//!     16     4  meta length
//!     20     4  data length
//!     24     8  sequence number
//!     32     8  delivery id
//!     40     8  chunk offset
//!     48     8  total payload length
//!     56        topic, meta (postcard), data
//! ```
//!
//! The record at the head may be *shown*: the application borrows it through the
//! last event; it is released when the next event is polled. A fragmented message
//! that fits is reassembled in place: its record is reserved at full size when the
//! first fragment arrives and becomes ready with the last one. When an append does
//! not fit behind the tail, the records are moved to the front of the storage
//! (the mechanics are [`Records`]', which the outbox shares).

use core::ptr::addr_of_mut;

use super::le::{field, put, put_slice};
use super::records::{Body, Records, write_body};
use crate::wire::{Meta, QoS};

/// Bytes an inbox record takes besides its topic, encoded meta and data.
pub const RECORD_OVERHEAD: usize = 56;

/// The fixed fields of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHead {
    pub chunk: bool,
    pub last: bool,
    pub reply: bool,
    /// An admin answer (`sub` holds its id, the data its body).
    pub admin: bool,
    pub qos: QoS,
    pub sub: u32,
    pub attempt: u16,
    pub seq: u64,
    pub id: u64,
    pub offset: u64,
    pub total: u64,
}

/// The lengths a record's header holds besides its [`RecordHead`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lens {
    /// The whole record's, header included.
    pub record: u32,
    pub topic: u16,
    pub meta: u32,
    pub data: u32,
}

impl RecordHead {
    /// The record's header (the layout at the top of this file).
    fn encode(&self, lens: &Lens) -> [u8; RECORD_OVERHEAD] {
        let mut h = [0u8; RECORD_OVERHEAD];
        let kind = if self.admin {
            3
        } else {
            1 + u8::from(self.chunk)
        };
        let qos = match self.qos {
            QoS::AtMostOnce => 0,
            QoS::AtLeastOnce => 1,
        };
        put(&mut h, 0, lens.record.to_le_bytes());
        put(
            &mut h,
            4,
            [kind, qos, u8::from(self.last), u8::from(self.reply)],
        );
        put(&mut h, 8, self.sub.to_le_bytes());
        put(&mut h, 12, self.attempt.to_le_bytes());
        put(&mut h, 14, lens.topic.to_le_bytes());
        put(&mut h, 16, lens.meta.to_le_bytes());
        put(&mut h, 20, lens.data.to_le_bytes());
        put(&mut h, 24, self.seq.to_le_bytes());
        put(&mut h, 32, self.id.to_le_bytes());
        put(&mut h, 40, self.offset.to_le_bytes());
        put(&mut h, 48, self.total.to_le_bytes());
        h
    }

    /// The fields [`encode`](Self::encode) wrote.
    fn decode(h: &[u8; RECORD_OVERHEAD]) -> (RecordHead, Lens) {
        let [_, _, _, _, kind, qos, last, reply] = field(h, 0);
        let head = RecordHead {
            chunk: kind == 2,
            admin: kind == 3,
            last: last != 0,
            reply: reply != 0,
            qos: if qos == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            },
            sub: u32::from_le_bytes(field(h, 8)),
            attempt: u16::from_le_bytes(field(h, 12)),
            seq: u64::from_le_bytes(field(h, 24)),
            id: u64::from_le_bytes(field(h, 32)),
            offset: u64::from_le_bytes(field(h, 40)),
            total: u64::from_le_bytes(field(h, 48)),
        };
        let lens = Lens {
            record: u32::from_le_bytes(field(h, 0)),
            topic: u16::from_le_bytes(field(h, 14)),
            meta: u32::from_le_bytes(field(h, 16)),
            data: u32::from_le_bytes(field(h, 20)),
        };
        (head, lens)
    }
}

/// A record's borrowed bytes.
pub(crate) type View<'a> = Body<'a>;

#[derive(Debug, Clone, Copy)]
struct Partial {
    /// Offset of the record.
    at: usize,
    /// Offset of the data within the record.
    data_at: usize,
    /// Data bytes written so far.
    filled: usize,
    /// Data bytes reserved.
    len: usize,
}

/// Received deliveries waiting for the application.
#[derive(Debug)]
pub(crate) struct Inbox<B> {
    rec: Records<B>,
    /// The head record is lent to the application.
    shown: bool,
    /// Complete records not shown yet.
    ready: usize,
    partial: Option<Partial>,
}

/// No partial record is zeros, so that [`Inbox::init_on_zeros`] leaves it
/// as the zeroed slot holds it: evaluated for each target the crate builds
/// for (the layout is the compiler's), and an error to compile otherwise.
const NONE_IS_ZEROS: () =
    // SAFETY: evaluated at compile time, where an invalid value is an error.
    assert!(unsafe { core::mem::zeroed::<Option<Partial>>() }.is_none());

/// Bytes a record with these parts takes.
pub(crate) fn record_len(topic: usize, meta: &Meta<'_>, data: u64) -> Option<usize> {
    let data = usize::try_from(data).ok()?;
    RECORD_OVERHEAD
        .checked_add(topic)?
        .checked_add(meta.encoded_len())?
        .checked_add(data)
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Inbox<B> {
    // Devices build it in place instead (`init_on_zeros`).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn new(storage: B) -> Self {
        Inbox {
            rec: Records::new(storage),
            shown: false,
            ready: 0,
            partial: None,
        }
    }

    /// [`new`](Self::new) into a slot whose bytes are all zero: the counts,
    /// `false` and `partial`'s `None` (zeros: [`NONE_IS_ZEROS`]) are there
    /// already, so only the storage is written.
    ///
    /// # Safety
    ///
    /// `slot` is valid for writes and aligned, and every byte of it is zero.
    #[cfg_attr(feature = "alloc", allow(dead_code))]
    pub(crate) unsafe fn init_on_zeros(slot: *mut Self, storage: B) {
        let () = NONE_IS_ZEROS;
        // SAFETY: as `Records::init_on_zeros`, for the record store in
        // `slot`; the other fields are valid as zeros.
        unsafe { Records::init_on_zeros(addr_of_mut!((*slot).rec), storage) };
    }

    pub(crate) fn capacity(&self) -> usize {
        self.rec.capacity()
    }

    /// Bytes in use (including a shown record and a partial one).
    pub(crate) fn bytes(&self) -> usize {
        self.rec.tail - self.rec.head
    }

    /// Whether a record of `len` bytes can be added now.
    pub(crate) fn has_room(&self, len: usize) -> bool {
        len <= self.capacity() - self.bytes()
    }

    /// Adds a record whose data is `data_len` bytes, of which `data` are known now;
    /// it is ready when complete, partial otherwise. Returns false (and changes
    /// nothing) when it does not fit.
    pub(crate) fn add(
        &mut self,
        head: &RecordHead,
        topic: &str,
        meta: &Meta<'_>,
        data: &[u8],
        data_len: usize,
    ) -> bool {
        let mlen = meta.encoded_len();
        let Some(len) = RECORD_OVERHEAD
            .checked_add(topic.len())
            .and_then(|l| l.checked_add(mlen))
            .and_then(|l| l.checked_add(data_len))
        else {
            return false;
        };
        if self.partial.is_some()
            || data.len() > data_len
            || topic.len() > usize::from(u16::MAX)
            || u32::try_from(len).is_err()
            || !self.has_room(len)
        {
            return false;
        }
        // No record is partial here: nothing to follow as records move.
        let mut keep = usize::MAX;
        let Some((at, rec)) = self.rec.place(len, &mut keep) else {
            return false;
        };
        let data_at = RECORD_OVERHEAD + topic.len() + mlen;
        if !write_body(rec, RECORD_OVERHEAD, topic, meta, mlen, data) {
            return false;
        }
        let lens = Lens {
            record: len as u32,
            topic: topic.len() as u16,
            meta: mlen as u32,
            data: data_len as u32,
        };
        put(rec, 0, head.encode(&lens));
        self.rec.commit(len);
        if data.len() == data_len {
            self.ready += 1;
        } else {
            self.partial = Some(Partial {
                at,
                data_at,
                filled: data.len(),
                len: data_len,
            });
        }
        true
    }

    /// Appends data to the message being reassembled. Returns whether it is now
    /// complete (and ready), or `None` if there is no such message or the data
    /// overruns it.
    pub(crate) fn append(&mut self, data: &[u8]) -> Option<bool> {
        let mut p = self.partial?;
        if data.len() > p.len - p.filled {
            return None;
        }
        let start = p.at + p.data_at + p.filled;
        put_slice(self.rec.buf_mut(), start, data);
        p.filled += data.len();
        if p.filled == p.len {
            self.partial = None;
            self.ready += 1;
            Some(true)
        } else {
            self.partial = Some(p);
            Some(false)
        }
    }

    /// Forgets the message being reassembled (its connection is gone).
    pub(crate) fn drop_partial(&mut self) {
        if let Some(p) = self.partial.take() {
            self.rec.tail = p.at;
            self.rec.settle_head();
        }
    }

    /// Releases the record lent to the application, if any.
    pub(crate) fn release_shown(&mut self) {
        if !self.shown {
            return;
        }
        self.shown = false;
        // Devices mark it dead for the store's head settling (16 bytes of
        // flash less); hosts step over it by its length (fewer instructions).
        #[cfg(not(feature = "alloc"))]
        {
            self.rec.set_state(self.rec.head, super::records::DEAD);
            self.rec.settle_head();
        }
        #[cfg(feature = "alloc")]
        self.rec.drop_head();
    }

    /// Releases the shown record and lends the next ready one: its fixed
    /// fields, and the lengths [`shown`](Self::shown) reads it by (the header
    /// is decoded once).
    pub(crate) fn take_next(&mut self) -> Option<(RecordHead, Lens)> {
        self.release_shown();
        if self.ready == 0 {
            return None;
        }
        self.ready -= 1;
        self.shown = true;
        let h = self
            .rec
            .header(self.rec.head)
            .unwrap_or(&[0; RECORD_OVERHEAD]);
        Some(RecordHead::decode(h))
    }

    /// The lengths of the record at the head, as its header gives them
    /// (for a debug check: release builds drop it).
    fn head_lens(&self) -> Option<Lens> {
        Some(RecordHead::decode(self.rec.header(self.rec.head)?).1)
    }

    /// The record lent by [`take_next`](Self::take_next), with the lengths it
    /// gave.
    pub(crate) fn shown(&self, lens: &Lens) -> Option<View<'_>> {
        if !self.shown {
            return None;
        }
        // Lengths of another record would read the wrong bytes (in bounds).
        debug_assert_eq!(
            Some(*lens),
            self.head_lens(),
            "the lengths of the record shown"
        );
        let body = self.rec.body(
            self.rec.head,
            RECORD_OVERHEAD,
            usize::from(lens.topic),
            lens.meta as usize,
            lens.data as usize,
        );
        Some(body.unwrap_or_default())
    }
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
            debug_on_zeros(|slot: *mut Inbox<&mut [u8]>| {
                Inbox::init_on_zeros(slot, &mut storage[..])
            })
        };
        assert_eq!(
            on_zeros,
            alloc::format!("{:?}", Inbox::new(&mut storage[..]))
        );
    }

    fn head(seq: u64) -> RecordHead {
        RecordHead {
            chunk: false,
            last: false,
            reply: false,
            admin: false,
            qos: QoS::AtMostOnce,
            sub: 1,
            attempt: 1,
            seq,
            id: 0,
            offset: 0,
            total: 8,
        }
    }

    #[test]
    fn header_fields_round_trip() {
        let head = RecordHead {
            chunk: true,
            last: true,
            reply: false,
            admin: false,
            qos: QoS::AtLeastOnce,
            sub: 0x0102_0304,
            attempt: 0x0506,
            seq: 0x1112_1314_1516_1718,
            id: 0x2122_2324_2526_2728,
            offset: 0x3132_3334_3536_3738,
            total: 0x4142_4344_4546_4748,
        };
        let lens = Lens {
            record: 0x5152_5354,
            topic: 0x6162,
            meta: 0x7172_7374,
            data: 0x0a0b_0c0d,
        };
        assert_eq!(RecordHead::decode(&head.encode(&lens)), (head, lens));
        let admin = RecordHead {
            admin: true,
            chunk: false,
            reply: true,
            last: false,
            qos: QoS::AtMostOnce,
            ..head
        };
        assert_eq!(RecordHead::decode(&admin.encode(&lens)), (admin, lens));
    }

    #[test]
    fn fifo_wraps_by_compacting_and_reassembles() {
        // 56 + 1 + 5 + 8 = 70 bytes per record.
        let mut ib = Inbox::new([0u8; 150]);
        let m = Meta::default();
        assert!(ib.add(&head(1), "t", &m, &[1; 8], 8));
        assert!(ib.add(&head(2), "t", &m, &[2; 8], 8));
        assert!(!ib.add(&head(3), "t", &m, &[3; 8], 8));
        assert_eq!(ib.take_next().unwrap().0.seq, 1);
        // Still shown: no room until released.
        assert!(!ib.has_room(70));
        assert_eq!(ib.take_next().unwrap().0.seq, 2);
        // Record 1 released; a partial record goes to the front after compaction.
        assert!(ib.add(&head(3), "t", &m, &[3; 3], 8));
        assert!(ib.take_next().is_none());
        assert_eq!(ib.append(&[3; 6]), None);
        assert_eq!(ib.append(&[3; 4]), Some(false));
        assert_eq!(ib.append(&[3; 1]), Some(true));
        let (head, lens) = ib.take_next().unwrap();
        assert_eq!(head.seq, 3);
        let v = ib.shown(&lens).unwrap();
        assert_eq!((v.topic, v.data), ("t", &[3u8; 8][..]));
        assert!(ib.take_next().is_none());
        assert_eq!(ib.bytes(), 0);
    }
}
