//! The mq broker on Linux and Windows: adapters that drive the `mq-core`
//! broker over sockets, files, serial lines and clocks. Every delivery decision
//! stays in `mq-core`; this crate only moves bytes, time and store records.
//!
//! - [`server`]: the tokio broker server (what `mqd` runs).
//! - [`serial`]: serial lines (UARTs, pseudo-terminals) served into the broker.
//! - [`store`]: where the broker's records go.
//! - [`tls`]: TLS and mutual TLS on the listeners, reloadable.
//! - [`wal`]: the write-ahead log, the durable store `mqd` runs with.
//! - `node` (with the `node` feature): the server as a node of a mesh,
//!   registered in a catalog and linked to the other nodes.
//! - [`pipe`]: an in-memory pipe of chunks between a client in the process and
//!   a connection of its server.
//! - [`metrics`]: the Prometheus text exposition of the broker's counters.
//! - [`http`]: the HTTP port: metrics, health, the admin JSON API and the
//!   web console.
//!
//! The daemon around them, `mqd`, is in `mq-cli`; applications usually depend
//! on the `mq-std` facade, which re-exports these modules.

pub mod http;
pub mod metrics;
#[cfg(feature = "node")]
pub mod node;
pub mod pipe;
pub mod serial;
pub mod server;
pub mod store;
pub mod tls;
pub mod wal;

/// The address of `mqd`'s HTTP port (`/metrics`, `/health`, `/api/...`, the
/// console at `/`) by default.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:7411";
