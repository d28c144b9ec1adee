//! Three `mqd` nodes linked through a catalog (`[node]`), as real processes:
//! the messaging patterns of liner across nodes, a node killed (SIGKILL;
//! `TerminateProcess` on Windows) in the middle of a stream and restarted on
//! its data, and a node whose lease expired while it was away, which gets
//! nothing published meanwhile. Once per catalog: SQLite (one file shared by
//! the three), Redis and PostgreSQL (this machine's, or those
//! `MQ_CATALOG_REDIS_URL` and `MQ_CATALOG_POSTGRES_URL` name; `cargo xtask
//! catalog` starts them where they are absent). A catalog that does not
//! answer fails the test: none is skipped.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mq_client::client::{
    Client, ClientOptions, Message, PublishOptions, QoS, SessionMode, SubscribeOptions,
    Subscription,
};
use support::Mqd;

/// How long anything the test waits for may take before it fails.
const PATIENCE: Duration = Duration::from_secs(60);
const LEASE_MS: u64 = 2_000;
const HEARTBEAT_MS: u64 = 200;
/// The payload of the messages that find out whether nodes are linked (QoS
/// 0; late ones are skipped).
const PROBE: &str = "probe";

fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Three nodes `a`, `b`, `c` in one catalog namespace.
struct Mesh {
    nodes: Vec<Mqd>,
    /// The SQLite catalog's directory.
    dir: Option<std::path::PathBuf>,
}

impl Mesh {
    fn start(url: Option<&str>) -> Mesh {
        let (url, dir) = match url {
            Some(url) => (url.to_owned(), None),
            None => {
                let dir = std::env::temp_dir().join(unique("mq-mesh-"));
                std::fs::create_dir_all(&dir).expect("a temporary directory");
                let url = format!("sqlite:{}", dir.join("catalog.db").display());
                (url, Some(dir))
            }
        };
        // Redis and PostgreSQL: a namespace of this run; SQLite: the file.
        let namespace = match dir {
            Some(_) => String::new(),
            None => format!("namespace = \"{}\"\n", unique("m")),
        };
        let nodes = ["a", "b", "c"]
            .iter()
            .map(|id| {
                Mqd::builder(&format!(
                    "ack_timeout_ms = 2000\n[node]\nid = \"{id}\"\ncatalog = \"{url}\"\n\
                     {namespace}lease_ms = {LEASE_MS}\n\
                     heartbeat_ms = {HEARTBEAT_MS}\n"
                ))
                .log("info,mq_server=debug")
                .start()
            })
            .collect();
        Mesh { nodes, dir }
    }

    fn addr(&self, node: usize) -> String {
        self.nodes[node].addr.to_string()
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn client(mesh: &Mesh, node: usize, id: &str, persistent: bool) -> Client {
    let mut opts = ClientOptions::new(mesh.addr(node));
    opts.client_id = id.to_owned();
    opts.session = match persistent {
        true => SessionMode::Resume,
        false => SessionMode::Clean,
    };
    opts.reconnect_max = Duration::from_millis(500);
    Client::connect(opts).await.expect("connect")
}

async fn subscribe(c: &Client, filter: &str, group: Option<&str>) -> Subscription {
    let mut opts = SubscribeOptions::default();
    opts.group = group.map(str::to_owned);
    opts.credit = 64;
    c.subscribe(filter, &opts).await.expect("subscribe")
}

async fn publish(c: &Client, topic: &str, payload: String) {
    c.publish(topic, payload, &PublishOptions::new(QoS::AtLeastOnce))
        .await
        .expect("acknowledged");
}

/// The next message's payload within PATIENCE; the message is acked.
async fn next(sub: &mut Subscription, what: &str) -> String {
    let m = tokio::time::timeout(PATIENCE, sub.next())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing arrived"))
        .unwrap_or_else(|| panic!("{what}: the subscription ended"));
    take(m)
}

/// The payload of `m`, acked.
fn take(m: Message) -> String {
    let text = String::from_utf8_lossy(&m.payload).into_owned();
    if m.needs_ack() {
        m.ack().expect("ack");
    }
    text
}

/// Receives `n` messages besides probes, failing on a duplicate.
async fn receive(sub: &mut Subscription, n: usize, what: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    while seen.len() < n {
        let t = next(sub, what).await;
        if t != PROBE {
            assert!(seen.insert(t.clone()), "{what}: {t} twice");
        }
    }
    seen
}

/// Publishes probes on `from` until `sub` (on another node, `topic`) got
/// one: the link between them carries the subscription's interest.
async fn until_linked(from: &Client, topic: &str, sub: &mut Subscription) {
    let start = Instant::now();
    loop {
        from.publish(topic, PROBE, &PublishOptions::new(QoS::AtMostOnce))
            .await
            .expect("probe");
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            take(m);
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{topic}: the nodes never linked"
        );
    }
}

fn expected(prefix: &str, range: std::ops::Range<u32>) -> BTreeSet<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

/// One-to-one, one-to-one-of-many, one-to-many, many-to-many, topic
/// subscription, producer-consumer: each message reaches whom it should,
/// once.
async fn patterns(mesh: &Mesh) {
    let pubs = [
        client(mesh, 0, "pub-a", false).await,
        client(mesh, 1, "pub-b", false).await,
        client(mesh, 2, "pub-c", false).await,
    ];
    // Every node's interest reached every other node.
    let mut chat = Vec::new();
    for (i, node) in ["a", "b", "c"].iter().enumerate() {
        let c = client(mesh, i, &format!("chat-{node}"), true).await;
        let sub = subscribe(&c, "chat.room", None).await;
        chat.push((c, sub));
    }
    for (i, (_, sub)) in chat.iter_mut().enumerate() {
        for (j, p) in pubs.iter().enumerate() {
            if i != j {
                until_linked(p, "chat.room", sub).await;
            }
        }
    }

    // One-to-one: a on node a to bob on node b.
    let bob = client(mesh, 1, "bob", true).await;
    let mut inbox = subscribe(&bob, "direct.bob", None).await;
    until_linked(&pubs[0], "direct.bob", &mut inbox).await;
    for i in 0..50 {
        publish(&pubs[0], "direct.bob", format!("d{i}")).await;
    }
    assert_eq!(
        receive(&mut inbox, 50, "one-to-one").await,
        expected("d", 0..50)
    );

    // Many-to-many (and one-to-many): every node publishes, every node's
    // subscriber gets everything.
    for (j, p) in pubs.iter().enumerate() {
        for i in 0..20 {
            publish(p, "chat.room", format!("m{j}.{i}")).await;
        }
    }
    for (i, (_, sub)) in chat.iter_mut().enumerate() {
        let got = receive(sub, 60, &format!("many-to-many on node {i}")).await;
        let want: BTreeSet<String> = (0..3)
            .flat_map(|j| (0..20).map(move |i| format!("m{j}.{i}")))
            .collect();
        assert_eq!(got, want, "node {i}");
    }

    // Topic subscription: a wildcard on node c picks the temperatures.
    let watcher = client(mesh, 2, "watcher", true).await;
    let mut temps = subscribe(&watcher, "sensors.*.temp", None).await;
    until_linked(&pubs[0], "sensors.probe.temp", &mut temps).await;
    for i in 0..10 {
        publish(&pubs[0], "sensors.kitchen.humidity", format!("h{i}")).await;
        publish(&pubs[0], "sensors.kitchen.temp", format!("t{i}")).await;
    }
    assert_eq!(
        receive(&mut temps, 10, "topic subscription").await,
        expected("t", 0..10)
    );

    // One-to-one-of-many: workers on b and c share jobs from a, each job
    // done once.
    let mut workers = Vec::new();
    for (node, id) in [(1, "worker-b"), (2, "worker-c")] {
        let c = client(mesh, node, id, true).await;
        let sub = subscribe(&c, "jobs.>", Some("workers")).await;
        workers.push((c, sub));
    }
    // Producer-consumer: two competing consumers on node a itself take the
    // queue fed from c (local members first: node a serves them).
    let mut consumers = Vec::new();
    for id in ["consumer-1", "consumer-2"] {
        let c = client(mesh, 0, id, true).await;
        let sub = subscribe(&c, "work.>", Some("consumers")).await;
        consumers.push((c, sub));
    }
    // The groups are declared once a probe reaches one member.
    for (filter, from, members) in [
        ("jobs.probe", &pubs[0], &mut workers),
        ("work.probe", &pubs[2], &mut consumers),
    ] {
        let start = Instant::now();
        'probe: loop {
            from.publish(filter, PROBE, &PublishOptions::new(QoS::AtMostOnce))
                .await
                .expect("probe");
            tokio::time::sleep(Duration::from_millis(200)).await;
            for (_, sub) in members.iter_mut() {
                if let Some(m) = sub.try_next() {
                    take(m);
                    break 'probe;
                }
            }
            assert!(start.elapsed() < PATIENCE, "{filter}: never linked");
        }
    }
    for i in 0..40 {
        publish(&pubs[0], "jobs.build", format!("j{i}")).await;
        publish(&pubs[2], "work.item", format!("w{i}")).await;
    }
    for (members, prefix, what) in [
        (&mut workers, "j", "one-to-one-of-many"),
        (&mut consumers, "w", "producer-consumer"),
    ] {
        let mut done: BTreeMap<String, usize> = BTreeMap::new();
        let start = Instant::now();
        while done.len() < 40 {
            let mut any = false;
            for (k, (_, sub)) in members.iter_mut().enumerate() {
                if let Some(m) = sub.try_next() {
                    any = true;
                    let t = take(m);
                    if t != PROBE {
                        assert!(done.insert(t.clone(), k).is_none(), "{what}: {t} twice");
                    }
                }
            }
            if !any {
                assert!(start.elapsed() < PATIENCE, "{what}: {} of 40", done.len());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let keys: BTreeSet<String> = done.keys().cloned().collect();
        assert_eq!(keys, expected(prefix, 0..40), "{what}");
    }
}

/// Node c is killed while a stream flows to its persistent subscriber and
/// restarted on its data: everything acknowledged to the publisher arrives,
/// none twice.
async fn crash_mid_stream(mesh: &mut Mesh) {
    let publisher = client(mesh, 0, "stream-pub", false).await;
    let durable = client(mesh, 2, "stream-sub", true).await;
    let mut sub = subscribe(&durable, "stream.>", None).await;
    until_linked(&publisher, "stream.probe", &mut sub).await;
    const N: u32 = 300;
    let mut seen = BTreeSet::new();
    for i in 0..N {
        publish(&publisher, "stream.data", format!("s{i}")).await;
        if i == 100 {
            // Mid-stream: what c got so far is acked by the application.
            while seen.len() < 50 {
                let t = next(&mut sub, "before the crash").await;
                if t != PROBE {
                    assert!(seen.insert(t.clone()), "{t} twice");
                }
            }
            mesh.nodes[2].restart();
        }
    }
    while seen.len() < N as usize {
        let t = next(&mut sub, "after the crash").await;
        if t != PROBE {
            assert!(seen.insert(t.clone()), "{t} twice after the crash");
        }
    }
    assert_eq!(seen, expected("s", 0..N));
}

/// Node b is killed and stays away past its lease: node a forgets it (its
/// link session goes), and what is published then never reaches b, whose
/// subscriber sees only what came after b was back.
async fn expired_lease(mesh: &mut Mesh) {
    let publisher = client(mesh, 0, "lease-pub", false).await;
    let away = client(mesh, 1, "lease-sub", true).await;
    let mut sub = subscribe(&away, "lease.>", None).await;
    until_linked(&publisher, "lease.probe", &mut sub).await;
    mesh.nodes[1].kill();
    let start = Instant::now();
    loop {
        let sessions = mesh.nodes[0].http_get("/api/sessions").expect("sessions");
        if !sessions.contains("\"$node.b\"") {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "node a never forgot b");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..20 {
        publish(&publisher, "lease.data", format!("lost{i}")).await;
    }
    mesh.nodes[1].restart();
    // b registers again and links anew; from then on it gets its messages.
    until_linked(&publisher, "lease.probe", &mut sub).await;
    publish(&publisher, "lease.data", "after".to_owned()).await;
    loop {
        let t = next(&mut sub, "after the lease").await;
        assert!(
            !t.starts_with("lost"),
            "{t} reached a node whose lease expired"
        );
        if t == "after" {
            break;
        }
    }
}

async fn mesh(url: Option<&str>) {
    let mut mesh = Mesh::start(url);
    patterns(&mesh).await;
    crash_mid_stream(&mut mesh).await;
    expired_lease(&mut mesh).await;
}

fn server_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_sqlite() {
    mesh(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_redis() {
    mesh(Some(&server_url(
        "MQ_CATALOG_REDIS_URL",
        "redis://127.0.0.1:6379/0",
    )))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_postgres() {
    mesh(Some(&server_url(
        "MQ_CATALOG_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    )))
    .await;
}
