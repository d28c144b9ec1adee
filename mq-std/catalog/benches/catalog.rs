//! What the catalog's operations cost on each backend, as a node uses them:
//! heartbeats; enqueueing one message at a time for an away session (one
//! node, then four nodes at once for the same recipient), and in runs of
//! 256 in one call (`enqueue_all`, as a node hands on a batch); draining the
//! queue when the recipient is back (read 100, ack them, again). Prints a
//! table.
//!
//! `cargo bench -p mq-catalog --bench catalog [-- MESSAGES]` (default 2000
//! per run). SQLite in a temporary file; Redis and PostgreSQL of this machine
//! (`MQ_CATALOG_REDIS_URL`, `MQ_CATALOG_POSTGRES_URL` as for the tests), each
//! in a namespace of its own, removed afterwards. A server that does not
//! answer fails the run; nothing is skipped.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mq_catalog::{Catalog, Envelope, Error, Options, Origin};

const PAYLOAD: usize = 256;
const NODES: u64 = 4;
const BATCH: usize = 100;
/// A node's batch of items handed on (`mq_core::broker::OFFLINE_BATCH`).
const RUN: u64 = 256;

struct Figures {
    heartbeat: Duration,
    enqueue: Duration,
    enqueue_all: f64,
    enqueue_nodes: f64,
    drain: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let messages: u64 = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .map(|n| n.parse().expect("MESSAGES is a number"))
        .unwrap_or(2000);
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let dir = std::env::temp_dir().join(format!("mq-catalog-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let env = |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let namespaced = Options {
        namespace: format!("bench{stamp}"),
        ..Options::default()
    };
    let places = [
        (
            "sqlite",
            format!("sqlite:{}", dir.join("catalog.db").display()),
            Options::default(),
        ),
        (
            "redis",
            env("MQ_CATALOG_REDIS_URL", "redis://127.0.0.1:6379/0"),
            namespaced.clone(),
        ),
        (
            "postgres",
            env(
                "MQ_CATALOG_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            ),
            namespaced,
        ),
    ];
    println!(
        "{messages} messages of {PAYLOAD} bytes per run; {NODES} nodes; drained {BATCH} at a time"
    );
    println!(
        "{:<9} {:>13} {:>12} {:>23} {:>19} {:>12}",
        "backend",
        "heartbeat µs",
        "enqueue µs",
        "enqueue msg/s, 4 nodes",
        "enqueue_all msg/s",
        "drain msg/s"
    );
    let mut failed = false;
    for (name, url, options) in places {
        let options = Options {
            queue_limit: messages * NODES,
            ..options
        };
        match run(&url, &options, messages).await {
            Ok(f) => println!(
                "{name:<9} {:>13.0} {:>12.0} {:>23.0} {:>19.0} {:>12.0}",
                f.heartbeat.as_secs_f64() * 1e6,
                f.enqueue.as_secs_f64() * 1e6,
                f.enqueue_nodes,
                f.enqueue_all,
                f.drain
            ),
            Err(err) => {
                println!("{name:<9} failed: {err}");
                failed = true;
            }
        }
        if let Ok(catalog) = Catalog::open_with(&url, options).await {
            let _ = catalog.destroy().await;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if failed {
        std::process::exit(1);
    }
}

fn envelope(node: u64, seq: u64) -> Envelope {
    Envelope {
        topic: "orders.eu.created".to_owned(),
        payload: vec![b'x'; PAYLOAD],
        meta: Vec::new(),
        origin: Origin {
            node: format!("node-{node}"),
            incarnation: 1,
            seq,
        },
        ttl: None,
    }
}

async fn run(url: &str, options: &Options, messages: u64) -> Result<Figures, Error> {
    let catalog = Catalog::open_with(url, options.clone()).await?;
    let lease = Duration::from_secs(30);
    let me = catalog.register("node-0", "127.0.0.1:7000", lease).await?;
    let beats = (messages / 4).max(1);
    let started = Instant::now();
    for _ in 0..beats {
        catalog.heartbeat(&me, lease).await?;
    }
    let heartbeat = started.elapsed() / beats as u32;

    let started = Instant::now();
    for seq in 0..messages {
        catalog.enqueue("away", &envelope(0, seq)).await?;
    }
    let enqueue = started.elapsed() / messages as u32;

    let started = Instant::now();
    let drained = drain(&catalog, "away").await?;
    assert_eq!(drained, messages, "every message drained once");
    let drain_rate = drained as f64 / started.elapsed().as_secs_f64();

    let mut nodes = Vec::new();
    for node in 1..=NODES {
        let catalog = Catalog::open_with(url, options.clone()).await?;
        nodes.push(async move {
            for seq in 0..messages {
                catalog.enqueue("away", &envelope(node, seq)).await?;
            }
            Ok::<_, Error>(())
        });
    }
    let started = Instant::now();
    let tasks: Vec<_> = nodes.into_iter().map(tokio::spawn).collect();
    for task in tasks {
        task.await.expect("an enqueueing node")?;
    }
    let enqueue_nodes = (messages * NODES) as f64 / started.elapsed().as_secs_f64();
    assert_eq!(drain(&catalog, "away").await?, messages * NODES);

    let started = Instant::now();
    let mut seq = 0;
    while seq < messages {
        let run: Vec<Envelope> = (seq..messages.min(seq + RUN))
            .map(|s| envelope(0, s))
            .collect();
        for answer in catalog.enqueue_all("away", &run).await? {
            answer?;
        }
        seq += RUN;
    }
    let enqueue_all = messages as f64 / started.elapsed().as_secs_f64();
    assert_eq!(drain(&catalog, "away").await?, messages);
    Ok(Figures {
        heartbeat,
        enqueue,
        enqueue_all,
        enqueue_nodes,
        drain: drain_rate,
    })
}

/// Reads and acks `recipient`'s queue until it is empty; how many it acked.
async fn drain(catalog: &Catalog, recipient: &str) -> Result<u64, Error> {
    let mut drained = 0;
    loop {
        let batch = catalog.read(recipient, None, BATCH).await?.messages;
        if batch.is_empty() {
            return Ok(drained);
        }
        let ids: Vec<u64> = batch.iter().map(|m| m.id).collect();
        drained += catalog.ack(recipient, &ids).await?;
    }
}
