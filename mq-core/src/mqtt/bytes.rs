//! MQTT's primitive data types over byte slices: big-endian integers, the
//! variable byte integer, length-prefixed binary data and UTF-8 strings.
//!
//! [`Reader`] checks everything it reads and never panics; [`Writer`] writes into
//! a buffer the caller sized from the packet's encoded length.

use super::DecodeError;

/// The largest variable byte integer (four bytes).
pub const MAX_VARINT: u32 = 268_435_455;

/// The longest string or binary field: its length is a `u16`.
pub const MAX_FIELD: usize = u16::MAX as usize;

/// Bytes the variable byte integer `v` takes (four for anything larger).
pub(crate) const fn varint_len(v: usize) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Bytes a length-prefixed string or binary field of `len` bytes takes.
pub(crate) const fn field_len(len: usize) -> usize {
    2 + len
}

/// Whether `s` is text MQTT allows in a UTF-8 string: it never contains U+0000
/// (Rust strings never hold surrogates, the other hard rule).
pub(crate) fn is_mqtt_text(s: &str) -> bool {
    !s.as_bytes().contains(&0)
}

/// A cursor over received bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.rest)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, tail) = self.rest.split_first().ok_or(DecodeError::Truncated)?;
        self.rest = tail;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A variable byte integer in its shortest form.
    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value = 0u32;
        for i in 0..4 {
            let b = self.u8()?;
            value |= u32::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(DecodeError::BadVarInt);
                }
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarInt)
    }

    /// Binary data: a `u16` length, then that many bytes.
    pub(crate) fn binary(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    /// A UTF-8 string as MQTT defines it (valid UTF-8, no U+0000).
    pub(crate) fn string(&mut self) -> Result<&'a str, DecodeError> {
        let s = core::str::from_utf8(self.binary()?).map_err(|_| DecodeError::BadUtf8)?;
        if is_mqtt_text(s) {
            Ok(s)
        } else {
            Err(DecodeError::BadUtf8)
        }
    }

    /// Fails when bytes are left.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// A cursor over an output buffer the caller sized beforehand. Writing past its
/// end writes nothing and is reported by [`Writer::overflowed`].
#[derive(Debug)]
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
    overflow: bool,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Writer {
            buf,
            pos: 0,
            overflow: false,
        }
    }

    pub(crate) const fn position(&self) -> usize {
        self.pos
    }

    pub(crate) const fn overflowed(&self) -> bool {
        self.overflow
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        let end = self.pos.saturating_add(b.len());
        match self.buf.get_mut(self.pos..end) {
            Some(out) => {
                out.copy_from_slice(b);
                self.pos = end;
            }
            None => self.overflow = true,
        }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    pub(crate) fn varint(&mut self, mut v: usize) {
        loop {
            let low = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                self.u8(low);
                return;
            }
            self.u8(low | 0x80);
        }
    }

    /// Binary data; the caller checked that it is at most [`MAX_FIELD`] bytes.
    pub(crate) fn binary(&mut self, b: &[u8]) {
        self.u16(b.len() as u16);
        self.bytes(b);
    }

    pub(crate) fn string(&mut self, s: &str) {
        self.binary(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_boundary() {
        for v in [
            0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, MAX_VARINT,
        ] {
            let mut buf = [0u8; 4];
            let mut w = Writer::new(&mut buf);
            w.varint(v as usize);
            let n = w.position();
            assert_eq!(n, varint_len(v as usize));
            assert!(!w.overflowed());
            let mut r = Reader::new(&buf[..n]);
            assert_eq!(r.varint(), Ok(v));
            assert!(r.is_empty());
        }
    }

    #[test]
    fn varint_errors() {
        // Five bytes, a non-minimal form, and a cut one.
        assert_eq!(
            Reader::new(&[0xFF, 0xFF, 0xFF, 0xFF, 0x7F]).varint(),
            Err(DecodeError::BadVarInt)
        );
        assert_eq!(
            Reader::new(&[0x80, 0x00]).varint(),
            Err(DecodeError::BadVarInt)
        );
        assert_eq!(Reader::new(&[0x80]).varint(), Err(DecodeError::Truncated));
    }

    #[test]
    fn strings_follow_mqtt_rules() {
        assert_eq!(Reader::new(&[0, 2, b'h', b'i']).string(), Ok("hi"));
        assert_eq!(Reader::new(&[0, 1, 0]).string(), Err(DecodeError::BadUtf8));
        assert_eq!(
            Reader::new(&[0, 1, 0xC3]).string(),
            Err(DecodeError::BadUtf8)
        );
        // An encoded surrogate (U+D800) is not UTF-8.
        assert_eq!(
            Reader::new(&[0, 3, 0xED, 0xA0, 0x80]).string(),
            Err(DecodeError::BadUtf8)
        );
        assert_eq!(
            Reader::new(&[0, 3, b'h']).string(),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn writer_reports_overflow_without_panicking() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        w.string("hello");
        assert!(w.overflowed());
    }
}
