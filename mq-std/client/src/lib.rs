//! mq's clients on Linux and Windows: they drive the `mq-core` client session
//! over real sockets and clocks. Every delivery decision (resending, ordering,
//! deduplication, redelivery, reconnecting, keepalive) is the session's; this
//! crate moves bytes, time and calls.
//!
//! - [`client`]: the async client, over tokio.
//! - [`blocking`]: the blocking client with its own I/O thread (mio), usable
//!   from any thread and from C (`mq-ffi` is built on it).
//! - [`clock`]: the clock adapters hand to the core (the server's too).
//! - [`connector`]: where the async client's connections come from (TCP, or
//!   a stream of the application's choosing).
//! - [`tls`]: TLS settings of a connection, and the PEM files both sides read.
//!
//! Both clients are thin front ends of one runtime-neutral driver (private),
//! which owns what they share: the options, [`Error`](client::Error),
//! [`Message`](client::Message), [`PubAck`](client::PubAck),
//! [`Stats`](client::Stats). Applications usually depend on the `mq-std`
//! facade, which re-exports these modules.

pub mod blocking;
pub mod client;
pub mod clock;
pub mod connector;
mod driver;
mod sigpipe;
pub mod tls;

pub use driver::DEFAULT_ADDR;
pub use driver::random_u64;
pub use sigpipe::block_sigpipe_in_this_thread;
