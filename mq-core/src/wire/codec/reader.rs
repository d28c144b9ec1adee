//! Reading postcard's encoding: a cursor over the receive buffer that borrows
//! what it reads and fails, never panics, on anything postcard would refuse.

use crate::wire::DecodeError;

/// A cursor over encoded bytes; strings and byte strings borrow from them.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

type Result<T> = core::result::Result<T, DecodeError>;

impl<'a> Reader<'a> {
    pub(crate) const fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Bytes not read yet.
    pub(crate) const fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// One raw byte (a `u8`).
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(crate) fn byte(&mut self) -> Result<u8> {
        let (&b, rest) = self.rest.split_first().ok_or(DecodeError::Malformed)?;
        self.rest = rest;
        Ok(b)
    }

    /// The next `n` bytes.
    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (taken, rest) = self
            .rest
            .split_at_checked(n)
            .ok_or(DecodeError::Malformed)?;
        self.rest = rest;
        Ok(taken)
    }

    /// A varint of an integer type `bits` wide, as postcard reads it: at most
    /// `ceil(bits / 7)` bytes, the last of which carries no bits beyond the
    /// type; zero padding (a non-minimal encoding) is accepted.
    // Inlined on hosts (the broker's hot path); out of line on devices,
    // where each inlined copy costs flash.
    #[cfg_attr(feature = "alloc", inline)]
    fn varint(&mut self, bits: u32) -> Result<u64> {
        // Most varints are one byte: ids, small lengths, tags.
        if let Some((&b, rest)) = self.rest.split_first()
            && b < 0x80
        {
            self.rest = rest;
            return Ok(u64::from(b));
        }
        self.long_varint(bits)
    }

    fn long_varint(&mut self, bits: u32) -> Result<u64> {
        let max = bits.div_ceil(7);
        let last_max = (1u8 << (bits % 7)) - 1;
        let mut out = 0u64;
        for i in 0..max {
            let b = self.byte()?;
            out |= u64::from(b & 0x7F).wrapping_shl(7 * i);
            if b & 0x80 == 0 {
                if i == max - 1 && b > last_max {
                    return Err(DecodeError::Malformed);
                }
                return Ok(out);
            }
        }
        Err(DecodeError::Malformed)
    }

    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn u16(&mut self) -> Result<u16> {
        self.varint(16).map(|v| v as u16)
    }

    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn u32(&mut self) -> Result<u32> {
        self.varint(32).map(|v| v as u32)
    }

    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn u64(&mut self) -> Result<u64> {
        self.varint(64)
    }

    /// A length: postcard writes lengths as `usize`, so its width is the
    /// platform's.
    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn len(&mut self) -> Result<usize> {
        self.varint(usize::BITS).map(|v| v as usize)
    }

    /// A `bool`: exactly 0 or 1.
    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn bool(&mut self) -> Result<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Malformed),
        }
    }

    /// An enum's variant index, below `count`.
    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn variant(&mut self, count: u32) -> Result<u32> {
        match self.u32()? {
            v if v < count => Ok(v),
            _ => Err(DecodeError::Malformed),
        }
    }

    /// A byte string: its length, then the bytes.
    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }

    /// A string: a byte string that is UTF-8.
    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn str(&mut self) -> Result<&'a str> {
        crate::utf8::str_of(self.bytes()?).ok_or(DecodeError::Malformed)
    }
}
