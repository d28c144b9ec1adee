//! The byte patterns of the TCP smoke test, so either end can verify every byte
//! without keeping a copy. `xtask/src/firmware.rs` (the host peer) computes the
//! same patterns; change both together.
//!
//! Echo mode: frame `i` (from 0) is a 2-byte big-endian length `frame_len(i, size)`
//! followed by that many bytes, byte `k` being `frame_byte(i, k)`. Throughput
//! mode: byte `n` of either direction's stream is `stream_byte(n)`.

/// The payload length of echo frame `index` when frames are at most `size` bytes:
/// spread over `1..=size` so that short, long and odd lengths all occur.
pub fn frame_len(index: u32, size: u16) -> u16 {
    let spread = ((u64::from(index) * 0x9E37_79B9) >> 11) % u64::from(size.max(1));
    spread as u16 + 1
}

/// Byte `offset` of echo frame `index`'s payload.
pub fn frame_byte(index: u32, offset: usize) -> u8 {
    (index.wrapping_mul(31) as u8) ^ (offset as u8).wrapping_mul(7) ^ 0xA5
}

/// The echo byte stream, frame after frame: what the firmware sends and what it
/// and the host peer check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoStream {
    /// The frame the next byte belongs to.
    pub frame: u32,
    /// Offset of the next byte in its frame (0 and 1 are the length).
    pub at: usize,
    count: u32,
    size: u16,
}

impl EchoStream {
    /// The stream of `count` frames of at most `size` payload bytes.
    pub fn new(count: u32, size: u16) -> EchoStream {
        EchoStream {
            frame: 0,
            at: 0,
            count,
            size,
        }
    }

    /// Has every byte been taken?
    pub fn done(&self) -> bool {
        self.frame >= self.count
    }

    /// The next byte of the stream (`None` after the last frame).
    pub fn next_byte(&mut self) -> Option<u8> {
        if self.done() {
            return None;
        }
        let len = frame_len(self.frame, self.size);
        let byte = match self.at {
            0 | 1 => len.to_be_bytes()[self.at],
            k => frame_byte(self.frame, k - 2),
        };
        self.at += 1;
        if self.at == 2 + usize::from(len) {
            self.frame += 1;
            self.at = 0;
        }
        Some(byte)
    }
}

/// Byte `position` of a throughput stream.
pub fn stream_byte(position: u64) -> u8 {
    (position as u8) ^ ((position >> 8) as u8).wrapping_mul(13)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths_stay_in_range_and_vary() {
        let lengths: std::vec::Vec<u16> = (0..200).map(|i| frame_len(i, 1024)).collect();
        assert!(lengths.iter().all(|&n| (1..=1024).contains(&n)));
        assert!(lengths.contains(&1), "the shortest frame occurs");
        assert!(lengths.iter().any(|&n| n > 1000));
        assert!(lengths.iter().any(|&n| n % 4 == 3));
        assert_eq!(frame_len(5, 1), 1);
        assert_eq!(frame_len(u32::MAX, u16::MAX), frame_len(u32::MAX, u16::MAX));
    }

    #[test]
    fn echo_stream_is_length_prefixed_frames() {
        let mut stream = EchoStream::new(2, 3);
        let bytes: std::vec::Vec<u8> = core::iter::from_fn(|| stream.next_byte()).collect();
        let (a, b) = (frame_len(0, 3), frame_len(1, 3));
        assert_eq!(bytes.len(), 4 + usize::from(a) + usize::from(b));
        assert_eq!(bytes[..2], a.to_be_bytes());
        assert_eq!(bytes[2], frame_byte(0, 0));
        let second = 2 + usize::from(a);
        assert_eq!(bytes[second..second + 2], b.to_be_bytes());
        assert_eq!(bytes[second + 2], frame_byte(1, 0));
        assert!(stream.done());
        assert_eq!((stream.frame, stream.at), (2, 0));
    }

    #[test]
    fn patterns_differ_between_frames_and_positions() {
        assert_ne!(frame_byte(0, 0), frame_byte(1, 0));
        assert_ne!(frame_byte(0, 0), frame_byte(0, 1));
        // A stream shifted by one byte (a lost or duplicated byte) does not match.
        assert!((0..4096u64).any(|n| stream_byte(n) != stream_byte(n + 1)));
        assert!((0..4096u64).any(|n| stream_byte(n) != stream_byte(n + 256)));
    }
}
