//! The node task against a real catalog (SQLite in a temporary file): what
//! it writes of this node's interest, and what it hands the broker of the
//! others'.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mq_catalog::{Catalog, Envelope, Interest, Origin};
use mq_core::QoS;

use super::{NodeOptions, spawn};
use crate::metrics::{CatalogCall, CatalogRow};
use crate::server::{self, ServerOptions};

mod options;
mod reap;
mod unsure;

/// The catalogs (by URL) whose next register again commits and has its
/// reply lost.
static LOSE_REPLY: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether the reply of this register at `catalog` is lost (once).
pub(super) fn lose_reply(catalog: &str) -> bool {
    let mut urls = LOSE_REPLY.lock().unwrap();
    let lost = urls.iter().position(|u| u == catalog);
    lost.map(|i| urls.swap_remove(i)).is_some()
}

/// A fresh catalog file, and the URL that opens it.
fn catalog_url(name: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("mq-node-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("catalog.db").display());
    (dir, url)
}

/// Node `a` in the catalog at `url`, beating every 20 ms.
fn node_a(url: String) -> NodeOptions {
    let mut opts = NodeOptions::new("a", url);
    opts.heartbeat = Duration::from_millis(20);
    opts.lease = Duration::from_secs(2);
    opts
}

/// A server for the node `opts` says (see `NodeOptions::broker_config`).
async fn server_for(opts: &NodeOptions) -> server::ServerHandle {
    server::spawn(ServerOptions {
        broker: opts.broker_config(Default::default()),
        ..ServerOptions::default()
    })
    .await
    .unwrap()
}

/// Node `a` (lease 500 ms) whose lease has run out (its registration was
/// removed) and whose register again will commit with its reply lost.
struct Lost {
    dir: PathBuf,
    catalog: Catalog,
    server: server::ServerHandle,
    node: super::NodeHandle,
    control: server::ServerControl,
}

async fn lost_reply(name: &str) -> Lost {
    let (dir, url) = catalog_url(name);
    let catalog = Catalog::open(&url).await.unwrap();
    let mut opts = node_a(url.clone());
    opts.lease = Duration::from_millis(500);
    let server = server_for(&opts).await;
    let (listen, control) = (server.local_addr(), server.control());
    let node = spawn(control.clone(), listen, opts).await.unwrap();
    LOSE_REPLY.lock().unwrap().push(url);
    catalog.deregister(node.registration()).await.unwrap();
    Lost {
        dir,
        catalog,
        server,
        node,
        control,
    }
}

/// Node `a`'s interest in `orders.>`, as an earlier run of it wrote it.
fn written_before() -> Interest {
    Interest {
        session: "$node.a".into(),
        node: "a".into(),
        filter: "orders.>".into(),
        group: None,
        qos: QoS::AtLeastOnce,
    }
}

/// Runs node `a` for a few heartbeats beside a server that is running or
/// already stopped, and returns node `a`'s interest left in the catalog.
async fn interest_after_heartbeats(name: &str, server_running: bool) -> Vec<Interest> {
    let (dir, url) = catalog_url(name);
    let catalog = Catalog::open(&url).await.unwrap();
    catalog.add_interest(&written_before()).await.unwrap();
    let opts = node_a(url);
    let server = server_for(&opts).await;
    let (listen, control) = (server.local_addr(), server.control());
    let running = if server_running {
        Some(server)
    } else {
        server.shutdown().await.unwrap();
        None
    };
    let node = spawn(control, listen, opts).await.unwrap();
    heartbeats(&catalog, 3).await;
    node.stop().await.unwrap();
    if let Some(server) = running {
        server.shutdown().await.unwrap();
    }
    let left = catalog.interests().await.unwrap().interests;
    let _ = std::fs::remove_dir_all(dir);
    left.into_iter().filter(|i| i.node == "a").collect()
}

/// Polls `check` every 5 ms until it holds; fails the test saying `what`
/// did not happen if it does not within 60 s (a bound a working node never
/// reaches).
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until node `a` renewed its lease `n` times: the round with the
/// catalog that follows each renewal in the same heartbeat is done for all
/// but the last.
async fn heartbeats(catalog: &Catalog, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while seen.len() <= n {
        assert!(
            Instant::now() < deadline,
            "node a renewed its lease {} times",
            seen.len()
        );
        let live = catalog.live_nodes().await.unwrap().nodes;
        if let Some(a) = live.iter().find(|node| node.id == "a")
            && seen.last() != Some(&a.lease_expires)
        {
            seen.push(a.lease_expires);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_running_node_writes_what_it_declares_now() {
    // Nothing subscribes at this server: the interest written before goes.
    let left = interest_after_heartbeats("running", true).await;
    assert_eq!(left, Vec::new());
}

#[tokio::test]
async fn a_node_whose_server_stopped_leaves_its_written_interest_alone() {
    // A server that stopped declares nothing: that is no news, not "no
    // interest", and the messages kept for this node must go on being kept.
    let left = interest_after_heartbeats("stopped", false).await;
    assert_eq!(left, vec![written_before()]);
}

/// A fresh catalog (its directory and URL) where node b is live (nothing
/// listens at its address), and b's interest in `orders.>`, not written.
async fn live_b(name: &str) -> (PathBuf, String, Catalog, Interest) {
    let (dir, url) = catalog_url(name);
    let catalog = Catalog::open(&url).await.unwrap();
    catalog
        .register("b", "127.0.0.1:1", Duration::from_secs(60))
        .await
        .unwrap();
    let b = Interest {
        session: "$node.b".into(),
        node: "b".into(),
        ..written_before()
    };
    (dir, url, catalog, b)
}

#[tokio::test]
async fn a_live_node_not_linked_gets_its_catalog_interest_kept_here() {
    // Node b is live in the catalog with interest in `orders.>`, but never
    // links to a (nothing listens at its address): a keeps an outbox for
    // it, so what a's clients publish meanwhile waits for b's link.
    let (dir, url, catalog, b) = live_b("live-not-linked").await;
    catalog.add_interest(&b).await.unwrap();
    let (owners, _) = queues_after_heartbeats(url, &catalog, CatalogRow::Interest).await;
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(owners, ["$node.b"]);
}

/// Runs node a at `url` until its own offline queue is empty and for two
/// heartbeats more: the owners of its queues then, and the unreadable rows
/// of kind `row` it counted.
async fn queues_after_heartbeats(
    url: String,
    catalog: &Catalog,
    row: CatalogRow,
) -> (Vec<String>, u64) {
    let opts = node_a(url);
    let server = server_for(&opts).await;
    let (listen, control) = (server.local_addr(), server.control());
    let node = spawn(control.clone(), listen, opts).await.unwrap();
    until("node a's offline queue drained", async || {
        catalog.queue_len("a").await.unwrap() == 0
    })
    .await;
    heartbeats(catalog, 2).await;
    let owners: Vec<String> = (control.queues().await.into_iter())
        .map(|q| q.owner)
        .collect();
    let counted = control.catalog_metrics().unreadable_rows(row);
    node.stop().await.unwrap();
    server.shutdown().await.unwrap();
    (owners, counted)
}

/// Runs `sql` on the SQLite catalog at `url`, around the catalog.
fn raw_sql(url: &str, sql: &str) {
    let file = url.strip_prefix("sqlite:").unwrap();
    let conn = rusqlite::Connection::open(file).unwrap();
    assert_eq!(conn.execute(sql, []).unwrap(), 1, "{sql}");
}

#[tokio::test]
async fn an_unreadable_interest_row_does_not_hide_the_others() {
    // Node b's interest is listed though another row has a QoS a newer
    // version may write: a keeps an outbox for b.
    let (dir, url, catalog, b) = live_b("unreadable-interest").await;
    let newer = Interest {
        session: "c1".into(),
        node: "c".into(),
        ..written_before()
    };
    for i in [&b, &newer] {
        catalog.add_interest(i).await.unwrap();
    }
    raw_sql(&url, "UPDATE interest SET qos = 2 WHERE session = 'c1'");
    let (owners, counted) = queues_after_heartbeats(url, &catalog, CatalogRow::Interest).await;
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(owners, ["$node.b"]);
    // Counted once, though listed at every heartbeat.
    assert_eq!(counted, 1);
}

#[tokio::test]
async fn an_unreadable_node_row_does_not_blind_the_node() {
    // Node c's row has a negative incarnation (another program wrote it):
    // the listing of live nodes failed as a whole, so node a never saw b
    // nor drained its own offline queue. Now a keeps an outbox for b, and
    // drains the messages b left for it.
    let (dir, url, catalog, b) = live_b("unreadable-node").await;
    catalog.add_interest(&b).await.unwrap();
    // Longer than the test's bounds: the row stays live throughout.
    let lease = Duration::from_secs(3600);
    catalog.register("c", "127.0.0.1:2", lease).await.unwrap();
    raw_sql(&url, "UPDATE nodes SET incarnation = -1 WHERE id = 'c'");
    enqueue(&catalog, "a", "b", 2).await;
    let (owners, counted) = queues_after_heartbeats(url, &catalog, CatalogRow::Node).await;
    let unreadable = catalog.live_nodes().await.unwrap().unreadable;
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(owners, ["$node.b"]);
    // Counted once, though listed at every heartbeat; left in the catalog.
    assert_eq!(counted, 1);
    assert_eq!(unreadable.len(), 1, "{unreadable:?}");
}

#[tokio::test]
async fn a_node_whose_own_row_became_unreadable_writes_it_anew() {
    // Its heartbeat renews the expiry only: the row stayed unreadable, and
    // every other node took the node as not live for as long as it ran.
    let (dir, url) = catalog_url("own-row");
    let catalog = Catalog::open(&url).await.unwrap();
    let opts = node_a(url.clone());
    let server = server_for(&opts).await;
    let (listen, control) = (server.local_addr(), server.control());
    let node = spawn(control.clone(), listen, opts).await.unwrap();
    let listed = catalog.live_nodes().await.unwrap().nodes;
    let old = listed.iter().find(|n| n.id == "a").unwrap().incarnation;
    raw_sql(
        &url,
        "UPDATE nodes SET addr = CAST(addr AS BLOB) WHERE id = 'a'",
    );
    until("a's row written anew", async || {
        let listed = catalog.live_nodes().await.unwrap();
        listed.unreadable.is_empty()
            && listed
                .nodes
                .iter()
                .any(|n| n.id == "a" && n.incarnation > old)
    })
    .await;
    node.stop().await.unwrap();
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// `n` messages for node `recipient` in the catalog, as node `from` sent
/// them (topics `orders.1`...).
async fn enqueue(catalog: &Catalog, recipient: &str, from: &str, n: u64) {
    for seq in 1..=n {
        let message = Envelope {
            topic: format!("orders.{seq}"),
            payload: b"p".to_vec(),
            meta: vec![0; 5], // an empty meta, encoded
            origin: Origin {
                node: from.into(),
                incarnation: 1,
                seq,
            },
            ttl: None,
        };
        catalog.enqueue(recipient, &message).await.unwrap();
    }
}

#[tokio::test]
async fn an_unreadable_offline_row_does_not_hold_back_the_others() {
    // Three messages for node a, the first with a negative origin sequence:
    // the two behind it are published here and acked; it stays.
    let (dir, url) = catalog_url("unreadable-offline");
    let catalog = Catalog::open(&url).await.unwrap();
    enqueue(&catalog, "a", "b", 3).await;
    raw_sql(
        &url,
        "UPDATE offline SET origin_seq = -1 WHERE origin_seq = 1",
    );
    let opts = node_a(url);
    let server = server_for(&opts).await;
    let (listen, control) = (server.local_addr(), server.control());
    let node = spawn(control.clone(), listen, opts).await.unwrap();
    until("the two readable ones not drained", async || {
        catalog.queue_len("a").await.unwrap() <= 1
    })
    .await;
    heartbeats(&catalog, 2).await;
    let drained = control.mesh_stats().await.offline_drained;
    let counted = control
        .catalog_metrics()
        .unreadable_rows(CatalogRow::Message);
    let left = catalog.read("a", None, 10).await.unwrap();
    node.stop().await.unwrap();
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!((drained, counted), (2, 1));
    assert!(left.messages.is_empty(), "{left:?}");
    assert_eq!(left.unreadable.len(), 1, "{left:?}");
}

#[tokio::test]
async fn a_node_refuses_a_server_that_does_not_hold_publishes_for_the_catalog() {
    // Its clients' QoS 1 publishes would go on before the first listing,
    // and a peer away whose interest only the catalog knows would lose them.
    let (dir, url) = catalog_url("no-await");
    let catalog = Catalog::open(&url).await.unwrap();
    let server = server::spawn(ServerOptions::default()).await.unwrap();
    let (listen, control) = (server.local_addr(), server.control());
    let refused = spawn(control, listen, node_a(url)).await;
    let live = catalog.live_nodes().await.unwrap().nodes;
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
    match refused {
        Err(mq_catalog::Error::Invalid(why)) => {
            assert!(why.contains("NodeOptions::broker_config"), "{why}");
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("the node started"),
    }
    assert!(live.is_empty(), "nothing registered");
}

#[tokio::test]
async fn a_register_whose_reply_is_lost_does_not_fence_the_node() {
    // The lease ran out (here: the registration was removed), the node
    // registers again, and that register commits but its reply is lost: the
    // newer incarnation the next heartbeat meets is the node's own, which
    // nobody renews. The node must not stop, and must register again.
    let Lost {
        dir,
        catalog,
        server,
        mut node,
        control,
    } = lost_reply("lost-reply").await;
    let metrics = control.catalog_metrics();
    let registered_again = async {
        until("the node registered again", async || {
            metrics.registrations_again() > 0
        })
        .await;
        // ...and renews that registration.
        heartbeats(&catalog, 2).await;
    };
    tokio::select! {
        e = node.failed() => panic!("the node task ended: {e}"),
        () = registered_again => {}
    }
    assert_eq!(metrics.failures(CatalogCall::Register), 1);
    node.stop().await.unwrap();
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_node_fenced_by_a_newer_self_stops_even_when_unsure() {
    // The register's reply is lost, and then another process registers the
    // same id (a true newer self) and renews it: the old node stops, and
    // never fences the newer one off (its heartbeats all succeed).
    let Lost {
        dir,
        catalog,
        server,
        mut node,
        control,
    } = lost_reply("lost-reply-newer-self").await;
    let metrics = control.catalog_metrics();
    until("the register's reply was lost", async || {
        metrics.failures(CatalogCall::Register) > 0
    })
    .await;
    let lease = Duration::from_secs(60);
    let newer = catalog.register("a", "elsewhere:1", lease).await.unwrap();
    let renew = async {
        loop {
            catalog.heartbeat(&newer, lease).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let fenced = tokio::select! {
        e = node.failed() => e,
        () = renew => unreachable!(),
    };
    assert!(
        matches!(fenced, mq_catalog::Error::Fenced { .. }),
        "{fenced}"
    );
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
