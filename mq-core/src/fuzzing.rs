//! Fuzz harness bodies, shared by the `cargo fuzz` targets in `mq-core/fuzz` and by
//! the test that replays their checked-in corpus. Each function panics when an
//! invariant breaks; every other outcome (including a decode error) is fine.

use crate::framing::{serial, stream};
use crate::wire::Frame;

/// Encodes `frame` and checks that decoding gives it back.
fn assert_reencodes(frame: &Frame<'_>, scratch: &mut [u8]) {
    let n = frame
        .encode(scratch)
        .expect("a decoded frame must re-encode into the buffer it came from");
    let again = Frame::decode(&scratch[..n]).expect("re-encoded frame must decode");
    assert_eq!(&again, frame, "frame changed through a round trip");
}

/// `Frame::decode` on arbitrary bytes; accepted frames must round-trip.
pub fn frame_decode(data: &[u8]) {
    if let Ok(frame) = Frame::decode(data) {
        let mut scratch = [0u8; 4096];
        if frame.encoded_len() <= scratch.len() {
            assert_reencodes(&frame, &mut scratch);
        }
    }
}

/// The stream decoder over arbitrary bytes fed in arbitrary chunks. The first two
/// bytes choose the maximum frame, the third the chunk size.
pub fn stream_decoder(data: &[u8]) {
    let [a, b, c, rest @ ..] = data else { return };
    let max_frame = u32::from(u16::from_le_bytes([*a, *b])) % 2048 + 1;
    let chunk = usize::from(*c) + 1;
    let decoder = stream::StreamDecoder::new(max_frame);
    let cap = max_frame as usize + stream::MAX_PREFIX;
    let mut storage = [0u8; 2048 + stream::MAX_PREFIX];
    let mut rb = stream::RecvBuffer::new(&mut storage[..cap]);
    let mut scratch = [0u8; 4096];
    for mut piece in rest.chunks(chunk) {
        while !piece.is_empty() {
            let n = rb.extend_from(piece);
            piece = &piece[n..];
            loop {
                match decoder.decode(rb.data()) {
                    Ok(stream::Decoded::Frame { frame, consumed }) => {
                        assert!(consumed <= cap);
                        assert_reencodes(&frame, &mut scratch);
                        rb.consume(consumed);
                    }
                    Ok(stream::Decoded::Incomplete { needed }) => {
                        assert!(needed <= cap, "decoder asks to buffer past the maximum");
                        break;
                    }
                    // A real connection closes here.
                    Err(_) => return,
                }
            }
        }
    }
}

/// The serial decoder over arbitrary bytes; the first byte chooses the chunk size.
pub fn serial_decoder(data: &[u8]) {
    let [c, rest @ ..] = data else { return };
    let chunk = usize::from(*c) + 1;
    let mut dec = serial::SerialDecoder::new([0u8; 512]);
    let mut scratch = [0u8; 4096];
    let (mut ok, mut bad) = (0u32, 0u32);
    for mut piece in rest.chunks(chunk) {
        while !piece.is_empty() {
            let (n, out) = dec.feed(piece);
            assert!(n > 0 && n <= piece.len());
            match out {
                Some(Ok(frame)) => {
                    assert_reencodes(&frame, &mut scratch);
                    ok += 1;
                }
                Some(Err(_)) => bad += 1,
                None => {}
            }
            piece = &piece[n..];
            assert!(dec.buffered() <= 512);
        }
    }
    let s = dec.stats();
    assert_eq!(s.frames, ok);
    assert_eq!(
        s.overflows + s.cobs_errors + s.crc_errors + s.malformed,
        bad
    );
}
