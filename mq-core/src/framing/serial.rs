//! Framing on serial lines (UART): COBS with a CRC-32C, frames ending in `0x00`.
//!
//! On the wire a frame is `COBS(frame ‖ crc32c(frame) as little-endian) 0x00`. COBS
//! removes every zero byte from the encoded data, so the zero delimiter always marks
//! a frame boundary: after line noise, a lost byte or a frame too long for the
//! receiver, [`SerialDecoder`] counts the damage, drops the bytes up to the next
//! delimiter and carries on with the following frame.

use core::fmt;

#[cfg(any(test, not(feature = "alloc")))]
use crc::NoTable;
use crc::{CRC_32_ISCSI, Crc};

use crate::wire::codec::Sender;
#[cfg(feature = "alloc")]
use crate::wire::codec::{self, Wire};
use crate::wire::{DecodeError, EncodeError, Frame};

/// The byte that ends every frame.
pub const DELIMITER: u8 = 0x00;

/// Bytes of CRC after each frame (before COBS).
pub const CRC_LEN: usize = 4;

/// CRC-32C (Castagnoli), the same checksum the write-ahead log uses.
pub const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// The same CRC computed bit by bit, without [`CRC32C`]'s 1 KB lookup table.
#[cfg(any(test, not(feature = "alloc")))]
const CRC32C_BITWISE: Crc<u32, NoTable> = Crc::<u32, NoTable>::new(&CRC_32_ISCSI);

/// The CRC-32C of `bytes`. On devices (no `alloc`) bit by bit: the table
/// would be 1 KB of a device's flash (more than the rest of the serial
/// framing), and a UART is far slower than the loop. Hosts use the table.
fn crc32c(bytes: &[u8]) -> u32 {
    #[cfg(feature = "alloc")]
    let crc = CRC32C.checksum(bytes);
    #[cfg(not(feature = "alloc"))]
    let crc = CRC32C_BITWISE.checksum(bytes);
    crc
}

/// The most bytes a frame of `frame_len` encoded bytes takes on the line,
/// delimiter included.
pub const fn max_framed_len(frame_len: usize) -> usize {
    let n = frame_len + CRC_LEN;
    // One code byte per 254 bytes and one more (the encoder opens a new block
    // after every full one, even at the end), then the delimiter. This is
    // `cobs::max_encoding_length(n) + 1`, plus one when n is a multiple of 254.
    n + n / 254 + 1 + 1
}

/// Writes `frame` COBS-encoded with its CRC and delimiter into the front of `buf`;
/// returns the bytes written. When `buf` is too small it is left untouched.
pub fn encode_frame(frame: &Frame<'_>, buf: &mut [u8]) -> Result<usize, EncodeError> {
    encode_frame_sized(frame, frame.encoded_len(), buf)
}

/// [`encode_frame`] for a caller that knows the frame's
/// [`encoded_len`](Frame::encoded_len) already (`body`).
pub fn encode_frame_sized(
    frame: &Frame<'_>,
    body: usize,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    encode_frame_sized_as(frame, body, buf, Sender::Any)
}

/// [`encode_frame_sized`] with `sender`'s encoder.
#[inline(always)]
pub(crate) fn encode_frame_sized_as(
    frame: &Frame<'_>,
    body: usize,
    buf: &mut [u8],
    sender: Sender,
) -> Result<usize, EncodeError> {
    encode_body(body, buf, |out| {
        frame.encode_exact_as(out, sender).map(drop)
    })
}

/// [`encode_frame`] for a frame given as its kind's tag ([`Frame`]'s variant
/// index) and its fields, as `stream::encode_fields` writes one (for a
/// frame that is not a [`Frame`] of this version: an older version's).
#[cfg(feature = "alloc")]
pub(crate) fn encode_fields<'a, T: Wire<'a>>(
    tag: u8,
    fields: &T,
    max_frame: u32,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    let body = 1 + codec::encoded_len(fields);
    if body > max_frame as usize {
        let max = max_frame as usize;
        return Err(EncodeError::FrameTooLarge { len: body, max });
    }
    encode_body(body, buf, |out| super::write_tagged(tag, fields, out))
}

/// Frames a body of `body` bytes, which `write` writes into the slice it is
/// given (exactly that long), into the front of `buf`.
#[inline(always)]
fn encode_body(
    body: usize,
    buf: &mut [u8],
    write: impl FnOnce(&mut [u8]) -> Result<(), EncodeError>,
) -> Result<usize, EncodeError> {
    let needed = max_framed_len(body);
    let Some(out) = buf.get_mut(..needed) else {
        return Err(EncodeError::BufferTooSmall { needed });
    };
    // The frame and its CRC go at the end, where the encoding, written from
    // the front, never overtakes what it has still to read.
    let start = needed - body - CRC_LEN;
    let Some((frame_out, crc_out)) = out
        .get_mut(start..)
        .and_then(|tail| tail.split_at_mut_checked(body))
    else {
        return Err(EncodeError::BufferTooSmall { needed });
    };
    write(frame_out)?;
    let crc = crc32c(frame_out).to_le_bytes();
    for (slot, b) in crc_out.iter_mut().zip(crc) {
        *slot = b;
    }
    Ok(cobs_in_place(out, start))
}

/// COBS-encodes `buf[start..]` into the front of `buf` and ends it with the
/// delimiter; returns the bytes written. The encoding adds a code byte at the
/// start and one after every run of 254 non-zero bytes (as postcard's COBS
/// flavor does), which `start` must leave room for: at least
/// `(buf.len() - start) / 254 + 2` bytes.
fn cobs_in_place(buf: &mut [u8], start: usize) -> usize {
    fn set(buf: &mut [u8], at: usize, b: u8) {
        if let Some(slot) = buf.get_mut(at) {
            *slot = b;
        }
    }
    // Where the open block's code byte goes, the next byte out, the code.
    let (mut code_at, mut out, mut code) = (0, 1, 1u8);
    for i in start..buf.len() {
        let b = buf.get(i).copied().unwrap_or(DELIMITER);
        if b != 0 {
            set(buf, out, b);
            out += 1;
            code += 1;
        }
        if b == 0 || code == 0xFF {
            set(buf, code_at, code);
            code_at = out;
            out += 1;
            code = 1;
        }
    }
    set(buf, code_at, code);
    set(buf, out, DELIMITER);
    out + 1
}

/// Why a serial frame was dropped. The decoder has already resynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SerialError {
    /// More bytes arrived before a delimiter than the receive buffer holds.
    Overflow,
    /// The bytes between two delimiters are not valid COBS or too short.
    Cobs,
    /// The CRC does not match: the frame was damaged on the line.
    Crc,
    /// The CRC matched but the content is not a frame (a peer bug, not noise).
    Frame(DecodeError),
}

impl fmt::Display for SerialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SerialError::Overflow => f.write_str("serial frame longer than the receive buffer"),
            SerialError::Cobs => f.write_str("invalid COBS encoding"),
            SerialError::Crc => f.write_str("CRC mismatch"),
            SerialError::Frame(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl core::error::Error for SerialError {}

/// What a [`SerialDecoder`] has seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SerialStats {
    /// Frames decoded.
    pub frames: u32,
    /// Frames dropped because they did not fit the buffer.
    pub overflows: u32,
    /// Frames dropped for invalid COBS.
    pub cobs_errors: u32,
    /// Frames dropped for a CRC mismatch.
    pub crc_errors: u32,
    /// Frames with a good CRC whose content was not a frame.
    pub malformed: u32,
}

/// Incremental decoder of a serial byte stream into frames, over caller storage.
///
/// The storage bounds the largest encoded frame it accepts (size it with
/// [`max_framed_len`] of the negotiated maximum). Feed it bytes as they arrive.
/// A frame the receiver cannot take yet stays available through
/// [`last_frame`](Self::last_frame) until more bytes are fed.
#[derive(Debug)]
pub struct SerialDecoder<S> {
    storage: S,
    len: usize,
    discarding: bool,
    stats: SerialStats,
    /// Length of the decoded body of the frame `feed` returned last, while it is
    /// still at the front of `storage`.
    last: Option<usize>,
    /// [`Frame::decode`], or a client's [`Frame::decode_from_broker`].
    decode: for<'b> fn(&'b [u8]) -> Result<Frame<'b>, DecodeError>,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> SerialDecoder<S> {
    /// A decoder buffering into `storage`.
    pub fn new(storage: S) -> Self {
        Self::with(storage, |body| Frame::decode(body))
    }

    /// A client's decoder: a frame only clients send is refused unread, as
    /// [`SerialError::Frame`]`(`[`DecodeError::Unexpected`]`)`
    /// ([`Frame::decode_from_broker`]), so a client carries no code to decode
    /// one.
    pub fn for_client(storage: S) -> Self {
        Self::with(storage, |body| Frame::decode_from_broker(body))
    }

    fn with(storage: S, decode: for<'b> fn(&'b [u8]) -> Result<Frame<'b>, DecodeError>) -> Self {
        SerialDecoder {
            storage,
            len: 0,
            discarding: false,
            stats: SerialStats::default(),
            last: None,
            decode,
        }
    }

    /// Counters of frames and errors.
    pub fn stats(&self) -> SerialStats {
        self.stats
    }

    /// Bytes of a partial frame currently buffered.
    pub fn buffered(&self) -> usize {
        self.len
    }

    /// Forgets a partial frame (after the line was reset).
    pub fn reset(&mut self) {
        self.len = 0;
        self.discarding = false;
        self.last = None;
    }

    /// The frame the last [`feed`](Self::feed) returned, decoded again; `None`
    /// once anything else was fed (or after [`reset`](Self::reset)). For a
    /// receiver that could not take the frame yet: offer it again later, and feed
    /// nothing meanwhile.
    pub fn last_frame(&self) -> Option<Frame<'_>> {
        let body = self.storage.as_ref().get(..self.last?)?;
        (self.decode)(body).ok()
    }

    /// Consumes bytes from `input` up to and including the next delimiter and
    /// returns how many it took, with the frame that delimiter completed (or why it
    /// was dropped). Call again with the rest of `input` until it is empty; handle
    /// the returned frame before the next call, since it borrows the decoder.
    pub fn feed<'s>(&'s mut self, input: &[u8]) -> (usize, Option<Result<Frame<'s>, SerialError>>) {
        // Whatever is fed now overwrites the last frame.
        self.last = None;
        let (chunk, consumed, complete) = match input.iter().position(|&b| b == DELIMITER) {
            Some(at) => (&input[..at], at + 1, true),
            None => (input, input.len(), false),
        };
        if !self.discarding {
            let storage = self.storage.as_mut();
            match storage.get_mut(self.len..self.len + chunk.len()) {
                Some(dst) => {
                    dst.copy_from_slice(chunk);
                    self.len += chunk.len();
                }
                None => {
                    self.discarding = true;
                    self.len = 0;
                }
            }
        }
        if !complete {
            return (consumed, None);
        }
        if self.discarding {
            self.discarding = false;
            self.stats.overflows += 1;
            return (consumed, Some(Err(SerialError::Overflow)));
        }
        let len = core::mem::take(&mut self.len);
        if len == 0 {
            // Back-to-back delimiters: senders use a leading one to flush the line.
            return (consumed, None);
        }
        (consumed, Some(self.decode_buffered(len)))
    }

    fn decode_buffered(&mut self, len: usize) -> Result<Frame<'_>, SerialError> {
        let Some(raw) = self.storage.as_mut().get_mut(..len) else {
            self.stats.cobs_errors += 1;
            return Err(SerialError::Cobs);
        };
        // `get` and `split_last_chunk` rather than indexing: no panicking
        // path in a client's decoder (`cargo xtask firmware` checks).
        let decoded = cobs::decode_in_place(raw)
            .ok()
            .and_then(|n| raw.get(..n))
            .and_then(|decoded| decoded.split_last_chunk::<CRC_LEN>());
        let Some((body, crc)) = decoded else {
            self.stats.cobs_errors += 1;
            return Err(SerialError::Cobs);
        };
        let expected = u32::from_le_bytes(*crc);
        if crc32c(body) != expected {
            self.stats.crc_errors += 1;
            return Err(SerialError::Crc);
        }
        let body_len = body.len();
        let Some(body) = self.storage.as_ref().get(..body_len) else {
            self.stats.cobs_errors += 1;
            return Err(SerialError::Cobs);
        };
        match (self.decode)(body) {
            Ok(frame) => {
                self.stats.frames += 1;
                self.last = Some(body_len);
                Ok(frame)
            }
            Err(e) => {
                self.stats.malformed += 1;
                Err(SerialError::Frame(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Publish, QoS};
    use postcard::ser_flavors::{Cobs, Slice, crc::CrcModifier};
    use proptest::prelude::*;

    /// The encoding as postcard's COBS flavor with its CRC modifier writes it.
    fn postcard_framed(frame: &Frame<'_>) -> std::vec::Vec<u8> {
        let mut buf = std::vec![0u8; max_framed_len(frame.encoded_len())];
        let flavor = CrcModifier::new(
            Cobs::try_new(Slice::new(&mut buf)).unwrap(),
            CRC32C.digest(),
        );
        postcard::serialize_with_flavor::<_, _, &mut [u8]>(frame, flavor)
            .unwrap()
            .to_vec()
    }

    fn assert_agrees(payload: &[u8]) {
        let frame = publish(payload);
        let mut buf = std::vec![0u8; max_framed_len(frame.encoded_len())];
        let n = encode_frame(&frame, &mut buf).unwrap();
        assert_eq!(&buf[..n], &postcard_framed(&frame)[..], "{payload:?}");
    }

    #[test]
    fn agrees_with_postcards_cobs_flavor_for_every_run_length() {
        // Runs without zeros of every length across several 254-byte blocks.
        for len in 0..1100 {
            assert_agrees(&std::vec![0x5a; len]);
        }
    }

    proptest! {
        /// What devices compute bit by bit is what hosts compute by table.
        #[test]
        fn bitwise_crc_agrees_with_the_table(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            prop_assert_eq!(CRC32C_BITWISE.checksum(&bytes), CRC32C.checksum(&bytes));
        }

        #[test]
        fn agrees_with_postcards_cobs_flavor(
            payload in prop::collection::vec(prop::sample::select(&[0u8, 1, 0x5a, 0xff][..]), 0..1100),
        ) {
            assert_agrees(&payload);
        }
    }

    #[test]
    fn max_framed_len_holds_for_runs_without_zeros() {
        use postcard::ser_flavors::Flavor;
        // A frame and CRC without a zero byte make one long COBS run; when
        // its length is a multiple of 254 the encoder adds a code byte more
        // than the usual ceil(n / 254) (found by the wire property test: a
        // 250-byte frame took 257 bytes, 1 more than the old bound).
        for n in CRC_LEN..1100 {
            let mut out = std::vec![0u8; n + n / 254 + 8];
            let mut cobs = Cobs::try_new(Slice::new(&mut out)).unwrap();
            for _ in 0..n {
                cobs.try_push(0x5a).unwrap();
            }
            let written = cobs.finalize().unwrap().len();
            assert!(written <= max_framed_len(n - CRC_LEN), "{n}: {written}");
        }
    }

    fn publish(payload: &[u8]) -> Frame<'_> {
        Frame::Publish(Publish {
            id: 1,
            topic: "a.b",
            qos: QoS::AtLeastOnce,
            dedup: None,
            meta: Default::default(),
            fragment: None,
            payload,
        })
    }

    /// Feeds all of `input`, collecting decoded pings and error kinds.
    fn drain<S: AsRef<[u8]> + AsMut<[u8]>>(
        dec: &mut SerialDecoder<S>,
        mut input: &[u8],
    ) -> (usize, usize) {
        let (mut ok, mut bad) = (0, 0);
        while !input.is_empty() {
            let (n, out) = dec.feed(input);
            match out {
                Some(Ok(_)) => ok += 1,
                Some(Err(_)) => bad += 1,
                None => {}
            }
            input = &input[n..];
        }
        (ok, bad)
    }

    #[test]
    fn round_trip_with_zeros_in_payload() {
        let payload = [0u8, 1, 0, 0, 255, 0];
        let mut line = [0u8; 64];
        let n = encode_frame(&publish(&payload), &mut line).unwrap();
        assert_eq!(line[n - 1], DELIMITER);
        assert!(!line[..n - 1].contains(&DELIMITER));
        let mut dec = SerialDecoder::new([0u8; 64]);
        let (used, out) = dec.feed(&line[..n]);
        assert_eq!(used, n);
        assert_eq!(out, Some(Ok(publish(&payload))));
        assert_eq!(dec.stats().frames, 1);
    }

    #[test]
    fn last_frame_is_offered_again_until_more_is_fed() {
        let mut line = [0u8; 128];
        let mut len = encode_frame(&publish(b"held back"), &mut line).unwrap();
        len += encode_frame(&Frame::Ping(9), &mut line[len..]).unwrap();
        let mut dec = SerialDecoder::new([0u8; 64]);
        assert_eq!(dec.last_frame(), None);
        let (used, out) = dec.feed(&line[..len]);
        assert_eq!(out, Some(Ok(publish(b"held back"))));
        // The receiver refused it: the same frame, again and again.
        assert_eq!(dec.last_frame(), Some(publish(b"held back")));
        assert_eq!(dec.last_frame(), Some(publish(b"held back")));
        let (_, out) = dec.feed(&line[used..len]);
        assert_eq!(out, Some(Ok(Frame::Ping(9))));
        assert_eq!(dec.last_frame(), Some(Frame::Ping(9)));
        // Feeding anything (even a partial frame) ends it; so does a bad frame.
        let (_, out) = dec.feed(&[1, 2]);
        assert_eq!(out, None);
        assert_eq!(dec.last_frame(), None);
        let (_, out) = dec.feed(&[DELIMITER]);
        assert_eq!(out, Some(Err(SerialError::Cobs)));
        assert_eq!(dec.last_frame(), None);
        let (_, _) = dec.feed(&line[..used]);
        dec.reset();
        assert_eq!(dec.last_frame(), None);
    }

    #[test]
    fn resynchronises_after_garbage_and_corruption() {
        let mut line = [0u8; 256];
        let mut len = 0;
        // garbage without a delimiter, then a good frame: garbage joins it and fails
        line[..3].copy_from_slice(&[7, 7, 7]);
        len += 3;
        line[len] = DELIMITER;
        len += 1;
        len += encode_frame(&Frame::Ping(1), &mut line[len..]).unwrap();
        // a corrupted frame
        let start = len;
        len += encode_frame(&Frame::Ping(2), &mut line[len..]).unwrap();
        line[start + 1] ^= 0x10;
        // a good one
        len += encode_frame(&Frame::Ping(3), &mut line[len..]).unwrap();
        let mut dec = SerialDecoder::new([0u8; 32]);
        assert_eq!(drain(&mut dec, &line[..len]), (2, 2));
        let s = dec.stats();
        assert_eq!(s.frames, 2);
        assert_eq!(s.crc_errors + s.cobs_errors, 2);
    }

    #[test]
    fn overflow_is_counted_and_skipped() {
        let big = [9u8; 100];
        let mut line = [0u8; 256];
        let mut len = encode_frame(&publish(&big), &mut line).unwrap();
        len += encode_frame(&Frame::Ping(4), &mut line[len..]).unwrap();
        let mut dec = SerialDecoder::new([0u8; 32]);
        assert_eq!(drain(&mut dec, &line[..len]), (1, 1));
        assert_eq!(dec.stats().overflows, 1);
    }

    #[test]
    fn too_small_output_untouched() {
        let mut buf = [0xAAu8; 4];
        assert!(matches!(
            encode_frame(&publish(b"xyz"), &mut buf),
            Err(EncodeError::BufferTooSmall { .. })
        ));
        assert_eq!(buf, [0xAA; 4]);
    }
}
