//! The database out of reach before and during use: clear errors, and the
//! next call after it is back works again.

use std::path::Path;

use std::time::Duration;

use mq_catalog::{Catalog, Error, Options};

use super::NewPlace;
use crate::support::envelope;
use crate::support::proxy::Proxy;

const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

fn assert_unavailable<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) -> String {
    match result {
        Err(err @ Error::Unavailable { .. }) => err.to_string(),
        other => panic!("{what}: {other:?}, not Unavailable"),
    }
}

pub async fn unreachable_database_is_a_clear_error(place: NewPlace) {
    let place = place();
    let url = place.unreachable_url();
    let said = assert_unavailable(
        "opening where nothing answers",
        Catalog::open_with(&url, place.options.clone()).await,
    );
    assert!(said.contains("unavailable"), "{said}");
    if let Some(file) = place.sqlite_file() {
        assert!(
            !file.parent().unwrap().join("missing").exists(),
            "created nothing"
        );
    }
    place.clean().await;
}

pub async fn database_gone_mid_use_then_back(place: NewPlace) {
    let place = place();
    match place.sqlite_file() {
        Some(file) => sqlite_file_moved_away_and_back(&place.open().await, &file).await,
        None => {
            let proxy = Proxy::start(&place.url).await;
            let catalog = Catalog::open_with(&proxy.url, place.options.clone())
                .await
                .unwrap_or_else(|err| panic!("through the proxy to {}: {err}", place.url));
            server_cut_and_back(&catalog, &proxy).await;
        }
    }
    place.clean().await;
}

async fn sqlite_file_moved_away_and_back(catalog: &Catalog, file: &Path) {
    let me = catalog.register("a", "h:1", LEASE).await.unwrap();
    catalog.enqueue("r", &envelope("a", 1)).await.unwrap();
    let away = file.parent().unwrap().join("away");
    std::fs::create_dir(&away).unwrap();
    let files = ["catalog.db", "catalog.db-wal", "catalog.db-shm"];
    let moves = |from: &Path, to: &Path| {
        for name in files {
            if from.join(name).exists() {
                std::fs::rename(from.join(name), to.join(name)).unwrap();
            }
        }
    };
    let dir = file.parent().unwrap();
    moves(dir, &away);
    let said = assert_unavailable("the file moved away", catalog.heartbeat(&me, LEASE).await);
    assert!(said.contains("catalog.db"), "{said}");
    assert_unavailable("still away", catalog.live_nodes().await);
    assert!(
        !file.exists(),
        "a new empty catalog was created in its place"
    );

    moves(&away, dir);
    catalog.heartbeat(&me, LEASE).await.unwrap();
    assert_eq!(catalog.read("r", None, 10).await.unwrap().messages.len(), 1);

    // Replaced by another catalog file: said once, then that file is used.
    moves(dir, &away);
    let url = format!("sqlite:{}", file.display());
    let other = Catalog::open(&url).await.unwrap();
    other.register("b", "h:2", LEASE).await.unwrap();
    let said = assert_unavailable("the file replaced", catalog.live_nodes().await);
    assert!(said.contains("replaced"), "{said}");
    let live = catalog.live_nodes().await.unwrap().nodes;
    assert_eq!(
        live.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
}

async fn server_cut_and_back(catalog: &Catalog, proxy: &Proxy) {
    let me = catalog.register("a", "h:1", LEASE).await.unwrap();
    catalog.enqueue("r", &envelope("a", 1)).await.unwrap();
    proxy.stop();
    let said = assert_unavailable("connection cut", catalog.heartbeat(&me, LEASE).await);
    assert!(said.contains(catalog.backend()), "{said}");
    assert_unavailable("port closed", catalog.live_nodes().await);

    proxy.restart().await;
    catalog.heartbeat(&me, LEASE).await.unwrap();
    assert_eq!(catalog.read("r", None, 10).await.unwrap().messages.len(), 1);

    // Every kind of call notices, and reconnects.
    proxy.stop();
    assert_unavailable("cut before queue_len", catalog.queue_len("r").await);
    proxy.restart().await;
    assert_eq!(catalog.queue_len("r").await.unwrap(), 1);
}

/// A database that stops answering without closing anything (a network
/// partition, a hung server, another process holding SQLite's write lock):
/// each call fails with `Unavailable` after the call timeout rather than
/// waiting for TCP (hours), so a node learns its heartbeat failed while it
/// can still stop serving; and the call after the partition heals works.
pub async fn silent_database_is_unavailable_not_a_hang(place: NewPlace) {
    let place = place();
    let options = Options {
        call_timeout: Duration::from_secs(3),
        ..place.options.clone()
    };
    match place.sqlite_file() {
        Some(file) => {
            let catalog = Catalog::open_with(&place.url, options).await.unwrap();
            let me = catalog.register("a", "h:1", LEASE).await.unwrap();
            let writer = rusqlite::Connection::open(&file).unwrap();
            writer.execute_batch("BEGIN IMMEDIATE").unwrap();
            assert_unavailable("the file locked", catalog.heartbeat(&me, LEASE).await);
            writer.execute_batch("COMMIT").unwrap();
            catalog.heartbeat(&me, LEASE).await.unwrap();
        }
        None => {
            let proxy = Proxy::start(&place.url).await;
            let catalog = Catalog::open_with(&proxy.url, options)
                .await
                .unwrap_or_else(|err| panic!("through the proxy to {}: {err}", place.url));
            let me = catalog.register("a", "h:1", LEASE).await.unwrap();
            catalog.enqueue("r", &envelope("a", 1)).await.unwrap();
            proxy.silence();
            let said = assert_unavailable("silent mid-use", catalog.heartbeat(&me, LEASE).await);
            assert!(said.contains(catalog.backend()), "{said}");
            // The next call does not wait behind the silent connection: it
            // connects again, and that silent connection fails in turn.
            assert_unavailable("silent on connecting", catalog.read("r", None, 10).await);
            proxy.speak();
            catalog.heartbeat(&me, LEASE).await.unwrap();
            assert_eq!(catalog.read("r", None, 10).await.unwrap().messages.len(), 1);
        }
    }
    place.clean().await;
}
