//! Three `mqd` nodes linked through a catalog (`[node]`), as real processes:
//! the messaging patterns of liner across nodes; a node killed (SIGKILL;
//! `TerminateProcess` on Windows) in the middle of a stream and restarted on
//! its data; a node whose lease expired while it was away, whose messages
//! go to its offline queue in the catalog and reach it from there after the
//! sender died too; and a node whose lease expired while another was down,
//! which that one treats as away once restarted. Once per
//! catalog: SQLite (one file shared by the three), Redis and PostgreSQL (this machine's, or those
//! `MQ_CATALOG_REDIS_URL` and `MQ_CATALOG_POSTGRES_URL` name; `cargo xtask
//! catalog` starts them where they are absent). A catalog that does not
//! answer fails the test: none is skipped.

mod support;
// One copy of the mesh tests' probes and receiving, with mq-std's peers test.
#[path = "../../tests/support/mesh.rs"]
mod mesh;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mesh::{PATIENCE, publish_all, receive, until_linked};
use mq_catalog::{Catalog, Options};
use mq_client::client::{Client, ClientOptions, SessionMode, SubscribeOptions, Subscription};
use support::Mqd;

const LEASE_MS: u64 = 2_000;
const HEARTBEAT_MS: u64 = 200;

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
    /// The Redis or PostgreSQL catalog's URL and namespace.
    place: Option<(String, String)>,
    /// The catalog's URL and options, for the test to look into it.
    catalog: (String, Options),
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
        let place = dir.is_none().then(|| (url.clone(), unique("m")));
        let namespace = match &place {
            Some((_, ns)) => format!("namespace = \"{ns}\"\n"),
            None => String::new(),
        };
        let mut options = Options::default();
        if let Some((_, ns)) = &place {
            options.namespace.clone_from(ns);
        }
        let catalog = (url.clone(), options);
        let nodes = ["a", "b", "c"]
            .iter()
            .map(|id| {
                Mqd::builder(&format!(
                    "ack_timeout_ms = 2000\n[node]\nid = \"{id}\"\ncatalog = '{url}'\n\
                     {namespace}lease_ms = {LEASE_MS}\n\
                     heartbeat_ms = {HEARTBEAT_MS}\n"
                ))
                .log("info,mq_server=debug")
                .start()
            })
            .collect();
        Mesh {
            nodes,
            dir,
            place,
            catalog,
        }
    }

    async fn catalog(&self) -> Catalog {
        let (url, options) = &self.catalog;
        (Catalog::open_with(url, options.clone()).await).expect("the catalog")
    }

    fn addr(&self, node: usize) -> String {
        self.nodes[node].addr.to_string()
    }
}

impl Drop for Mesh {
    /// Kills the nodes, then removes the catalog: the SQLite file, or the
    /// namespace's keys or schema (on a thread with a runtime of its own, as
    /// this may run inside the test's).
    fn drop(&mut self) {
        self.nodes.clear();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((url, namespace)) = self.place.take() {
            let destroy = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async {
                    let options = Options {
                        namespace,
                        ..Options::default()
                    };
                    if let Ok(catalog) = Catalog::open_with(&url, options).await {
                        let _ = catalog.destroy().await;
                    }
                });
            });
            let _ = destroy.join();
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

/// Two members of group `g` on `filter`: (node, client id) each.
async fn group(
    mesh: &Mesh,
    members: [(usize, &str); 2],
    filter: &str,
) -> (Vec<Client>, [Subscription; 2]) {
    let mut clients = Vec::new();
    for (node, id) in members {
        clients.push(client(mesh, node, id, true).await);
    }
    let subs = [
        subscribe(&clients[0], filter, Some("g")).await,
        subscribe(&clients[1], filter, Some("g")).await,
    ];
    (clients, subs)
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
                until_linked(p, "chat.room", &mut [sub]).await;
            }
        }
    }
    // So each node's links to the two others come up (a probe that came
    // late from another publisher may have ended a wait above early).
    for (i, node) in mesh.nodes.iter().enumerate() {
        let start = std::time::Instant::now();
        while node.metric("mq_mesh_links") != 2 {
            assert!(start.elapsed() < PATIENCE, "node {i}: links never up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // One-to-one: a on node a to bob on node b.
    let bob = client(mesh, 1, "bob", true).await;
    let mut inbox = subscribe(&bob, "direct.bob", None).await;
    until_linked(&pubs[0], "direct.bob", &mut [&mut inbox]).await;
    let sent = publish_all(&pubs[0], "direct.bob", "d", 50).await;
    assert_eq!(receive(&mut [&mut inbox], 50, "one-to-one").await, sent);

    // Many-to-many (and one-to-many): every node publishes, every node's
    // subscriber gets everything.
    let mut sent = BTreeSet::new();
    for (j, p) in pubs.iter().enumerate() {
        sent.extend(publish_all(p, "chat.room", &format!("m{j}."), 20).await);
    }
    for (i, (_, sub)) in chat.iter_mut().enumerate() {
        let what = format!("many-to-many on node {i}");
        assert_eq!(receive(&mut [sub], 60, &what).await, sent, "{what}");
    }

    // Topic subscription: a wildcard on node c picks the temperatures.
    let watcher = client(mesh, 2, "watcher", true).await;
    let mut temps = subscribe(&watcher, "sensors.*.temp", None).await;
    until_linked(&pubs[0], "sensors.probe.temp", &mut [&mut temps]).await;
    publish_all(&pubs[0], "sensors.kitchen.humidity", "h", 10).await;
    let sent = publish_all(&pubs[0], "sensors.kitchen.temp", "t", 10).await;
    assert_eq!(
        receive(&mut [&mut temps], 10, "topic subscription").await,
        sent
    );

    // One-to-one-of-many: workers on b and c share jobs from a, each job
    // done once.
    let (_w, mut workers) = group(mesh, [(1, "worker-b"), (2, "worker-c")], "jobs.>").await;
    // Producer-consumer: two competing consumers on node a itself take the
    // queue fed from c (local members first: node a serves them).
    let (_c, mut consumers) = group(mesh, [(0, "consumer-1"), (0, "consumer-2")], "work.>").await;
    let [w1, w2] = &mut workers;
    until_linked(&pubs[0], "jobs.probe", &mut [w1, w2]).await;
    let [k1, k2] = &mut consumers;
    until_linked(&pubs[2], "work.probe", &mut [k1, k2]).await;
    let jobs = publish_all(&pubs[0], "jobs.build", "j", 40).await;
    let work = publish_all(&pubs[2], "work.item", "w", 40).await;
    let [w1, w2] = &mut workers;
    assert_eq!(receive(&mut [w1, w2], 40, "one-to-one-of-many").await, jobs);
    let [k1, k2] = &mut consumers;
    assert_eq!(receive(&mut [k1, k2], 40, "producer-consumer").await, work);
}

/// Node c is killed while a stream flows to its persistent subscriber and
/// restarted on its data: everything acknowledged to the publisher arrives,
/// none twice.
async fn crash_mid_stream(mesh: &mut Mesh) {
    let publisher = client(mesh, 0, "stream-pub", false).await;
    let durable = client(mesh, 2, "stream-sub", true).await;
    let mut sub = subscribe(&durable, "stream.>", None).await;
    until_linked(&publisher, "stream.probe", &mut [&mut sub]).await;
    let mut sent = publish_all(&publisher, "stream.data", "s", 100).await;
    // Mid-stream: c's application has taken (and acked) half of it.
    let before = receive(&mut [&mut sub], 50, "before the crash").await;
    mesh.nodes[2].restart();
    sent.extend(publish_all(&publisher, "stream.data", "t", 200).await);
    let after = receive(&mut [&mut sub], 250, "after the crash").await;
    assert!(before.is_disjoint(&after), "a message came twice");
    assert_eq!(&before | &after, sent);
}

/// Node b is killed and stays away past its lease: node a treats it as
/// away, and what it publishes for b's persistent subscriber then goes to
/// b's offline queue in the catalog (acknowledged to the publisher once in
/// a's log, removed from there once in the catalog), and so do the jobs of
/// a group only b serves. Node a is killed too: the sender is gone. Node
/// b, restarted, drains its queue: every message reaches its subscriber
/// once and every job its worker once, and the queue is empty after. Then
/// a comes back.
async fn offline_queue(mesh: &mut Mesh) {
    let publisher = client(mesh, 0, "lease-pub", false).await;
    let away = client(mesh, 1, "lease-sub", true).await;
    let mut sub = subscribe(&away, "lease.>", None).await;
    let worker = client(mesh, 1, "lease-worker", true).await;
    let mut jobs = subscribe(&worker, "lease.>", Some("g")).await;
    until_linked(&publisher, "lease.probe", &mut [&mut sub]).await;
    until_linked(&publisher, "lease.probe", &mut [&mut jobs]).await;
    mesh.nodes[1].kill();
    until_away(mesh, 0, 1).await;
    let sent = publish_all(&publisher, "lease.data", "kept", 20).await;
    let catalog = mesh.catalog().await;
    // Each message twice: for b's subscriber, and as the group's job.
    until_queued(&catalog, "b", |n| n >= 40).await;
    drop(publisher);
    mesh.nodes[0].kill();
    mesh.nodes[1].restart();
    let got = receive(&mut [&mut sub], 20, "from the catalog").await;
    assert_eq!(got, sent, "what b's offline queue held");
    let done = receive(&mut [&mut jobs], 20, "the group's jobs from the catalog").await;
    assert_eq!(done, sent, "the group's jobs b's offline queue held");
    until_queued(&catalog, "b", |n| n == 0).await;
    // And nothing comes twice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for s in [&mut sub, &mut jobs] {
        while let Some(m) = s.try_next() {
            let text = mesh::take(m);
            assert_eq!(text, mesh::PROBE, "{text} came again");
        }
    }
    mesh.nodes[0].restart();
}

/// Waits until node `at` treats `n` peers as away.
async fn until_away(mesh: &Mesh, at: usize, n: u64) {
    let start = std::time::Instant::now();
    while mesh.nodes[at].metric("mq_mesh_away") != n {
        assert!(
            start.elapsed() < PATIENCE,
            "node {at} never had {n} peers away"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `recipient`'s offline queue holds what `want` accepts.
async fn until_queued(catalog: &Catalog, recipient: &str, want: impl Fn(u64) -> bool) {
    let start = std::time::Instant::now();
    loop {
        let n = catalog.queue_len(recipient).await.expect("the queue");
        if want(n) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{recipient}'s offline queue stays at {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Node c's lease expires while node a is down: a, restarted on its store
/// (which brought c's link session back), treats c as away once the catalog
/// does not list it, rather than waiting for its link for ever.
async fn expired_while_down(mesh: &mut Mesh) {
    mesh.nodes[0].kill();
    mesh.nodes[2].kill();
    until_away(mesh, 1, 2).await;
    mesh.nodes[0].restart();
    until_away(mesh, 0, 1).await;
}

async fn three_nodes(url: Option<&str>) {
    let mut mesh = Mesh::start(url);
    patterns(&mesh).await;
    crash_mid_stream(&mut mesh).await;
    offline_queue(&mut mesh).await;
    expired_while_down(&mut mesh).await;
}

fn server_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_sqlite() {
    three_nodes(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_redis() {
    three_nodes(Some(&server_url(
        "MQ_CATALOG_REDIS_URL",
        "redis://127.0.0.1:6379/0",
    )))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_postgres() {
    three_nodes(Some(&server_url(
        "MQ_CATALOG_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    )))
    .await;
}

/// A newer incarnation of node `a` registers (another process took its id):
/// the old `mqd` hears it at its next heartbeat and stops acting for the
/// node, exiting with an error that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_node_stops() {
    let dir = std::env::temp_dir().join(unique("mq-fence-"));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let url = format!("sqlite:{}", dir.join("catalog.db").display());
    let mut node = Mqd::start(&format!(
        "[node]\nid = \"a\"\ncatalog = '{url}'\nlease_ms = {LEASE_MS}\nheartbeat_ms = {HEARTBEAT_MS}\n"
    ));
    let catalog = Catalog::open(&url).await.expect("the catalog");
    catalog
        .register("a", "127.0.0.1:1", Duration::from_millis(LEASE_MS))
        .await
        .expect("a newer incarnation");
    let status = node.wait(PATIENCE);
    assert!(!status.success(), "{status}");
    assert!(
        node.log()
            .contains("a newer incarnation of this node registered"),
        "{}",
        node.log()
    );
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}
