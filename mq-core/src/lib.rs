//! The sans-IO, `no_std` core of mq.
//!
//! Everything that decides what a message broker does lives here, and nothing here
//! does I/O, reads a clock or allocates unless the `alloc` feature asks for it. The
//! same code runs on a Cortex-M board, in a desktop process, in the `mqd` daemon and
//! behind the C ABI; adapters in other crates move bytes, time and store records.
//!
//! Layers, one module each:
//!
//! - [`wire`]: the protocol's frames as serde types, encoded with postcard and
//!   decoded zero-copy (topics and payloads borrow the receive buffer).
//! - [`framing`]: how frames travel: a varint length prefix on byte streams (TCP),
//!   COBS with a CRC on serial lines. Decoders work over caller buffers and never
//!   hold more than the negotiated maximum frame.
//! - [`topic`]: topic names and filters (`*` one token, `>` the rest), validation,
//!   matching, and (with `alloc`) an index that finds every filter matching a topic.
//! - [`mqtt`]: MQTT 3.1.1 and 5 packets decoded zero-copy and encoded into caller
//!   buffers, a stream decoder bounded by the maximum packet size, reason codes,
//!   and the mapping between MQTT topics and mq topics. No allocation.
//! - [`nats`]: the NATS client protocol's text operations (INFO, CONNECT,
//!   PUB/HPUB, SUB, UNSUB, MSG/HMSG, PING/PONG, +OK, -ERR) parsed zero-copy
//!   and encoded into caller buffers, with the `NATS/1.0` header block and
//!   the JSON of CONNECT and INFO. No allocation.
//! - [`client`]: the client session state machine, without allocation: outbox of
//!   unacknowledged publishes, inbox and held deliveries in caller storage,
//!   subscriptions, keepalive, reconnect with backoff.
//! - `broker` (`alloc`): the broker state machine, a router behind protocol
//!   codecs: each connection's codec (the mq wire protocol over stream or
//!   serial framing, or MQTT 3.1.1 and 5 over a stream) turns frames or
//!   packets into typed commands; the router (sessions, routing, queues,
//!   replay, QoS 1 with redelivery and dead-lettering, exactly-once ids,
//!   retained slots, wills, flow control, durable records) never sees bytes.
//! - [`counter_hash`]: a hash for maps keyed by ids a program hands out in
//!   order, which keeps runs of consecutive keys in neighbouring buckets
//!   and spreads keys at any spacing.
//! - [`time`]: the [`Instant`] adapters hand in.
//!
//! # Features
//!
//! - `std` (default): implies `alloc`.
//! - `alloc`: the subscription index and the broker state machine.
//! - `defmt` / `log`: logging through that framework (mutually exclusive).

#![no_std]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[macro_use]
mod macros;

#[cfg(feature = "alloc")]
pub mod broker;
pub mod client;
pub mod counter_hash;
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
pub mod mqtt;
pub mod nats;
pub mod time;
pub mod topic;
mod utf8;
pub mod wire;

pub use time::Instant;

/// What the exported logging macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "defmt")]
    pub use defmt;
    #[cfg(feature = "log")]
    pub use log;
}
pub use wire::{Frame, QoS, Reason};
