//! Framing on reliable byte streams (TCP): a varint length prefix before each frame.
//!
//! The length is the encoded frame's size as an unsigned LEB128 varint of at most
//! five bytes (a `u32`). [`StreamDecoder`] looks at whatever the caller has
//! buffered, yields one whole frame borrowed from that buffer and says how many
//! bytes it consumed; a length above the negotiated maximum is an error as soon as
//! the prefix is read, before any of the frame is buffered. [`RecvBuffer`] is a
//! ready-made receive buffer over caller storage for adapters that want one.

use core::fmt;

use crate::wire::codec::Sender;
#[cfg(feature = "alloc")]
use crate::wire::codec::{self, Wire};
use crate::wire::{DecodeError, EncodeError, Frame};

/// The longest length prefix: a `u32` varint.
pub const MAX_PREFIX: usize = 5;

/// Bytes the varint prefix for a frame of `len` bytes takes.
pub const fn prefix_len(len: usize) -> usize {
    let mut n = 1;
    let mut v = len >> 7;
    while v != 0 {
        n += 1;
        v >>= 7;
    }
    n
}

/// Bytes [`encode_frame`] writes for `frame`: prefix plus frame.
pub fn framed_len(frame: &Frame<'_>) -> usize {
    let body = frame.encoded_len();
    prefix_len(body) + body
}

/// Writes `frame` with its length prefix into the front of `buf` and returns the
/// bytes written. `max_frame` is the peer's limit; a larger frame is refused. When
/// `buf` is too small it is left untouched.
pub fn encode_frame(
    frame: &Frame<'_>,
    max_frame: u32,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    encode_frame_sized(frame, frame.encoded_len(), max_frame, buf)
}

/// [`encode_frame`] for a caller that knows the frame's
/// [`encoded_len`](Frame::encoded_len) already (`body`); it must be exact.
pub fn encode_frame_sized(
    frame: &Frame<'_>,
    body: usize,
    max_frame: u32,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    encode_frame_sized_as(frame, body, max_frame, buf, Sender::Any)
}

/// [`encode_frame_sized`] with `sender`'s encoder.
#[inline(always)]
pub(crate) fn encode_frame_sized_as(
    frame: &Frame<'_>,
    body: usize,
    max_frame: u32,
    buf: &mut [u8],
    sender: Sender,
) -> Result<usize, EncodeError> {
    let (head, out) = framed(body, max_frame, buf)?;
    // The frame first: when the encoder refuses it, `buf` is untouched.
    frame.encode_exact_as(out, sender)?;
    write_varint(body as u32, head);
    Ok(head.len() + body)
}

/// A frame of `body` bytes in `buf`: its length prefix and its body, or why
/// it does not fit.
#[inline(always)]
fn framed(
    body: usize,
    max_frame: u32,
    buf: &mut [u8],
) -> Result<(&mut [u8], &mut [u8]), EncodeError> {
    if body > max_frame as usize {
        return Err(EncodeError::FrameTooLarge {
            len: body,
            max: max_frame as usize,
        });
    }
    let prefix = prefix_len(body);
    let needed = prefix + body;
    buf.get_mut(..needed)
        .and_then(|framed| framed.split_at_mut_checked(prefix))
        .ok_or(EncodeError::BufferTooSmall { needed })
}

/// [`encode_frame`] for a frame given as its kind's tag
/// ([`Frame`]'s variant index) and its fields, measured and written by the
/// fields' own encoder: not through `Frame`'s dispatch over every kind, twice
/// (to measure, then to write). For the frames the broker writes most after
/// deliveries (a `PubAck` per QoS 1 publish); the same bytes as
/// `encode_frame` (tested below).
#[cfg(feature = "alloc")]
pub(crate) fn encode_fields<'a, T: Wire<'a>>(
    tag: u8,
    fields: &T,
    max_frame: u32,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    let body = 1 + codec::encoded_len(fields);
    let (head, out) = framed(body, max_frame, buf)?;
    super::write_tagged(tag, fields, out)?;
    write_varint(body as u32, head);
    Ok(head.len() + body)
}

/// Writes the length prefix of a frame of `len` bytes into `out`, which is
/// [`prefix_len`]`(len)` bytes long.
pub fn write_prefix(len: u32, out: &mut [u8]) {
    write_varint(len, out);
}

fn write_varint(mut v: u32, out: &mut [u8]) {
    for byte in out.iter_mut() {
        let low = (v & 0x7F) as u8;
        v >>= 7;
        *byte = if v != 0 { low | 0x80 } else { low };
    }
}

/// What the stream decoder found at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Decoded<'a> {
    /// A whole frame, borrowing the buffer; drop the first `consumed` bytes after
    /// handling it.
    Frame {
        /// The frame.
        frame: Frame<'a>,
        /// Prefix plus frame bytes.
        consumed: usize,
    },
    /// Not a whole frame yet: at least `needed` bytes must be buffered (prefix
    /// included) before calling again.
    Incomplete {
        /// Minimum buffered length for progress.
        needed: usize,
    },
}

/// The first frame's bytes, not yet decoded (see [`StreamDecoder::split`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Split<'a> {
    /// The frame's encoding (prefix removed) and the bytes it took with its prefix.
    Whole {
        /// The encoded frame.
        body: &'a [u8],
        /// Prefix plus frame bytes.
        consumed: usize,
    },
    /// At least `needed` bytes must be buffered before calling again.
    Incomplete {
        /// Minimum buffered length for progress.
        needed: usize,
    },
}

/// The byte stream cannot be decoded; the connection should be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StreamError {
    /// The length prefix announces a frame larger than allowed.
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The allowed maximum.
        max: u32,
    },
    /// The length prefix is not a valid `u32` varint.
    BadPrefix,
    /// The length was fine but the frame inside is not valid.
    Frame(DecodeError),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            StreamError::BadPrefix => f.write_str("invalid frame length prefix"),
            StreamError::Frame(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl core::error::Error for StreamError {}

/// Splits a byte stream into frames. Holds only the negotiated maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StreamDecoder {
    max_frame: u32,
}

impl StreamDecoder {
    /// A decoder accepting frames up to `max_frame` bytes (prefix excluded).
    pub const fn new(max_frame: u32) -> Self {
        StreamDecoder { max_frame }
    }

    /// The current maximum.
    pub const fn max_frame(&self) -> u32 {
        self.max_frame
    }

    /// Changes the maximum (after the handshake negotiated one).
    pub fn set_max_frame(&mut self, max_frame: u32) {
        self.max_frame = max_frame;
    }

    /// Finds the first frame's bytes without decoding them.
    pub fn split<'a>(&self, buf: &'a [u8]) -> Result<Split<'a>, StreamError> {
        let mut len: u64 = 0;
        for (i, &byte) in buf.iter().take(MAX_PREFIX).enumerate() {
            len |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    // A non-minimal encoding: refuse it so every length has one form.
                    return Err(StreamError::BadPrefix);
                }
                if len > u64::from(self.max_frame) {
                    return Err(StreamError::FrameTooLarge {
                        len,
                        max: self.max_frame,
                    });
                }
                let start = i + 1;
                let end = start + len as usize;
                return Ok(match buf.get(start..end) {
                    Some(body) => Split::Whole {
                        body,
                        consumed: end,
                    },
                    None => Split::Incomplete { needed: end },
                });
            }
            // Even a partial prefix can already exceed the maximum.
            if len > u64::from(self.max_frame) {
                return Err(StreamError::FrameTooLarge {
                    len,
                    max: self.max_frame,
                });
            }
        }
        if buf.len() >= MAX_PREFIX {
            return Err(StreamError::BadPrefix);
        }
        Ok(Split::Incomplete {
            needed: buf.len() + 1,
        })
    }

    /// Decodes the first frame in `buf`.
    pub fn decode<'a>(&self, buf: &'a [u8]) -> Result<Decoded<'a>, StreamError> {
        match self.split(buf)? {
            Split::Whole { body, consumed } => {
                let frame = Frame::decode(body).map_err(StreamError::Frame)?;
                Ok(Decoded::Frame { frame, consumed })
            }
            Split::Incomplete { needed } => Ok(Decoded::Incomplete { needed }),
        }
    }
}

/// A linear receive buffer over caller storage for stream transports.
///
/// Write received bytes into [`spare`](Self::spare) and [`fill`](Self::fill) them;
/// take frames with [`next_frame`](Self::next_frame) and drop them with
/// [`consume`](Self::consume). Size the storage at least
/// `max_frame + MAX_PREFIX` so every legal frame fits.
#[derive(Debug)]
pub struct RecvBuffer<S> {
    storage: S,
    start: usize,
    end: usize,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> RecvBuffer<S> {
    /// A buffer over `storage`.
    pub fn new(storage: S) -> Self {
        RecvBuffer {
            storage,
            start: 0,
            end: 0,
        }
    }

    /// Total capacity.
    pub fn capacity(&self) -> usize {
        self.storage.as_ref().len()
    }

    /// Buffered bytes not yet consumed.
    pub fn data(&self) -> &[u8] {
        &self.storage.as_ref()[self.start..self.end]
    }

    /// Free space to receive into; moves buffered bytes to the front first when
    /// that makes room. Empty when the buffer is full.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.storage.as_mut().copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let end = self.end;
        &mut self.storage.as_mut()[end..]
    }

    /// Marks `n` bytes written into [`spare`](Self::spare) as received.
    pub fn fill(&mut self, n: usize) {
        self.end = (self.end + n).min(self.capacity());
    }

    /// Copies as much of `bytes` as fits; returns how many were taken.
    pub fn extend_from(&mut self, bytes: &[u8]) -> usize {
        let spare = self.spare();
        let n = spare.len().min(bytes.len());
        spare[..n].copy_from_slice(&bytes[..n]);
        self.fill(n);
        n
    }

    /// Drops `n` bytes from the front.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// The next whole frame and its length, or `None` until more bytes arrive.
    /// A frame that could never fit the storage is [`StreamError::FrameTooLarge`].
    pub fn next_frame(
        &self,
        decoder: &StreamDecoder,
    ) -> Result<Option<(Frame<'_>, usize)>, StreamError> {
        match decoder.decode(self.data())? {
            Decoded::Frame { frame, consumed } => Ok(Some((frame, consumed))),
            Decoded::Incomplete { needed } if needed > self.capacity() => {
                Err(StreamError::FrameTooLarge {
                    len: needed as u64,
                    max: self.capacity() as u32,
                })
            }
            Decoded::Incomplete { .. } => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(n: u64) -> Frame<'static> {
        Frame::Ping(n)
    }

    /// A frame written by its kind's encoder is the frame `encode_frame`
    /// writes, its errors included.
    #[cfg(feature = "alloc")]
    #[test]
    fn fields_encode_as_their_frame() {
        use crate::wire::PubAck;
        for (id, seq, duplicate) in [(0, 0, false), (7, 1, true), (u32::MAX, u64::MAX, false)] {
            let ack = PubAck { id, seq, duplicate };
            let frame = Frame::PubAck(ack);
            for (max_frame, room) in [(1024, 64), (1024, 3), (2, 64), (1024, 0)] {
                let mut want = [0u8; 64];
                let mut got = [0u8; 64];
                let a = encode_frame(&frame, max_frame, &mut want[..room]);
                let b = encode_fields(frame.tag(), &ack, max_frame, &mut got[..room]);
                assert_eq!(a, b, "{ack:?} {max_frame} {room}");
                assert_eq!(want, got, "{ack:?} {max_frame} {room}");
            }
        }
    }

    #[test]
    fn prefix_lengths() {
        assert_eq!(prefix_len(0), 1);
        assert_eq!(prefix_len(127), 1);
        assert_eq!(prefix_len(128), 2);
        assert_eq!(prefix_len(16_383), 2);
        assert_eq!(prefix_len(16_384), 3);
        assert_eq!(prefix_len(u32::MAX as usize), 5);
    }

    #[test]
    fn encode_then_decode() {
        let mut buf = [0u8; 64];
        let n = encode_frame(&ping(300), 1024, &mut buf).unwrap();
        assert_eq!(n, framed_len(&ping(300)));
        let dec = StreamDecoder::new(1024);
        assert_eq!(
            dec.decode(&buf[..n]).unwrap(),
            Decoded::Frame {
                frame: ping(300),
                consumed: n
            }
        );
        for cut in 0..n {
            assert!(matches!(
                dec.decode(&buf[..cut]).unwrap(),
                Decoded::Incomplete { needed } if needed > cut
            ));
        }
    }

    #[test]
    fn oversized_rejected_from_prefix_alone() {
        let dec = StreamDecoder::new(100);
        // 0x80 0x01 = 128: only the prefix is present.
        assert_eq!(
            dec.decode(&[0x80, 0x01]),
            Err(StreamError::FrameTooLarge { len: 128, max: 100 })
        );
        // A partial prefix is a lower bound: 0xFF means at least 255 > 100.
        assert!(matches!(
            dec.decode(&[0xFF]),
            Err(StreamError::FrameTooLarge { .. })
        ));
        assert_eq!(
            dec.decode(&[0x80]).unwrap(),
            Decoded::Incomplete { needed: 2 }
        );
        let mut buf = [0u8; 8];
        assert_eq!(
            encode_frame(&ping(1), 1, &mut buf),
            Err(EncodeError::FrameTooLarge { len: 2, max: 1 })
        );
    }

    #[test]
    fn bad_prefixes() {
        let dec = StreamDecoder::new(u32::MAX);
        assert_eq!(dec.decode(&[0x80; 5]), Err(StreamError::BadPrefix));
        // Non-minimal: 0x81 0x00 encodes 1 with a wasted byte.
        assert_eq!(dec.decode(&[0x81, 0x00]), Err(StreamError::BadPrefix));
        // A frame whose body is not a frame.
        assert_eq!(
            dec.decode(&[1, 0xFF]),
            Err(StreamError::Frame(DecodeError::Malformed))
        );
    }

    #[test]
    fn recv_buffer_compacts_and_bounds() {
        let dec = StreamDecoder::new(16);
        let mut rb = RecvBuffer::new([0u8; 21]);
        let mut wire = [0u8; 64];
        let mut len = 0;
        for i in 0..4 {
            len += encode_frame(&ping(i), 16, &mut wire[len..]).unwrap();
        }
        let mut got = 0;
        let mut input = &wire[..len];
        while got < 4 {
            let n = rb.extend_from(&input[..input.len().min(3)]);
            input = &input[n..];
            while let Some((frame, used)) = rb.next_frame(&dec).unwrap() {
                assert_eq!(frame, ping(got));
                got += 1;
                rb.consume(used);
            }
        }
        assert!(rb.data().is_empty());
        let mut small = RecvBuffer::new([0u8; 4]);
        small.extend_from(&[10, 0, 0, 0]);
        assert!(matches!(
            small.next_frame(&dec),
            Err(StreamError::FrameTooLarge { .. })
        ));
    }
}
