//! The stream decoder: whole packets, partial ones, and the maximum packet
//! size enforced from the fixed header alone.

use super::super::stream::{Decoded, PacketDecoder, Split};
use super::super::*;
use super::{encode, hex};

#[test]
fn splits_back_to_back_packets_fed_byte_by_byte() {
    let publish = Packet::Publish(Publish {
        dup: false,
        qos: QosPid::AtLeastOnce(PacketId::new(9).unwrap()),
        retain: false,
        topic: "a/b",
        properties: Properties::EMPTY,
        payload: &[1; 200],
    });
    let mut wire = encode(&publish, Version::V3_1_1);
    wire.extend_from_slice(&[0xC0, 0x00]);
    let dec = PacketDecoder::new(Version::V3_1_1, 1024);
    let mut got = std::vec::Vec::new();
    let mut start = 0;
    for end in 0..=wire.len() {
        loop {
            match dec.decode(&wire[start..end]).unwrap() {
                Decoded::Packet { packet, consumed } => {
                    got.push(packet);
                    start += consumed;
                }
                Decoded::Incomplete { needed } => {
                    assert!(needed > end - start && needed <= 1024);
                    break;
                }
            }
        }
    }
    assert_eq!(got, [publish, Packet::PingReq]);
}

#[test]
fn refuses_oversized_packets_from_the_header() {
    let dec = PacketDecoder::new(Version::V5, 100);
    // 98 bytes of body + 2 of header = 100: fine, but not buffered yet.
    assert_eq!(
        dec.split(&[0x30, 98]),
        Ok(Split::Incomplete { needed: 100 })
    );
    // 99 + 2 = 101.
    assert_eq!(dec.split(&[0x30, 99]), Err(DecodeError::PacketTooLarge));
    // A continued length is at least 128 already.
    assert_eq!(dec.split(&[0x30, 0x80]), Err(DecodeError::PacketTooLarge));
    assert_eq!(dec.split(&[0x30]), Ok(Split::Incomplete { needed: 2 }));
    assert_eq!(dec.split(&[]), Ok(Split::Incomplete { needed: 1 }));
    // At 200, a two-byte length may still fit until its second byte says not.
    let dec = PacketDecoder::new(Version::V5, 200);
    assert_eq!(
        dec.split(&[0x30, 0x80]),
        Ok(Split::Incomplete { needed: 3 })
    );
    assert_eq!(
        dec.split(&[0x30, 0xC5, 0x01]),
        Ok(Split::Incomplete { needed: 200 })
    );
    assert_eq!(
        dec.split(&[0x30, 0xC6, 0x01]),
        Err(DecodeError::PacketTooLarge)
    );
    assert_eq!(
        dec.split(&[0x30, 0x80, 0x02]),
        Err(DecodeError::PacketTooLarge)
    );
    // The smallest maximum is a two-byte packet.
    let dec = PacketDecoder::new(Version::V5, 0);
    assert_eq!(dec.max_packet_size(), 2);
    assert_eq!(
        dec.decode(&[0xC0, 0x00]),
        Ok(Decoded::Packet {
            packet: Packet::PingReq,
            consumed: 2
        })
    );
    assert_eq!(dec.split(&[0x30, 0x01]), Err(DecodeError::PacketTooLarge));
}

#[test]
fn bad_remaining_lengths_and_bodies() {
    let dec = PacketDecoder::new(Version::V5, MAX_PACKET_SIZE);
    assert_eq!(dec.split(&hex("30 ffffffff")), Err(DecodeError::BadVarInt));
    assert_eq!(dec.split(&hex("30 8000")), Err(DecodeError::BadVarInt));
    assert_eq!(
        dec.split(&hex("30 ffffff7f")),
        Ok(Split::Incomplete {
            needed: MAX_PACKET_SIZE as usize
        })
    );
    assert_eq!(
        dec.decode(&hex("c0 01 00")),
        Err(DecodeError::TrailingBytes)
    );
}

#[test]
fn version_changes_after_connect() {
    let mut dec = PacketDecoder::new(Version::V5, 64);
    let connect = hex("101300064d51497364700302003c0005636170333130");
    let Ok(Decoded::Packet {
        packet: Packet::Connect(c),
        ..
    }) = dec.decode(&connect)
    else {
        panic!()
    };
    dec.set_version(c.version);
    assert_eq!(dec.version(), Version::V3_1);
    // A v3 PUBACK with a reason code is three bytes too many for 3.1.
    assert_eq!(
        dec.decode(&hex("40 03 0001 00")),
        Err(DecodeError::TrailingBytes)
    );
}
