//! Writing postcard's encoding into a caller's buffer, and counting it.
//!
//! Every type's encoding is written once ([`Wire::write`](super::Wire::write))
//! against a [`Sink`]: a [`Writer`] puts the bytes into a buffer; on hosts a
//! [`Counter`] only adds up their number, which is how lengths are measured
//! there (a few additions instead of a pass through the writer). Devices
//! measure with a writer over no room instead, so that they carry one copy of
//! each encoder, not two.

/// Where an encoding goes, one primitive at a time.
pub(crate) trait Sink {
    /// One raw byte.
    fn byte(&mut self, b: u8);
    /// Raw bytes.
    fn raw(&mut self, bytes: &[u8]);
    /// An unsigned integer as a varint.
    fn varint(&mut self, v: u64);
    /// The value is not one this encoder writes.
    fn refuse(&mut self);
    /// A byte string (or string): its length, then the bytes.
    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        self.raw(bytes);
    }
}

/// A sink that counts the bytes of an encoding and writes none.
#[cfg(feature = "alloc")]
#[derive(Debug, Default)]
pub(crate) struct Counter {
    len: usize,
    refused: bool,
}

#[cfg(feature = "alloc")]
impl Counter {
    /// Bytes counted, or `None` when the value was refused.
    pub(crate) fn finish(self) -> Option<usize> {
        (!self.refused).then_some(self.len)
    }
}

#[cfg(feature = "alloc")]
impl Sink for Counter {
    #[inline]
    // Plain additions: a frame has a few dozen fields; only `raw` (slices)
    // could add up to anything near the limit.
    fn byte(&mut self, _: u8) {
        self.len += 1;
    }
    #[inline]
    fn raw(&mut self, bytes: &[u8]) {
        self.len = self.len.saturating_add(bytes.len());
    }
    #[inline]
    fn varint(&mut self, v: u64) {
        self.len += varint_len(v);
    }
    #[inline]
    fn refuse(&mut self) {
        self.refused = true;
    }
}

impl Sink for Writer<'_> {
    #[inline]
    fn byte(&mut self, b: u8) {
        Writer::byte(self, b);
    }
    #[inline]
    fn raw(&mut self, bytes: &[u8]) {
        Writer::raw(self, bytes);
    }
    #[inline]
    fn varint(&mut self, v: u64) {
        Writer::varint(self, v);
    }
    #[inline]
    fn refuse(&mut self) {
        Writer::refuse(self);
    }
    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        Writer::bytes(self, bytes);
    }
}

/// Bytes of `v` as a varint (LEB128, as postcard writes every integer wider
/// than a byte and every length).
pub(crate) const fn varint_len(v: u64) -> usize {
    let bits = u64::BITS - (v | 1).leading_zeros();
    // `ceil(bits / 7)` for `bits` in 1..=64, without a division.
    ((bits * 9 + 64) / 64) as usize
}

/// Bytes of a byte string (or string) of `n` bytes: its length, then itself.
pub(crate) const fn bytes_len(n: usize) -> usize {
    varint_len(n as u64) + n
}

/// A cursor writing into a buffer. Writing past the end writes nothing but
/// still counts ([`len`](Self::len): a writer over no room measures an
/// encoding) and is reported by [`finish`](Self::finish): the encoding
/// overran the buffer exactly when it counts more bytes than the buffer has
/// (no flag to keep on every write).
pub(crate) struct Writer<'b> {
    out: &'b mut [u8],
    at: usize,
    refused: bool,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(out: &'b mut [u8]) -> Self {
        Writer {
            out,
            at: 0,
            refused: false,
        }
    }

    /// Bytes the encoding took so far, whether they fitted or not (how
    /// devices measure).
    #[cfg(any(test, not(feature = "alloc")))]
    pub(crate) fn len(&self) -> usize {
        self.at
    }

    /// The bytes written, or `None` when they did not fit (or the value was
    /// [`refuse`](Self::refuse)d).
    pub(crate) fn finish(self) -> Option<usize> {
        (self.at <= self.out.len() && !self.refused).then_some(self.at)
    }

    /// The value is not one this encoder writes: nothing of it is written, and
    /// [`finish`](Self::finish) fails.
    pub(crate) fn refuse(&mut self) {
        self.refused = true;
    }

    /// Whether [`refuse`](Self::refuse) was called.
    pub(crate) fn refused(&self) -> bool {
        self.refused
    }

    /// One raw byte.
    #[cfg_attr(feature = "alloc", inline)]
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(crate) fn byte(&mut self, b: u8) {
        if let Some(slot) = self.out.get_mut(self.at) {
            *slot = b;
        }
        // No overflow: `at` counts bytes of values in memory, written once
        // each (only `raw`, below, could come near the limit; it saturates).
        self.at += 1;
    }

    /// Raw bytes.
    // Out of line on devices, as `bytes` is: each was inlined at the
    // encoders' call sites (168 and 52 bytes of flash).
    #[cfg_attr(feature = "alloc", inline)]
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        let end = self.at.saturating_add(bytes.len());
        // `end` saturates only when `at` is out of the buffer already, so the
        // lengths always agree; saying so removes `copy_from_slice`'s
        // panicking path (the firmware must have none from mq).
        if let Some(slot) = self.out.get_mut(self.at..end)
            && slot.len() == bytes.len()
        {
            slot.copy_from_slice(bytes);
        }
        self.at = end;
    }

    /// An unsigned integer as a varint.
    // Inlined on hosts (the broker's hot path); out of line on devices,
    // where each inlined copy costs flash.
    #[cfg_attr(feature = "alloc", inline)]
    pub(crate) fn varint(&mut self, v: u64) {
        match u8::try_from(v) {
            Ok(b) if b < 0x80 => self.byte(b),
            _ => self.long_varint(v),
        }
    }

    fn long_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte(v as u8 | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    /// A byte string (or string): its length, then the bytes.
    #[cfg_attr(feature = "alloc", inline)]
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        self.raw(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths_at_the_boundaries() {
        for (v, n) in [
            (0, 1),
            (0x7F, 1),
            (0x80, 2),
            (0x3FFF, 2),
            (0x4000, 3),
            (u64::from(u32::MAX), 5),
            (u64::MAX, 10),
        ] {
            assert_eq!(varint_len(v), n, "{v:#x}");
            let mut buf = [0u8; 10];
            let mut w = Writer::new(&mut buf);
            w.varint(v);
            assert_eq!(w.finish(), Some(n));
        }
    }

    #[test]
    fn varint_len_is_what_the_writer_writes_at_every_width() {
        for bits in 0..64 {
            for v in [1u64 << bits, (1u64 << bits) - 1, (1u64 << bits) | 1] {
                let mut buf = [0u8; 10];
                let mut w = Writer::new(&mut buf);
                w.varint(v);
                assert_eq!(w.finish(), Some(varint_len(v)), "{v:#x}");
            }
        }
        assert_eq!(varint_len(u64::MAX), 10);
    }

    #[test]
    fn overrun_is_reported_not_panicked() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        w.bytes(b"abcd");
        assert_eq!(w.len(), 5);
        assert_eq!(w.finish(), None);
        // The length went in; the bytes, which did not fit, did not.
        assert_eq!(buf, [4, 0, 0]);
    }
}
