//! A durable store's own thread: it writes each batch of records that
//! accumulated while it wrote the previous one as one group (group commit),
//! takes snapshots to compact into, and reports back to the broker task what
//! is persisted, whether the store is full, and when it wants a compaction.

use std::io;

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
/// broker task through `tx`.
pub(super) fn spawn_store_thread(
    mut store: Box<dyn Store>,
    tx: mpsc::UnboundedSender<Cmd>,
) -> io::Result<std::sync::mpsc::Sender<ToStore>> {
    let (batches, rx) = std::sync::mpsc::channel::<ToStore>();
    std::thread::Builder::new()
        .name("mq-store".into())
        .spawn(move || {
            let mut full = store.is_full();
            let mut asked = false;
            let mut next = None;
            loop {
                let msg = match next.take() {
                    Some(m) => m,
                    None => match rx.recv() {
                        Ok(m) => m,
                        Err(_) => return,
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
    Ok(batches)
}
