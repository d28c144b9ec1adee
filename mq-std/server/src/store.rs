//! Where the broker's records go.
//!
//! The broker emits [`StoreOp`]s and acknowledges QoS 1 publishes only after the
//! store reports them durable. A [`Store`] writes batches of records; the server
//! runs a durable store on its own thread, hands it every batch that accumulated
//! while the previous one was being written (group commit), and reports the last
//! token of each written batch back to the broker.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use mq_core::broker::{Snapshot, StoreOp};

/// A place to keep the broker's records.
pub trait Store: Send + 'static {
    /// Every stored record, in the order written, to rebuild the broker from at
    /// start. Damaged records are skipped and reported by the store itself.
    fn load(&mut self) -> io::Result<Vec<Vec<u8>>>;

    /// Writes records; when it returns they are as durable as the store's policy
    /// makes them; a batch with an op that [`must_sync`](StoreOp::must_sync)
    /// is synced (unless the store promises nothing across a power cut).
    fn write(&mut self, ops: &[StoreOp]) -> io::Result<()>;

    /// False for a store that keeps nothing (the broker then treats each record as
    /// persisted at once, without a thread hop).
    fn is_durable(&self) -> bool {
        true
    }

    /// When, at the latest, [`sync`](Self::sync) must be called: set while the
    /// store holds written records its policy says must not wait longer to be
    /// synced (`fsync = "interval"`). The store thread wakes up for it when no
    /// write comes first.
    fn sync_deadline(&self) -> Option<Instant> {
        None
    }

    /// Makes every record written so far durable.
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Whether the store would like to compact (asked after every write). The
    /// server then takes a [`Snapshot`] once every record up to its `upto` has
    /// been handed to the store, and passes it to [`compact`](Self::compact).
    fn wants_compaction(&self) -> bool {
        false
    }

    /// Replaces every record with a token up to `snapshot.upto` by the snapshot's
    /// records. Records written later stay.
    fn compact(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        let _ = snapshot;
        Ok(())
    }

    /// Whether the store is at its size limit; while true the broker refuses QoS 1
    /// publishes with `StorageFull` (acks and everything else still get written).
    fn is_full(&self) -> bool {
        false
    }

    /// Counters for `/metrics` (`mq_store_*`), shared with the server.
    fn metrics(&self) -> Arc<StoreMetrics> {
        Arc::new(StoreMetrics::default())
    }
}

/// What a store counts; rendered as `mq_store_<name>`.
#[derive(Debug, Default)]
pub struct StoreMetrics {
    /// Records written.
    pub records_written: AtomicU64,
    /// Bytes written.
    pub bytes_written: AtomicU64,
    /// fsync calls.
    pub syncs: AtomicU64,
    /// Bytes on disk now.
    pub disk_bytes: AtomicU64,
    /// Segment files now.
    pub segments: AtomicU64,
    /// Compactions done.
    pub compactions: AtomicU64,
    /// Records recovered at the last start.
    pub recovered_records: AtomicU64,
    /// Records found damaged and skipped at the last start.
    pub corrupt_records: AtomicU64,
    /// Bytes skipped as damaged (torn tail or corruption) at the last start.
    pub skipped_bytes: AtomicU64,
}

impl StoreMetrics {
    /// `(name, value, is_counter)` for every field.
    pub fn values(&self) -> [(&'static str, u64, bool); 9] {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("records_written_total", g(&self.records_written), true),
            ("bytes_written_total", g(&self.bytes_written), true),
            ("syncs_total", g(&self.syncs), true),
            ("disk_bytes", g(&self.disk_bytes), false),
            ("segments", g(&self.segments), false),
            ("compactions_total", g(&self.compactions), true),
            ("recovered_records", g(&self.recovered_records), false),
            ("corrupt_records", g(&self.corrupt_records), false),
            ("skipped_bytes", g(&self.skipped_bytes), false),
        ]
    }
}

/// Keeps nothing: messages live only as long as the process. For tests, and for
/// brokers that want at-least-once only while they run.
#[derive(Debug, Default)]
pub struct MemoryStore;

impl Store for MemoryStore {
    fn load(&mut self) -> io::Result<Vec<Vec<u8>>> {
        Ok(Vec::new())
    }

    fn write(&mut self, _ops: &[StoreOp]) -> io::Result<()> {
        Ok(())
    }

    fn is_durable(&self) -> bool {
        false
    }
}
