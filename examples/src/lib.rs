//! Runnable examples of the messaging patterns in Rust, C, C++ and Python:
//! one-to-one, one-to-one-of-many (a group shares the messages), one-to-many
//! (fan-out), many-to-many and producer-consumer (competing consumers with
//! acks and a retry). Each program of a pattern prints the same lines,
//! `expected/<pattern>.txt`, whatever its language; `tests/examples.rs` runs
//! every one of them against a real `mqd` and compares. The Rust programs are
//! the binaries of this crate (`src/bin`), on the blocking client.
//!
//! `interop-echo` (Rust), `c/interop_client.c` and `python/interop_client.py`
//! exchange messages through one `mqd`.
//!
//! `peers` (Rust), `c/peers.c` and `python/peers.py` run liner's patterns
//! between desktop peers with no daemon; [`peers`] holds what the Rust one
//! needs.
//!
//! This library holds what the Rust programs share.

use std::time::Duration;

pub mod peers;

use mq_std::blocking::{Client, ClientOptions, Error, Message, Subscription};

/// How long a program waits for a message it expects before giving up.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The broker's address: the first argument, else `MQ_SERVER`, else
/// `127.0.0.1:7410`.
pub fn address() -> String {
    std::env::args()
        .nth(1)
        .or_else(|| std::env::var("MQ_SERVER").ok())
        .unwrap_or_else(|| mq_std::DEFAULT_ADDR.to_string())
}

/// A client of the broker at [`address`].
pub fn connect() -> Result<Client, Error> {
    Client::connect(ClientOptions::new(address()))
}

/// The next message, or an error when none came within [`PATIENCE`].
pub fn next(sub: &Subscription) -> Result<Message, Box<dyn std::error::Error>> {
    sub.recv_timeout(PATIENCE)
        .map_err(|_| "no message arrived in time".into())
}

/// The payload as text.
pub fn text(msg: &Message) -> String {
    String::from_utf8_lossy(&msg.payload).into_owned()
}
