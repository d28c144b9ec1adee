//! Where the broker's records go.
//!
//! The broker emits [`StoreOp`]s and acknowledges QoS 1 publishes only after the
//! store reports them durable. A [`Store`] writes batches of records; the server
//! runs a durable store on its own thread, hands it every batch that accumulated
//! while the previous one was being written (group commit), and reports the last
//! token of each written batch back to the broker.

use std::io;

use mq_core::broker::StoreOp;

/// A place to keep the broker's records.
pub trait Store: Send + 'static {
    /// Every stored record, in the order written, to rebuild the broker from at
    /// start. Damaged records are skipped and reported by the store itself.
    fn load(&mut self) -> io::Result<Vec<Vec<u8>>>;

    /// Writes records; when it returns they are as durable as the store's policy
    /// makes them.
    fn write(&mut self, ops: &[StoreOp]) -> io::Result<()>;

    /// False for a store that keeps nothing (the broker then treats each record as
    /// persisted at once, without a thread hop).
    fn is_durable(&self) -> bool {
        true
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
