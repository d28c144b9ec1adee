//! Encoding, decoding and the overhead bound, by example.

use super::*;

pub(super) fn sample_publish(payload: &[u8]) -> Frame<'_> {
    Frame::Publish(Publish {
        id: 7,
        topic: "sensors.kitchen.temp",
        qos: QoS::AtLeastOnce,
        dedup: Some(Dedup {
            producer: 42,
            seq: 9,
        }),
        meta: Meta {
            ttl_ms: Some(60_000),
            priority: 3,
            reply_to: Some("replies.me"),
            correlation: Some(b"c-1"),
            headers: Headers::EMPTY,
        },
        fragment: None,
        payload,
    })
}

#[test]
fn publish_round_trips_and_borrows() {
    let payload = [0xAB; 300];
    let frame = sample_publish(&payload);
    let mut buf = [0u8; 512];
    let n = frame.encode(&mut buf).unwrap();
    assert_eq!(n, frame.encoded_len());
    let back = Frame::decode(&buf[..n]).unwrap();
    assert_eq!(back, frame);
    let Frame::Publish(p) = back else {
        panic!("not a publish")
    };
    // Zero copy: the payload points into the receive buffer.
    let range = buf[..n].as_ptr_range();
    assert!(range.contains(&p.payload.as_ptr()));
    assert!(range.contains(&p.topic.as_ptr()));
}

#[test]
fn too_small_buffer_untouched() {
    let frame = sample_publish(b"hello");
    let mut buf = [0x55u8; 8];
    let err = frame.encode(&mut buf).unwrap_err();
    assert_eq!(
        err,
        EncodeError::BufferTooSmall {
            needed: frame.encoded_len()
        }
    );
    assert_eq!(buf, [0x55; 8]);
}

#[test]
fn trailing_and_garbage_rejected() {
    let mut buf = [0u8; 64];
    let n = Frame::Ping(5).encode(&mut buf).unwrap();
    assert_eq!(
        Frame::decode(&buf[..n + 1]),
        Err(DecodeError::TrailingBytes)
    );
    assert_eq!(Frame::decode(&[0xFF, 0xFF]), Err(DecodeError::Malformed));
    assert_eq!(Frame::decode(&[]), Err(DecodeError::Malformed));
}

#[test]
fn meta_without_serde_agrees_with_serde() {
    let empty = Meta::default();
    let mut via_serde = [0xAAu8; 16];
    let n = postcard::to_slice(&empty, &mut via_serde).unwrap().len();
    assert_eq!(empty.encoded_len(), n);
    let mut out = [0xAAu8; 5];
    assert!(empty.encode_into(&mut out));
    assert_eq!(out[..], via_serde[..n]);
    assert_eq!(Meta::decode_from(&out), Some(empty));
    assert!(
        !empty.encode_into(&mut [0u8; 4]),
        "the wrong length is refused"
    );

    let full = Meta {
        ttl_ms: Some(1000),
        priority: 3,
        reply_to: Some("r.x"),
        correlation: Some(b"c1"),
        headers: Headers::EMPTY,
    };
    let mut buf = [0u8; 64];
    let n = postcard::to_slice(&full, &mut buf).unwrap().len();
    assert_eq!(full.encoded_len(), n);
    let mut out = [0u8; 64];
    assert!(full.encode_into(&mut out[..n]));
    assert_eq!(out[..n], buf[..n]);
    assert_eq!(Meta::decode_from(&out[..n]), Some(full));
    assert_eq!(Meta::decode_from(&out[..n + 1]), None, "trailing bytes");
}

/// A meta with one property set is not written as the empty one: each
/// field, on its own, against serde.
#[test]
fn one_property_alone_is_written_as_serde_writes_it() {
    let mut hbuf = [0u8; 16];
    let mut headers = HeadersBuilder::new(&mut hbuf);
    headers.push("k", b"v").unwrap();
    let headers = headers.finish();
    let empty = Meta::default();
    for meta in [
        Meta {
            ttl_ms: Some(0),
            ..empty
        },
        Meta {
            priority: 1,
            ..empty
        },
        Meta {
            reply_to: Some(""),
            ..empty
        },
        Meta {
            correlation: Some(b""),
            ..empty
        },
        Meta { headers, ..empty },
    ] {
        let mut want = [0u8; 32];
        let want = postcard::to_slice(&meta, &mut want).unwrap();
        assert_eq!(meta.encoded_len(), want.len(), "{meta:?}");
        let mut got = [0u8; 32];
        assert!(meta.encode_into(&mut got[..want.len()]), "{meta:?}");
        assert_eq!(&got[..want.len()], &want[..], "{meta:?}");
        assert_eq!(Meta::decode_from(want), Some(meta));
    }
}
