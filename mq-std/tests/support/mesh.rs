//! What the mesh tests share (mq-std's `peers`, and mq-cli's `mesh_nodes`
//! through `#[path]`): probes that find out whether nodes are linked, and
//! publishing and receiving a known set of messages, each once.

#![allow(dead_code)] // each test uses its part

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mq_client::client::{Client, Message, PublishOptions, QoS, Subscription};

/// How long anything a test waits for may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(60);
/// The payload of the messages that find out whether nodes are linked (QoS
/// 0; late ones are skipped by [`receive`]).
pub const PROBE: &str = "probe";

/// The payload of `m`, acked.
pub fn take(m: Message) -> String {
    let text = String::from_utf8_lossy(&m.payload).into_owned();
    if m.needs_ack() {
        m.ack().expect("ack");
    }
    text
}

/// The next payload from any of `subs`, if one comes within `wait`.
async fn any(subs: &mut [&mut Subscription], wait: Duration) -> Option<String> {
    let start = Instant::now();
    loop {
        for sub in subs.iter_mut() {
            if let Some(m) = sub.try_next() {
                return Some(take(m));
            }
        }
        if start.elapsed() >= wait {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Publishes probes to `topic` from `from` until one reaches one of `subs`
/// (on other nodes): the links carry their interest.
pub async fn until_linked(from: &Client, topic: &str, subs: &mut [&mut Subscription]) {
    let start = Instant::now();
    loop {
        from.publish(topic, PROBE, &PublishOptions::new(QoS::AtMostOnce))
            .await
            .expect("probe");
        if any(subs, Duration::from_millis(200)).await.is_some() {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{topic}: the nodes never linked"
        );
    }
}

/// Publishes `<prefix>0` .. `<prefix>{n-1}` to `topic` (QoS 1, each
/// acknowledged); returns them.
pub async fn publish_all(c: &Client, topic: &str, prefix: &str, n: u32) -> BTreeSet<String> {
    let mut sent = BTreeSet::new();
    for i in 0..n {
        let payload = format!("{prefix}{i}");
        c.publish(
            topic,
            payload.clone(),
            &PublishOptions::new(QoS::AtLeastOnce),
        )
        .await
        .expect("acknowledged");
        sent.insert(payload);
    }
    sent
}

/// `n` payloads besides probes from any of `subs` (acked), failing on a
/// duplicate or when none came for [`PATIENCE`].
pub async fn receive(subs: &mut [&mut Subscription], n: usize, what: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    while seen.len() < n {
        let Some(t) = any(subs, PATIENCE).await else {
            panic!("{what}: {} of {n}, then nothing", seen.len());
        };
        if t != PROBE {
            assert!(seen.insert(t.clone()), "{what}: {t} twice");
        }
    }
    seen
}
