//! The wire format by hand: every frame written and read without serde, byte
//! for byte as postcard encodes the serde types of [`wire`](super).
//!
//! serde's derived code for twenty frame types is most of what the protocol
//! costs a small device in flash, and a good part of what encoding and
//! decoding cost the broker in instructions. The format is simple enough to
//! write out, and postcard stays its definition: `tests/wire_props.rs` checks
//! that both directions agree with it, for every frame, on any input.
//!
//! postcard's format, as far as frames use it:
//!
//! - `u8`: the byte. `bool`: 0 or 1, anything else is refused.
//! - `u16`, `u32`, `u64` and lengths (`usize`): LEB128 varints, least
//!   significant group first; at most `ceil(bits / 7)` bytes, the last of them
//!   carrying no bits beyond the type. A non-minimal encoding (zero groups at
//!   the end) is accepted, never written.
//! - `Option<T>`: 0, or 1 followed by the value.
//! - an enum: its variant index as a `u32` varint, then the variant's fields.
//! - `&str` and `&[u8]`: the length, then the bytes (a string must be UTF-8).
//! - a struct: its fields in declaration order, nothing else.

mod frames;
mod reader;

pub(crate) use frames::{Receiver, Sender, read_frame, write_frame};
mod writer;

pub(crate) use reader::Reader;
#[cfg(feature = "alloc")]
pub(crate) use writer::Counter;
#[cfg(feature = "alloc")]
pub(crate) use writer::varint_len;
pub(crate) use writer::{Sink, Writer, bytes_len};

use super::{DecodeError, Dedup, Fragment, Headers, Limits, Meta, QoS, Reason, SessionMode, Start};

/// A value with a postcard encoding: writing it, reading it. Its length is
/// what writing it counts ([`encoded_len`]): one description of each type, not
/// two that could disagree.
pub(crate) trait Wire<'a>: Sized {
    /// Writes the encoding.
    fn write<W: Sink>(&self, w: &mut W);
    /// Reads one value; what it borrows, it borrows from the reader's buffer.
    /// A failure is the reader's: it stands in a value and marks the input
    /// malformed ([`Reader::check`]).
    fn read(r: &mut Reader<'a>) -> Self;
}

/// `Wire` for a struct: its fields in declaration order.
macro_rules! wire_struct {
    ($ty:ident $(<$lt:lifetime>)? { $($field:ident),+ $(,)? }) => {
        impl<'a> $crate::wire::codec::Wire<'a> for $ty $(<$lt>)? {
            fn write<W: $crate::wire::codec::Sink>(&self, w: &mut W) {
                $(self.$field.write(w);)+
            }
            fn read(r: &mut $crate::wire::codec::Reader<'a>) -> Self {
                $ty {
                    $($field: $crate::wire::codec::Wire::read(r),)+
                }
            }
        }
    };
}
pub(crate) use wire_struct;

impl<'a> Wire<'a> for u8 {
    #[cfg_attr(feature = "alloc", inline)]
    fn write<W: Sink>(&self, w: &mut W) {
        w.byte(*self);
    }
    #[cfg_attr(feature = "alloc", inline)]
    fn read(r: &mut Reader<'a>) -> Self {
        r.byte()
    }
}

impl<'a> Wire<'a> for bool {
    #[cfg_attr(feature = "alloc", inline)]
    fn write<W: Sink>(&self, w: &mut W) {
        w.byte(u8::from(*self));
    }
    #[cfg_attr(feature = "alloc", inline)]
    fn read(r: &mut Reader<'a>) -> Self {
        r.bool()
    }
}

/// `Wire` for unsigned integers written as varints.
macro_rules! wire_varint {
    ($($ty:ident),+) => {$(
        impl<'a> Wire<'a> for $ty {
            #[cfg_attr(feature = "alloc", inline)]
            fn write<W: Sink>(&self, w: &mut W) {
                w.varint(u64::from(*self));
            }
            #[cfg_attr(feature = "alloc", inline)]
            fn read(r: &mut Reader<'a>) -> Self {
                r.$ty()
            }
        }
    )+};
}
wire_varint!(u16, u32, u64);

impl<'a> Wire<'a> for &'a [u8] {
    #[cfg_attr(feature = "alloc", inline)]
    fn write<W: Sink>(&self, w: &mut W) {
        w.bytes(self);
    }
    #[cfg_attr(feature = "alloc", inline)]
    fn read(r: &mut Reader<'a>) -> Self {
        r.bytes()
    }
}

impl<'a> Wire<'a> for &'a str {
    #[cfg_attr(feature = "alloc", inline)]
    fn write<W: Sink>(&self, w: &mut W) {
        w.bytes(self.as_bytes());
    }
    #[cfg_attr(feature = "alloc", inline)]
    fn read(r: &mut Reader<'a>) -> Self {
        r.str()
    }
}

impl<'a, T: Wire<'a>> Wire<'a> for Option<T> {
    #[cfg_attr(feature = "alloc", inline)]
    fn write<W: Sink>(&self, w: &mut W) {
        match self {
            None => w.byte(0),
            Some(v) => {
                w.byte(1);
                v.write(w);
            }
        }
    }
    #[cfg_attr(feature = "alloc", inline)]
    fn read(r: &mut Reader<'a>) -> Self {
        match r.bool() {
            false => None,
            true => Some(T::read(r)),
        }
    }
}

impl<'a> Wire<'a> for Reason {
    fn write<W: Sink>(&self, w: &mut W) {
        self.code().write(w);
    }
    fn read(r: &mut Reader<'a>) -> Self {
        Reason::from_code(r.u16())
    }
}

/// `Wire` for an enum of two unit variants: its variant index, one byte.
macro_rules! wire_two_units {
    ($($ty:ident { $zero:ident, $one:ident }),+) => {$(
        impl<'a> Wire<'a> for $ty {
            #[cfg_attr(feature = "alloc", inline)]
            fn write<W: Sink>(&self, w: &mut W) {
                w.byte(*self as u8);
            }
            #[cfg_attr(feature = "alloc", inline)]
            fn read(r: &mut Reader<'a>) -> Self {
                match r.variant(2) {
                    0 => $ty::$zero,
                    _ => $ty::$one,
                }
            }
        }
    )+};
}
wire_two_units!(
    QoS {
        AtMostOnce,
        AtLeastOnce
    },
    SessionMode { Clean, Resume }
);

impl<'a> Wire<'a> for Start {
    fn write<W: Sink>(&self, w: &mut W) {
        match self {
            Start::New => w.byte(0),
            Start::Seq(seq) => {
                w.byte(1);
                seq.write(w);
            }
            Start::Last(n) => {
                w.byte(2);
                n.write(w);
            }
            Start::Cursor => w.byte(3),
        }
    }
    fn read(r: &mut Reader<'a>) -> Self {
        match r.variant(4) {
            0 => Start::New,
            1 => Start::Seq(r.u64()),
            2 => Start::Last(r.u32()),
            _ => Start::Cursor,
        }
    }
}

impl<'a> Wire<'a> for Headers<'a> {
    fn write<W: Sink>(&self, w: &mut W) {
        self.as_encoded().write(w);
    }
    fn read(r: &mut Reader<'a>) -> Self {
        match Headers::from_encoded(r.bytes()) {
            Ok(headers) => headers,
            Err(_) => r.fail(),
        }
    }
}

wire_struct!(Limits {
    max_frame,
    credit,
    keepalive_ms
});
wire_struct!(Dedup { producer, seq });
wire_struct!(Fragment { offset, total });
impl<'a> Wire<'a> for Meta<'a> {
    fn write<W: Sink>(&self, w: &mut W) {
        // Most messages carry no properties: on hosts their meta is written
        // (or counted) as five zero bytes at once.
        #[cfg(feature = "alloc")]
        if self.is_empty() {
            w.raw(&super::EMPTY_META);
            return;
        }
        self.ttl_ms.write(w);
        self.priority.write(w);
        self.reply_to.write(w);
        self.correlation.write(w);
        self.headers.write(w);
    }
    fn read(r: &mut Reader<'a>) -> Self {
        // On hosts, five zero bytes are a meta without properties, taken at
        // once; devices skip that shortcut, which is code more.
        #[cfg(feature = "alloc")]
        if let Some(rest) = r.rest().strip_prefix(&super::EMPTY_META) {
            r.skip_to(rest);
            return Meta::default();
        }
        Meta {
            ttl_ms: Wire::read(r),
            priority: Wire::read(r),
            reply_to: Wire::read(r),
            correlation: Wire::read(r),
            headers: Wire::read(r),
        }
    }
}

/// Bytes of `value`'s encoding: what a [`Counter`] counts on hosts, what
/// writing it into no room at all counts on devices.
pub(crate) fn encoded_len<'a, T: Wire<'a>>(value: &T) -> usize {
    #[cfg(feature = "alloc")]
    {
        let mut c = Counter::default();
        value.write(&mut c);
        c.finish().unwrap_or(0)
    }
    #[cfg(not(feature = "alloc"))]
    {
        let mut w = Writer::new(&mut []);
        value.write(&mut w);
        w.len()
    }
}

/// Reads one `T` occupying all of `bytes`, as `postcard::take_from_bytes`
/// followed by a check that nothing is left.
pub(crate) fn decode_exact<'a, T: Wire<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    decode_all(bytes, |r| Ok(T::read(r)))
}

/// What `read` reads from `bytes`, which it must read to the end.
#[inline(always)]
pub(crate) fn decode_all<'a, T>(
    bytes: &'a [u8],
    read: impl FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    // On hosts returned as read, not unwrapped and wrapped again: a frame
    // is large, and that is a copy of it. Devices unwrap it, in less code.
    #[cfg(feature = "alloc")]
    {
        let value = read(&mut r);
        if value.is_ok() {
            r.check()?;
            if !r.rest().is_empty() {
                return Err(DecodeError::TrailingBytes);
            }
        }
        value
    }
    #[cfg(not(feature = "alloc"))]
    {
        let value = read(&mut r)?;
        r.check()?;
        match r.rest() {
            [] => Ok(value),
            _ => Err(DecodeError::TrailingBytes),
        }
    }
}

/// A meta occupying all of `bytes` (as [`decode_exact`], read into the
/// `Option` returned rather than a `Result` first, which was a copy).
pub(crate) fn decode_meta(bytes: &[u8]) -> Option<Meta<'_>> {
    let mut r = Reader::new(bytes);
    // Read where it is returned, then taken back if the bytes were not a
    // meta: read first and then wrapped, it was copied into the `Option`.
    let mut meta = Some(Meta::read(&mut r));
    if r.check().is_err() || !r.rest().is_empty() {
        meta = None;
    }
    meta
}

/// Writes `value` into `out`, which must be exactly its
/// [`encoded_len`] long; false when it is not.
pub(crate) fn encode_exact<'a, T: Wire<'a>>(value: &T, out: &mut [u8]) -> bool {
    let len = out.len();
    let mut w = Writer::new(out);
    value.write(&mut w);
    w.finish() == Some(len)
}
