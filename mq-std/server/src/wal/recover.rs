//! Reading the log back at open: the newest snapshot that validates, then every
//! segment in order, keeping what validates and reporting what does not.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::files::{self, Name};
use super::frame::{self, Kind};
use super::fs::{FileSystem, LogFile};
use super::scan::Scan;

/// What [`Wal::open`](super::Wal::open) found.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// The sequence number the snapshot read covers up to, if there was one.
    pub snapshot_upto: Option<u64>,
    /// Records read from the snapshot.
    pub snapshot_records: usize,
    /// Segment files read.
    pub segments: usize,
    /// Records recovered in all (snapshot and segments), handed to `load`.
    pub records: usize,
    /// Records lost to damage (counted from gaps in the sequence numbers where
    /// they are known, else one per damaged stretch).
    pub corrupt_records: u64,
    /// Bytes skipped: damage, plus a torn tail.
    pub skipped_bytes: u64,
    /// Bytes truncated from the end of the newest segment (a write torn by a
    /// crash).
    pub torn_tail_bytes: u64,
    /// Indices of segment files that were missing (or unreadable).
    pub missing_segments: Vec<u64>,
    /// Records those held, counted from the gap in sequence numbers (when a
    /// record follows the gap).
    pub missing_records: u64,
    /// Snapshots that could not be used at all, renamed to `*.snap.corrupt`.
    pub damaged_snapshots: Vec<PathBuf>,
    /// How long it took.
    pub elapsed: Duration,
}

/// A segment file on disk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentInfo {
    /// Its size.
    pub bytes: u64,
    /// The highest sequence number of a valid record in it.
    pub last: Option<u64>,
}

/// The snapshot the log starts from.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotInfo {
    /// Every record with a sequence number up to this one is in the snapshot.
    pub upto: u64,
    pub path: PathBuf,
    pub bytes: u64,
    /// The segment started right after it was taken.
    pub first_segment: u64,
}

/// The log as found, ready to append to.
pub(crate) struct Recovered {
    pub records: Vec<Vec<u8>>,
    pub segments: BTreeMap<u64, SegmentInfo>,
    pub snapshot: Option<SnapshotInfo>,
    /// Older snapshot files still on disk, with their sizes.
    pub stale_snapshots: Vec<(PathBuf, u64)>,
    /// The highest sequence number on disk.
    pub last_seq: u64,
    /// The index the next segment gets.
    pub next_index: u64,
    pub report: Recovery,
}

pub(crate) fn recover<F: FileSystem>(fs: &F, dir: &Path) -> io::Result<Recovered> {
    let started = Instant::now();
    let mut segments_found: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut snapshots_found: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut names = fs.list(dir)?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        match files::parse_name(&name) {
            Name::Segment(i) => {
                segments_found.insert(i, path);
            }
            Name::Snapshot(upto) => {
                snapshots_found.insert(upto, path);
            }
            Name::Leftover => {
                tracing::info!(file = %path.display(), "removing a snapshot a crash interrupted");
                if let Err(e) = fs.remove(&path) {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove");
                }
            }
            Name::Other => {}
        }
    }

    let mut report = Recovery::default();
    let mut records = Vec::new();
    let mut snapshot: Option<SnapshotInfo> = None;
    let mut stale_snapshots = Vec::new();
    let mut last_seq = snapshots_found.keys().next_back().copied().unwrap_or(0);
    for (&upto, path) in snapshots_found.iter().rev() {
        if snapshot.is_some() {
            let bytes = fs.len(path).unwrap_or(0);
            stale_snapshots.push((path.clone(), bytes));
            continue;
        }
        match read_snapshot(fs, path, upto, &mut records, &mut report) {
            Ok(Some(s)) => snapshot = Some(s),
            Ok(None) | Err(_) => {
                // Not usable at all: move it aside (for whoever investigates) so
                // that it is not tried again, and fall back to an older one.
                let aside = path.with_extension("snap.corrupt");
                tracing::error!(
                    file = %path.display(),
                    moved_to = %aside.display(),
                    "snapshot is damaged beyond use; falling back to older state"
                );
                let _ = fs.rename(path, &aside);
                report.damaged_snapshots.push(aside);
            }
        }
    }
    if let Some(s) = &snapshot {
        report.snapshot_upto = Some(s.upto);
        report.snapshot_records = records.len();
    }

    let upto = snapshot.as_ref().map_or(0, |s| s.upto);
    // The first segment the snapshot (or the empty log) expects.
    let lo = snapshot.as_ref().map_or(1, |s| s.first_segment);
    // Only the newest segment with data can have a torn tail: it was being
    // written when the process died.
    let newest = segments_found
        .iter()
        .rev()
        .find(|(_, p)| fs.len(p).is_ok_and(|len| len > 0))
        .map(|(&i, _)| i);

    let mut scan = Scan::new(
        upto,
        match segments_found.keys().next() {
            Some(&first) if first >= lo => Some(upto),
            _ => None,
        },
    );
    let mut segments = BTreeMap::new();
    let mut expected = lo;
    for (&index, path) in &segments_found {
        if index > expected {
            let missing: Vec<u64> = (expected..index).collect();
            tracing::warn!(
                missing = ?missing,
                "segment files are missing: the records they held are lost"
            );
            report.missing_segments.extend(missing);
            scan.gap_from = Some(scan.last);
        }
        expected = expected.max(index + 1);
        let buf = match fs.read(path) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read segment; skipping it");
                report.missing_segments.push(index);
                scan.gap_from = Some(scan.last);
                continue;
            }
        };
        let kept = scan.segment(
            fs,
            path,
            &buf,
            Some(index) == newest,
            &mut records,
            &mut report,
        );
        report.segments += 1;
        segments.insert(index, kept);
    }
    if scan.tail_from.is_some() {
        // Damage at the end of a sealed segment, and nothing valid after it.
        report.corrupt_records += 1;
    }
    if scan.stale > 0 {
        tracing::warn!(
            records = scan.stale,
            "valid records out of sequence were ignored"
        );
    }
    last_seq = last_seq.max(scan.last.unwrap_or(0)).max(upto);
    let next_index = segments_found
        .keys()
        .next_back()
        .map_or(lo, |&i| (i + 1).max(lo));
    report.records = records.len();
    report.elapsed = started.elapsed();
    Ok(Recovered {
        records,
        segments,
        snapshot,
        stale_snapshots,
        last_seq,
        next_index,
        report,
    })
}

/// Reads a snapshot file. `None` when it is not usable at all (no valid first
/// frame); damage after that loses only the damaged records.
fn read_snapshot<F: FileSystem>(
    fs: &F,
    path: &Path,
    upto: u64,
    records: &mut Vec<Vec<u8>>,
    report: &mut Recovery,
) -> io::Result<Option<SnapshotInfo>> {
    let buf = fs.read(path)?;
    let Some(head) = frame::decode_at(&buf, 0) else {
        return Ok(None);
    };
    if head.kind != Kind::SnapshotBegin || head.token != upto || head.payload.len() != 16 {
        return Ok(None);
    }
    let first_segment = u64::from_le_bytes(head.payload[..8].try_into().expect("8 bytes"));
    let count = u64::from_le_bytes(head.payload[8..].try_into().expect("8 bytes"));
    let start = records.len();
    let mut pos = head.size;
    let mut last = 0u64;
    let mut ended = false;
    while pos < buf.len() {
        if let Some(f) = frame::decode_at(&buf, pos) {
            pos += f.size;
            match f.kind {
                Kind::Record if f.token > last => {
                    last = f.token;
                    records.push(f.payload.to_vec());
                }
                Kind::SnapshotEnd => {
                    ended = true;
                    break;
                }
                _ => {}
            }
            continue;
        }
        let next = frame::resync(&buf, pos + 1, Some(last));
        let to = next.unwrap_or(buf.len());
        report.skipped_bytes += (to - pos) as u64;
        tracing::warn!(
            file = %path.display(),
            offset = pos,
            bytes = to - pos,
            "damaged records in snapshot; skipping them"
        );
        match next {
            Some(q) => pos = q,
            None => break,
        }
    }
    let got = (records.len() - start) as u64;
    if got < count {
        report.corrupt_records += count - got;
        tracing::warn!(
            file = %path.display(),
            lost = count - got,
            ended,
            "snapshot records lost to damage"
        );
    }
    Ok(Some(SnapshotInfo {
        upto,
        path: path.to_path_buf(),
        bytes: buf.len() as u64,
        first_segment,
    }))
}

/// Syncs the segments recovery read, and the directory. What the broker is
/// rebuilt from may be only in the operating system's cache (the last process
/// died between a write and its sync, or under a policy that had not synced
/// yet): it must be durable before anything is acknowledged on top of it, such
/// as a publisher's retry the broker recognises as stored.
pub(super) fn make_durable<F: FileSystem>(
    fs: &F,
    dir: &Path,
    segments: impl Iterator<Item = u64>,
) -> io::Result<()> {
    for index in segments {
        fs.open(&files::segment_path(dir, index))?.sync_data()?;
    }
    fs.sync_dir(dir)
}

/// Cuts a file to `len` bytes, durably.
pub(super) fn truncate<F: FileSystem>(fs: &F, path: &Path, len: u64) -> io::Result<()> {
    let mut f = fs.open(path)?;
    f.truncate(len)?;
    f.sync_all()
}
