//! The node removing the catalog's expired nodes, and leaving their queues.

use mq_catalog::Catalog;

use super::{catalog_url, enqueue, heartbeats, node_a, raw_sql, server_for, spawn, until};
use crate::metrics::CatalogCall;

/// How many rows of node `id` the SQLite catalog at `url` has, expired or not.
fn node_rows(url: &str, id: &str) -> u64 {
    let file = url.strip_prefix("sqlite:").unwrap();
    let conn = rusqlite::Connection::open(file).unwrap();
    let sql = "SELECT count(*) FROM nodes WHERE id = ?1";
    conn.query_row(sql, [id], |row| row.get(0)).unwrap()
}

#[tokio::test]
async fn a_node_reaps_expired_nodes_and_leaves_their_offline_queues() {
    // Node b left long ago without deregistering: its row expired, and two
    // messages wait in its queue. Node a removes b's row after a heartbeat;
    // b's queue stays, and b drains it when it comes back.
    let (dir, url) = catalog_url("reap");
    let catalog = Catalog::open(&url).await.unwrap();
    raw_sql(
        &url,
        "INSERT INTO nodes (id, incarnation, addr, expires_ms) VALUES ('b', 1, '127.0.0.1:1', 0)",
    );
    enqueue(&catalog, "b", "c", 2).await;
    let opts = node_a(url.clone());
    let server = server_for(&opts).await;
    let (listen, control) = (server.local_addr(), server.control());
    let node = spawn(control.clone(), listen, opts).await.unwrap();
    heartbeats(&catalog, 2).await;
    let (rows_a, rows_b) = (node_rows(&url, "a"), node_rows(&url, "b"));
    let queued = catalog.queue_len("b").await.unwrap();
    let failed = control.catalog_metrics().failures(CatalogCall::Reap);
    node.stop().await.unwrap();
    server.shutdown().await.unwrap();
    assert_eq!((rows_a, rows_b, failed), (1, 0, 0));
    assert_eq!(queued, 2);

    let mut opts = node_a(url);
    opts.id = "b".into();
    let server = server_for(&opts).await;
    let (listen, control) = (server.local_addr(), server.control());
    let node = spawn(control.clone(), listen, opts).await.unwrap();
    until("b did not drain its queue", async || {
        catalog.queue_len("b").await.unwrap() == 0
    })
    .await;
    let drained = control.mesh_stats().await.offline_drained;
    node.stop().await.unwrap();
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(drained, 2);
}
