//! Compaction: the broker's snapshot replaces the records it covers.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use mq_core::broker::Snapshot;

use super::Wal;
use super::files;
use super::frame;
use super::fs::{FileSystem, LogFile};
use super::recover::SnapshotInfo;

/// How much of a snapshot is buffered before it is handed to the file.
const CHUNK: usize = 1 << 20;

impl<F: FileSystem> Wal<F> {
    /// Writes the snapshot, starts a new segment and removes what the snapshot
    /// covers. A snapshot that cannot be written (disk full, say) is logged and
    /// the log left as it was (it is still complete); only a failure to sync the
    /// segment being closed is returned as an error.
    pub(super) fn compact_into(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        let started = Instant::now();
        let before = self.disk_bytes();
        let upto = self.base + snapshot.upto;
        self.seal()?;
        let (info, durable) = match self.write_snapshot(upto, snapshot) {
            Ok(written) => written,
            Err(e) => {
                tracing::warn!(error = %e, "cannot write a snapshot; the log stays as it is");
                self.written_since_compaction = 0;
                self.retry_compaction_at = before + self.opts.segment_bytes;
                return Ok(());
            }
        };
        let first_segment = info.first_segment;
        if let Some(old) = self.snapshot.replace(info) {
            self.stale_snapshots.push((old.path, old.bytes));
        }
        if durable {
            self.remove_covered(upto, first_segment);
        }
        self.written_since_compaction = 0;
        self.retry_compaction_at = 0;
        self.metrics.compactions.fetch_add(1, Ordering::Relaxed);
        self.update_gauges();
        tracing::info!(
            records = snapshot.records.len(),
            snapshot_bytes = self.snapshot_bytes(),
            disk_before = before,
            disk_after = self.disk_bytes(),
            segments = self.segments.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compacted the log"
        );
        Ok(())
    }

    /// Writes `snapshot` as `snap-<upto>.snap`: to a temporary file, synced, then
    /// renamed into place. Returns it, and whether its name is durable (the
    /// directory synced): only then may what it covers be removed.
    fn write_snapshot(
        &mut self,
        upto: u64,
        snapshot: &Snapshot,
    ) -> io::Result<(SnapshotInfo, bool)> {
        let tmp = files::snapshot_tmp_path(&self.dir, upto);
        let path = files::snapshot_path(&self.dir, upto);
        let first_segment = self.next_index;
        let written = (|| {
            // Left by a compaction a crash interrupted in this run.
            match self.fs.remove(&tmp) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let mut file = self.fs.create(&tmp)?;
            let mut out = Vec::new();
            let mut head = [0u8; 16];
            head[..8].copy_from_slice(&first_segment.to_le_bytes());
            head[8..].copy_from_slice(&(snapshot.records.len() as u64).to_le_bytes());
            frame::encode(&mut out, frame::Kind::SnapshotBegin, upto, &head);
            let mut bytes = 0u64;
            for (i, r) in snapshot.records.iter().enumerate() {
                frame::encode(&mut out, frame::Kind::Record, i as u64 + 1, r);
                if out.len() >= CHUNK {
                    file.append(&out)?;
                    bytes += out.len() as u64;
                    out.clear();
                }
            }
            let end = snapshot.records.len() as u64 + 1;
            frame::encode(&mut out, frame::Kind::SnapshotEnd, end, &[]);
            file.append(&out)?;
            bytes += out.len() as u64;
            file.sync_all()?;
            drop(file);
            self.fs.rename(&tmp, &path)?;
            Ok(bytes)
        })();
        let bytes = match written {
            Ok(bytes) => bytes,
            Err(e) => {
                let _ = self.fs.remove(&tmp);
                return Err(e);
            }
        };
        self.metrics.syncs.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .bytes_written
            .fetch_add(bytes, Ordering::Relaxed);
        // In place, so recovery will use it; but until the directory is synced a
        // power loss may take the rename back.
        let durable = match self.fs.sync_dir(&self.dir) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot sync the log directory; keeping the segments");
                false
            }
        };
        let info = SnapshotInfo {
            upto,
            path,
            bytes,
            first_segment,
        };
        Ok((info, durable))
    }

    /// Removes segments the snapshot covers and every other snapshot.
    fn remove_covered(&mut self, upto: u64, first_segment: u64) {
        let covered: Vec<u64> = self
            .segments
            .iter()
            .filter(|&(&i, s)| i < first_segment && s.last.is_none_or(|l| l <= upto))
            .map(|(&i, _)| i)
            .collect();
        for i in covered {
            let path = files::segment_path(&self.dir, i);
            match self.fs.remove(&path) {
                Ok(()) => {
                    self.segments.remove(&i);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.segments.remove(&i);
                }
                // Left for the next compaction; recovery skips what it covers.
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove segment")
                }
            }
        }
        let keep = self.snapshot.as_ref().map(|s| s.path.clone());
        let fs = &self.fs;
        self.stale_snapshots.retain(|(path, _)| {
            if Some(path) == keep.as_ref() {
                return false;
            }
            match fs.remove(path) {
                Ok(()) => false,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove snapshot");
                    true
                }
            }
        });
    }
}
