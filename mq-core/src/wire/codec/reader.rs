//! Reading postcard's encoding: a cursor over the receive buffer that borrows
//! what it reads and fails, never panics, on anything postcard would refuse.
//!
//! A failure is sticky: the reader marks the input malformed, empties what is
//! left, and hands back a stand-in (0, `false`, an empty string); every read
//! after it fails too, and [`check`](Reader::check) (which
//! [`decode_all`](super::decode_all) calls at the end) reports it. So a
//! frame's fields are read without a branch for each one's error: on a
//! device, where each such branch is code, that is most of a decoder's size.

use crate::wire::DecodeError;

/// A cursor over encoded bytes; strings and byte strings borrow from them.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    /// A read failed: the input is malformed (`rest` is empty since).
    failed: bool,
}

type Result<T> = core::result::Result<T, DecodeError>;

impl<'a> Reader<'a> {
    pub(crate) const fn new(bytes: &'a [u8]) -> Self {
        Reader {
            rest: bytes,
            failed: false,
        }
    }

    /// Bytes not read yet.
    pub(crate) const fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Skips to `rest`, a suffix of [`rest`](Self::rest).
    #[cfg(feature = "alloc")]
    pub(crate) fn skip_to(&mut self, rest: &'a [u8]) {
        self.rest = rest;
    }

    /// `Err` when a read failed.
    pub(crate) fn check(&self) -> Result<()> {
        match self.failed {
            false => Ok(()),
            true => Err(DecodeError::Malformed),
        }
    }

    /// Marks the input malformed; `T`'s default stands in for what could not
    /// be read.
    #[cold]
    pub(crate) fn fail<T: Default>(&mut self) -> T {
        self.failed = true;
        self.rest = &[];
        T::default()
    }

    /// One raw byte (a `u8`).
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(crate) fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => self.fail(),
        }
    }

    /// The next `n` bytes.
    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        match self.rest.split_at_checked(n) {
            Some((taken, rest)) => {
                self.rest = rest;
                taken
            }
            None => self.fail(),
        }
    }

    /// A varint of an integer type `bits` wide, as postcard reads it: at most
    /// `ceil(bits / 7)` bytes, the last of which carries no bits beyond the
    /// type; zero padding (a non-minimal encoding) is accepted.
    // Inlined on hosts (the broker's hot path); out of line on devices,
    // where each inlined copy costs flash.
    #[cfg_attr(feature = "alloc", inline)]
    fn varint(&mut self, bits: u32) -> u64 {
        // Most varints are one byte: ids, small lengths, tags. Devices read
        // them in the loop below too: the shortcut is code more.
        #[cfg(feature = "alloc")]
        if let Some((&b, rest)) = self.rest.split_first()
            && b < 0x80
        {
            self.rest = rest;
            return u64::from(b);
        }
        self.long_varint(bits)
    }

    fn long_varint(&mut self, bits: u32) -> u64 {
        let max = bits.div_ceil(7);
        let last_max = (1u8 << (bits % 7)) - 1;
        let mut out = 0u64;
        for i in 0..max {
            let Some((&b, rest)) = self.rest.split_first() else {
                break;
            };
            self.rest = rest;
            out |= u64::from(b & 0x7F).wrapping_shl(7 * i);
            if b & 0x80 == 0 {
                if i == max - 1 && b > last_max {
                    break;
                }
                return out;
            }
        }
        self.fail()
    }

    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn u16(&mut self) -> u16 {
        self.varint(16) as u16
    }

    // Out of line on devices together with `bool` (alone it made the
    // firmware 24 bytes larger; with `bool`, 96 smaller).
    #[cfg_attr(feature = "alloc", inline)]
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(crate) fn u32(&mut self) -> u32 {
        self.varint(32) as u32
    }

    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn u64(&mut self) -> u64 {
        self.varint(64)
    }

    /// A length: postcard writes lengths as `usize`, so its width is the
    /// platform's.
    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn len(&mut self) -> usize {
        self.varint(usize::BITS) as usize
    }

    /// A `bool`: exactly 0 or 1.
    #[cfg_attr(feature = "alloc", inline)]
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(crate) fn bool(&mut self) -> bool {
        match self.byte() {
            0 => false,
            1 => true,
            _ => self.fail(),
        }
    }

    /// An enum's variant index, below `count` (0 when it is not).
    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn variant(&mut self, count: u32) -> u32 {
        match self.u32() {
            v if v < count => v,
            _ => self.fail(),
        }
    }

    /// A byte string: its length, then the bytes.
    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn bytes(&mut self) -> &'a [u8] {
        let n = self.len();
        self.take(n)
    }

    /// A string: a byte string that is UTF-8.
    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn str(&mut self) -> &'a str {
        let bytes = self.bytes();
        match crate::utf8::str_of(bytes) {
            Some(s) => s,
            None => self.fail(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_read_sticks_and_stands_in_with_defaults() {
        // A varint cut short, then a byte that would be there.
        let mut r = Reader::new(&[0x80, 0x80]);
        assert_eq!(r.check(), Ok(()));
        assert_eq!(r.u32(), 0);
        assert_eq!(r.check(), Err(DecodeError::Malformed));
        assert_eq!(r.rest(), &[] as &[u8], "nothing is read after a failure");
        assert_eq!(
            (r.byte(), r.bool(), r.str(), r.bytes()),
            (0, false, "", &[][..])
        );
        assert_eq!(r.check(), Err(DecodeError::Malformed));
        // A value read whole leaves the reader sound.
        let mut r = Reader::new(&[0x96, 0x01, 1, 2, b'h', b'i', 7]);
        assert_eq!((r.u16(), r.bool(), r.str()), (150, true, "hi"));
        assert_eq!((r.check(), r.rest()), (Ok(()), &[7][..]));
        // A bad bool, an index out of range, bytes that are not UTF-8.
        let mut r = Reader::new(&[2]);
        assert!(!r.bool());
        assert_eq!(r.check(), Err(DecodeError::Malformed));
        let mut r = Reader::new(&[5]);
        assert_eq!(r.variant(4), 0);
        assert_eq!(r.check(), Err(DecodeError::Malformed));
        let mut r = Reader::new(&[1, 0xff]);
        assert_eq!(r.str(), "");
        assert_eq!(r.check(), Err(DecodeError::Malformed));
    }
}
