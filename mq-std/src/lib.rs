//! mq on Linux and Windows: adapters that drive the `mq-core` state machines
//! over real sockets, files and clocks. Every delivery decision stays in
//! `mq-core`; the adapters only move bytes, time and store records.
//!
//! This is the crate applications depend on. It gathers crates of their own:
//!
//! - from `mq-client`: [`client`] (the async tokio client), [`blocking`] (the
//!   blocking client with its own mio I/O thread, usable from any thread and
//!   from C), [`clock`] (the clock handed to the core);
//! - from `mq-server`: [`server`] (the tokio broker server `mqd` runs),
//!   [`serial`] (serial lines served into the broker), [`store`] (where the
//!   broker's records go), [`wal`] (the write-ahead log), [`metrics`] (the
//!   Prometheus exposition and HTTP endpoint);
//! - [`core`]: `mq-core` itself;
//! - with the `peer` feature, `peer`: a desktop peer with no daemon, a mesh
//!   node in the application's process that the ordinary client talks to;
//! - with the `catalog` feature, `catalog`: `mq-catalog`, the mesh's catalog
//!   of nodes, away sessions' interest and offline queues in SQLite, Redis or
//!   PostgreSQL.
//!
//! The programs `mqd` and `mq`, and `mqd`'s configuration, are the package
//! `mq-cli` (`cargo run --release -p mq-cli --bin mqd`). They are not
//! re-exported here: that would build clap, tracing-subscriber, serde_json and
//! mimalloc into every application.

#[cfg(feature = "catalog")]
pub use mq_catalog as catalog;
#[cfg(feature = "peer")]
pub mod peer;
pub use mq_client::{DEFAULT_ADDR, blocking, client, clock, tls};
pub use mq_core as core;
/// TLS on the server's listeners (`mq_server::tls`); [`tls`] is the clients'.
pub use mq_server::tls as server_tls;
pub use mq_server::{DEFAULT_HTTP_ADDR, metrics, serial, server, store, wal};
