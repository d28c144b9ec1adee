//! Test support: a real `mqd` child process ([`mq_testkit::Mqd`]: built on
//! demand, restartable on the same port and data), a clock for the drivers and
//! a host-side client.

#![allow(dead_code)]

pub mod scenario;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use mq_testkit::Mqd;

/// `mqd` with `config` (TOML), the broker's debug logs included.
pub fn mqd(config: &str) -> Mqd {
    Mqd::builder(config).log("info,mq_server=debug").start()
}

/// The drivers' clock: microseconds since the test started.
pub struct Clock(Instant);

impl Clock {
    pub fn new() -> Clock {
        Clock(Instant::now())
    }

    pub fn now(&self) -> mq_embedded::Instant {
        mq_embedded::Instant::from_micros(self.0.elapsed().as_micros() as u64)
    }
}

/// A host-side client of the same broker (mq-std's blocking client), with a
/// persistent session that reconnects by itself.
pub fn host_client(addr: SocketAddr, id: &str) -> mq_std::blocking::Client {
    let mut opts = mq_std::client::ClientOptions::new(addr.to_string());
    opts.client_id = id.to_string();
    opts.session = mq_std::core::wire::SessionMode::Resume;
    opts.keepalive = Duration::from_secs(2);
    opts.reconnect_min = Duration::from_millis(20);
    opts.reconnect_max = Duration::from_millis(300);
    mq_std::blocking::Client::connect(opts).expect("host client connects")
}
