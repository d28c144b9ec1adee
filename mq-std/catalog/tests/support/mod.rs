//! Where the behaviour tests keep their catalogs: a fresh SQLite file, a
//! fresh Redis key prefix or PostgreSQL schema per test, removed afterwards
//! (also when the test fails). Redis and PostgreSQL are the machine's own
//! (`MQ_CATALOG_REDIS_URL`, `MQ_CATALOG_POSTGRES_URL` to use others); when
//! they do not answer, the test fails saying what to start.

#![allow(dead_code)] // each test binary uses its part

mod corrupt;
pub mod proxy;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mq_catalog::{Catalog, Envelope, Error, Interests, Nodes, Offline, Options, Origin};

pub const REDIS_URL: &str = "redis://127.0.0.1:6379/0";
pub const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// One test's catalog: its URL and options, and what to remove afterwards.
pub struct Place {
    pub url: String,
    pub options: Options,
    /// The SQLite file's directory.
    dir: Option<PathBuf>,
    cleaned: bool,
}

/// A name no other test run uses at the same time: process, time, counter.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}{}x{nanos}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Place {
    pub fn sqlite() -> Place {
        let dir = std::env::temp_dir().join(unique("mq-catalog-"));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Place {
            url: format!("sqlite:{}", dir.join("catalog.db").display()),
            options: Options::default(),
            dir: Some(dir),
            cleaned: false,
        }
    }

    pub fn redis() -> Place {
        Place::server("MQ_CATALOG_REDIS_URL", REDIS_URL)
    }

    pub fn postgres() -> Place {
        Place::server("MQ_CATALOG_POSTGRES_URL", POSTGRES_URL)
    }

    fn server(var: &str, default: &str) -> Place {
        Place {
            url: std::env::var(var).unwrap_or_else(|_| default.to_owned()),
            options: Options {
                namespace: unique("t"),
                ..Options::default()
            },
            dir: None,
            cleaned: false,
        }
    }

    /// The same kind of place on the server at `url`.
    pub fn at(mut self, url: &str) -> Place {
        url.clone_into(&mut self.url);
        self
    }

    /// The same place with another per-recipient queue limit.
    pub fn with_queue_limit(mut self, limit: u64) -> Place {
        self.options.queue_limit = limit;
        self
    }

    /// Opens a catalog here; fails the test saying what to start when the
    /// database does not answer.
    pub async fn open(&self) -> Catalog {
        match Catalog::open_with(&self.url, self.options.clone()).await {
            Ok(catalog) => catalog,
            Err(err @ Error::Unavailable { .. }) => panic!("{}", self.what_to_start(&err)),
            Err(err) => panic!("opening {}: {err}", self.url),
        }
    }

    fn what_to_start(&self, err: &Error) -> String {
        let (server, var) = if self.url.starts_with("redis") {
            ("Redis (redis-server)", "MQ_CATALOG_REDIS_URL")
        } else if self.url.starts_with("postgres") {
            ("PostgreSQL", "MQ_CATALOG_POSTGRES_URL")
        } else {
            return format!("opening {}: {err}", self.url);
        };
        format!(
            "these tests need {server} at {}: {err}. Start it, or run \
             `cargo xtask catalog`, which installs and starts what is missing, \
             or set {var} to another server. They never skip.",
            self.url
        )
    }

    /// The SQLite file, if this place is one.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|dir| dir.join("catalog.db"))
    }

    /// Where nothing answers: a file in a directory that does not exist, or
    /// the server's URL with a closed port.
    pub fn unreachable_url(&self) -> String {
        match &self.dir {
            Some(dir) => format!(
                "sqlite:{}",
                dir.join("missing").join("catalog.db").display()
            ),
            None => with_host(&self.url, &format!("127.0.0.1:{}", closed_port())),
        }
    }

    /// Removes what the test left: the SQLite directory, the Redis keys or
    /// PostgreSQL schema of its namespace.
    pub async fn clean(mut self) {
        self.cleaned = true;
        self.remove().await;
    }

    async fn remove(&self) {
        match &self.dir {
            Some(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            None => {
                if let Ok(catalog) = Catalog::open_with(&self.url, self.options.clone()).await {
                    catalog
                        .destroy()
                        .await
                        .expect("removing the test's namespace");
                }
            }
        }
    }
}

impl Drop for Place {
    /// A failed test cleans up too, on a runtime of its own.
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let place = Place {
            url: self.url.clone(),
            options: self.options.clone(),
            dir: self.dir.clone(),
            cleaned: true,
        };
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(place.remove());
        })
        .join();
    }
}

/// A message from `node` (incarnation 7) with sequence number `seq`.
pub fn envelope(node: &str, seq: u64) -> Envelope {
    Envelope {
        topic: format!("orders.{seq}"),
        payload: format!("payload {seq} from {node}").into_bytes(),
        meta: vec![0, 1, 2, seq as u8],
        origin: Origin {
            node: node.to_owned(),
            incarnation: 7,
            seq,
        },
        ttl: None,
    }
}

/// The origin sequence numbers of the messages from `origin`, in the order read.
pub fn seqs_from(messages: &[Offline], origin: &str) -> Vec<u64> {
    messages
        .iter()
        .filter(|m| m.origin.node == origin)
        .map(|m| m.origin.seq)
        .collect()
}

/// Polls `check` every 20 ms until it holds; fails the test if it does not
/// within `limit` (a generous bound that a working catalog never reaches).
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs one Redis command on the server at `url`, on a connection of its own.
pub async fn redis_command(url: &str, command: &[&str]) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cmd = redis::cmd(command[0]);
    for arg in &command[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut conn).await
}

/// `url` with its `host:port` replaced by `host`.
pub fn with_host(url: &str, host: &str) -> String {
    proxy::split(url).1(host)
}

/// A loopback port nothing listens on (just closed).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// `listed` reports exactly one unreadable interest row, of `session` in
/// `filter`, whose reason is `Malformed` and says `detail`.
pub fn one_unreadable_interest(listed: &Interests, (session, filter): (&str, &str), detail: &str) {
    match listed.unreadable.as_slice() {
        [bad] => {
            assert_eq!(
                (bad.session.as_str(), bad.filter.as_str()),
                (session, filter)
            );
            let Error::Malformed(said) = &bad.reason else {
                panic!("{bad:?}");
            };
            assert!(said.contains(detail), "{said}");
        }
        other => panic!("one unreadable row: {other:?}"),
    }
}

/// `listed` reports exactly one unreadable node row, of `id`, whose reason
/// is `Malformed` and says `detail`.
pub fn one_unreadable_node(listed: &Nodes, id: &str, detail: &str) {
    match listed.unreadable.as_slice() {
        [bad] => {
            assert_eq!(bad.id, id);
            let Error::Malformed(said) = &bad.reason else {
                panic!("{bad:?}");
            };
            assert!(said.contains(detail), "{said}");
        }
        other => panic!("one unreadable row: {other:?}"),
    }
}
