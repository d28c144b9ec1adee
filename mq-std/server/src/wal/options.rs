//! How a [`Wal`](super::Wal) writes: when it syncs, how large its segments
//! grow, its disk limit, when it compacts.

use std::fmt;
use std::time::Duration;

/// When the log calls fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every batch, before anything in it is acknowledged. Loses nothing
    /// acknowledged even on power loss.
    Always,
    /// After at least this many records since the last fsync (and when a segment
    /// is closed). Acknowledges before the fsync: durable against a process crash,
    /// not a power loss.
    EveryRecords(u64),
    /// After a batch when at least this long has passed since the last fsync (and
    /// when a segment is closed). There is no timer: a quiet log is synced by its
    /// next write, or when it is closed. Acknowledges before the fsync: durable
    /// against a process crash, not a power loss.
    Interval(Duration),
    /// Leaves it to the operating system. Durable against a process crash, not a
    /// power loss.
    Never,
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsyncPolicy::Always => f.write_str("always"),
            FsyncPolicy::EveryRecords(n) => write!(f, "every {n} records"),
            FsyncPolicy::Interval(d) => write!(f, "every {} ms", d.as_millis()),
            FsyncPolicy::Never => f.write_str("never"),
        }
    }
}

/// How a [`Wal`](super::Wal) writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// When to fsync.
    pub fsync: FsyncPolicy,
    /// A segment is closed, and the next one started, once it holds this much.
    pub segment_bytes: u64,
    /// Disk use at which [`Store::is_full`](crate::store::Store::is_full) turns true; `None` for no limit.
    pub max_bytes: Option<u64>,
    /// No compaction below this much disk use (unless the log is full).
    pub compact_min_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            fsync: FsyncPolicy::Always,
            segment_bytes: 16 << 20,
            max_bytes: None,
            compact_min_bytes: 64 << 20,
        }
    }
}
