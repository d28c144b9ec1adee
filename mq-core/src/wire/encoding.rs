//! Encoding and decoding a [`Frame`], and what goes wrong doing it.

use core::fmt;

use super::Frame;
use super::codec::{self, Sender, Writer};

/// A frame could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too small; nothing was written.
    BufferTooSmall {
        /// Bytes the encoding needs.
        needed: usize,
    },
    /// The frame is larger than the limit it is being encoded for.
    FrameTooLarge {
        /// Encoded size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame is not one this encoder writes: a client's encoder
    /// ([`StreamOnly`](crate::framing::StreamOnly),
    /// [`SerialOnly`](crate::framing::SerialOnly)) writes only the frames a
    /// client sends. Nothing was written.
    Unexpected,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
            EncodeError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            EncodeError::Unexpected => f.write_str("frame not sent by this side"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Bytes are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// Not a valid encoding of any frame.
    Malformed,
    /// A valid frame followed by extra bytes inside the same transport frame.
    TrailingBytes,
    /// A frame the decoding side never receives (a client decoding a frame
    /// only clients send, [`Frame::decode_from_broker`]): refused by its tag,
    /// its fields unread.
    Unexpected,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::Malformed => "malformed frame",
            DecodeError::TrailingBytes => "trailing bytes after frame",
            DecodeError::Unexpected => "frame not sent to this side",
        })
    }
}

impl core::error::Error for DecodeError {}

impl<'a> Frame<'a> {
    /// The length of this frame's encoding.
    pub fn encoded_len(&self) -> usize {
        codec::encoded_len(self)
    }

    /// [`encoded_len`](Self::encoded_len) as `sender`'s encoder measures it:
    /// 0 for a frame it does not write.
    #[inline(always)]
    pub(crate) fn encoded_len_as(&self, sender: Sender) -> usize {
        #[cfg(feature = "alloc")]
        {
            let mut c = codec::Counter::default();
            codec::write_frame(self, &mut c, sender);
            c.finish().unwrap_or(0)
        }
        #[cfg(not(feature = "alloc"))]
        {
            let mut w = Writer::new(&mut []);
            codec::write_frame(self, &mut w, sender);
            if w.refused() { 0 } else { w.len() }
        }
    }

    /// Encodes into the front of `buf`, returning the bytes written. When `buf` is
    /// too small it is left untouched and the error says how much is needed.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let needed = self.encoded_len();
        match buf.get_mut(..needed) {
            Some(out) => self.encode_exact(out),
            None => Err(EncodeError::BufferTooSmall { needed }),
        }
    }

    /// Encodes into `buf`, which the caller sized from
    /// [`encoded_len`](Self::encoded_len) (saving a second pass over the frame).
    pub(crate) fn encode_exact(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        self.encode_exact_as(buf, Sender::Any)
    }

    /// [`encode_exact`](Self::encode_exact) with `sender`'s encoder;
    /// [`EncodeError::Unexpected`] for a frame it does not write.
    #[inline(always)]
    pub(crate) fn encode_exact_as(
        &self,
        buf: &mut [u8],
        sender: Sender,
    ) -> Result<usize, EncodeError> {
        let mut w = Writer::new(buf);
        codec::write_frame(self, &mut w, sender);
        if w.refused() {
            return Err(EncodeError::Unexpected);
        }
        w.finish().ok_or_else(|| EncodeError::BufferTooSmall {
            needed: self.encoded_len_as(sender),
        })
    }

    /// Decodes exactly one frame occupying all of `bytes`; strings and payloads
    /// borrow from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<Frame<'a>, DecodeError> {
        codec::decode_exact(bytes)
    }

    /// [`decode`](Self::decode) for a client: a frame only clients send
    /// (hello, publish, subscribe, unsubscribe, ack, ack by message, nack,
    /// credit, admin, a node link's interest) is
    /// [`DecodeError::Unexpected`], whatever its fields, which are not read;
    /// without `alloc`, so is an admin answer (only a session with `alloc`
    /// asks for one). Any other input decodes as `decode` decodes it. A
    /// client that decodes with this carries no code to decode those frames.
    pub fn decode_from_broker(bytes: &'a [u8]) -> Result<Frame<'a>, DecodeError> {
        codec::decode_all(bytes, |r| codec::read_frame(r, codec::Receiver::Client))
    }

    /// A short name of the frame's kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "hello",
            Frame::Welcome(_) => "welcome",
            Frame::Publish(_) => "publish",
            Frame::PubAck(_) => "puback",
            Frame::PubReject(_) => "pubreject",
            Frame::Subscribe(_) => "subscribe",
            Frame::SubAck(_) => "suback",
            Frame::SubReject(_) => "subreject",
            Frame::Unsubscribe(_) => "unsubscribe",
            Frame::UnsubAck(_) => "unsuback",
            Frame::Deliver(_) => "deliver",
            Frame::Ack(_) => "ack",
            Frame::Nack(_) => "nack",
            Frame::Credit(_) => "credit",
            Frame::Ping(_) => "ping",
            Frame::Pong(_) => "pong",
            Frame::Close(_) => "close",
            Frame::Error(_) => "error",
            Frame::Admin(_) => "admin",
            Frame::AdminAnswer(_) => "admin-answer",
            Frame::Interest(_) => "interest",
            Frame::AckMessage(_) => "ack-message",
        }
    }
}
