//! Two processes share one SQLite catalog file, as the peers of one machine
//! do: this test runs itself again as a second process (the child, told so
//! by `MQ_CATALOG_CHILD_URL`), and both register a node and enqueue for one
//! recipient at the same time. Every message is stored once, in order per
//! origin, and both incarnations differ.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod support;

use mq_catalog::{Catalog, Enqueued};
use support::{Place, envelope, seqs_from};

const CHILD: &str = "MQ_CATALOG_CHILD_URL";
const EACH: u64 = 200;

/// This test binary run again as a child process that runs only `test`,
/// with `var` set to the catalog's `url` (which tells it that it is the child).
fn run_self(test: &str, var: &str, url: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test])
        .env(var, url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting a child process")
}

/// Waits for `child` and fails the test, with its output, unless it ran its
/// one test and that passed (a name that matches no test would pass empty).
async fn succeeded(child: Child, who: &str) {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{who} failed ({}):\n{}{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Registers `node` and enqueues [`EACH`] messages from it.
async fn node(url: &str, name: &str) -> u64 {
    let catalog = Catalog::open(url).await.expect("opening the shared file");
    let me = catalog
        .register(name, "127.0.0.1:1", Duration::from_secs(60))
        .await
        .expect("register");
    for seq in 1..=EACH {
        let stored = catalog.enqueue("r", &envelope(name, seq)).await;
        assert!(
            matches!(stored, Ok(Enqueued::Stored(_))),
            "{name} {seq}: {stored:?}"
        );
    }
    me.incarnation
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_sqlite_file() {
    if let Ok(url) = std::env::var(CHILD) {
        node(&url, "child").await;
        return;
    }
    // Removed afterwards, also when the test fails.
    let place = Place::sqlite();
    let url = place.url.clone();
    // The file exists before either node starts enqueueing.
    let catalog = Catalog::open(&url).await.unwrap();

    let child = run_self("two_processes_share_one_sqlite_file", CHILD, &url);
    let parent = node(&url, "parent").await;
    succeeded(child, "the second process").await;

    let live = catalog.live_nodes().await.unwrap().nodes;
    let names: Vec<&str> = live.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(names, ["child", "parent"]);
    assert!(live.iter().any(|n| n.incarnation == parent));
    assert_ne!(live[0].incarnation, live[1].incarnation);

    let all = catalog
        .read("r", None, 10 * EACH as usize)
        .await
        .unwrap()
        .messages;
    assert_eq!(all.len() as u64, 2 * EACH);
    for origin in ["child", "parent"] {
        assert_eq!(
            seqs_from(&all, origin),
            (1..=EACH).collect::<Vec<_>>(),
            "from {origin}"
        );
    }
    drop(catalog);
    place.clean().await;
}

const OPENER: &str = "MQ_CATALOG_OPENER_URL";

/// The peers of one machine often start together: the first ones to open a
/// file that does not exist yet all open it (creating it, switching it to
/// WAL, making the tables) and register; none fails with "database is
/// locked". Seen in CI: a peer example failed to start that way, and its
/// partner waited a minute for it. Each opener is a process of its own (this
/// test run again, told so by `MQ_CATALOG_OPENER_URL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_that_open_a_new_file_at_once_all_open_it() {
    if let Ok(url) = std::env::var(OPENER) {
        // All at once: when the parent says go.
        let go =
            std::path::PathBuf::from(url.strip_prefix("sqlite:").unwrap()).with_extension("go");
        while !go.exists() {
            std::thread::sleep(Duration::from_micros(200));
        }
        let catalog = Catalog::open(&url).await.expect("opening the new file");
        let id = format!("n{}", std::process::id());
        (catalog
            .register(&id, "127.0.0.1:1", Duration::from_secs(60))
            .await)
            .expect("registering");
        return;
    }
    for round in 0..10 {
        let place = Place::sqlite();
        let openers: Vec<_> = (0..6)
            .map(|_| {
                run_self(
                    "processes_that_open_a_new_file_at_once_all_open_it",
                    OPENER,
                    &place.url,
                )
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let go = place.sqlite_file().unwrap().with_extension("go");
        std::fs::write(&go, "").unwrap();
        for (i, opener) in openers.into_iter().enumerate() {
            succeeded(opener, &format!("round {round}, opener {i}")).await;
        }
        place.clean().await;
    }
}
