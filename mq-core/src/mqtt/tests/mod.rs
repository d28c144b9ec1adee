//! Tests of the MQTT codec, by concern: packets captured from real clients and
//! the Mosquitto broker, round trips of every packet in both versions, every
//! decoding and encoding error, the stream decoder, refusals, and the topic
//! mapping.

mod captured;
mod errors;
mod refusal;
mod round_trip;
mod stream;
mod topic;

use std::vec;
use std::vec::Vec;

use super::{Packet, Version};

/// Bytes from hex digits (spaces ignored).
pub(super) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// Encodes `packet`, checking `encoded_len` and that a buffer one byte short
/// is refused and left untouched.
pub(super) fn encode(packet: &Packet<'_>, version: Version) -> Vec<u8> {
    let len = packet.encoded_len(version);
    let mut short = vec![0xA5; len - 1];
    assert_eq!(
        packet.encode(version, &mut short),
        Err(super::EncodeError::BufferTooSmall { needed: len })
    );
    assert!(short.iter().all(|&b| b == 0xA5), "short buffer was written");
    let mut buf = vec![0; len + 3];
    assert_eq!(packet.encode(version, &mut buf), Ok(len));
    buf.truncate(len);
    buf
}

/// Encodes `packet` and decodes it again: the same packet comes back.
pub(super) fn round_trip(packet: &Packet<'_>, version: Version) -> Vec<u8> {
    let bytes = encode(packet, version);
    let back = Packet::decode(&bytes, version).unwrap_or_else(|e| {
        panic!("{packet:?} encoded for {version:?} as {bytes:02x?} does not decode: {e}")
    });
    assert_eq!(&back, packet, "round trip for {version:?}");
    bytes
}
