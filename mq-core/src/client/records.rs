//! Records back to back in caller storage: the mechanics the outbox and the
//! inbox share (appending, reading a header back, skipping and reclaiming
//! dead records, moving live ones to the front).
//!
//! Records lie between `head` and `tail`. Each starts with its length (4
//! bytes, little-endian, the header included) and a state byte: 0 is a dead
//! record, any other value a live one (its meaning is the store's). The rest
//! of the header and the body are the store's own.

use core::ptr::addr_of_mut;

use super::le::{move_down, put_slice};
use crate::wire::Meta;

/// The state byte of a dead record.
pub(crate) const DEAD: u8 = 0;

/// A record's body, borrowed: its topic, properties and data.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Body<'a> {
    pub topic: &'a str,
    pub meta: Meta<'a>,
    pub data: &'a [u8],
}

/// Writes a record's body behind its header of `overhead` bytes: the topic,
/// the meta (encoded in `mlen` bytes) and the data known now. False when the
/// meta does not fit its bytes (the record is then not to be taken).
#[cfg_attr(not(feature = "alloc"), inline(never))]
pub(crate) fn write_body(
    rec: &mut [u8],
    overhead: usize,
    topic: &str,
    meta: &Meta<'_>,
    mlen: usize,
    data: &[u8],
) -> bool {
    let meta_at = overhead + topic.len();
    let data_at = meta_at + mlen;
    if !rec
        .get_mut(meta_at..data_at)
        .is_some_and(|m| meta.encode_into(m))
    {
        return false;
    }
    put_slice(rec, overhead, topic.as_bytes());
    put_slice(rec, data_at, data);
    true
}

/// Records in caller storage.
#[derive(Debug)]
pub(crate) struct Records<B> {
    storage: B,
    /// Offset of the first record.
    pub head: usize,
    /// Offset just past the last record.
    pub tail: usize,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Records<B> {
    // Devices build it in place instead (`init_on_zeros`).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn new(storage: B) -> Self {
        Records {
            storage,
            head: 0,
            tail: 0,
        }
    }

    /// [`new`](Self::new) into a slot whose bytes are all zero: the offsets
    /// are 0 there already, so only `storage` is written.
    ///
    /// # Safety
    ///
    /// `slot` is valid for writes and aligned, and every byte of it is zero.
    #[cfg_attr(feature = "alloc", allow(dead_code))]
    pub(crate) unsafe fn init_on_zeros(slot: *mut Self, storage: B) {
        // SAFETY: the offsets are valid as zeros; `storage` is written
        // through a raw pointer into `slot`.
        unsafe { addr_of_mut!((*slot).storage).write(storage) };
    }

    pub(crate) fn buf(&self) -> &[u8] {
        self.storage.as_ref()
    }

    pub(crate) fn buf_mut(&mut self) -> &mut [u8] {
        self.storage.as_mut()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buf().len()
    }

    /// The first `N` bytes of the record at `at`, its header (`None` if
    /// they are not there, which a record in use always is).
    pub(crate) fn header<const N: usize>(&self, at: usize) -> Option<&[u8; N]> {
        self.buf().get(at..).and_then(|b| b.first_chunk::<N>())
    }

    /// The body of the record at `at`, behind its header of `overhead`
    /// bytes, by the lengths the header gives (`None` if they do not fit).
    pub(crate) fn body(
        &self,
        at: usize,
        overhead: usize,
        tlen: usize,
        mlen: usize,
        dlen: usize,
    ) -> Option<Body<'_>> {
        let buf = self.buf();
        let t0 = at + overhead;
        let topic = crate::utf8::str_of(buf.get(t0..t0 + tlen)?)?;
        let data = buf.get(t0 + tlen + mlen..t0 + tlen + mlen + dlen)?;
        let meta = buf.get(t0 + tlen..t0 + tlen + mlen)?;
        // Borrowed in the decoded `Option` (`?` on it moved the meta out: a
        // copy more on devices).
        #[cfg(feature = "alloc")]
        {
            let meta = Meta::decode_from(meta);
            let meta = meta.as_ref()?;
            Some(Body {
                topic,
                meta: *meta,
                data,
            })
        }
        // Devices read the meta where it is returned, and take the body back
        // if the bytes were not a meta (as `Meta::decode_from` does): read
        // first, it was copied into the body.
        #[cfg(not(feature = "alloc"))]
        {
            let mut r = crate::wire::codec::Reader::new(meta);
            let mut body = Some(Body {
                topic,
                meta: <Meta<'_> as crate::wire::codec::Wire>::read(&mut r),
                data,
            });
            if r.check().is_err() || !r.rest().is_empty() {
                body = None;
            }
            body
        }
    }

    /// The length of the record at `at`, header included.
    pub(crate) fn len_at(&self, at: usize) -> usize {
        self.header::<4>(at).map_or(0, |h| u32::from_le_bytes(*h)) as usize
    }

    /// The state byte of the record at `at`.
    pub(crate) fn state(&self, at: usize) -> u8 {
        self.buf().get(at + 4).copied().unwrap_or(DEAD)
    }

    pub(crate) fn set_state(&mut self, at: usize, state: u8) {
        if let Some(b) = self.buf_mut().get_mut(at + 4) {
            *b = state;
        }
    }

    /// Where a record of `len` bytes goes, and its bytes: behind the tail,
    /// after moving the live records to the front if it does not fit there
    /// (`keep`, the offset of a record or the tail, follows its record). The
    /// caller checked that live records leave the room; the record is the
    /// store's once [`commit`](Self::commit) says so.
    pub(crate) fn place(&mut self, len: usize, keep: &mut usize) -> Option<(usize, &mut [u8])> {
        if self.tail + len > self.capacity() {
            self.compact(keep);
        }
        let at = self.tail;
        let rec = self.buf_mut().get_mut(at..at + len)?;
        Some((at, rec))
    }

    /// Takes the record of `len` bytes written where [`place`](Self::place)
    /// said.
    pub(crate) fn commit(&mut self, len: usize) {
        self.tail += len;
    }

    /// The first live record from `at` on, or the tail.
    pub(crate) fn skip_dead(&self, mut at: usize) -> usize {
        while at < self.tail && self.state(at) == DEAD {
            let len = self.len_at(at);
            if len == 0 {
                return self.tail;
            }
            at += len;
        }
        at
    }

    /// Drops the record at the head (a live one, which its store is done
    /// with), and any dead ones after it; returns true (and starts the
    /// storage afresh) when none is left.
    #[cfg(feature = "alloc")]
    pub(crate) fn drop_head(&mut self) -> bool {
        self.head += self.len_at(self.head).max(1);
        self.settle_head()
    }

    /// Moves the head past dead records; returns true (and starts the storage
    /// afresh) when none is left.
    pub(crate) fn settle_head(&mut self) -> bool {
        self.head = self.skip_dead(self.head);
        if self.head >= self.tail {
            self.head = 0;
            self.tail = 0;
            return true;
        }
        false
    }

    /// Offsets of every record from the head.
    pub(crate) fn offsets(&self) -> impl Iterator<Item = usize> + '_ {
        let mut at = self.head;
        core::iter::from_fn(move || {
            if at >= self.tail {
                return None;
            }
            let len = self.len_at(at);
            if len == 0 {
                return None;
            }
            let this = at;
            at += len;
            Some(this)
        })
    }

    /// Moves live records to the front, dropping dead ones; `keep` (the
    /// offset of a record, or anything else for the end) is moved with its
    /// record.
    fn compact(&mut self, keep: &mut usize) {
        let mut read = self.head;
        let mut write = 0;
        let mut kept = None;
        while read < self.tail {
            let len = self.len_at(read);
            if len == 0 {
                break;
            }
            if read == *keep {
                kept = Some(write);
            }
            if self.state(read) != DEAD {
                move_down(self.buf_mut(), read, len, write);
                write += len;
            }
            read += len;
        }
        *keep = kept.unwrap_or(write);
        self.head = 0;
        self.tail = write;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::le::put;

    /// Appends a record of `len` bytes in state `state`; returns its offset.
    fn append(r: &mut Records<[u8; 64]>, len: usize, state: u8, keep: &mut usize) -> usize {
        let (at, rec) = r.place(len, keep).unwrap();
        put(rec, 0, (len as u32).to_le_bytes());
        rec[4] = state;
        r.commit(len);
        at
    }

    #[test]
    fn compaction_drops_dead_records_and_moves_the_kept_offset() {
        let mut r = Records::new([0u8; 64]);
        let mut keep = usize::MAX;
        let a = append(&mut r, 20, 1, &mut keep);
        let b = append(&mut r, 20, 2, &mut keep);
        let c = append(&mut r, 20, 3, &mut keep);
        r.set_state(a, DEAD);
        assert!(!r.settle_head());
        assert_eq!((r.head, r.tail), (b, 60));
        r.set_state(c, DEAD);
        // 24 more bytes do not fit behind the tail: b goes to the front, c is
        // reclaimed, and the offset kept (b's) follows b.
        let mut keep = b;
        let d = append(&mut r, 24, 4, &mut keep);
        assert_eq!((keep, d, r.head, r.tail), (0, 20, 0, 44));
        assert_eq!((r.state(0), r.len_at(0), r.state(20)), (2, 20, 4));
        assert_eq!(r.offsets().collect::<std::vec::Vec<_>>(), [0, 20]);
        assert_eq!(r.skip_dead(0), 0);
        r.set_state(0, DEAD);
        r.set_state(20, DEAD);
        assert!(r.settle_head());
        assert_eq!((r.head, r.tail), (0, 0));
    }
}
