//! The C ABI of mq: the blocking client of `mq-client`
//! ([`mq_client::blocking`](::mq_client::blocking)) and the desktop peer of
//! `mq-std` ([`mq_std::peer`]) behind opaque handles, described by the generated header
//! `include/mq.h` (`cargo xtask codegen`; CI fails when the committed header
//! is stale).
//!
//! - [`error`]: the result code every function returns, the error text each
//!   handle keeps, and the guard that keeps panics from crossing the boundary.
//! - [`client`]: `mq_client`: connect, publish, close.
//! - [`subscription`]: `mq_subscription` (poll-style receive) and `mq_listener`
//!   (a callback on a thread of its own).
//! - [`message`]: `mq_message`: what a subscription receives, ack and nack.
//! - [`receipt`]: `mq_receipt`: a queued publish's outcome.
//! - [`peer`]: `mq_peer`: a desktop peer with no daemon (`mq_std::peer`), a
//!   mesh node in the application's process, which `mq_client`s connect to.
//!
//! The rules every function follows are written once at the top of the header
//! (`cbindgen.toml` holds that text): result codes, error text, pointer
//! ownership, threads.
//! C++ (`include/mq.hpp`) and Python (`python/`) bindings wrap this ABI.

// The exported names are the C names (`mq_client`, `MQ_OK`): the header is
// generated from them.
#![allow(non_camel_case_types)]

pub mod client;
pub mod error;
pub mod message;
pub mod peer;
pub mod receipt;
pub mod subscription;

pub use client::*;
pub use error::*;
pub use message::*;
pub use peer::*;
pub use receipt::*;
pub use subscription::*;
