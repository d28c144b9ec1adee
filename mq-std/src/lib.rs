//! mq on Linux and Windows.
//!
//! This crate will hold the tokio adapter (broker server, async client), the mio
//! blocking client, the write-ahead-log store, configuration, metrics and auth, and
//! the `mqd` and `mq` binaries. Until those land it only re-exports the core so
//! that dependants can already name one crate.

pub use mq_core as core;
