//! A durable store's own thread: it writes each batch of records that
//! accumulated while it wrote the previous one as one group (group commit),
//! takes snapshots to compact into, syncs when the store's policy says written
//! records must not wait longer, and reports back to the broker task what is
//! persisted, whether the store is full, and when it wants a compaction.

use std::io;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Instant;

use mq_core::broker::{Snapshot, StoreOp};
use tokio::sync::mpsc;

use super::command::Cmd;
use crate::store::Store;

/// How the broker task reaches its store.
pub(super) enum StoreLink {
    Memory,
    Thread(std::sync::mpsc::Sender<ToStore>),
}

/// What the broker task sends the store thread, in order.
pub(super) enum ToStore {
    Records(Vec<StoreOp>),
    Compact(Snapshot),
}

/// Starts the thread that writes to a durable `store`; it reports to the
/// broker task through `tx`, and ends (closing the store) once the sender
/// is dropped and what it sent is written.
pub(super) fn spawn_store_thread(
    mut store: Box<dyn Store>,
    tx: mpsc::UnboundedSender<Cmd>,
) -> io::Result<(
    std::sync::mpsc::Sender<ToStore>,
    std::thread::JoinHandle<()>,
)> {
    let (batches, rx) = std::sync::mpsc::channel::<ToStore>();
    let thread = std::thread::Builder::new()
        .name("mq-store".into())
        .spawn(move || {
            let mut full = store.is_full();
            let mut asked = false;
            let mut next = None;
            loop {
                let msg = match next.take() {
                    Some(m) => m,
                    None => match store.sync_deadline() {
                        // Records wait for a sync the policy bounds in time:
                        // wake up for it if nothing else comes first.
                        Some(at) => {
                            match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                                Ok(m) => m,
                                Err(RecvTimeoutError::Timeout) => {
                                    if let Err(e) = store.sync() {
                                        let _ = tx.send(Cmd::StoreFailed(e));
                                        return;
                                    }
                                    continue;
                                }
                                Err(RecvTimeoutError::Disconnected) => return,
                            }
                        }
                        None => match rx.recv() {
                            Ok(m) => m,
                            Err(_) => return,
                        },
                    },
                };
                let result = match msg {
                    ToStore::Records(mut batch) => {
                        // Group commit: every batch that queued up while we wrote.
                        while let Ok(more) = rx.try_recv() {
                            match more {
                                ToStore::Records(more) => batch.extend(more),
                                compact => {
                                    next = Some(compact);
                                    break;
                                }
                            }
                        }
                        let last = batch.last().map(|op| op.token);
                        store.write(&batch).map(|()| last)
                    }
                    ToStore::Compact(snapshot) => {
                        asked = false;
                        store.compact(&snapshot).map(|()| None)
                    }
                };
                match result {
                    Ok(last) => {
                        if let Some(last) = last
                            && tx.send(Cmd::Persisted(last)).is_err()
                        {
                            return;
                        }
                        if store.is_full() != full {
                            full = !full;
                            let _ = tx.send(Cmd::StoreFull(full));
                        }
                        if !asked && store.wants_compaction() {
                            asked = true;
                            let _ = tx.send(Cmd::CompactionWanted);
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Cmd::StoreFailed(e));
                        return;
                    }
                }
            }
        })?;
    Ok((batches, thread))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    /// Wants a sync 20 ms after each write.
    struct Interval {
        due: Option<Instant>,
        synced: Arc<AtomicBool>,
    }

    impl Store for Interval {
        fn load(&mut self) -> io::Result<Vec<Vec<u8>>> {
            Ok(Vec::new())
        }

        fn write(&mut self, _ops: &[StoreOp]) -> io::Result<()> {
            self.due = Some(Instant::now() + Duration::from_millis(20));
            Ok(())
        }

        fn sync_deadline(&self) -> Option<Instant> {
            self.due
        }

        fn sync(&mut self) -> io::Result<()> {
            self.due = None;
            self.synced.store(true, Ordering::Release);
            Ok(())
        }
    }

    #[test]
    fn a_quiet_store_is_synced_at_its_deadline() {
        let synced = Arc::new(AtomicBool::new(false));
        let store = Interval {
            due: None,
            synced: synced.clone(),
        };
        let (tx, _rx) = mpsc::unbounded_channel();
        let (batches, _thread) = spawn_store_thread(Box::new(store), tx).unwrap();
        batches.send(ToStore::Records(Vec::new())).unwrap();
        // No more writes: only the deadline can bring the sync.
        let waited = Instant::now();
        while !synced.load(Ordering::Acquire) {
            assert!(waited.elapsed() < Duration::from_secs(10), "never synced");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
