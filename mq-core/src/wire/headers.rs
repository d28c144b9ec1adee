//! Application headers: key/value pairs carried with a message, zero-copy.
//!
//! On the wire the headers are one byte string holding postcard-encoded
//! `(key: &str, value: &[u8])` pairs back to back. Decoding checks the whole string
//! once, so iterating never fails; building writes into a caller buffer.

use core::fmt;
use serde::de::Error as _;

use super::DecodeError;
use super::codec::{Reader, Writer, bytes_len};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest header key, in bytes.
pub const MAX_HEADER_KEY: usize = 255;

/// A borrowed, validated set of message headers.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Headers<'a> {
    raw: &'a [u8],
}

/// Why a header set could not be built or parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HeadersError {
    /// The caller's buffer is too small for the next pair.
    BufferFull,
    /// A key is empty or longer than [`MAX_HEADER_KEY`].
    BadKey,
    /// The encoded bytes are not a sequence of pairs.
    Malformed,
}

impl fmt::Display for HeadersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeadersError::BufferFull => "header buffer full",
            HeadersError::BadKey => "header key empty or too long",
            HeadersError::Malformed => "malformed headers",
        })
    }
}

impl core::error::Error for HeadersError {}

impl<'a> Headers<'a> {
    /// No headers.
    pub const EMPTY: Headers<'static> = Headers { raw: &[] };

    /// Validates encoded headers (as produced by [`HeadersBuilder`]).
    pub fn from_encoded(raw: &'a [u8]) -> Result<Self, HeadersError> {
        let mut r = Reader::new(raw);
        while !r.rest().is_empty() {
            let (key, _value) = read_pair(&mut r).map_err(|_| HeadersError::Malformed)?;
            if key.is_empty() || key.len() > MAX_HEADER_KEY {
                return Err(HeadersError::BadKey);
            }
        }
        Ok(Headers { raw })
    }

    /// The encoded form.
    pub fn as_encoded(&self) -> &'a [u8] {
        self.raw
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The pairs in the order they were added.
    pub fn iter(&self) -> HeaderIter<'a> {
        HeaderIter { rest: self.raw }
    }

    /// The value of the first header named `key`.
    pub fn get(&self, key: &str) -> Option<&'a [u8]> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Headers<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Headers({} bytes)", self.raw.len())
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = (&'a str, &'a [u8]);
    type IntoIter = HeaderIter<'a>;
    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

/// Iterator over header pairs.
#[derive(Clone)]
pub struct HeaderIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        // Validated on construction; a failure here means a bug, so stop quietly.
        let mut r = Reader::new(self.rest);
        let pair = read_pair(&mut r).ok();
        self.rest = match pair {
            Some(_) => r.rest(),
            None => &[],
        };
        pair
    }
}

/// One `(key, value)` pair, as postcard encodes the tuple `(&str, &[u8])`.
fn read_pair<'a>(r: &mut Reader<'a>) -> Result<(&'a str, &'a [u8]), DecodeError> {
    let pair = (r.str(), r.bytes());
    r.check().map(|()| pair)
}

/// Writes header pairs into a caller buffer.
pub struct HeadersBuilder<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> HeadersBuilder<'b> {
    /// A builder writing into `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        HeadersBuilder { buf, len: 0 }
    }

    /// Appends a pair; on error the builder is unchanged.
    pub fn push(&mut self, key: &str, value: &[u8]) -> Result<&mut Self, HeadersError> {
        if key.is_empty() || key.len() > MAX_HEADER_KEY {
            return Err(HeadersError::BadKey);
        }
        let need = bytes_len(key.len()) + bytes_len(value.len());
        let out = self
            .buf
            .get_mut(self.len..)
            .and_then(|rest| rest.get_mut(..need))
            .ok_or(HeadersError::BufferFull)?;
        let mut w = Writer::new(out);
        w.bytes(key.as_bytes());
        w.bytes(value);
        self.len += w.finish().ok_or(HeadersError::BufferFull)?;
        Ok(self)
    }

    /// The finished headers, borrowing the buffer.
    pub fn finish(self) -> Headers<'b> {
        let buf: &'b [u8] = self.buf;
        Headers {
            raw: buf.get(..self.len).unwrap_or_default(),
        }
    }
}

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.raw)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Headers<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'de [u8] = Deserialize::deserialize(d)?;
        Headers::from_encoded(raw).map_err(|_| D::Error::custom("malformed headers"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_iterate_get() {
        let mut buf = [0u8; 64];
        let mut b = HeadersBuilder::new(&mut buf);
        b.push("content-type", b"json").unwrap();
        b.push("trace", &[1, 2, 3]).unwrap();
        let h = b.finish();
        let pairs: [(&str, &[u8]); 2] = [("content-type", b"json"), ("trace", &[1, 2, 3])];
        assert!(h.iter().eq(pairs.iter().copied()));
        assert_eq!(h.get("trace"), Some(&[1u8, 2, 3][..]));
        assert_eq!(h.get("nope"), None);
        assert_eq!(Headers::from_encoded(h.as_encoded()), Ok(h));
    }

    #[test]
    fn full_buffer_leaves_builder_unchanged() {
        let mut buf = [0u8; 8];
        let mut b = HeadersBuilder::new(&mut buf);
        b.push("k", b"v").unwrap();
        assert_eq!(
            b.push("long", &[0; 16]).err(),
            Some(HeadersError::BufferFull)
        );
        assert_eq!(b.push("", b"").err(), Some(HeadersError::BadKey));
        let h = b.finish();
        assert_eq!(h.iter().count(), 1);
    }

    #[test]
    fn malformed_rejected() {
        assert_eq!(
            Headers::from_encoded(&[5, b'a']),
            Err(HeadersError::Malformed)
        );
        // key of length zero
        assert_eq!(Headers::from_encoded(&[0, 0]), Err(HeadersError::BadKey));
    }
}
