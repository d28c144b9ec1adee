//! Fragments: one message as several [`Publish`] or [`Deliver`] frames, and back.
//!
//! Both sides of the protocol fragment (the client its publishes, the broker its
//! deliveries) and both reassemble; this module does it once for both frame
//! kinds, without allocating:
//!
//! - [`Fragmenter`] cuts a message into frames of at most a given encoded size,
//!   exactly: a fragment carries as many payload bytes as fit, and one more would
//!   not. [`Fragmenter::encode_next`] also fits the frame into a caller buffer
//!   with the connection's [`Framing`].
//! - [`Reassembler`] checks a sequence of received frames against the fragment
//!   rules (see the [protocol rules](super#protocol-rules)) and tells the caller
//!   where each piece goes and when the message is complete; the caller keeps
//!   the bytes wherever it likes.
//!
//! ```
//! use mq_core::framing::Framing;
//! use mq_core::framing::stream::{Split, StreamDecoder};
//! use mq_core::wire::fragment::{Fragmenter, Reassembler};
//! use mq_core::wire::{Deliver, Frame, Meta, QoS};
//!
//! let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
//! let deliver = Deliver {
//!     sub: 1,
//!     topic: "sensors.kitchen",
//!     seq: 17,
//!     tag: 9,
//!     attempt: 1,
//!     qos: QoS::AtLeastOnce,
//!     meta: Meta::default(),
//!     fragment: None,
//!     payload: &payload,
//! };
//! // Sender: frames of at most the peer's 1000 bytes, into a 700-byte buffer.
//! let frames = Fragmenter::deliver(deliver);
//! let (mut buf, mut offset, mut wire) = ([0u8; 700], 0, Vec::new());
//! loop {
//!     let w = frames.encode_next(offset, 1000, Framing::Stream, &mut buf).unwrap();
//!     wire.extend_from_slice(&buf[..w.len]);
//!     offset = w.end;
//!     if w.last {
//!         break;
//!     }
//! }
//! // Receiver: checks each frame, puts its payload where it belongs.
//! let (mut reassembler, mut whole, mut rest) = (Reassembler::new(), Vec::new(), &wire[..]);
//! while let Ok(Split::Whole { body, consumed }) = StreamDecoder::new(1000).split(rest) {
//!     let Ok(Frame::Deliver(d)) = Frame::decode(body) else { unreachable!() };
//!     let place = reassembler.accept(d.tag, d.fragment, d.payload.len(), u64::MAX).unwrap();
//!     assert_eq!(place.offset as usize, whole.len());
//!     whole.extend_from_slice(d.payload);
//!     rest = &rest[consumed..];
//! }
//! assert_eq!(whole, payload);
//! ```

use core::fmt;

#[cfg(any(feature = "alloc", doc))]
use super::Deliver;
#[cfg(not(feature = "alloc"))]
use super::codec::Sender;
use super::{EncodeError, Fragment, Frame, Publish};
use crate::framing::Framing;
use crate::framing::stream::prefix_len;

/// A message to send, as one frame or as fragments: a [`Publish`] (client to
/// broker) or a [`Deliver`] (broker to client) whose `payload` is the whole
/// payload (its `fragment` field is ignored).
///
/// Send the frames [`next`](Self::next) (or [`encode_next`](Self::encode_next))
/// returns, from offset 0, each time from the `end` of the last one, until one
/// is `last`. A message that fits is sent as one frame without a `Fragment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragmenter<'a> {
    head: Head<'a>,
}

/// The frame kind and its fields other than the payload. Deliveries are the
/// broker's, which needs `alloc`: a device's fragmenter cuts publishes only,
/// and measures them with a client's encoder ([`frame_len`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head<'a> {
    Publish(Publish<'a>),
    #[cfg(feature = "alloc")]
    Deliver(Deliver<'a>),
}

/// `frame`'s [`encoded_len`](Frame::encoded_len). Without `alloc` the
/// fragmenter's frames are publishes, which a client's encoder writes: a
/// device links no encoder of the frames it never sends.
#[cfg_attr(not(feature = "alloc"), inline(never))]
fn frame_len(frame: &Frame<'_>) -> usize {
    #[cfg(feature = "alloc")]
    let len = frame.encoded_len();
    #[cfg(not(feature = "alloc"))]
    let len = frame.encoded_len_as(Sender::Client);
    len
}

/// A frame [`Fragmenter::next`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece<'a> {
    /// The frame: the whole message, or one fragment of it.
    pub frame: Frame<'a>,
    /// The payload offset after this frame: where the next one starts.
    pub end: usize,
    /// The message is complete with this frame.
    pub last: bool,
    /// The frame's [`encoded_len`](Frame::encoded_len), measured already.
    pub encoded_len: usize,
}

/// What [`Fragmenter::encode_next`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Written {
    /// Bytes written to the front of the buffer, framing included.
    pub len: usize,
    /// The payload offset after this frame: where the next one starts.
    pub end: usize,
    /// The message is complete with this frame.
    pub last: bool,
}

/// [`Fragmenter::encode_next`] wrote nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FragmentError {
    /// Not one payload byte fits next to the message's headers within the
    /// peer's maximum frame: the message can never be sent.
    TooLarge,
    /// Not one payload byte fits the buffer: write out what it holds, then call
    /// again with a larger one.
    BufferTooSmall,
}

impl fmt::Display for FragmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FragmentError::TooLarge => "message headers exceed the maximum frame",
            FragmentError::BufferTooSmall => "buffer too small for a fragment",
        })
    }
}

impl core::error::Error for FragmentError {}

impl<'a> Fragmenter<'a> {
    /// Fragments a publish; `p.payload` is the whole payload.
    pub const fn publish(p: Publish<'a>) -> Self {
        Fragmenter {
            head: Head::Publish(p),
        }
    }

    /// Fragments a delivery; `d.payload` is the whole payload. (With `alloc`:
    /// deliveries are the broker's.)
    #[cfg(feature = "alloc")]
    pub const fn deliver(d: Deliver<'a>) -> Self {
        Fragmenter {
            head: Head::Deliver(d),
        }
    }

    /// The whole payload.
    pub const fn payload(&self) -> &'a [u8] {
        match &self.head {
            Head::Publish(p) => p.payload,
            #[cfg(feature = "alloc")]
            Head::Deliver(d) => d.payload,
        }
    }

    /// Length of the whole payload.
    pub const fn total(&self) -> usize {
        self.payload().len()
    }

    /// The frame carrying `payload` with `fragment`.
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    fn frame(&self, fragment: Option<Fragment>, payload: &'a [u8]) -> Frame<'a> {
        match self.head {
            Head::Publish(p) => {
                let mut frame = Frame::Publish(p);
                if let Frame::Publish(p) = &mut frame {
                    p.fragment = fragment;
                    p.payload = payload;
                }
                frame
            }
            #[cfg(feature = "alloc")]
            Head::Deliver(d) => Frame::Deliver(Deliver {
                fragment,
                payload,
                ..d
            }),
        }
    }

    /// The message as one frame.
    // Out of line on devices (with `Session::closed`, 8 bytes less).
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(crate) fn whole(&self) -> Frame<'a> {
        self.frame(None, self.payload())
    }

    /// At least the whole message's encoded length, from the lengths of its
    /// variable fields alone (no pass over the frame): every integer at its
    /// widest varint, every byte string with a 10-byte length.
    #[cfg(feature = "alloc")]
    fn whole_len_bound(&self) -> usize {
        /// Tags, options, and integers at their widest: well above what the
        /// fixed fields of either frame kind take.
        const FIXED: usize = 128;
        let (topic, meta) = match &self.head {
            Head::Publish(p) => (p.topic, &p.meta),
            Head::Deliver(d) => (d.topic, &d.meta),
        };
        let bytes = |n: usize| n.saturating_add(10);
        FIXED
            .saturating_add(bytes(topic.len()))
            .saturating_add(bytes(meta.reply_to.map_or(0, str::len)))
            .saturating_add(bytes(meta.correlation.map_or(0, <[u8]>::len)))
            .saturating_add(bytes(meta.headers.as_encoded().len()))
            .saturating_add(bytes(self.total()))
    }

    /// Payload bytes from `offset` on that the next frame carries within `max`
    /// encoded bytes: at offset 0 the whole payload when the message fits one
    /// frame, otherwise as many as a fragment holds (exactly: one more byte would
    /// exceed `max`), at most what is left. 0 when not one byte fits.
    pub fn room(&self, offset: usize, max: usize) -> usize {
        let total = self.total();
        if offset > total {
            return 0;
        }
        if offset == 0 && frame_len(&self.whole()) <= max {
            return total;
        }
        self.fragment_room(offset, max).0
    }

    /// Payload bytes from `offset` on that a fragment (never the whole message)
    /// carries within `max` encoded bytes, and the fragment's encoded length.
    fn fragment_room(&self, offset: usize, max: usize) -> (usize, usize) {
        let total = self.total();
        let fragment = Fragment {
            offset: offset as u64,
            total: total as u64,
        };
        // With an empty payload, whose length prefix is one byte; `n` bytes
        // need their own prefix (a LEB128 varint, like the frame prefix).
        let base = frame_len(&self.frame(Some(fragment), &[])).saturating_sub(1);
        let Some(avail) = max.checked_sub(base) else {
            return (0, 0);
        };
        let mut n = avail.saturating_sub(prefix_len(avail));
        while n + 1 + prefix_len(n + 1) <= avail {
            n += 1;
        }
        let n = n.min(total.saturating_sub(offset));
        (n, base + prefix_len(n) + n)
    }

    /// Whether the whole message can be sent in frames of at most `max` encoded
    /// bytes: as one frame, or as fragments each carrying at least one byte (the
    /// last fragment has the longest offset, so if it carries one, all do).
    pub fn sendable(&self, max: usize) -> bool {
        // The bound spares hosts (the broker's hot path) a pass over the
        // frame; devices take the pass, with less code.
        #[cfg(feature = "alloc")]
        if self.whole_len_bound() <= max {
            return true;
        }
        if frame_len(&self.whole()) <= max {
            return true;
        }
        let total = self.total();
        total > 0 && self.room(total - 1, max) > 0
    }

    /// The next frame, carrying the payload from `offset` on, of at most `max`
    /// encoded bytes; `None` when not one payload byte fits (or `offset` is past
    /// the end), and at offset 0 also when the message is not
    /// [`sendable`](Self::sendable) within `max`, so that no message starts that
    /// would stall halfway. An empty payload travels as one frame at offset 0.
    pub fn next(&self, offset: usize, max: usize) -> Option<Piece<'a>> {
        let mut frame = self.whole();
        let (end, encoded_len) = self.next_over(&mut frame, offset, max)?;
        Some(Piece {
            frame,
            end,
            last: end == self.total(),
            encoded_len,
        })
    }

    /// [`next`](Self::next) cut over `frame`, which holds the message whole
    /// (as [`whole`](Self::whole) builds it): the next frame made in place
    /// (its fragment and payload set when it is one), so that a caller
    /// need not copy it out of a returned `Piece`. Returns the payload offset
    /// after it and its encoded length, or `None` (`frame` then unspecified)
    /// where `next` returns `None`. Devices write their publishes this way.
    pub(crate) fn next_over(
        &self,
        frame: &mut Frame<'a>,
        offset: usize,
        max: usize,
    ) -> Option<(usize, usize)> {
        let total = self.total();
        if offset == 0 {
            let encoded_len = frame_len(frame);
            if encoded_len <= max {
                return Some((total, encoded_len));
            }
            if !self.sendable(max) {
                return None;
            }
        }
        if offset > total {
            return None;
        }
        let (room, encoded_len) = self.fragment_room(offset, max);
        if room == 0 {
            return None;
        }
        let end = offset.saturating_add(room);
        let fragment = Some(Fragment {
            offset: offset as u64,
            total: total as u64,
        });
        let payload = self.payload().get(offset..end)?;
        match frame {
            Frame::Publish(p) => {
                p.fragment = fragment;
                p.payload = payload;
            }
            #[cfg(feature = "alloc")]
            Frame::Deliver(d) => {
                d.fragment = fragment;
                d.payload = payload;
            }
            _ => return None,
        }
        Some((end, encoded_len))
    }

    /// Encodes the next frame from `offset` on into the front of `buf` with
    /// `framing`: as many payload bytes as fit both the peer's `max_frame` and
    /// `buf` (see [`Framing::largest_frame`]). On error `buf` is untouched.
    pub fn encode_next(
        &self,
        offset: usize,
        max_frame: u32,
        framing: Framing,
        buf: &mut [u8],
    ) -> Result<Written, FragmentError> {
        let peer = max_frame as usize;
        let limit = frame_limit(max_frame, framing, buf.len());
        let Some(piece) = self.next(offset, limit) else {
            return Err(if self.next(offset, peer).is_some() {
                FragmentError::BufferTooSmall
            } else {
                FragmentError::TooLarge
            });
        };
        let len = framing
            .encode_sized(&piece.frame, piece.encoded_len, max_frame, buf)
            .map_err(|e| match e {
                EncodeError::BufferTooSmall { .. } => FragmentError::BufferTooSmall,
                // `Unexpected` never: `Framing` encodes every frame.
                EncodeError::FrameTooLarge { .. } | EncodeError::Unexpected => {
                    FragmentError::TooLarge
                }
            })?;
        Ok(Written {
            len,
            end: piece.end,
            last: piece.last,
        })
    }
}

/// The largest frame, in encoded bytes, that both the peer (`max_frame`) and a
/// buffer of `buf_len` bytes take with `framing`: pass it to
/// [`Fragmenter::room`] or [`Fragmenter::next`] to size fragments to a buffer.
pub fn frame_limit(max_frame: u32, framing: Framing, buf_len: usize) -> usize {
    (max_frame as usize).min(framing.largest_frame(buf_len))
}

/// Where a received piece of a message goes, as [`Reassembler::check`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Placement {
    /// Where the frame's payload starts in the whole payload.
    pub offset: u64,
    /// Length of the whole payload.
    pub total: u64,
    /// The first frame of the message: its headers (topic, QoS, meta, dedup)
    /// are the message's.
    pub first: bool,
    /// The last frame: the message is complete.
    pub last: bool,
    /// The message is larger than the caller's maximum: keep none of it; its
    /// frames are still checked and swallowed, and at `last` the caller refuses
    /// it.
    pub refused: bool,
    /// The message's id (publish) or tag (deliver).
    key: u64,
    /// The frame's payload length.
    len: u64,
}

/// A frame broke the fragment rules; the peer is faulty (answer with an error
/// and close the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReassemblyError {
    /// A frame of another message, or an unfragmented one, arrived before the
    /// fragmented message in progress was complete.
    Interleaved,
    /// A fragment does not start where the last one ended (or a first one does
    /// not start at 0).
    OutOfOrder,
    /// A fragment names another total than the first one did.
    TotalChanged,
    /// A fragment reaches beyond the total.
    Overrun,
}

impl ReassemblyError {
    /// A short description, for logs and error frames.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReassemblyError::Interleaved => "frame inside a fragmented message",
            ReassemblyError::OutOfOrder => "fragments out of order",
            ReassemblyError::TotalChanged => "fragment total changed",
            ReassemblyError::Overrun => "fragment beyond the total",
        }
    }
}

impl fmt::Display for ReassemblyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for ReassemblyError {}

/// Checks received [`Publish`] or [`Deliver`] frames against the fragment rules,
/// one message at a time, and says where each payload goes.
///
/// For every publish (or deliver) frame of a connection, call
/// [`check`](Self::check) with its id (or tag), `fragment` and payload length;
/// once the frame is consumed, [`commit`](Self::commit) the placement
/// ([`accept`](Self::accept) does both, for callers that never push back). Store
/// the payload at `offset`; the message is complete at `last`. After a
/// connection ends, [`reset`](Self::reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reassembler {
    current: Option<Current>,
}

/// A fragmented message in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Current {
    key: u64,
    /// The offset the next fragment must have.
    next: u64,
    total: u64,
    refused: bool,
}

impl Reassembler {
    /// No message in progress.
    pub const fn new() -> Self {
        Reassembler { current: None }
    }

    /// Whether a fragmented message is in progress.
    pub const fn in_progress(&self) -> bool {
        self.current.is_some()
    }

    /// Where a frame's payload of `len` bytes goes: the frame belongs to message
    /// `key` (publish id or deliver tag) and carries `fragment`. A message whose
    /// total exceeds `max_total` is [`refused`](Placement::refused). Changes
    /// nothing: [`commit`](Self::commit) once the frame is consumed.
    pub fn check(
        &self,
        key: u64,
        fragment: Option<Fragment>,
        len: usize,
        max_total: u64,
    ) -> Result<Placement, ReassemblyError> {
        let len = len as u64;
        // Where the payload goes, by the rules; the placement is built once
        // from it (built in each of the three arms that accept, on a device
        // it was three sets of stores into the receive path).
        let (offset, total, first, last, refused) = match (self.current, fragment) {
            (None, None) => (0, len, true, true, len > max_total),
            (None, Some(f)) if f.offset != 0 => return Err(ReassemblyError::OutOfOrder),
            (None, Some(f)) if len > f.total => return Err(ReassemblyError::Overrun),
            (None, Some(f)) => (0, f.total, true, len == f.total, f.total > max_total),
            (Some(_), None) => return Err(ReassemblyError::Interleaved),
            (Some(c), Some(_)) if c.key != key => return Err(ReassemblyError::Interleaved),
            (Some(c), Some(f)) if f.total != c.total => {
                return Err(ReassemblyError::TotalChanged);
            }
            (Some(c), Some(f)) if f.offset != c.next => return Err(ReassemblyError::OutOfOrder),
            (Some(c), Some(_)) if len > c.total.saturating_sub(c.next) => {
                return Err(ReassemblyError::Overrun);
            }
            (Some(c), Some(_)) => (c.next, c.total, false, c.next + len == c.total, c.refused),
        };
        Ok(Placement {
            offset,
            total,
            first,
            last,
            refused,
            key,
            len,
        })
    }

    /// The frame `placement` was checked for is consumed.
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub fn commit(&mut self, placement: &Placement) {
        self.current = (!placement.last).then_some(Current {
            key: placement.key,
            next: placement.offset.saturating_add(placement.len),
            total: placement.total,
            refused: placement.refused,
        });
    }

    /// [`check`](Self::check), then [`commit`](Self::commit) when it passes.
    pub fn accept(
        &mut self,
        key: u64,
        fragment: Option<Fragment>,
        len: usize,
        max_total: u64,
    ) -> Result<Placement, ReassemblyError> {
        let placement = self.check(key, fragment, len, max_total)?;
        self.commit(&placement);
        Ok(placement)
    }

    /// Forgets the message in progress (its connection ended).
    pub fn reset(&mut self) {
        self.current = None;
    }
}

#[cfg(test)]
mod tests;
