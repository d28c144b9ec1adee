//! The broker and client configurations the simulations share: small
//! frames and credit, fast reconnects, keepalive on, no ack timeout.

use std::time::Duration;

use mq_core::broker::{Config, QueueLimits};
use mq_core::client::Config as ClientConfig;
use mq_core::wire::{Limits, SessionMode};

/// A broker's: queues of 500 messages, frames of 1 KiB, no ack timeout
/// (deliveries come again after a reconnect), attempts enough never to
/// dead-letter.
pub fn broker_config(seed: u64) -> Config {
    Config {
        seed,
        ack_timeout: None,
        max_attempts: 1000,
        default_queue: QueueLimits {
            max_messages: 500,
            ..QueueLimits::default()
        },
        limits: Limits {
            max_frame: 1024,
            credit: 8,
            keepalive_ms: 2_000,
        },
        ..Config::default()
    }
}

/// Client `i`'s (client id `c<i>`), publishing with `producer` if any.
pub fn client_config(
    i: usize,
    mode: SessionMode,
    producer: Option<u64>,
    seed: u64,
) -> ClientConfig {
    let mut id = heapless::String::new();
    let _ = core::fmt::write(&mut id, format_args!("c{i}"));
    ClientConfig {
        client_id: id,
        token: None,
        mode,
        limits: Limits {
            max_frame: 4096,
            credit: 8,
            keepalive_ms: 2_000,
        },
        max_frame_out: u32::MAX,
        producer,
        reconnect_min: Duration::from_millis(5),
        reconnect_max: Duration::from_millis(200),
        connect_timeout: Duration::from_millis(500),
        seed: seed ^ i as u64,
    }
}
