//! The write-ahead log: the durable [`Store`] `mqd` runs with.
//!
//! # On disk
//!
//! One directory holds:
//!
//! - **segments** `seg-<index>.wal` (20-digit, consecutive indices): the broker's
//!   records in the order written. A segment is closed once it reaches
//!   [`WalOptions::segment_bytes`] (plus at most one record); the next one starts.
//! - at most one live **snapshot** `snap-<upto>.snap`: the broker's state as
//!   records ([`Snapshot`]), standing in for every record with a sequence number
//!   up to `upto`. It is written as `*.snap.tmp`, synced, renamed into place and
//!   the directory synced, so it is either whole or absent.
//! - `LOCK`, locked while a [`Wal`] has the directory open (a second `mqd` on the
//!   same directory is refused instead of interleaving writes).
//!
//! Every entry of both kinds of file is a frame:
//!
//! ```text
//! len: u32 LE | crc: u32 LE | kind: u8 | token: u64 LE | record bytes
//! ```
//!
//! `len` counts everything after `crc`; `crc` is CRC-32C over the `len` bytes and
//! everything after `crc`. `kind` 1 is a broker record; a snapshot starts with
//! kind 2 (token = `upto`, payload = first segment after it and record count, u64
//! LE each) and ends with kind 3. Kind 4 is a **sync mark** in a segment (token =
//! how many of the segment's bytes had been synced when it was written): one
//! starts every segment, synced with it, and one precedes the first record
//! written after each sync (not under [`FsyncPolicy::Never`], which syncs
//! nothing). In a segment the token is the record's
//! **sequence number**: the broker numbers its store operations from 1 in every
//! run, so the log stores `base + token`, where `base` is the highest sequence
//! number on disk when the log was opened; sequence numbers increase for the
//! life of the directory. In a snapshot the token is the record's ordinal.
//!
//! # Recovery ([`Wal::open`])
//!
//! Before anything is accepted: the newest snapshot that validates is read (one
//! that does not is renamed `*.snap.corrupt` and an older one is tried), then
//! every segment in index order, skipping records the snapshot covers.
//!
//! - In the newest segment, a record that does not validate is a write the crash
//!   tore when nothing valid follows it, or when it lies past the last sync point
//!   the segment's sync marks record: the file is truncated there, and valid
//!   records after it (pieces of writes a power cut kept out of order, never
//!   synced) go with it, so that what is kept is a prefix of what was written.
//! - A record that does not validate anywhere else is damage: the reader skips
//!   forward to the next position where a frame validates (sane length, known
//!   kind, a plausible next sequence number, CRC) and goes on. The records lost
//!   (counted from the gap in sequence numbers) and the bytes skipped are logged
//!   and reported in [`StoreMetrics`] and [`Recovery`].
//! - A missing segment file (a gap in the indices) is logged and reported;
//!   reading continues with the next one.
//!
//! A damaged log never stops the open: only I/O errors on the directory itself
//! (or the lock) do.
//!
//! # Durability
//!
//! [`write`](Store::write) appends a whole batch with one gathered write
//! (`writev`; a message's record is written from the broker's own bytes,
//! not copied into a buffer first), then syncs per [`FsyncPolicy`], whose
//! docs say what each policy loses at a power cut (none loses anything
//! acknowledged at a crash of the process). With
//! [`FsyncPolicy::Always`] a batch is on disk before the broker acknowledges
//! anything in it; the server hands the store everything that queued up while
//! the previous batch was written, so one fsync covers many publishes (group
//! commit).
//!
//! The log writes through [`fs::FileSystem`] and keeps its rules: bytes are
//! durable once their file is synced, a name once its directory is. So (every
//! policy but `Never`, where noted):
//!
//! - a directory the log creates is synced into its parent;
//! - a new segment's name and first sync mark are synced before a record goes
//!   into it (not under `Never`), and a segment is synced when it is closed
//!   (not under `Never`);
//! - a snapshot's file is synced before it is renamed into place, and the
//!   directory after, before anything it covers is removed (under every
//!   policy);
//! - at open, every segment recovery read and the directory are synced before
//!   the log is used (not under `Never`): the last process may have died
//!   between a write and its sync, and the broker rebuilt from what the
//!   operating system's cache held acknowledges retries on top of it.
//!
//! `tests/wal_power` holds the log to this on [`fs::SimDisk`], a disk that
//! forgets what was not synced, through power cuts at random points.
//!
//! # Compaction and the disk limit
//!
//! The log asks to compact ([`Store::wants_compaction`]) when it holds at least
//! [`WalOptions::compact_min_bytes`] and more than twice the last snapshot (the
//! last snapshot being the estimate of live data: the log grows by at most one
//! snapshot's worth of records before it is rewritten, which bounds both the disk
//! and the write amplification), or when it is full and has written a sixty-fourth
//! of the limit (at least 4 KiB) since the last compaction (acks make messages dead; only a
//! compaction gives their room back). [`Store::compact`] writes the snapshot,
//! starts a new segment and deletes every segment whose records the snapshot
//! covers, and older snapshots. Disk use, recovery time and the memory recovery
//! needs are thus proportional to the live state, not to the history.
//!
//! With [`WalOptions::max_bytes`] set, [`Store::is_full`] is true while the files
//! take at least that much; the broker then refuses QoS 1 publishes with
//! `StorageFull`, while everything else (acks above all) is still written.

mod batch;
mod compact;
mod crc;
mod files;
mod frame;
pub mod fs;
mod options;
mod recover;
mod scan;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use mq_core::broker::{Snapshot, StoreOp};

use crate::store::{Store, StoreMetrics};
use batch::Batch;
use fs::{FileSystem, LogFile, OsFs};
pub use options::{FsyncPolicy, WalOptions};
pub use recover::Recovery;
use recover::{SegmentInfo, SnapshotInfo};

/// The segment being appended to.
struct Active<File> {
    index: u64,
    file: File,
    bytes: u64,
}

/// A write-ahead log in a directory, on the filesystem `F` (the real one
/// unless a test says otherwise); see the [module docs](self).
pub struct Wal<F: FileSystem = OsFs> {
    fs: F,
    dir: PathBuf,
    opts: WalOptions,
    /// Held (locked) for as long as the log is open.
    _lock: F::Lock,
    active: Option<Active<F::File>>,
    next_index: u64,
    /// Every segment file, the active one included.
    segments: BTreeMap<u64, SegmentInfo>,
    snapshot: Option<SnapshotInfo>,
    /// Older snapshot files not yet removed.
    stale_snapshots: Vec<(PathBuf, u64)>,
    /// Sequence number = `base` + the broker's token.
    base: u64,
    /// Records written and not yet synced.
    unsynced: u64,
    /// A sync mark due before the next record: how much of the active segment
    /// is synced.
    mark: Option<u64>,
    last_sync: Instant,
    written_since_compaction: u64,
    /// After a failed compaction: do not ask again before the disk use grows
    /// past this.
    retry_compaction_at: u64,
    recovered: Option<Vec<Vec<u8>>>,
    report: Recovery,
    metrics: Arc<StoreMetrics>,
    /// The frames of the write being made.
    batch: Batch,
}

impl<F: FileSystem> fmt::Debug for Wal<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("opts", &self.opts)
            .field("segments", &self.segments.len())
            .field("disk_bytes", &self.disk_bytes())
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens (creating it if needed) the log in `dir` and recovers what it holds;
    /// [`load`](Store::load) hands the records out. Fails only when the directory
    /// cannot be used (permissions, another process holds it): damage inside the
    /// log is skipped and reported (see the [module docs](self)).
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> io::Result<Wal> {
        Wal::open_in(OsFs, dir, opts)
    }
}

impl<F: FileSystem> Wal<F> {
    /// [`Wal::open`] on the filesystem `fs`.
    pub fn open_in(fs: F, dir: impl AsRef<Path>, opts: WalOptions) -> io::Result<Wal<F>> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&fs, &dir)?;
        let lock = match fs.lock(&files::lock_path(&dir)) {
            Ok(lock) => lock,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is in use by another process", dir.display()),
                ));
            }
            Err(e) => return Err(e),
        };
        let found = recover::recover(&fs, &dir)?;
        if opts.fsync != FsyncPolicy::Never {
            // Failing here is failing the start: acknowledging on top of what
            // cannot be made durable would break the policy's promise.
            recover::make_durable(&fs, &dir, found.segments.keys().copied()).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot sync the log recovered in {}: {e}", dir.display()),
                )
            })?;
        }
        let report = found.report;
        let metrics = Arc::new(StoreMetrics::default());
        metrics
            .recovered_records
            .store(report.records as u64, Ordering::Relaxed);
        metrics
            .corrupt_records
            .store(report.corrupt_records, Ordering::Relaxed);
        metrics
            .skipped_bytes
            .store(report.skipped_bytes, Ordering::Relaxed);
        // A torn tail is what a crash leaves: nothing acknowledged was in it
        // (with `FsyncPolicy::Always`). Anything else is a loss.
        let damaged = report.corrupt_records > 0
            || report.skipped_bytes > report.torn_tail_bytes
            || !report.missing_segments.is_empty()
            || !report.damaged_snapshots.is_empty();
        if damaged {
            tracing::warn!(
                dir = %dir.display(),
                records = report.records,
                corrupt_records = report.corrupt_records,
                skipped_bytes = report.skipped_bytes,
                torn_tail_bytes = report.torn_tail_bytes,
                missing_segments = ?report.missing_segments,
                missing_records = report.missing_records,
                "recovered the log with losses"
            );
        } else {
            tracing::info!(
                dir = %dir.display(),
                records = report.records,
                segments = report.segments,
                snapshot_records = report.snapshot_records,
                torn_tail_bytes = report.torn_tail_bytes,
                elapsed_ms = report.elapsed.as_millis() as u64,
                "recovered the log"
            );
        }
        let last_sync = fs.now();
        let wal = Wal {
            fs,
            dir,
            opts,
            _lock: lock,
            active: None,
            next_index: found.next_index,
            segments: found.segments,
            snapshot: found.snapshot,
            stale_snapshots: found.stale_snapshots,
            base: found.last_seq,
            unsynced: 0,
            mark: None,
            last_sync,
            written_since_compaction: 0,
            retry_compaction_at: 0,
            recovered: Some(found.records),
            report,
            metrics,
            batch: Batch::default(),
        };
        wal.update_gauges();
        Ok(wal)
    }

    /// What the open found.
    pub fn recovery(&self) -> &Recovery {
        &self.report
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options it runs with.
    pub fn options(&self) -> &WalOptions {
        &self.opts
    }

    /// Bytes its files take (segments and snapshots).
    pub fn disk_bytes(&self) -> u64 {
        let segments: u64 = self.segments.values().map(|s| s.bytes).sum();
        let snapshots: u64 = self.stale_snapshots.iter().map(|s| s.1).sum();
        segments + snapshots + self.snapshot_bytes()
    }

    /// Segment files on disk.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn snapshot_bytes(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.bytes)
    }

    fn update_gauges(&self) {
        self.metrics
            .disk_bytes
            .store(self.disk_bytes(), Ordering::Relaxed);
        self.metrics
            .segments
            .store(self.segments.len() as u64, Ordering::Relaxed);
    }

    fn sync_active(&mut self) -> io::Result<()> {
        if let Some(a) = &mut self.active
            && self.unsynced > 0
        {
            a.file.sync_data()?;
            self.metrics.syncs.fetch_add(1, Ordering::Relaxed);
            self.mark = Some(a.bytes);
        }
        self.unsynced = 0;
        self.last_sync = self.fs.now();
        Ok(())
    }

    /// Closes the active segment, syncing it unless the policy is `Never` (the
    /// other policies promise a sync after a bounded amount of data; a closed
    /// file gets no later chance).
    fn seal(&mut self) -> io::Result<()> {
        if self.opts.fsync != FsyncPolicy::Never {
            self.sync_active()?;
        }
        self.active = None;
        Ok(())
    }

    fn start_segment(&mut self) -> io::Result<()> {
        let index = self.next_index;
        let path = files::segment_path(&self.dir, index);
        let mut file = self.fs.create(&path)?;
        let mut bytes = 0;
        if self.opts.fsync != FsyncPolicy::Never {
            // A durable first sync mark: recovery then knows this segment
            // records its sync points, even if its first write is lost.
            let mut mark = Vec::new();
            frame::encode(&mut mark, frame::Kind::Synced, 0, &[]);
            file.append(&mark)?;
            file.sync_data()?;
            self.metrics.syncs.fetch_add(1, Ordering::Relaxed);
            bytes = mark.len() as u64;
            // The records about to go into it are only durable once its name is.
            self.fs.sync_dir(&self.dir)?;
        }
        self.next_index = index + 1;
        self.segments
            .insert(index, SegmentInfo { bytes, last: None });
        self.active = Some(Active { index, file, bytes });
        self.mark = None;
        Ok(())
    }

    /// Writes the batch to the active segment; `ops` are the records it
    /// holds.
    fn flush_batch(&mut self, ops: &[StoreOp], last_seq: Option<u64>) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let a = self.active.as_mut().expect("a segment is active");
        if let Err(e) = a.file.append_parts(&self.batch.parts(|i| ops[i].bytes())) {
            // Its headers name indices of these `ops`: never written with
            // the next call's.
            self.batch.clear();
            return Err(e);
        }
        let len = self.batch.len() as u64;
        a.bytes += len;
        let seg = self.segments.get_mut(&a.index).expect("tracked");
        seg.bytes = a.bytes;
        seg.last = last_seq.or(seg.last);
        self.metrics.bytes_written.fetch_add(len, Ordering::Relaxed);
        self.written_since_compaction += len;
        self.batch.clear();
        Ok(())
    }

    fn append(&mut self, ops: &[StoreOp]) -> io::Result<()> {
        let mut last = None;
        for (i, op) in ops.iter().enumerate() {
            let rotate = self.active.as_ref().is_none_or(|a| {
                let size = a.bytes + self.batch.len() as u64;
                size > 0 && size >= self.opts.segment_bytes
            });
            if rotate {
                self.flush_batch(ops, last.take())?;
                if self.active.is_some() {
                    self.seal()?;
                }
                self.start_segment()?;
            }
            if let Some(synced) = self.mark.take()
                && self.opts.fsync != FsyncPolicy::Never
            {
                self.batch.frame(frame::Kind::Synced, synced, &[]);
            }
            let seq = self.base + op.token;
            self.batch.record(seq, op.bytes(), i);
            last = Some(seq);
            self.unsynced += 1;
        }
        self.flush_batch(ops, last)?;
        self.metrics
            .records_written
            .fetch_add(ops.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

impl<F: FileSystem> Store for Wal<F> {
    /// The records recovered by [`Wal::open`] (snapshot first, then the segments),
    /// handed out once; later calls return nothing.
    fn load(&mut self) -> io::Result<Vec<Vec<u8>>> {
        Ok(self.recovered.take().unwrap_or_default())
    }

    fn write(&mut self, ops: &[StoreOp]) -> io::Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        self.append(ops)?;
        let sync = match self.opts.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Never => false,
            // A reservation of message ids or sequence numbers
            // (`StoreOp::must_sync`): the segments
            // before the active one were synced when they were closed.
            _ if ops.iter().any(StoreOp::must_sync) => true,
            FsyncPolicy::EveryRecords(n) => self.unsynced >= n.max(1),
            FsyncPolicy::Interval(d) => self.fs.now().duration_since(self.last_sync) >= d,
        };
        if sync {
            self.sync_active()?;
        }
        self.update_gauges();
        Ok(())
    }

    /// Under [`FsyncPolicy::Interval`], one interval after the last sync while
    /// records wait to be synced.
    fn sync_deadline(&self) -> Option<Instant> {
        match self.opts.fsync {
            FsyncPolicy::Interval(d) if self.unsynced > 0 => Some(self.last_sync + d),
            _ => None,
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_active()
    }

    fn wants_compaction(&self) -> bool {
        let disk = self.disk_bytes();
        if disk < self.retry_compaction_at {
            return false;
        }
        let log = disk - self.snapshot_bytes();
        let grown = disk >= self.opts.compact_min_bytes && log > self.snapshot_bytes();
        let full_step = self.opts.max_bytes.map_or(u64::MAX, |m| (m / 64).max(4096));
        grown || (self.is_full() && self.written_since_compaction >= full_step)
    }

    /// Writes the snapshot, starts a new segment and removes what the snapshot
    /// covers. A snapshot that cannot be written (disk full, say) is logged and
    /// the log left as it was (it is still complete); only a failure to sync the
    /// segment being closed is returned as an error.
    fn compact(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        self.compact_into(snapshot)
    }

    fn is_full(&self) -> bool {
        self.opts.max_bytes.is_some_and(|m| self.disk_bytes() >= m)
    }

    fn metrics(&self) -> Arc<StoreMetrics> {
        self.metrics.clone()
    }
}

impl<F: FileSystem> Drop for Wal<F> {
    fn drop(&mut self) {
        // Whatever the policy: a clean close leaves nothing unsynced.
        if let Err(e) = self.sync_active() {
            tracing::warn!(error = %e, "cannot sync the log on close");
        }
    }
}
