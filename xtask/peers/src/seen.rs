//! Losses and duplicates of the at-least-once (peer-to-peer) workloads: each
//! payload carries a sequence number after its send stamp (bytes 8..16,
//! [`Stamp::next_seq`](crate::measure::Stamp::next_seq)); each receiver keeps
//! which numbers it saw, records only first arrivals in the tally and counts
//! the rest as duplicates, so `delivered` is distinct messages and a loss
//! shows as `delivered < expected`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::measure::{Measured, Recorder};

/// Counts shared by the receivers of one run.
#[derive(Default)]
pub struct Extra {
    /// Arrivals of a number the receiver had already seen.
    pub duplicates: AtomicU64,
    /// Arrivals with a number beyond the run's count (a corrupt payload).
    pub strays: AtomicU64,
}

/// One receiver's record of the numbers it saw.
pub struct Seen {
    rec: Recorder,
    count: u64,
    bits: Vec<u64>,
    extra: Arc<Extra>,
}

impl Seen {
    /// A receiver of messages numbered `0..count`.
    pub fn new(rec: Recorder, count: u64, extra: Arc<Extra>) -> Seen {
        Seen {
            rec,
            count,
            bits: vec![0; count.div_ceil(64) as usize],
            extra,
        }
    }

    /// Counts `payload` if its number is new. Payloads without a number
    /// (probes shorter than 16 bytes) are not counted.
    pub fn record(&mut self, payload: &[u8]) {
        let Some(seq) = payload.get(8..16) else {
            return;
        };
        let seq = u64::from_le_bytes(seq.try_into().expect("8 bytes"));
        let bit = 1u64 << (seq % 64);
        let word = usize::try_from(seq / 64).ok().filter(|_| seq < self.count);
        match word.and_then(|i| self.bits.get_mut(i)) {
            Some(word) if *word & bit != 0 => {
                self.extra.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            Some(word) => {
                *word |= bit;
                self.rec.record(payload);
            }
            None => {
                self.extra.strays.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// `m` with notes on what was lost, duplicated or stray.
pub fn noted(m: Measured, extra: &Extra) -> Measured {
    let mut notes = Vec::new();
    let lost = m.expected.saturating_sub(m.delivered);
    if lost > 0 {
        notes.push(format!("{lost} LOST"));
    }
    let dups = extra.duplicates.load(Ordering::Relaxed);
    if dups > 0 {
        notes.push(format!("{dups} duplicates (not counted)"));
    }
    let strays = extra.strays.load(Ordering::Relaxed);
    if strays > 0 {
        notes.push(format!("{strays} with an unknown number"));
    }
    if notes.is_empty() {
        notes.push("nothing lost, no duplicates".to_string());
    }
    if let Some(n) = &m.note {
        notes.insert(0, n.clone());
    }
    let note = notes.join("; ");
    m.with_note(note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Tally;

    #[test]
    fn counts_first_arrivals_and_reports_duplicates_and_losses() {
        let tally = Tally::new();
        let extra = Arc::new(Extra::default());
        let mut stamp = tally.stamp(100);
        let mut seen = Seen::new(tally.recorder(), 3, Arc::clone(&extra));
        seen.record(stamp.next_seq(0));
        seen.record(stamp.next_seq(2));
        seen.record(stamp.next_seq(0));
        seen.record(stamp.next_seq(7));
        seen.record(b"probe");
        drop(seen);
        assert_eq!(tally.delivered(), 2);
        let m = noted(tally.measured(3, 100), &extra);
        assert_eq!(
            m.note.as_deref(),
            Some("1 LOST; 1 duplicates (not counted); 1 with an unknown number")
        );
    }

    #[test]
    fn says_when_nothing_was_lost() {
        let tally = Tally::new();
        let extra = Arc::new(Extra::default());
        let mut stamp = tally.stamp(16);
        let mut seen = Seen::new(tally.recorder(), 1, Arc::clone(&extra));
        seen.record(stamp.next_seq(0));
        drop(seen);
        let m = noted(tally.measured(1, 16), &extra);
        assert_eq!(m.note.as_deref(), Some("nothing lost, no duplicates"));
    }
}
