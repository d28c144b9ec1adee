//! What the client tests share: an in-process server, client options, and
//! bounds on how long anything may take.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use mq_core::broker::Config as BrokerConfig;
use mq_std::client::{ClientOptions, PublishOptions, QoS};
use mq_std::server::{self, ServerHandle, ServerOptions};

/// The most any test may take.
pub const LIMIT: Duration = Duration::from_secs(30);

pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("the test did not finish in time")
}

pub async fn start_server(broker: BrokerConfig) -> ServerHandle {
    server::spawn(ServerOptions {
        broker,
        ..ServerOptions::default()
    })
    .await
    .expect("server starts")
}

pub async fn default_server() -> ServerHandle {
    start_server(BrokerConfig::default()).await
}

pub fn options(addr: SocketAddr) -> ClientOptions {
    ClientOptions::new(addr.to_string())
}

pub fn qos0() -> PublishOptions {
    PublishOptions::new(QoS::AtMostOnce)
}

pub fn qos1() -> PublishOptions {
    PublishOptions::new(QoS::AtLeastOnce)
}

/// Runs blocking client code off the runtime's worker threads, bounded in time.
pub async fn blocking_task<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    within(tokio::task::spawn_blocking(f))
        .await
        .expect("blocking task panicked")
}

/// Runs futures concurrently (no `futures` dependency needed).
pub async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
