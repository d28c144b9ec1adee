//! mq on microcontrollers (`no_std`, no allocation).
//!
//! This crate will hold the smoltcp TCP driver and the `embedded-io` serial driver
//! that run the mq-core client session. Until they land it only re-exports the core.

#![no_std]

pub use mq_core as core;
