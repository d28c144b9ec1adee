//! File names in the log directory, and the filesystem calls that make them
//! durable.

use std::io;
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

/// Makes the directory's entries (files created, renamed or removed in it)
/// durable.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Makes the directory's entries durable: `FlushFileBuffers` on the directory.
///
/// On Windows `sync_all` and `sync_data` on a file are both
/// `FlushFileBuffers`: the file's data and its own metadata (size,
/// allocation) reach the disk, and the disk is told to flush its cache. A
/// file's name, though, is an entry in its directory's index: a new segment or
/// a snapshot renamed into place (`MoveFileExW` with
/// `MOVEFILE_REPLACE_EXISTING`, which is what `std::fs::rename` does) is
/// durable once the directory is flushed too. A directory opens as a handle
/// only with `FILE_FLAG_BACKUP_SEMANTICS`, and flushes only with write
/// access. NTFS does that; a file system that cannot flush a directory (FAT,
/// some network shares) refuses, and then the entries are as durable as that
/// file system makes them: it says so once and goes on.
#[cfg(windows)]
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    use std::os::windows::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicBool, Ordering};

    const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
    const ERROR_INVALID_FUNCTION: i32 = 1;
    const ERROR_ACCESS_DENIED: i32 = 5;
    const ERROR_NOT_SUPPORTED: i32 = 50;
    static REFUSED: AtomicBool = AtomicBool::new(false);

    let flushed = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
        .open(dir)
        .and_then(|handle| handle.sync_all());
    match flushed {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(ERROR_INVALID_FUNCTION | ERROR_ACCESS_DENIED | ERROR_NOT_SUPPORTED)
            ) =>
        {
            if !REFUSED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "this file system cannot flush a directory: new file names in the log \
                     are as durable as it makes them"
                );
            }
            Ok(())
        }
        other => other,
    }
}

/// Neither Unix nor Windows: nothing known to sync a directory with.
#[cfg(not(any(unix, windows)))]
pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
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
