//! `mq peer`: a desktop peer with no daemon, run from the command line,
//! links with an `mqd` node of the same SQLite catalog and prints what is
//! published there.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::{Mqd, start};

#[test]
fn a_peer_from_the_command_line_gets_what_a_node_publishes() {
    let dir = std::env::temp_dir().join(format!("mq-cli-peer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let catalog = format!("sqlite:{}", dir.join("mesh.db").display());
    let node = Mqd::start(&format!(
        "[node]\nid = \"hub\"\ncatalog = '{catalog}'\nlease_ms = 2000\n"
    ));
    let data = dir.join("peer");
    let peer = start(
        None,
        &[
            "peer",
            "--id",
            "desk",
            "--catalog",
            &catalog,
            "--data-dir",
            data.to_str().unwrap(),
            "sub",
            "--count",
            "1",
            "desk.>",
        ],
        b"",
    );
    // Publish at the node until the peer, once linked, got one and exited.
    let done = Arc::new(AtomicBool::new(false));
    let probing = {
        let done = done.clone();
        let addr = node.addr.to_string();
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                let _ = std::process::Command::new(env!("CARGO_BIN_EXE_mq"))
                    .args(["--server", &addr, "pub", "desk.news", "hello"])
                    .output();
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let run = peer.wait();
    done.store(true, Ordering::Release);
    probing.join().unwrap();
    run.assert_ok();
    let line = run.lines()[0].to_owned();
    assert!(
        line.starts_with("desk.news ") && line.ends_with(" hello"),
        "{line}"
    );
    assert!(
        run.stderr.contains("peer desk listening on"),
        "{}",
        run.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
