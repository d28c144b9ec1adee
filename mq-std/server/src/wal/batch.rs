//! One write of the log: the frames of a batch of records as they go to the
//! file. A short record is copied after its header into one buffer; a long
//! one (a message with its payload) stays in the broker's own bytes and only
//! its header goes into the buffer, and the file takes the pieces in one
//! gathered write ([`LogFile::append_parts`]), so the payload is not copied
//! once more on its way to the page cache.
//!
//! [`LogFile::append_parts`]: super::fs::LogFile::append_parts

use super::frame::{self, Kind};

/// Records at least this long are written from the broker's bytes; shorter
/// ones are copied (a piece of their own costs the write more than the
/// copy, and the checksum a third part).
const GATHER_FROM: usize = 512;

/// The frames of one write.
#[derive(Default)]
pub(crate) struct Batch {
    /// The headers, and the short frames whole.
    buf: Vec<u8>,
    /// The long records: where each goes in `buf` (after its header), and
    /// its index in the ops the batch is written with.
    gathered: Vec<(usize, usize)>,
    /// Bytes of the whole write.
    len: usize,
}

impl Batch {
    /// Bytes of the whole write.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A frame copied whole.
    pub(crate) fn frame(&mut self, kind: Kind, token: u64, payload: &[u8]) {
        let before = self.buf.len();
        frame::encode(&mut self.buf, kind, token, payload);
        self.len += self.buf.len() - before;
    }

    /// Record `i` of the ops the batch is written with, `payload`, framed
    /// as `token`.
    pub(crate) fn record(&mut self, token: u64, payload: &[u8], i: usize) {
        if payload.len() < GATHER_FROM {
            self.frame(Kind::Record, token, payload);
            return;
        }
        self.buf
            .extend_from_slice(&frame::header(Kind::Record, token, payload));
        self.gathered.push((self.buf.len(), i));
        self.len += frame::HEADER + payload.len();
    }

    /// The pieces to write, in order; `record(i)` is the payload of record
    /// `i` (as [`record`](Self::record) had it).
    pub(crate) fn parts<'a>(&'a self, record: impl Fn(usize) -> &'a [u8]) -> Vec<&'a [u8]> {
        let mut parts = Vec::with_capacity(2 * self.gathered.len() + 1);
        let mut from = 0;
        for &(at, i) in &self.gathered {
            parts.push(&self.buf[from..at]);
            parts.push(record(i));
            from = at;
        }
        if from < self.buf.len() {
            parts.push(&self.buf[from..]);
        }
        parts
    }

    /// Empty, for the next write.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.gathered.clear();
        self.len = 0;
        // One huge batch should not pin its buffer for the rest of the run.
        if self.buf.capacity() > 8 << 20 {
            self.buf.shrink_to(1 << 20);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pieces_are_the_frames_encoded_whole() {
        let records: Vec<Vec<u8>> = [0, 5, GATHER_FROM - 1, GATHER_FROM, 3, 4000, 4000, 7]
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|b| (b * 31 + i) as u8).collect())
            .collect();
        let mut batch = Batch::default();
        let mut whole = Vec::new();
        batch.frame(Kind::Synced, 99, &[]);
        frame::encode(&mut whole, Kind::Synced, 99, &[]);
        for (i, r) in records.iter().enumerate() {
            batch.record(10 + i as u64, r, i);
            frame::encode(&mut whole, Kind::Record, 10 + i as u64, r);
        }
        let parts = batch.parts(|i| &records[i]);
        assert_eq!(parts.concat(), whole);
        assert_eq!(batch.len(), whole.len());
        // The three long records are written from their own bytes.
        assert_eq!(parts.len(), 7);
        batch.clear();
        assert!(batch.is_empty() && batch.parts(|i| &records[i]).is_empty());
    }
}
