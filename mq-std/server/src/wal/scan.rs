//! Reading the segments in order at open: the records that validate, what
//! damage cost, and where a power cut tore the last writes.

use std::path::Path;

use super::frame::{self, Item, Kind};
use super::fs::FileSystem;
use super::recover::{Recovery, SegmentInfo, truncate};

/// Reading segments in order.
pub(super) struct Scan {
    /// Records up to this sequence number are in the snapshot.
    upto: u64,
    /// The last valid sequence number seen, when known.
    pub last: Option<u64>,
    /// A segment is missing after this sequence number.
    pub gap_from: Option<Option<u64>>,
    /// A sealed segment ended in damage after this sequence number.
    pub tail_from: Option<Option<u64>>,
    /// Valid records whose sequence number did not increase (ignored).
    pub stale: u64,
}

impl Scan {
    pub fn new(upto: u64, last: Option<u64>) -> Scan {
        Scan {
            upto,
            last,
            gap_from: None,
            tail_from: None,
            stale: 0,
        }
    }

    /// Reads one segment, appending its records to `records`. In the newest
    /// segment, damage that nothing valid follows, or that lies past the last
    /// sync point the segment records ([`Kind::Synced`]), is a write the power
    /// cut tore: the file is cut there, and valid frames after it (pieces of
    /// writes that were never synced) are dropped with it, so that what is
    /// kept is always a prefix of what was written. Elsewhere damage is
    /// skipped and counted.
    pub fn segment<F: FileSystem>(
        &mut self,
        fs: &F,
        path: &Path,
        buf: &[u8],
        newest: bool,
        records: &mut Vec<Vec<u8>>,
        report: &mut Recovery,
    ) -> SegmentInfo {
        let items = frame::walk(buf, self.last);
        let synced = items
            .iter()
            .filter_map(|i| match i {
                Item::Frame(f) if f.kind == Kind::Synced => Some(f.token),
                _ => None,
            })
            .max();
        let torn = items.iter().position(|i| match *i {
            Item::Damage { from, to } => {
                newest && (to == buf.len() || synced.is_some_and(|s| from as u64 >= s))
            }
            Item::Frame(_) => false,
        });
        let mut last_here = None;
        let mut size = buf.len() as u64;
        for (i, item) in items.iter().enumerate() {
            match *item {
                Item::Frame(f) if f.kind == Kind::Record => {
                    if self.last.is_some_and(|l| f.token <= l) {
                        self.stale += 1;
                        continue;
                    }
                    if let Some(from) = self.gap_from.take() {
                        let lost = from.map_or(0, |from| f.token - from - 1);
                        report.missing_records += lost;
                    }
                    if let Some(from) = self.tail_from.take() {
                        report.corrupt_records += from.map_or(1, |from| f.token - from - 1);
                    }
                    self.last = Some(f.token);
                    last_here = Some(f.token);
                    if f.token > self.upto {
                        records.push(f.payload.to_vec());
                    }
                }
                Item::Frame(f) if f.kind == Kind::Synced => {}
                Item::Frame(f) => report.skipped_bytes += f.size as u64,
                Item::Damage { from, .. } if Some(i) == torn => {
                    // Torn by the power cut that ended the last run: cut it off
                    // so that the file is whole again.
                    let bytes = buf.len() - from;
                    let dropped = items[i..]
                        .iter()
                        .filter(|i| matches!(i, Item::Frame(f) if f.kind == Kind::Record))
                        .count();
                    report.torn_tail_bytes += bytes as u64;
                    report.skipped_bytes += bytes as u64;
                    tracing::warn!(
                        file = %path.display(),
                        offset = from,
                        bytes,
                        unsynced_records_dropped = dropped,
                        "truncating a write torn by a crash at the end of the log"
                    );
                    match truncate(fs, path, from as u64) {
                        Ok(()) => size = from as u64,
                        Err(e) => {
                            tracing::warn!(file = %path.display(), error = %e, "cannot truncate");
                        }
                    }
                    break;
                }
                Item::Damage { from, to } if to == buf.len() => {
                    let bytes = to - from;
                    report.skipped_bytes += bytes as u64;
                    tracing::warn!(
                        file = %path.display(),
                        offset = from,
                        bytes,
                        "a sealed segment ends in damage; skipping the rest of it"
                    );
                    self.tail_from = Some(self.last);
                }
                Item::Damage { from, to } => {
                    let next = items[i..].iter().find_map(|i| match i {
                        Item::Frame(f) if f.kind == Kind::Record => Some(f.token),
                        _ => None,
                    });
                    let lost = match (self.last, next) {
                        (Some(l), Some(n)) => n.saturating_sub(l + 1),
                        _ => 1,
                    };
                    report.corrupt_records += lost;
                    report.skipped_bytes += (to - from) as u64;
                    tracing::warn!(
                        file = %path.display(),
                        offset = from,
                        bytes = to - from,
                        lost_records = lost,
                        "damaged records in the log; skipping to the next valid one"
                    );
                }
            }
        }
        SegmentInfo {
            bytes: size,
            last: last_here,
        }
    }
}
