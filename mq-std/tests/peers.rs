//! Three desktop peers (`mq_std::peer`) in one process, no daemon, sharing
//! one SQLite catalog file: their applications use the ordinary client, and
//! messages go straight from peer to peer. One-to-one, fan-out and a group
//! across peers, each message once; a peer that stopped is forgotten by the
//! others and starts again on its log. A peer's own client reaches it in
//! memory, not over TCP, and comes back to it after the peer's restart.

#[path = "support/mesh.rs"]
mod mesh;

use std::path::PathBuf;
use std::time::Duration;

use mesh::{publish_all, receive, until_linked};
use mq_std::client::{Client, SubscribeOptions, Subscription};
use mq_std::peer::{Peer, PeerOptions};

struct Dir(PathBuf);

impl Dir {
    /// `<temp>/<name>-<pid>`, created.
    fn new(name: &str) -> Dir {
        let dir = Dir(std::env::temp_dir().join(format!("{name}-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).expect("a temporary directory");
        dir
    }
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_without_a_daemon_exchange_messages_directly() {
    let dir = Dir::new("mq-peers");
    let a = Peer::start(options(&dir, "a")).await.expect("a starts");
    let b = Peer::start(options(&dir, "b")).await.expect("b starts");
    let c = Peer::start(options(&dir, "c")).await.expect("c starts");
    let alice = a.connect("alice").await.expect("alice");
    let bob = b.connect("bob").await.expect("bob");
    let carol = c.connect("carol").await.expect("carol");

    // One-to-one: alice (peer a) to bob (peer b).
    let mut inbox = subscribe(&bob, "direct.bob", None).await;
    until_linked(&alice, "direct.bob", &mut [&mut inbox]).await;
    let sent = publish_all(&alice, "direct.bob", "d", 30).await;
    assert_eq!(receive(&mut [&mut inbox], 30, "one-to-one").await, sent);

    // One-to-many: carol publishes, every peer's subscriber gets it all.
    let mut news = Vec::new();
    for client in [&alice, &bob, &carol] {
        news.push(subscribe(client, "news.>", None).await);
    }
    for sub in news.iter_mut().take(2) {
        until_linked(&carol, "news.probe", &mut [sub]).await;
    }
    let sent = publish_all(&carol, "news.today", "n", 30).await;
    for (i, sub) in news.iter_mut().enumerate() {
        assert_eq!(receive(&mut [sub], 30, &format!("fan-out {i}")).await, sent);
    }

    // One-to-one-of-many: workers on b and c share alice's jobs.
    let mut w_b = subscribe(&bob, "jobs.>", Some("workers")).await;
    let mut w_c = subscribe(&carol, "jobs.>", Some("workers")).await;
    until_linked(&alice, "jobs.probe", &mut [&mut w_b, &mut w_c]).await;
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
    until_linked(&alice, "direct.dave", &mut [&mut inbox]).await;
    let sent = publish_all(&alice, "direct.dave", "c", 10).await;
    // What c publishes now continues its topic's sequence, so b takes it
    // as new (a peer restarted without its log would be deduplicated away).
    until_linked(&dave, "news.probe", &mut [&mut news[1]]).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_s_log_is_opened_with_its_options() {
    let dir = Dir::new("mq-peers-wal");
    let mut opts = options(&dir, "w");
    // Segments of 1 KiB instead of 16 MiB: sixty messages fill several.
    opts.wal.segment_bytes = 1024;
    let w = Peer::start(opts).await.expect("w starts");
    let app = w.connect("app").await.expect("app");
    let mut sub = subscribe(&app, "t", None).await;
    let sent = publish_all(&app, "t", "message ", 60).await;
    assert_eq!(receive(&mut [&mut sub], 60, "local").await, sent);
    let segments = std::fs::read_dir(dir.0.join("w"))
        .expect("the peer's log directory")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("seg-"))
        .count();
    assert!(
        segments > 1,
        "{segments} segment(s): the option did not reach the log"
    );
    w.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_s_own_client_is_not_on_tcp() {
    let dir = Dir::new("mq-peers-pipe");
    let p = Peer::start(options(&dir, "p")).await.expect("p starts");
    let app = p.connect("app").await.expect("app");
    let mut sub = subscribe(&app, "t", None).await;
    let sent = publish_all(&app, "t", "m", 20).await;
    assert_eq!(receive(&mut [&mut sub], 20, "in-process").await, sent);
    assert_eq!(
        p.server().accepted(),
        0,
        "the application's client came over TCP"
    );
    // Another process's client (here: one connecting to the address) does.
    let other = Client::connect(p.client_options("other"))
        .await
        .expect("other");
    assert_eq!(p.server().accepted(), 1);
    other.close().await;
    drop(app);
    p.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_s_own_client_resumes_when_the_peer_starts_again() {
    let dir = Dir::new("mq-peers-again");
    let p = Peer::start(options(&dir, "p")).await.expect("p starts");
    let addr = p.local_addr();
    let app = p.connect("app").await.expect("app");
    let mut sub = subscribe(&app, "t", None).await;
    let before = publish_all(&app, "t", "before", 10).await;
    assert_eq!(
        receive(&mut [&mut sub], 10, "before the restart").await,
        before
    );

    p.stop().await.expect("p stops");
    let mut again = options(&dir, "p");
    again.listen = addr;
    let p = Peer::start(again).await.expect("p starts again");
    // The same client: its session (the subscription with it) resumed at
    // the peer started again, from the peer's log.
    let after = tokio::time::timeout(Duration::from_secs(30), publish_all(&app, "t", "after", 10))
        .await
        .expect("the client never came back to its peer");
    assert_eq!(
        receive(&mut [&mut sub], 10, "after the restart").await,
        after
    );
    drop(sub);
    drop(app);
    p.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_fenced_off_by_a_newer_incarnation_stops_its_broker() {
    let dir = Dir::new("mq-peers-fenced");
    let opts = options(&dir, "p");
    let catalog = opts.node.catalog.clone();
    let p = Peer::start(opts).await.expect("p starts");
    let addr = p.local_addr();
    tokio::net::TcpStream::connect(addr)
        .await
        .expect("p listens");
    // The same node id registered again, as a second start elsewhere does.
    let other = mq_std::catalog::Catalog::open(&catalog)
        .await
        .expect("the catalog");
    other
        .register("p", "127.0.0.1:1", Duration::from_secs(2))
        .await
        .expect("registers");
    // At its next heartbeat p finds itself fenced off and stops serving.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "p still accepts connections after a newer incarnation registered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match p.stop().await {
        Err(mq_std::peer::PeerError::Catalog(mq_std::catalog::Error::Fenced { .. })) => {}
        other => panic!("stop after being fenced off: {other:?}"),
    }
}
