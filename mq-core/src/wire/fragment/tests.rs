//! The fragmenter and the reassembler, by example and by property: random
//! messages cut at random limits come back byte for byte.

use std::string::String;
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::framing::serial::SerialDecoder;
use crate::framing::stream::{Split, StreamDecoder};
use crate::wire::{Dedup, Meta, QoS};

fn publish(payload: &[u8]) -> Publish<'_> {
    let Frame::Publish(p) = crate::wire::tests::sample_publish(payload) else {
        unreachable!()
    };
    p
}

fn deliver(payload: &[u8]) -> Deliver<'_> {
    Deliver {
        sub: 3,
        topic: "sensors.kitchen.temp",
        seq: 1_000_000,
        tag: 1 << 40,
        attempt: 2,
        qos: QoS::AtMostOnce,
        meta: Meta::default(),
        fragment: None,
        payload,
    }
}

fn frag(offset: u64, total: u64) -> Option<Fragment> {
    Some(Fragment { offset, total })
}

/// The payload and fragment of a publish or deliver frame.
fn parts<'a>(frame: &Frame<'a>) -> (u64, Option<Fragment>, &'a [u8]) {
    match *frame {
        Frame::Publish(p) => (u64::from(p.id), p.fragment, p.payload),
        Frame::Deliver(d) => (d.tag, d.fragment, d.payload),
        _ => panic!("not a message frame"),
    }
}

#[test]
fn a_message_that_fits_is_one_frame_without_fragment() {
    let payload = [1u8; 100];
    let f = Fragmenter::publish(publish(&payload));
    let whole = Frame::Publish(publish(&payload)).encoded_len();
    let piece = f.next(0, whole).unwrap();
    assert_eq!(piece.frame, Frame::Publish(publish(&payload)));
    assert_eq!((piece.end, piece.last), (100, true));
    assert_eq!(f.room(0, whole), 100);
    // One byte less: fragments, the first one carrying what fits.
    let piece = f.next(0, whole - 1).unwrap();
    let (_, fragment, data) = parts(&piece.frame);
    assert_eq!(fragment, frag(0, 100));
    assert!(piece.frame.encoded_len() < whole);
    assert_eq!(piece.end, data.len());
    assert!(!piece.last);
    // An empty payload is one frame too.
    let empty = Fragmenter::deliver(deliver(&[]));
    let piece = empty.next(0, 1000).unwrap();
    assert_eq!((piece.end, piece.last), (0, true));
    assert_eq!(parts(&piece.frame).1, None);
}

#[test]
fn room_is_exact_across_varint_boundaries() {
    let payload = vec![9u8; 70_000];
    for f in [
        Fragmenter::publish(publish(&payload)),
        Fragmenter::deliver(deliver(&payload)),
    ] {
        for offset in [0, 1, 127, 128, 16_383, 16_384, 69_999] {
            for max in [40, 60, 127, 128, 129, 130, 200, 16_400, 16_500] {
                let room = f.room(offset, max);
                let with = |n: usize| {
                    f.frame(frag(offset as u64, 70_000), &payload[offset..offset + n])
                        .encoded_len()
                };
                if room > 0 {
                    assert!(with(room) <= max, "{offset} {max}");
                }
                if offset + room < 70_000 {
                    assert!(with(room + 1) > max, "{offset} {max}: {room} is not all");
                }
            }
        }
    }
}

#[test]
fn headers_too_large_for_the_limit_are_not_sendable() {
    let payload = [0u8; 300];
    let f = Fragmenter::publish(publish(&payload));
    let headers = f.frame(frag(299, 300), &[]).encoded_len();
    assert!(!f.sendable(headers));
    assert!(f.sendable(headers + 1));
    assert_eq!(f.next(0, 10), None);
    let mut buf = [0xAA; 64];
    assert_eq!(
        f.encode_next(0, 10, Framing::Stream, &mut buf),
        Err(FragmentError::TooLarge)
    );
    assert_eq!(
        f.encode_next(0, 1000, Framing::Stream, &mut buf[..20]),
        Err(FragmentError::BufferTooSmall)
    );
    assert_eq!(buf, [0xAA; 64], "nothing written on error");
}

#[test]
fn reassembler_places_pieces_and_swallows_refused_messages() {
    let mut r = Reassembler::new();
    // Unfragmented.
    let p = r.accept(1, None, 10, 100).unwrap();
    assert_eq!(
        (p.offset, p.total, p.first, p.last, p.refused),
        (0, 10, true, true, false)
    );
    assert!(!r.in_progress());
    // Fragmented, in three pieces.
    let p = r.accept(2, frag(0, 25), 10, 100).unwrap();
    assert_eq!((p.offset, p.first, p.last), (0, true, false));
    assert!(r.in_progress());
    // Checking changes nothing; only a commit does.
    let p = r.check(2, frag(10, 25), 10, 100).unwrap();
    assert_eq!(r.check(2, frag(10, 25), 10, 100), Ok(p));
    r.commit(&p);
    let p = r.accept(2, frag(20, 25), 5, 100).unwrap();
    assert_eq!((p.offset, p.first, p.last), (20, false, true));
    assert!(!r.in_progress());
    // Too large: refused, yet every fragment is still checked.
    let p = r.accept(3, frag(0, 500), 200, 100).unwrap();
    assert!(p.refused && p.first && !p.last);
    assert_eq!(
        r.check(3, frag(300, 500), 200, 100),
        Err(ReassemblyError::OutOfOrder)
    );
    let p = r.accept(3, frag(200, 500), 300, 100).unwrap();
    assert!(p.refused && p.last);
    // A whole message above the maximum is refused too.
    assert!(r.accept(4, None, 101, 100).unwrap().refused);
}

#[test]
fn reassembler_refuses_every_broken_sequence() {
    let started = || {
        let mut r = Reassembler::new();
        r.accept(5, frag(0, 30), 10, u64::MAX).unwrap();
        r
    };
    let m = u64::MAX;
    let fresh = Reassembler::new();
    assert_eq!(
        fresh.check(5, frag(10, 30), 10, m),
        Err(ReassemblyError::OutOfOrder)
    );
    assert_eq!(
        fresh.check(5, frag(0, 30), 31, m),
        Err(ReassemblyError::Overrun)
    );
    let r = started();
    assert_eq!(
        r.check(6, frag(10, 30), 10, m),
        Err(ReassemblyError::Interleaved)
    );
    assert_eq!(
        r.check(6, frag(0, 30), 10, m),
        Err(ReassemblyError::Interleaved)
    );
    assert_eq!(r.check(5, None, 10, m), Err(ReassemblyError::Interleaved));
    assert_eq!(
        r.check(5, frag(10, 31), 10, m),
        Err(ReassemblyError::TotalChanged)
    );
    assert_eq!(
        r.check(5, frag(0, 30), 10, m),
        Err(ReassemblyError::OutOfOrder)
    );
    assert_eq!(
        r.check(5, frag(11, 30), 10, m),
        Err(ReassemblyError::OutOfOrder)
    );
    assert_eq!(
        r.check(5, frag(10, 30), 21, m),
        Err(ReassemblyError::Overrun)
    );
    let mut r = started();
    r.reset();
    assert!(!r.in_progress());
    assert!(r.check(6, None, 1, m).is_ok());
}

/// Decodes the one frame `framing` wrote into `bytes`.
fn decode(framing: Framing, bytes: &[u8], scratch: &mut [u8]) -> Vec<u8> {
    match framing {
        Framing::Stream => {
            let Ok(Split::Whole { body, consumed }) = StreamDecoder::new(u32::MAX).split(bytes)
            else {
                panic!("not one whole stream frame");
            };
            assert_eq!(consumed, bytes.len());
            body.to_vec()
        }
        Framing::Serial => {
            let mut dec = SerialDecoder::new(&mut *scratch);
            let (used, out) = dec.feed(bytes);
            assert_eq!(used, bytes.len());
            assert!(matches!(out, Some(Ok(_))), "not one serial frame");
            let body_len = dec.last_frame().unwrap().encoded_len();
            scratch[..body_len].to_vec()
        }
    }
}

/// A message of either kind; ids and offsets large enough to cross varint sizes.
fn message() -> impl Strategy<Value = (bool, u64, String, Option<Vec<u8>>, Vec<u8>)> {
    (
        any::<bool>(),
        prop_oneof![0u64..200, any::<u64>()],
        "[a-z]{1,12}(\\.[a-z0-9]{1,12}){0,3}",
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        (0usize..3000).prop_flat_map(|n| {
            prop_oneof![
                proptest::collection::vec(any::<u8>(), n..=n),
                Just(vec![0u8; n]),
            ]
        }),
    )
}

proptest! {
    #[test]
    fn fragments_reassemble_byte_for_byte(
        (is_publish, id, topic, correlation, payload) in message(),
        max_frame in 1u32..700,
        buf_len in 1usize..900,
        serial in any::<bool>(),
    ) {
        let framing = if serial { Framing::Serial } else { Framing::Stream };
        let meta = Meta {
            ttl_ms: Some(u32::MAX),
            priority: u8::MAX,
            reply_to: Some(&topic),
            correlation: correlation.as_deref(),
            ..Meta::default()
        };
        let f = if is_publish {
            Fragmenter::publish(Publish {
                id: id as u32,
                topic: &topic,
                qos: QoS::AtLeastOnce,
                dedup: Some(Dedup { producer: id, seq: id }),
                meta,
                fragment: None,
                payload: &payload,
            })
        } else {
            Fragmenter::deliver(Deliver {
                sub: id as u32,
                topic: &topic,
                seq: id,
                tag: id,
                attempt: 1,
                qos: QoS::AtLeastOnce,
                meta,
                fragment: None,
                payload: &payload,
            })
        };
        // The quick bound `sendable` relies on is a bound.
        prop_assert!(f.whole_len_bound() >= f.whole().encoded_len());
        let limit = frame_limit(max_frame, framing, buf_len);
        let mut buf = vec![0u8; buf_len];
        let mut scratch = vec![0u8; 2048];
        let mut whole: Vec<u8> = Vec::new();
        let mut r = Reassembler::new();
        let mut offset = 0;
        loop {
            match f.encode_next(offset, max_frame, framing, &mut buf) {
                Ok(w) => {
                    prop_assert!(w.len <= buf_len);
                    let body = decode(framing, &buf[..w.len], &mut scratch);
                    prop_assert!(body.len() <= max_frame as usize, "frame above the peer's maximum");
                    let frame = Frame::decode(&body).unwrap();
                    let measured = f.next(offset, limit).map(|p| p.encoded_len);
                    prop_assert_eq!(measured, Some(frame.encoded_len()), "length not exact");
                    let (key, fragment, data) = parts(&frame);
                    prop_assert_eq!(offset + data.len(), w.end);
                    // Exact: not one payload byte more would have fitted.
                    if w.end < payload.len() {
                        let more = f.frame(
                            Some(Fragment { offset: offset as u64, total: payload.len() as u64 }),
                            &payload[offset..w.end + 1],
                        );
                        prop_assert!(more.encoded_len() > limit, "room not exact");
                    }
                    if fragment.is_some() && offset == 0 {
                        prop_assert!(f.frame(None, &payload).encoded_len() > limit);
                    }
                    let p = r.accept(key, fragment, data.len(), u64::MAX).unwrap();
                    prop_assert_eq!(p.offset as usize, whole.len());
                    prop_assert_eq!(p.first, offset == 0);
                    prop_assert_eq!(p.last, w.last);
                    whole.extend_from_slice(data);
                    if w.last {
                        prop_assert_eq!(&whole, &payload);
                        prop_assert!(!r.in_progress());
                        break;
                    }
                    prop_assert!(w.end > offset, "no progress");
                    offset = w.end;
                }
                Err(e) => {
                    // Refused up front, never halfway.
                    prop_assert_eq!(offset, 0);
                    match e {
                        FragmentError::TooLarge => prop_assert!(!f.sendable(max_frame as usize)),
                        _ => prop_assert!(f.sendable(max_frame as usize) && !f.sendable(limit)),
                    }
                    break;
                }
            }
        }
        if f.sendable(limit) {
            prop_assert_eq!(&whole, &payload, "sendable within the buffer, yet not sent whole");
        }
    }
}
