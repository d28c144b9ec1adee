//! Three desktop peers (`mq_std::peer`) in one process, no daemon, sharing
//! one SQLite catalog file: their applications use the ordinary client, and
//! messages go straight from peer to peer. One-to-one, fan-out and a group
//! across peers, each message once; a peer that stopped is forgotten by the
//! others and starts again on its log.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mq_std::client::{Client, PublishOptions, QoS, SubscribeOptions, Subscription};
use mq_std::peer::{Peer, PeerOptions};

const PATIENCE: Duration = Duration::from_secs(30);
const PROBE: &str = "probe";

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options(dir: &Dir, id: &str) -> PeerOptions {
    let mut opts = PeerOptions::new(id);
    opts.node.catalog = format!("sqlite:{}", dir.0.join("mesh.db").display());
    opts.node.lease = Duration::from_secs(2);
    opts.node.heartbeat = Duration::from_millis(200);
    opts.data_dir = dir.0.join(id);
    opts
}

async fn subscribe(c: &Client, filter: &str, group: Option<&str>) -> Subscription {
    let mut opts = SubscribeOptions::default();
    opts.group = group.map(str::to_owned);
    c.subscribe(filter, &opts).await.expect("subscribe")
}

/// Probes (QoS 0) from `from` until one reaches `sub`: the peers are linked.
async fn until_linked(from: &Client, topic: &str, sub: &mut Subscription) {
    let start = Instant::now();
    loop {
        from.publish(topic, PROBE, &PublishOptions::new(QoS::AtMostOnce))
            .await
            .expect("probe");
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            if m.needs_ack() {
                m.ack().expect("ack");
            }
            return;
        }
        assert!(start.elapsed() < PATIENCE, "{topic}: never linked");
    }
}

/// `n` payloads besides probes from any of `subs`, failing on a duplicate.
async fn receive(subs: &mut [&mut Subscription], n: usize, what: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let start = Instant::now();
    while seen.len() < n {
        let mut any = false;
        for sub in subs.iter_mut() {
            if let Some(m) = sub.try_next() {
                any = true;
                let t = String::from_utf8_lossy(&m.payload).into_owned();
                if m.needs_ack() {
                    m.ack().expect("ack");
                }
                if t != PROBE {
                    assert!(seen.insert(t.clone()), "{what}: {t} twice");
                }
            }
        }
        if !any {
            assert!(start.elapsed() < PATIENCE, "{what}: {} of {n}", seen.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    seen
}

async fn publish_all(c: &Client, topic: &str, prefix: &str, n: u32) -> BTreeSet<String> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_without_a_daemon_exchange_messages_directly() {
    let dir = Dir(std::env::temp_dir().join(format!("mq-peers-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("a temporary directory");
    let a = Peer::start(options(&dir, "a")).await.expect("a starts");
    let b = Peer::start(options(&dir, "b")).await.expect("b starts");
    let c = Peer::start(options(&dir, "c")).await.expect("c starts");
    let alice = a.connect("alice").await.expect("alice");
    let bob = b.connect("bob").await.expect("bob");
    let carol = c.connect("carol").await.expect("carol");

    // One-to-one: alice (peer a) to bob (peer b).
    let mut inbox = subscribe(&bob, "direct.bob", None).await;
    until_linked(&alice, "direct.bob", &mut inbox).await;
    let sent = publish_all(&alice, "direct.bob", "d", 30).await;
    assert_eq!(receive(&mut [&mut inbox], 30, "one-to-one").await, sent);

    // One-to-many: carol publishes, every peer's subscriber gets it all.
    let mut news = Vec::new();
    for client in [&alice, &bob, &carol] {
        news.push(subscribe(client, "news.>", None).await);
    }
    for sub in news.iter_mut().take(2) {
        until_linked(&carol, "news.probe", sub).await;
    }
    let sent = publish_all(&carol, "news.today", "n", 30).await;
    for (i, sub) in news.iter_mut().enumerate() {
        assert_eq!(receive(&mut [sub], 30, &format!("fan-out {i}")).await, sent);
    }

    // One-to-one-of-many: workers on b and c share alice's jobs.
    let mut w_b = subscribe(&bob, "jobs.>", Some("workers")).await;
    let mut w_c = subscribe(&carol, "jobs.>", Some("workers")).await;
    let start = Instant::now();
    'linked: loop {
        alice
            .publish("jobs.probe", PROBE, &PublishOptions::new(QoS::AtMostOnce))
            .await
            .expect("probe");
        tokio::time::sleep(Duration::from_millis(200)).await;
        for sub in [&mut w_b, &mut w_c] {
            if let Some(m) = sub.try_next() {
                m.ack().expect("ack");
                break 'linked;
            }
        }
        assert!(start.elapsed() < PATIENCE, "the group never linked");
    }
    let sent = publish_all(&alice, "jobs.build", "j", 30).await;
    assert_eq!(receive(&mut [&mut w_b, &mut w_c], 30, "group").await, sent);

    // c leaves; a and b forget it; c starts again on its log (its topic
    // sequences with it) and its new sessions get their messages.
    let c_addr = c.local_addr();
    drop(carol);
    c.stop().await.expect("c stops");
    let mut again = options(&dir, "c");
    again.listen = c_addr;
    let c = Peer::start(again).await.expect("c starts again");
    let dave = c.connect("dave").await.expect("dave");
    let mut inbox = subscribe(&dave, "direct.dave", None).await;
    until_linked(&alice, "direct.dave", &mut inbox).await;
    let sent = publish_all(&alice, "direct.dave", "c", 10).await;
    // What c publishes now continues its topic's sequence, so b takes it
    // as new (a peer restarted without its log would be deduplicated away).
    until_linked(&dave, "news.probe", &mut news[1]).await;
    let later = publish_all(&dave, "news.today", "later", 10).await;
    assert_eq!(
        receive(&mut [&mut news[1]], 10, "after c's restart").await,
        later
    );
    assert_eq!(
        receive(&mut [&mut inbox], 10, "after the restart").await,
        sent
    );

    for peer in [a, b, c] {
        peer.stop().await.expect("stops");
    }
}
