//! File names in the log directory.

use std::path::{Path, PathBuf};

/// Segment `index`: `seg-<index, 20 digits>.wal`.
pub(crate) fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("seg-{index:020}.wal"))
}

/// Snapshot covering up to sequence number `upto`: `snap-<upto, 20 digits>.snap`.
pub(crate) fn snapshot_path(dir: &Path, upto: u64) -> PathBuf {
    dir.join(format!("snap-{upto:020}.snap"))
}

/// Where a snapshot is written before it is renamed into place.
pub(crate) fn snapshot_tmp_path(dir: &Path, upto: u64) -> PathBuf {
    dir.join(format!("snap-{upto:020}.snap.tmp"))
}

/// The lock held while a [`Wal`](super::Wal) has the directory open.
pub(crate) fn lock_path(dir: &Path) -> PathBuf {
    dir.join("LOCK")
}

/// What a file in the directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Name {
    Segment(u64),
    Snapshot(u64),
    /// A snapshot that was never renamed into place (a crash during compaction).
    Leftover,
    Other,
}

pub(crate) fn parse_name(name: &str) -> Name {
    let number = |s: &str| (s.len() == 20).then(|| s.parse::<u64>().ok()).flatten();
    if let Some(n) = name
        .strip_prefix("seg-")
        .and_then(|s| s.strip_suffix(".wal"))
        .and_then(number)
    {
        return Name::Segment(n);
    }
    if let Some(n) = name
        .strip_prefix("snap-")
        .and_then(|s| s.strip_suffix(".snap"))
        .and_then(number)
    {
        return Name::Snapshot(n);
    }
    if name.starts_with("snap-") && name.ends_with(".snap.tmp") {
        return Name::Leftover;
    }
    Name::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let dir = Path::new("d");
        let name = |p: PathBuf| parse_name(p.file_name().unwrap().to_str().unwrap());
        assert_eq!(name(segment_path(dir, 7)), Name::Segment(7));
        assert_eq!(name(snapshot_path(dir, u64::MAX)), Name::Snapshot(u64::MAX));
        assert_eq!(name(snapshot_tmp_path(dir, 3)), Name::Leftover);
        assert_eq!(name(lock_path(dir)), Name::Other);
        assert_eq!(parse_name("seg-12.wal"), Name::Other);
    }
}
