//! Property tests of the wire encoding and both framings.

#[path = "support/frames.rs"]
mod frames;

use frames::{Parts, parts};
use mq_core::framing::{Framer, SerialOnly, StreamOnly, serial, stream};
use mq_core::wire::{DecodeError, EncodeError, Frame};
use proptest::prelude::*;

const MAX_FRAME: u32 = 4096;

/// Splits `bytes` at the given cut points (taken modulo the length, any order).
fn chunks<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

fn encoded(frame: &Frame<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; frame.encoded_len()];
    let n = frame.encode(&mut buf).unwrap();
    assert_eq!(n, buf.len());
    buf
}

/// The serde path the hand-written codec must agree with: postcard's
/// decoding of the derived `Frame`, with the same error kinds.
fn serde_decode(bytes: &[u8]) -> Result<Frame<'_>, DecodeError> {
    match postcard::take_from_bytes::<Frame<'_>>(bytes) {
        Ok((frame, [])) => Ok(frame),
        Ok(_) => Err(DecodeError::TrailingBytes),
        Err(_) => Err(DecodeError::Malformed),
    }
}

/// A change to a valid encoding: what a broken or hostile peer might send.
#[derive(Debug, Clone)]
enum Damage {
    Truncate(usize),
    Trail(Vec<u8>),
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        prop::collection::vec(any::<u8>(), 1..4).prop_map(Damage::Trail),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Damage::Set(at, b)),
        (
            any::<usize>(),
            prop::sample::select(&[0x00, 0x01, 0x02, 0x7f, 0x80, 0xff][..])
        )
            .prop_map(|(at, b)| Damage::Set(at, b)),
        (
            any::<usize>(),
            prop::sample::select(&[0x00, 0x01, 0x80, 0xff][..])
        )
            .prop_map(|(at, b)| Damage::Insert(at, b)),
        any::<usize>().prop_map(Damage::Remove),
    ]
}

impl Damage {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        if len == 0 {
            return bytes.push(0x80);
        }
        match self {
            Damage::Truncate(at) => bytes.truncate(at % len),
            Damage::Trail(extra) => bytes.extend_from_slice(extra),
            Damage::Set(at, b) => bytes[at % len] = *b,
            Damage::Insert(at, b) => bytes.insert(at % (len + 1), *b),
            Damage::Remove(at) => {
                bytes.remove(at % len);
            }
        }
    }
}

/// The serde encoding of `p`'s frame, with `damages` done to it.
fn damaged(p: &Parts, damages: &[Damage]) -> Vec<u8> {
    let mut bytes = postcard::to_allocvec(&p.frame()).unwrap();
    for d in damages {
        d.apply(&mut bytes);
    }
    bytes
}

proptest! {
    #[test]
    fn encoding_agrees_with_serde_byte_for_byte(p in parts(300)) {
        let frame = p.frame();
        let want = postcard::to_allocvec(&frame).unwrap();
        prop_assert_eq!(frame.encoded_len(), want.len());
        prop_assert_eq!(encoded(&frame), want);
    }

    #[test]
    fn decoding_agrees_with_serde_on_damaged_frames(
        p in parts(40),
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let bytes = damaged(&p, &damages);
        prop_assert_eq!(Frame::decode(&bytes), serde_decode(&bytes));
    }

    #[test]
    fn decoding_agrees_with_serde_on_any_bytes(
        tag in 0u8..22,
        rest in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = vec![tag];
        bytes.extend_from_slice(&rest);
        prop_assert_eq!(Frame::decode(&bytes), serde_decode(&bytes));
    }

    #[test]
    fn a_client_decodes_as_everyone_but_refuses_what_clients_send(
        p in parts(40),
        damages in prop::collection::vec(damage(), 0..3),
    ) {
        let bytes = damaged(&p, &damages);
        let sent_by_clients = matches!(tag_of(&bytes), Some(0 | 2 | 5 | 8 | 11 | 12 | 13 | 18 | 20 | 21));
        let want = match Frame::decode(&bytes) {
            _ if sent_by_clients => Err(DecodeError::Unexpected),
            other => other,
        };
        prop_assert_eq!(Frame::decode_from_broker(&bytes), want);
    }

    #[test]
    fn a_clients_encoder_writes_what_clients_send_as_serde_and_refuses_the_rest(
        p in parts(300),
    ) {
        let frame = p.frame();
        let want = postcard::to_allocvec(&frame).unwrap();
        // Hello, publish, subscribe, unsubscribe, ack, nack, credit, ping,
        // pong, close, error, admin: what a client session sends.
        let sent_by_clients = matches!(want[0], 0 | 2 | 5 | 8 | 11..=18 | 21);
        client_encoder_agrees(StreamOnly, &frame, &want, sent_by_clients)?;
        client_encoder_agrees(SerialOnly, &frame, &want, sent_by_clients)?;
    }

    #[test]
    fn every_frame_round_trips(p in parts(300)) {
        let frame = p.frame();
        let bytes = encoded(&frame);
        prop_assert_eq!(Frame::decode(&bytes), Ok(frame));
    }

    #[test]
    fn stream_decoder_ignores_chunking(
        list in prop::collection::vec(parts(600), 1..12),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut wire = Vec::new();
        for p in &list {
            let frame = p.frame();
            let mut buf = vec![0u8; stream::framed_len(&frame)];
            let n = stream::encode_frame(&frame, MAX_FRAME, &mut buf).unwrap();
            wire.extend_from_slice(&buf[..n]);
        }
        let decoder = stream::StreamDecoder::new(MAX_FRAME);
        let mut rb = stream::RecvBuffer::new(vec![0u8; MAX_FRAME as usize + stream::MAX_PREFIX]);
        let mut got: Vec<Vec<u8>> = Vec::new();
        for mut chunk in chunks(&wire, &cuts) {
            while !chunk.is_empty() {
                let n = rb.extend_from(chunk);
                chunk = &chunk[n..];
                while let Some((frame, used)) = rb.next_frame(&decoder).unwrap() {
                    got.push(encoded(&frame));
                    rb.consume(used);
                }
            }
        }
        let want: Vec<Vec<u8>> = list.iter().map(|p| encoded(&p.frame())).collect();
        prop_assert_eq!(got, want);
        prop_assert!(rb.data().is_empty());
    }

    #[test]
    fn serial_decoder_ignores_chunking_and_skips_garbage(
        list in prop::collection::vec((parts(200), prop::collection::vec(any::<u8>(), 0..20)), 1..10),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        // Each frame is followed by garbage that ends in a delimiter, so the garbage
        // is its own (bad) frame and every real frame must come through intact.
        let mut wire = Vec::new();
        for (p, garbage) in &list {
            let frame = p.frame();
            let mut buf = vec![0u8; serial::max_framed_len(frame.encoded_len())];
            let n = serial::encode_frame(&frame, &mut buf).unwrap();
            wire.extend_from_slice(&buf[..n]);
            wire.extend_from_slice(garbage);
            wire.push(serial::DELIMITER);
        }
        let mut dec = serial::SerialDecoder::new(vec![0u8; serial::max_framed_len(1024)]);
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut errors = 0u32;
        for mut chunk in chunks(&wire, &cuts) {
            while !chunk.is_empty() {
                let (n, out) = dec.feed(chunk);
                match out {
                    Some(Ok(frame)) => got.push(encoded(&frame)),
                    Some(Err(_)) => errors += 1,
                    None => {}
                }
                chunk = &chunk[n..];
            }
        }
        // A garbage run can (rarely) be a valid frame by chance; require every real
        // frame, in order, as a subsequence of what came out.
        let want: Vec<Vec<u8>> = list.iter().map(|(p, _)| encoded(&p.frame())).collect();
        let mut it = got.iter();
        for w in &want {
            prop_assert!(it.any(|g| g == w), "frame missing after resync");
        }
        let s = dec.stats();
        prop_assert_eq!(s.frames as usize, got.len());
        prop_assert_eq!(s.overflows + s.cobs_errors + s.crc_errors + s.malformed, errors);
    }

    #[test]
    fn serial_corruption_is_detected(
        list in prop::collection::vec(parts(100), 2..8),
        victim in any::<usize>(),
        offset in any::<usize>(),
        xor in 1u8..=255,
    ) {
        let mut frames_on_line = Vec::new();
        for p in &list {
            let frame = p.frame();
            let mut buf = vec![0u8; serial::max_framed_len(frame.encoded_len())];
            let n = serial::encode_frame(&frame, &mut buf).unwrap();
            buf.truncate(n);
            frames_on_line.push(buf);
        }
        let victim = victim % list.len();
        let v = &mut frames_on_line[victim];
        let at = offset % (v.len() - 1); // never the delimiter itself
        v[at] ^= xor;
        let wire: Vec<u8> = frames_on_line.concat();
        let mut dec = serial::SerialDecoder::new(vec![0u8; 2048]);
        let mut got = Vec::new();
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let (n, out) = dec.feed(rest);
            if let Some(Ok(frame)) = out {
                got.push(encoded(&frame));
            }
            rest = &rest[n..];
        }
        let want: Vec<Vec<u8>> = list
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .map(|(_, p)| encoded(&p.frame()))
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn random_bytes_never_panic_or_overgrow(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        max_frame in 1u32..1024,
    ) {
        let _ = Frame::decode(&bytes);

        let decoder = stream::StreamDecoder::new(max_frame);
        let cap = max_frame as usize + stream::MAX_PREFIX;
        let mut rb = stream::RecvBuffer::new(vec![0u8; cap]);
        'stream: for mut chunk in chunks(&bytes, &cuts) {
            while !chunk.is_empty() {
                let n = rb.extend_from(chunk);
                chunk = &chunk[n..];
                loop {
                    match decoder.decode(rb.data()) {
                        Ok(stream::Decoded::Frame { consumed, .. }) => rb.consume(consumed),
                        Ok(stream::Decoded::Incomplete { needed }) => {
                            prop_assert!(needed <= cap, "asks to buffer {needed} > {cap}");
                            break;
                        }
                        Err(_) => break 'stream,
                    }
                }
                prop_assert!(rb.data().len() <= cap);
            }
        }

        let mut dec = serial::SerialDecoder::new(vec![0u8; 256]);
        for mut chunk in chunks(&bytes, &cuts) {
            while !chunk.is_empty() {
                let (n, _) = dec.feed(chunk);
                prop_assert!(n > 0);
                chunk = &chunk[n..];
                prop_assert!(dec.buffered() <= 256);
            }
        }
    }
}

/// A typed framer (a client's encoder) against its framing by value (every
/// frame's encoder): the same bytes for a frame clients send (`want` is its
/// postcard encoding), nothing written for any other.
fn client_encoder_agrees(
    framer: impl Framer,
    frame: &Frame<'_>,
    want: &[u8],
    sent_by_clients: bool,
) -> Result<(), TestCaseError> {
    let framing = framer.framing();
    let len = framer.encoded_len(frame);
    let mut buf = vec![0xAAu8; framing.max_framed_len(want.len())];
    if sent_by_clients {
        prop_assert_eq!(len, want.len());
        let n = framer.encode_sized(frame, len, u32::MAX, &mut buf).unwrap();
        let mut everyone = vec![0u8; buf.len()];
        let m = framing.encode(frame, u32::MAX, &mut everyone).unwrap();
        prop_assert_eq!(&buf[..n], &everyone[..m]);
    } else {
        prop_assert_eq!(len, 0);
        // Told the whole length, it still writes nothing.
        let refused = framer.encode_sized(frame, want.len(), u32::MAX, &mut buf);
        prop_assert_eq!(refused, Err(EncodeError::Unexpected));
        prop_assert!(buf.iter().all(|&b| b == 0xAA));
    }
    Ok(())
}

/// The frame tag a decoder reads from `bytes`: a varint, so a damaged
/// encoding may spell a small tag in more than one byte (`[0x80, 0x00]` is 0).
fn tag_of(bytes: &[u8]) -> Option<u64> {
    let mut tag = 0u64;
    for (i, b) in bytes.iter().take(5).enumerate() {
        tag |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(tag);
        }
    }
    None
}

#[test]
fn parts_cover_every_frame_kind() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let p: Parts = parts(8).new_tree(&mut runner).unwrap().current();
        seen.insert(p.frame().kind());
    }
    assert_eq!(seen.len(), 22, "kinds seen: {seen:?}");
}
