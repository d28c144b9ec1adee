//! The workspace's `mqd` and `mq` for the QEMU scenarios (and, built for
//! Windows and run through Wine, for the Windows step): built once
//! ([`tools`]), `mqd` started through mq-testkit on its own data ([`Mqd`]),
//! and the `mq` CLI calls the scenarios check the broker with: publish at
//! QoS 1, replay a topic, read `/metrics`.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd::{self, Step};

/// How long `mq pub` and `mq sub` may each take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(15);

/// A replay that brings nothing new for this long has ended.
const REPLAY_QUIET: Duration = Duration::from_secs(1);

/// `mqd`'s configuration for the scenarios: its defaults (the write-ahead log,
/// `fsync = "always"`), except that topics retain enough for the replay.
const MQD_CONFIG: &str = "[retention]\nmax_messages = 100000\n";

/// The `mqd` and `mq` binaries of this workspace.
#[derive(Clone)]
pub struct MqTools {
    pub mqd: PathBuf,
    pub mq: PathBuf,
    /// What runs both, when they do not run by themselves (`wine` for the
    /// Windows build).
    pub runner: Option<Runner>,
}

/// A program that runs another (`wine mqd.exe ...`), with its environment.
#[derive(Clone)]
pub struct Runner {
    pub program: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Runner {
    /// `program BINARY` with the runner's environment.
    pub fn command(&self, binary: &Path) -> Command {
        let mut command = Command::new(&self.program);
        command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg(binary);
        command
    }
}

/// Set to `release` to run the scenarios against release builds of `mqd` and
/// `mq` (for the rates; the default is the dev profile `cargo test` builds).
pub const PROFILE_VAR: &str = "XTASK_MQD_PROFILE";

/// Builds `mqd` and `mq` once per run, in the profile [`PROFILE_VAR`] names.
pub fn tools() -> Result<MqTools, String> {
    static TOOLS: OnceLock<Result<MqTools, String>> = OnceLock::new();
    TOOLS
        .get_or_init(|| {
            let release = match std::env::var(PROFILE_VAR).unwrap_or_default().as_str() {
                "" | "dev" => false,
                "release" => true,
                other => {
                    return Err(format!(
                        "{PROFILE_VAR}={other}: expected `dev` or `release`"
                    ));
                }
            };
            let step = Step::start("build mqd and mq (cargo build -p mq-cli)");
            let mut build = cmd::cargo();
            build.args(["build", "-p", "mq-cli", "--bin", "mqd", "--bin", "mq"]);
            if release {
                build.arg("--release");
            }
            cmd::run(&mut build)?;
            let dir = cmd::target_dir().join(if release { "release" } else { "debug" });
            let tools = MqTools {
                mqd: dir.join(exe("mqd")),
                mq: dir.join(exe("mq")),
                runner: None,
            };
            for path in [&tools.mqd, &tools.mq] {
                if !path.is_file() {
                    return Err(format!("{} is missing after the build", path.display()));
                }
            }
            println!("    built in {}", cmd::format_duration(step.elapsed()));
            Ok(tools)
        })
        .clone()
}

fn exe(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

/// A running `mqd` ([`mq_testkit::Mqd`]: its own data directory, restartable
/// on the same port and data) and the `mq` CLI to talk to it.
pub struct Mqd {
    pub server: mq_testkit::Mqd,
    tools: MqTools,
}

impl Mqd {
    pub fn start(tools: MqTools, name: &str) -> Result<Mqd, String> {
        let dir = std::env::temp_dir().join(format!("xtask-mqd-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut builder = mq_testkit::Mqd::builder(MQD_CONFIG)
            .binary(&tools.mqd)
            .dir(dir);
        if let Some(runner) = &tools.runner {
            builder = builder.runner(&runner.program);
            for (key, value) in &runner.env {
                builder = builder.env(key, value);
            }
        }
        let server = builder.try_start()?;
        Ok(Mqd { server, tools })
    }

    /// Stops `mqd` (killed: a crash) and starts it again on the same ports
    /// and data, serving the serial line at `path` (`mqd --serial`, through
    /// its config file) or, with `None`, no line at all.
    pub fn restart_on_line(&mut self, path: Option<&str>) -> Result<(), String> {
        let mut config = MQD_CONFIG.to_owned();
        if let Some(path) = path {
            if path.contains(['\'', '\n']) {
                return Err(format!(
                    "serial line path `{path}` has a quote or a newline"
                ));
            }
            // A pseudo-terminal: its baud rate means nothing.
            config += &format!("[serial]\npath = '{path}'\n");
        }
        let file = self.server.dir.join("mqd.toml");
        fs::write(&file, config).map_err(|err| format!("{}: {err}", file.display()))?;
        self.server.try_restart()
    }

    /// `mq --server ADDR ...`.
    fn mq(&self) -> Command {
        let mut mq = match &self.tools.runner {
            Some(runner) => runner.command(&self.tools.mq),
            None => Command::new(&self.tools.mq),
        };
        mq.args(["--server", &self.server.addr.to_string()]);
        mq
    }

    /// Publishes each of `payloads` at QoS 1 to `topic` with `mq pub`, which
    /// exits once the broker has stored them all. Returns the running child.
    pub fn publish(&self, topic: &str, payloads: &[String]) -> Result<Child, String> {
        let mut child = self
            .mq()
            .args(["pub", "--qos", "1", topic, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start mq pub: {err}"))?;
        let mut stdin = child.stdin.take().ok_or("mq pub has no stdin")?;
        let mut text = payloads.join("\n");
        text.push('\n');
        stdin
            .write_all(text.as_bytes())
            .map_err(|err| format!("writing to mq pub: {err}"))?;
        Ok(child)
    }

    /// Every message retained on `topic` (`mq sub --from 0`), as
    /// `(sequence, payload)`, once `enough` says there are enough, or all that
    /// came before a quiet [`REPLAY_QUIET`] (or [`TOOL_TIMEOUT`]).
    pub fn replay(
        &self,
        topic: &str,
        enough: impl Fn(&[(u64, String)]) -> bool,
    ) -> Result<Vec<(u64, String)>, String> {
        let mut child = self
            .mq()
            .args(["sub", "--from", "0", topic])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start mq sub: {err}"))?;
        let stdout = child.stdout.take().ok_or("mq sub has no stdout")?;
        let (send, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + TOOL_TIMEOUT;
        let mut seen = Vec::new();
        while !enough(&seen) {
            // mqd sends what it retains at once: once it has begun, a quiet
            // second is the end (before, `mq` may still be starting).
            let mut wait = deadline.saturating_duration_since(Instant::now());
            if !seen.is_empty() {
                wait = wait.min(REPLAY_QUIET);
            }
            match lines.recv_timeout(wait) {
                // `TOPIC SEQ PAYLOAD`
                Ok(line) => match line.splitn(3, ' ').collect::<Vec<_>>()[..] {
                    [_, seq, payload] => seen.push((
                        seq.parse()
                            .map_err(|_| format!("mq sub printed `{line}`"))?,
                        payload.to_owned(),
                    )),
                    _ => return Err(format!("mq sub printed `{line}`")),
                },
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Ok(seen)
    }

    /// `mqd`'s `/metrics` text.
    pub fn metrics(&self) -> Result<String, String> {
        self.server.http_get("/metrics")
    }
}

/// Waits for a child with a deadline (killing it then); its stderr on failure.
pub fn wait_for(what: &str, mut child: Child) -> Result<(), String> {
    let deadline = Instant::now() + TOOL_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut stderr = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = err.read_to_string(&mut stderr);
                }
                return Err(format!("{what} failed ({status}): {}", stderr.trim()));
            }
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} did not finish within {TOOL_TIMEOUT:?}"));
            }
            Err(err) => return Err(format!("waiting for {what}: {err}")),
        }
    }
}
