//! Transport framing: how frames are delimited on byte streams and serial lines.
//!
//! - [`stream`]: TCP and other reliable byte streams; each frame is prefixed by its
//!   length as a varint.
//! - [`serial`]: UARTs and other lossy byte lines; each frame is COBS-encoded with a
//!   CRC-32C and ends in a zero byte, so a receiver resynchronises after garbage.

pub mod serial;
pub mod stream;

use crate::wire::codec::Sender;
#[cfg(feature = "alloc")]
use crate::wire::codec::{self, Wire};
use crate::wire::{EncodeError, Frame};

/// Which framing a connection uses for the frames a state machine emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Framing {
    /// Varint length prefix ([`stream`]).
    Stream,
    /// COBS + CRC-32C + delimiter ([`serial`]).
    Serial,
}

impl Framing {
    /// Encodes `frame` into the front of `buf` with this framing. `max_frame` is the
    /// receiver's limit (stream framing refuses larger frames).
    pub fn encode(
        self,
        frame: &Frame<'_>,
        max_frame: u32,
        buf: &mut [u8],
    ) -> Result<usize, EncodeError> {
        self.encode_sized(frame, frame.encoded_len(), max_frame, buf)
    }

    /// [`encode`](Self::encode) for a caller that knows the frame's
    /// [`encoded_len`](Frame::encoded_len) already (`len`); it must be exact.
    pub fn encode_sized(
        self,
        frame: &Frame<'_>,
        len: usize,
        max_frame: u32,
        buf: &mut [u8],
    ) -> Result<usize, EncodeError> {
        encode_sized_as(self, frame, len, max_frame, buf, Sender::Any)
    }

    /// [`encode`](Self::encode) for a frame given as its kind's tag
    /// ([`Frame`]'s variant index) and its fields: a frame that is not a
    /// [`Frame`] of this version (an older version's, see `wire::v2`).
    #[cfg(feature = "alloc")]
    pub(crate) fn encode_fields<'a, T: Wire<'a>>(
        self,
        tag: u8,
        fields: &T,
        max_frame: u32,
        buf: &mut [u8],
    ) -> Result<usize, EncodeError> {
        match self {
            Framing::Stream => stream::encode_fields(tag, fields, max_frame, buf),
            Framing::Serial => serial::encode_fields(tag, fields, max_frame, buf),
        }
    }

    /// Whether this is [`Framing::Serial`].
    pub const fn is_serial(self) -> bool {
        matches!(self, Framing::Serial)
    }

    /// Most bytes a frame of `frame_len` encoded bytes takes with this framing.
    pub const fn max_framed_len(self, frame_len: usize) -> usize {
        match self {
            Framing::Stream => stream::prefix_len(frame_len) + frame_len,
            Framing::Serial => serial::max_framed_len(frame_len),
        }
    }

    /// The largest frame (in encoded bytes) that [`encode`](Self::encode) writes
    /// into a buffer of `len` bytes: [`max_framed_len`](Self::max_framed_len) of
    /// it is at most `len`, of one byte more it is not. 0 when `len` holds no
    /// frame at all.
    pub const fn largest_frame(self, len: usize) -> usize {
        if let Framing::Stream = self {
            // `len` less the prefix of the frame one byte longer than
            // `len` less its own prefix: the prefix can only shrink there,
            // and by at most a byte (no climbing loop).
            let one_longer = len.saturating_sub(stream::prefix_len(len)) + 1;
            return len.saturating_sub(stream::prefix_len(one_longer));
        }
        // The overhead grows with the frame, so this underestimates; then climb.
        let overhead = self.max_framed_len(len).saturating_sub(len);
        let mut frame = len.saturating_sub(overhead);
        while self.max_framed_len(frame + 1) <= len {
            frame += 1;
        }
        frame
    }
}

/// How a client session frames what it sends: chosen by value
/// ([`Framing`], for a program that speaks over both) or by type
/// ([`StreamOnly`], [`SerialOnly`]), so that a device build that speaks over
/// one transport links no encoder of the other. The typed framers encode only
/// the frames a client sends (any other is [`EncodeError::Unexpected`]), so a
/// device carries no encoder of the broker's frames either. Sealed: these
/// three are all.
pub trait Framer: Copy + sealed::Sealed {
    /// Which framing this is.
    fn framing(self) -> Framing;

    /// [`Frame::encoded_len`] as this framer's encoder measures it: 0 for a
    /// frame it does not write.
    fn encoded_len(self, frame: &Frame<'_>) -> usize {
        frame.encoded_len_as(sender::<Self>())
    }

    /// [`Framing::encode_sized`] with this framing and encoder.
    fn encode_sized(
        self,
        frame: &Frame<'_>,
        len: usize,
        max_frame: u32,
        buf: &mut [u8],
    ) -> Result<usize, EncodeError> {
        encode_sized_as(self.framing(), frame, len, max_frame, buf, sender::<Self>())
    }
}

mod sealed {
    /// Only this module's framers are [`Framer`](super::Framer)s.
    pub trait Sealed {
        /// The framer encodes only the frames a client sends.
        const CLIENT: bool;
    }
}

/// The encoder a framer uses.
#[inline(always)]
fn sender<T: Framer>() -> Sender {
    if T::CLIENT {
        Sender::Client
    } else {
        Sender::Any
    }
}

impl sealed::Sealed for Framing {
    const CLIENT: bool = false;
}

impl Framer for Framing {
    fn framing(self) -> Framing {
        self
    }
}

/// [`Framing::Stream`] in the type, with a client's encoder: a session framed
/// by it carries no serial encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StreamOnly;

impl sealed::Sealed for StreamOnly {
    const CLIENT: bool = true;
}

impl Framer for StreamOnly {
    #[inline(always)]
    fn framing(self) -> Framing {
        Framing::Stream
    }
}

/// [`Framing::Serial`] in the type, with a client's encoder: a session framed
/// by it carries no stream encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SerialOnly;

impl sealed::Sealed for SerialOnly {
    const CLIENT: bool = true;
}

impl Framer for SerialOnly {
    #[inline(always)]
    fn framing(self) -> Framing {
        Framing::Serial
    }
}

/// [`Framing::encode_sized`] with `sender`'s encoder. Inlined, so that for a
/// constant `framing` only its encoder is compiled in.
#[inline(always)]
fn encode_sized_as(
    framing: Framing,
    frame: &Frame<'_>,
    len: usize,
    max_frame: u32,
    buf: &mut [u8],
    sender: Sender,
) -> Result<usize, EncodeError> {
    match framing {
        Framing::Stream => stream::encode_frame_sized_as(frame, len, max_frame, buf, sender),
        Framing::Serial => {
            if len > max_frame as usize {
                return Err(EncodeError::FrameTooLarge {
                    len,
                    max: max_frame as usize,
                });
            }
            serial::encode_frame_sized_as(frame, len, buf, sender)
        }
    }
}

/// Writes a frame given as its kind's tag and its fields into `out`, which
/// is exactly `1 + codec::encoded_len(fields)` bytes long (what both
/// framings' `encode_fields` measured).
#[cfg(feature = "alloc")]
fn write_tagged<'a, T: Wire<'a>>(tag: u8, fields: &T, out: &mut [u8]) -> Result<(), EncodeError> {
    let (first, rest) = out.split_first_mut().ok_or(EncodeError::Unexpected)?;
    *first = tag;
    match codec::encode_exact(fields, rest) {
        true => Ok(()),
        false => Err(EncodeError::Unexpected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_frame_is_exact() {
        for framing in [Framing::Stream, Framing::Serial] {
            for len in [7, 100, 127, 128, 129, 130, 254, 520, 16_389, 70_000] {
                let frame = framing.largest_frame(len);
                assert!(framing.max_framed_len(frame) <= len, "{framing:?} {len}");
                assert!(framing.max_framed_len(frame + 1) > len, "{framing:?} {len}");
            }
            // Nothing fits: no frame at all.
            assert_eq!(framing.largest_frame(0), 0);
        }
    }

    #[test]
    fn the_largest_stream_frame_is_the_largest_that_fits() {
        let fits = |n: usize, len: usize| n + stream::prefix_len(n) <= len;
        let edges = [1 << 7, 1 << 14, 1 << 21, 1 << 28, 1 << 31];
        let lens = (0..20_000).chain(
            edges
                .into_iter()
                .flat_map(|edge: usize| edge.saturating_sub(300)..edge + 300),
        );
        for len in lens {
            // 0 when no frame fits.
            let largest = (len.saturating_sub(8)..=len)
                .filter(|&n| fits(n, len))
                .max()
                .unwrap_or(0);
            assert_eq!(Framing::Stream.largest_frame(len), largest, "{len}");
        }
    }

    /// What a framer writes, its error included, for `frame` into `room` bytes
    /// with a receiver limit of `max_frame`.
    fn framed(
        framer: impl Framer,
        frame: &Frame<'_>,
        max_frame: u32,
        room: usize,
    ) -> Result<([u8; 64], usize), EncodeError> {
        let mut buf = [0u8; 64];
        let len = frame.encoded_len();
        let n = framer.encode_sized(frame, len, max_frame, &mut buf[..room])?;
        Ok((buf, n))
    }

    #[test]
    fn framing_in_the_type_writes_what_the_value_writes() {
        use crate::wire::{Close, Reason};
        let frames = [
            Frame::Ping(7),
            Frame::Pong(u64::MAX),
            Frame::Close(Close {
                reason: Reason::Normal,
                text: "bye\0with a zero",
            }),
        ];
        for frame in &frames {
            for (max_frame, room) in [(u32::MAX, 64), (u32::MAX, 3), (2, 64)] {
                let stream = framed(StreamOnly, frame, max_frame, room);
                assert_eq!(stream, framed(Framing::Stream, frame, max_frame, room));
                let serial = framed(SerialOnly, frame, max_frame, room);
                assert_eq!(serial, framed(Framing::Serial, frame, max_frame, room));
                if max_frame == u32::MAX && room == 64 {
                    assert_ne!(stream, serial, "{frame:?}");
                }
            }
        }
        assert_eq!(StreamOnly.framing(), Framing::Stream);
        assert_eq!(SerialOnly.framing(), Framing::Serial);
    }

    /// A framer's answer for `frame`: its measure, what encoding returns,
    /// and whether the buffer was left as it was.
    fn refused(
        framer: impl Framer,
        frame: &Frame<'_>,
    ) -> (usize, Result<usize, EncodeError>, bool) {
        let mut buf = [0xA5; 64];
        let result = framer.encode_sized(frame, frame.encoded_len(), u32::MAX, &mut buf);
        (
            framer.encoded_len(frame),
            result,
            buf.iter().all(|&b| b == 0xA5),
        )
    }

    #[test]
    fn typed_framers_refuse_a_brokers_frame_unwritten() {
        use crate::wire::UnsubAck;
        let frame = Frame::UnsubAck(UnsubAck { sub: 3 });
        let unwritten = (0, Err(EncodeError::Unexpected), true);
        assert_eq!(refused(StreamOnly, &frame), unwritten);
        assert_eq!(refused(SerialOnly, &frame), unwritten);
        // The framings by value write it.
        assert!(framed(Framing::Stream, &frame, u32::MAX, 64).is_ok());
        assert!(framed(Framing::Serial, &frame, u32::MAX, 64).is_ok());
    }
}
