//! A node unsure of its lost register, when its own row cannot be read.

use super::{Lost, lost_reply, raw_sql, until};
use crate::metrics::{CatalogCall, CatalogRow};

#[tokio::test]
async fn an_unsure_node_whose_own_row_is_unreadable_waits_rather_than_registers() {
    // The register's reply is lost, and the node's newer row is then made
    // unreadable (its address a BLOB; its expiry text, which SQLite takes
    // as later than any time, so the row stays live). Such a row says
    // neither that the newer incarnation lapsed nor that it is renewed: the
    // node must look again, not register over it as if it had lapsed.
    let Lost {
        dir,
        catalog: _catalog,
        server,
        node,
        control,
    } = lost_reply("unsure-unreadable").await;
    let url = format!("sqlite:{}", dir.join("catalog.db").display());
    let metrics = control.catalog_metrics();
    until("the register's reply was lost", async || {
        metrics.failures(CatalogCall::Register) > 0
    })
    .await;
    raw_sql(
        &url,
        "UPDATE nodes SET addr = CAST(addr AS BLOB), expires_ms = 'soon' WHERE id = 'a'",
    );
    until("the unreadable row was seen", async || {
        metrics.unreadable_rows(CatalogRow::Node) > 0
    })
    .await;
    // A heartbeat after the one that saw it, made to fail so that it shows:
    // the round that saw the row is over by then.
    let file = url.strip_prefix("sqlite:").unwrap();
    let conn = rusqlite::Connection::open(file).unwrap();
    conn.execute_batch("ALTER TABLE nodes RENAME TO nodes_away")
        .unwrap();
    until("a heartbeat after the row was seen", async || {
        metrics.failures(CatalogCall::Heartbeat) > 0
    })
    .await;
    let (again, registers) = (
        metrics.registrations_again(),
        metrics.failures(CatalogCall::Register),
    );
    // Stopping deregisters, which the table's new name fails: no matter.
    let _ = node.stop().await;
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!((again, registers), (0, 1), "registered again over its row");
}
