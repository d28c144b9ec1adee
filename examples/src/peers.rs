//! What the Rust peer examples share (`src/bin/peers.rs`): starting a
//! desktop peer in a directory of the example's, and finding out when the
//! peers are linked.
//!
//! A peer forwards a message only to the peers whose interest in its topic
//! reached it: a message published before that goes to local subscribers
//! only (messages kept for a peer that is away are not there yet). So the
//! examples first publish probes (QoS 0, payload [`PROBE`]) until the other
//! side shows that its subscription's interest arrived, and skip probes when
//! they receive.

use std::path::Path;
use std::time::{Duration, Instant};

use mq_std::blocking::{Client, Message, PublishOptions, QoS, Subscription};
use mq_std::peer::{Peer, PeerOptions};

use crate::PATIENCE;

/// The payload of the messages that find out whether peers are linked.
pub const PROBE: &str = "probe";

/// The examples' directory: the first argument after the mode, else
/// `MQ_PEER_DIR`, else `mq-examples` in the temporary directory. The peers
/// of one example, in one process or several, share it: their catalog
/// (`mesh.db`) and their logs (one directory per peer) are there.
pub fn directory() -> std::path::PathBuf {
    std::env::args()
        .nth(2)
        .or_else(|| std::env::var("MQ_PEER_DIR").ok())
        .map(Into::into)
        .unwrap_or_else(|| std::env::temp_dir().join("mq-examples"))
}

/// A peer `id` with its log in `dir/id` and the catalog `dir/mesh.db`, on
/// `runtime` (a peer runs on tokio; the examples' clients are blocking).
pub fn start(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    id: &str,
) -> Result<Peer, Box<dyn std::error::Error>> {
    let mut opts = PeerOptions::new(id);
    opts.node.catalog = format!("sqlite:{}", dir.join("mesh.db").display());
    opts.node.lease = Duration::from_secs(2);
    opts.node.heartbeat = Duration::from_millis(200);
    opts.data_dir = dir.join(id);
    Ok(runtime.block_on(Peer::start(opts))?)
}

/// A client of `peer` with the persistent session `client_id`.
pub fn client(peer: &Peer, client_id: &str) -> Result<Client, mq_std::blocking::Error> {
    Client::connect(peer.client_options(client_id))
}

/// Publishes probes to `topic` from `from` until each of `subs` got one
/// (for a group, until one of them did when `any` is set).
pub fn until_linked(
    from: &Client,
    topic: &str,
    subs: &[&Subscription],
    any: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut reached = vec![false; subs.len()];
    let deadline = Instant::now() + PATIENCE;
    loop {
        from.publish(topic, PROBE, &PublishOptions::new(QoS::AtMostOnce))?;
        std::thread::sleep(Duration::from_millis(100));
        for (i, sub) in subs.iter().enumerate() {
            while let Ok(m) = sub.try_recv() {
                reached[i] |= m.payload.as_ref() == PROBE.as_bytes();
            }
        }
        if (any && reached.contains(&true)) || reached.iter().all(|r| *r) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{topic}: the peers did not link in time").into());
        }
    }
}

/// The next message that is not a probe, from `sub`, within `wait`.
pub fn next_within(sub: &Subscription, wait: Duration) -> Option<Message> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let msg = sub.recv_timeout(left).ok()?;
        if msg.payload.as_ref() != PROBE.as_bytes() {
            return Some(msg);
        }
    }
}

/// The next message that is not a probe, or an error after [`PATIENCE`].
pub fn next(sub: &Subscription) -> Result<Message, Box<dyn std::error::Error>> {
    next_within(sub, PATIENCE).ok_or_else(|| "no message arrived in time".into())
}
