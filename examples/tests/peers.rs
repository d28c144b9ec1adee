//! The peer examples (`peers` in Rust, `c/peers.c`, `python/peers.py`): no
//! `mqd` anywhere, only desktop peers in the programs' processes, each
//! example in a fresh directory (its SQLite catalog and the peers' logs).
//!
//! - In every language, `patterns` (three peers in one process, liner's six
//!   patterns) must print exactly `expected/peers.txt`.
//! - Two separate processes talk peer to peer: `inbox` (bob's peer) and
//!   `send` (alice's peer), each language once in each role, across
//!   languages.

#[path = "../../mq-ffi/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const LIMIT: Duration = Duration::from_secs(120);

fn here(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The program of `language` (`Rust`, `C` or `Python`), to which the mode
/// and the directory are appended.
fn program(language: &str) -> Command {
    match language {
        "Rust" => Command::new(env!("CARGO_BIN_EXE_peers")),
        "C" => Command::new(compiled()),
        "Python" => {
            let mut cmd = tool("python3");
            cmd.arg(here("python/peers.py"))
                .env("PYTHONPATH", here("../mq-ffi/python"))
                .env("MQ_LIB", artifacts().cdylib());
            cmd
        }
        other => panic!("no peer example in {other}"),
    }
}

/// `c/peers.c` compiled against the static library (once per test binary).
fn compiled() -> &'static Path {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let a = artifacts();
        let out = scratch("examples-c-peers").join("peers");
        let mut cmd = tool("gcc");
        cmd.args(["-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(a.include_dir())
            .arg(here("c/peers.c"))
            .arg(a.staticlib())
            .args(native_libs())
            .arg("-o")
            .arg(&out);
        expect_success("compiling peers.c", &run_bounded(&mut cmd, LIMIT));
        out
    })
}

/// A fresh directory for one example's catalog and logs.
fn fresh(name: &str) -> PathBuf {
    let dir = scratch(&format!("peers-{name}"));
    std::fs::create_dir_all(&dir).expect("a directory");
    dir
}

#[test]
fn liner_patterns_between_peers_in_every_language() {
    let expected = std::fs::read_to_string(here("expected/peers.txt")).expect("expected output");
    for language in ["Rust", "C", "Python"] {
        let dir = fresh(&format!("patterns-{language}"));
        let mut cmd = program(language);
        cmd.arg("patterns").arg(&dir);
        let out = run_bounded(&mut cmd, LIMIT);
        let stdout = expect_success(&format!("peers patterns in {language}"), &out);
        assert_eq!(
            stdout, expected,
            "peers patterns in {language} printed something else"
        );
    }
}

/// `inbox` in `receiver`'s language and `send` in `sender`'s, as two
/// processes with a peer each: the three messages arrive, in order, and the
/// sender sees the receiver's confirmation.
fn two_processes(receiver: &str, sender: &str) {
    let dir = fresh(&format!("pair-{receiver}-{sender}"));
    let mut inbox = program(receiver)
        .arg("inbox")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("inbox starts");
    let sent = run_bounded(program(sender).arg("send").arg(&dir), LIMIT);
    let deadline = Instant::now() + LIMIT;
    while inbox.try_wait().expect("waiting works").is_none() {
        if Instant::now() > deadline {
            let _ = inbox.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let received = inbox.wait_with_output().expect("its output");
    let what = format!("{receiver}'s inbox and {sender}'s send");
    assert_eq!(
        expect_success(&format!("{what}: send"), &sent),
        "sent: message 1\nsent: message 2\nsent: message 3\nbob confirmed\n"
    );
    assert_eq!(
        expect_success(&format!("{what}: inbox"), &received),
        "received: message 1\nreceived: message 2\nreceived: message 3\n"
    );
}

#[test]
fn two_processes_talk_peer_to_peer_rust_to_c() {
    two_processes("C", "Rust");
}

#[test]
fn two_processes_talk_peer_to_peer_c_to_python() {
    two_processes("Python", "C");
}

#[test]
fn two_processes_talk_peer_to_peer_python_to_rust() {
    two_processes("Rust", "Python");
}
