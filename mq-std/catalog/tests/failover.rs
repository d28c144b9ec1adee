//! A catalog server that stops taking writes while its connection stays
//! open, as a primary does when a failover demotes it: the catalog reports
//! it out of reach ([`Error::Unavailable`], which a node rides out) rather
//! than as a database fault, and forgets the connection, so that its next
//! call connects again and finds the server the address now names.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod support;

use mq_catalog::Error;
use support::{Place, closed_port, eventually, redis_command, unique};

const LEASE: Duration = Duration::from_secs(60);
const LIMIT: Duration = Duration::from_secs(20);

fn assert_unavailable(what: &str, result: Result<(), Error>) {
    match result {
        Err(Error::Unavailable { .. }) => {}
        other => panic!("{what}: {other:?}, not Unavailable"),
    }
}

/// A `redis-server` of the test's own on a free port, killed when dropped.
struct RedisServer {
    child: Child,
    url: String,
}

impl RedisServer {
    async fn start() -> RedisServer {
        let port = closed_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "this test starts a redis-server of its own (`redis-server`: {err}); \
                     `cargo xtask catalog` installs it (Debian package redis-server)"
                )
            });
        let server = RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}/0"),
        };
        eventually("redis-server answering", LIMIT, || async {
            server.command(&["PING"]).await.is_ok()
        })
        .await;
        server
    }

    async fn command(&self, command: &[&str]) -> redis::RedisResult<redis::Value> {
        redis_command(&self.url, command).await
    }

    /// How many clients the server has, the asking one included.
    async fn clients(&self) -> usize {
        match self.command(&["CLIENT", "LIST"]).await {
            Ok(list) => redis::from_redis_value::<String>(list)
                .expect("CLIENT LIST's text")
                .lines()
                .count(),
            Err(err) => panic!("CLIENT LIST: {err}"),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_demoted_to_replica_is_unavailable_and_left() {
    let server = RedisServer::start().await;
    let place = Place::redis().at(&server.url);
    let catalog = place.open().await;
    let me = catalog.register("a", "h:1", LEASE).await.unwrap();
    // The catalog's connection and the asking one (the test's earlier
    // connections close as they drop).
    eventually("two clients", LIMIT, || async {
        server.clients().await == 2
    })
    .await;

    // Demoted: a replica of a primary that is not there refuses writes.
    let primary = closed_port().to_string();
    server
        .command(&["REPLICAOF", "127.0.0.1", &primary])
        .await
        .unwrap();
    assert_unavailable(
        "a heartbeat to a replica",
        catalog.heartbeat(&me, LEASE).await,
    );
    eventually("the catalog's connection closed", LIMIT, || async {
        server.clients().await == 1
    })
    .await;

    server.command(&["REPLICAOF", "NO", "ONE"]).await.unwrap();
    catalog.heartbeat(&me, LEASE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_turned_read_only_is_unavailable_and_connected_again() {
    let admin_place = Place::postgres();
    let (admin, connection) = tokio_postgres::connect(&admin_place.url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|err| panic!("PostgreSQL at {}: {err}", admin_place.url));
    tokio::spawn(connection);
    let db = unique("mq_ro_");
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let (server, _) = admin_place
        .url
        .rsplit_once('/')
        .expect("a URL with a database");
    let place = Place::postgres().at(&format!("{server}/{db}"));
    let catalog = place.open().await;
    let me = catalog.register("a", "h:1", LEASE).await.unwrap();

    // Read-only from the next session on, as a standby is; the catalog's
    // session is cut so that it connects into one.
    let set = format!("ALTER DATABASE {db} SET default_transaction_read_only = on");
    admin.batch_execute(&set).await.unwrap();
    let cut = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    );
    admin.batch_execute(&cut).await.unwrap();
    let mut refused = None;
    for _ in 0..250 {
        match catalog.heartbeat(&me, LEASE).await {
            Err(err) if err.to_string().contains("read-only") => {
                refused = Some(err);
                break;
            }
            // The cut session, seen first, or still writable: the cut is
            // not waited for.
            Err(_) | Ok(()) => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = refused.expect("a heartbeat refused as read-only");
    match refused {
        Error::Unavailable { detail, .. } => {
            assert!(detail.contains("takes no writes"), "{detail}")
        }
        other => panic!("{other:?}"),
    }

    // Writable again for new sessions: the next call connects into one.
    let reset = format!("ALTER DATABASE {db} RESET default_transaction_read_only");
    admin.batch_execute(&reset).await.unwrap();
    catalog.heartbeat(&me, LEASE).await.unwrap();

    drop(catalog);
    place.clean().await;
    let drop = format!("DROP DATABASE {db} WITH (FORCE)");
    admin.batch_execute(&drop).await.unwrap();
    admin_place.clean().await;
}
