//! The Windows step's desktop peers: `examples/c/peers.c` linked against the
//! Windows static library (the peer brings SQLite, tokio and the catalog's
//! clients into it) and run under Wine with no daemon: `patterns` (three
//! peers in one process) must print `examples/expected/peers.txt`, and
//! `inbox` and `send`, two Windows processes, talk peer to peer.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{MINGW_GCC, NATIVE_LIBS, TARGET, Wine, run_logged, windows_path};
use crate::cmd::{self, Step, run};

const SOURCE: &str = "examples/c/peers.c";
/// How long one run of the example may take under Wine.
const LIMIT: Duration = Duration::from_secs(120);

/// Builds the example and runs it both ways (see the module docs).
pub(super) fn check(wine: &Wine, static_lib: &Path) -> Result<(), String> {
    let step = Step::start("windows: desktop peers (examples/c/peers.c) under Wine");
    let root = cmd::workspace_root();
    let exe = cmd::target_dir().join(TARGET).join("peers.exe");
    run(Command::new(MINGW_GCC)
        .current_dir(&root)
        .args(["-std=c11", "-Wall", "-Werror", "-Imq-ffi/include", SOURCE])
        .arg(static_lib)
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&exe))?;
    let dir = cmd::target_dir().join("windows-peers");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;

    let expected = fs::read_to_string(root.join("examples/expected/peers.txt"))
        .map_err(|e| format!("examples/expected/peers.txt: {e}"))?;
    let log = dir.join("patterns.log");
    let mut patterns = wine.command();
    patterns
        .arg(windows_path(&exe))
        .arg("patterns")
        .arg(windows_path(&dir.join("patterns")));
    println!("$ {}", cmd::display(&patterns));
    run_logged(&mut patterns, &log, LIMIT).map_err(|e| failed("patterns", &e, &log))?;
    let printed = lines(&log);
    if printed != expected {
        return Err(format!(
            "{SOURCE} patterns under Wine printed something else than \
             examples/expected/peers.txt:\n{printed}"
        ));
    }
    print!("{printed}");

    // Two processes: bob's peer (inbox) first, then alice's (send).
    let pair = windows_path(&dir.join("pair"));
    let inbox_log = dir.join("inbox.log");
    let file = fs::File::create(&inbox_log).map_err(|e| format!("{}: {e}", inbox_log.display()))?;
    let mut inbox = wine
        .command()
        .arg(windows_path(&exe))
        .args(["inbox", &pair])
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the inbox under Wine: {e}"))?;
    let send_log = dir.join("send.log");
    let mut send = wine.command();
    send.arg(windows_path(&exe)).args(["send", &pair]);
    println!("$ {} (with `inbox` running)", cmd::display(&send));
    let sent = run_logged(&mut send, &send_log, LIMIT);
    let received = wait(&mut inbox);
    sent.map_err(|e| failed("send", &e, &send_log))?;
    received.map_err(|e| failed("inbox", &e, &inbox_log))?;
    let (sent, received) = (lines(&send_log), lines(&inbox_log));
    if sent != "sent: message 1\nsent: message 2\nsent: message 3\nbob confirmed\n"
        || received != "received: message 1\nreceived: message 2\nreceived: message 3\n"
    {
        return Err(format!(
            "{SOURCE} inbox and send under Wine: the send printed\n{sent}the inbox\n{received}"
        ));
    }
    print!("{sent}{received}");
    println!(
        "{SOURCE}, two peers in two Windows processes: ok\n    {}",
        cmd::format_duration(step.elapsed())
    );
    Ok(())
}

/// Waits for `child` up to [`LIMIT`], killing it after that.
fn wait(child: &mut std::process::Child) -> Result<(), String> {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => return Err(format!("exited with {status}")),
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still running after {LIMIT:?}: killed"));
            }
        }
    }
}

/// A log's text with Windows' line ends made Unix ones.
fn lines(log: &Path) -> String {
    fs::read_to_string(log)
        .unwrap_or_default()
        .replace("\r\n", "\n")
}

fn failed(what: &str, error: &str, log: &Path) -> String {
    format!("{SOURCE} {what} under Wine: {error}\n{}", lines(log))
}
