//! mq on Linux and Windows: adapters that drive the `mq-core` state machines over
//! real sockets, files and clocks. Every delivery decision stays in `mq-core`; this
//! crate only moves bytes, time and store records.
//!
//! - [`server`]: the tokio broker server (what `mqd` runs).
//! - [`serial`]: serial lines (UARTs, pseudo-terminals) served into the broker.
//! - [`client`]: the async tokio client.
//! - [`blocking`]: the blocking client with its own I/O thread (mio), usable from
//!   any thread and from C.
//! - [`store`]: where the broker's records go.
//! - [`wal`]: the write-ahead log, the durable store `mqd` runs with.
//! - [`config`]: `mqd`'s configuration (TOML file, environment overrides).
//! - [`metrics`]: the Prometheus text exposition of the broker's counters.
//! - [`clock`]: the clock handed to the core.

pub mod blocking;
pub mod client;
pub mod clock;
pub mod config;
mod driver;
pub mod metrics;
pub mod serial;
pub mod server;
pub mod store;
pub mod wal;

pub use mq_core as core;

/// The address `mqd` listens on by default, and clients connect to by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7410";

/// The address of `mqd`'s HTTP endpoint (`/metrics`, `/health`) by default.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:7411";
