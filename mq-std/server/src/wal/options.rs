//! How a [`Wal`](super::Wal) writes: when it syncs, how large its segments
//! grow, its disk limit, when it compacts.

use std::fmt;
use std::time::Duration;

/// When the log calls fsync, and what each choice promises.
///
/// Under every policy a crash of the process (SIGKILL, a panic) loses nothing
/// acknowledged: the operating system holds what was written, and the next
/// open syncs what it recovers (except under `Never`). What survives a power
/// cut or a kernel crash differs; each variant says. A compaction syncs its
/// snapshot under every policy, so what it holds survives a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every batch, before anything in it is acknowledged. A power cut
    /// loses nothing acknowledged.
    Always,
    /// After a batch that brings the records written since the last fsync to at
    /// least this many (and when a segment is closed). Acknowledges before the
    /// fsync: a power cut loses at most the records written since the last
    /// fsync, fewer than this many (acknowledged publishes, and acks, whose
    /// messages are then delivered again). There is no time bound: a quiet log
    /// keeps them unsynced until more records come. A batch that reserves
    /// message ids or a topic's sequence numbers for QoS 1 messages is
    /// synced at once (see `StoreOp::must_sync`).
    EveryRecords(u64),
    /// After a batch when at least this long has passed since the last fsync,
    /// and otherwise this long after the last fsync while records wait (the
    /// server's store thread wakes up for it), and when a segment is closed.
    /// Acknowledges before the fsync: a power cut loses at most what was
    /// written in the last interval before it (plus the time an fsync takes).
    /// A batch that reserves message ids or a topic's sequence numbers for
    /// QoS 1 messages is synced at once (see `StoreOp::must_sync`).
    Interval(Duration),
    /// Leaves it to the operating system. A power cut may lose everything
    /// written since the last compaction (Linux usually writes back within
    /// about 30 s, but promises nothing), and a torn write may then be
    /// reported as damage. It may also lose the store's reservation of
    /// message ids (which the other policies sync once every 1,048,576
    /// ids, see `StoreOp::must_sync`): a mesh node then hands out ids its
    /// peers hold already, and they drop its next messages as duplicates
    /// (up to their deduplication window). So may the reservations of
    /// topics' sequence numbers: a topic may then give a lost message's
    /// number again. A mesh node's store should sync.
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
