//! Splitting a byte stream into MQTT packets.
//!
//! [`PacketDecoder`] looks at whatever the caller has buffered and yields one
//! whole packet borrowed from that buffer with the bytes it consumed, or says
//! how many bytes must be buffered first. A packet larger than the maximum
//! packet size is refused from its fixed header alone, before any of it has to
//! be buffered, so a receive buffer of the maximum size always suffices.

use super::{DecodeError, MAX_PACKET_SIZE, Packet, Version};

/// What the decoder found at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(
    clippy::large_enum_variant,
    reason = "returned and matched at once; boxing the packet would need alloc"
)]
pub enum Decoded<'a> {
    /// A whole packet, borrowing the buffer; drop the first `consumed` bytes
    /// after handling it.
    Packet {
        /// The packet.
        packet: Packet<'a>,
        /// Its length, fixed header included.
        consumed: usize,
    },
    /// Not a whole packet yet: at least `needed` bytes must be buffered before
    /// calling again (never more than the maximum packet size).
    Incomplete {
        /// Minimum buffered length for progress.
        needed: usize,
    },
}

/// The first packet's bytes, not decoded (see [`PacketDecoder::split`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Split<'a> {
    /// A whole packet, fixed header included.
    Whole(&'a [u8]),
    /// At least `needed` bytes must be buffered before calling again.
    Incomplete {
        /// Minimum buffered length for progress.
        needed: usize,
    },
}

/// Splits a byte stream into packets of one connection. Holds the protocol
/// version (known after CONNECT) and the maximum packet size this side accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PacketDecoder {
    version: Version,
    max_packet_size: u32,
}

impl PacketDecoder {
    /// A decoder for packets of `version` up to `max_packet_size` bytes (fixed
    /// header included; at least 2, at most [`MAX_PACKET_SIZE`]). Before
    /// CONNECT any version will do: a CONNECT decodes the same under all.
    pub const fn new(version: Version, max_packet_size: u32) -> Self {
        let max_packet_size = if max_packet_size < 2 {
            2
        } else if max_packet_size > MAX_PACKET_SIZE {
            MAX_PACKET_SIZE
        } else {
            max_packet_size
        };
        PacketDecoder {
            version,
            max_packet_size,
        }
    }

    /// The protocol version packets are decoded as.
    pub const fn version(&self) -> Version {
        self.version
    }

    /// Sets the version (after CONNECT).
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// The largest packet accepted.
    pub const fn max_packet_size(&self) -> u32 {
        self.max_packet_size
    }

    /// Finds the first packet's bytes without decoding them.
    pub fn split<'a>(&self, buf: &'a [u8]) -> Result<Split<'a>, DecodeError> {
        let max = u64::from(self.max_packet_size);
        let too_large = |smallest: u64| -> Result<(), DecodeError> {
            if smallest > max {
                Err(DecodeError::PacketTooLarge)
            } else {
                Ok(())
            }
        };
        if buf.is_empty() {
            return Ok(Split::Incomplete { needed: 1 });
        }
        let mut len = 0u64;
        for i in 0..4usize {
            let header = 1 + i as u64 + 1;
            let Some(&b) = buf.get(1 + i) else {
                // The smallest packet this can be: a continued length has at
                // least 1 in its next byte (the shortest form has no final 0).
                let more = if i == 0 { 0 } else { 1u64 << (7 * i) };
                too_large(header + len + more)?;
                return Ok(Split::Incomplete {
                    needed: buf.len() + 1,
                });
            };
            len |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(DecodeError::BadVarInt);
                }
                let total = header + len;
                too_large(total)?;
                let total = total as usize;
                return Ok(match buf.get(..total) {
                    Some(packet) => Split::Whole(packet),
                    None => Split::Incomplete { needed: total },
                });
            }
            if i == 3 {
                return Err(DecodeError::BadVarInt);
            }
            too_large(header + 1 + len + (1u64 << (7 * (i + 1))))?;
        }
        // Four bytes, each continued: returned from the loop above.
        Err(DecodeError::BadVarInt)
    }

    /// Decodes the first packet in `buf`.
    pub fn decode<'a>(&self, buf: &'a [u8]) -> Result<Decoded<'a>, DecodeError> {
        match self.split(buf)? {
            Split::Whole(bytes) => Ok(Decoded::Packet {
                packet: Packet::decode(bytes, self.version)?,
                consumed: bytes.len(),
            }),
            Split::Incomplete { needed } => Ok(Decoded::Incomplete { needed }),
        }
    }
}
