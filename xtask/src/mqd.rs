//! The QEMU scenarios' `mqd` peer: the workspace's broker on a free loopback
//! port, checked through the workspace's `mq` CLI.
//!
//! [`MqdPeer`] starts `mqd` (and, for a restart, a [`Gate`] in front of it),
//! publishes the commands the firmware expects with `mq pub --qos 1`, restarts
//! `mqd` mid-run when the firmware prints its marker, and at the end checks
//! through the broker that every message went where it should:
//!
//! - telemetry: `mq sub --from 0` replays the device's telemetry topic from
//!   `mqd`'s store; every number `1..=telemetry` must be there;
//! - commands: the firmware exits 0 only once it executed every command, and
//!   says so in its `mq: done` line; the device's command queue in `mqd` must
//!   be empty (`mq_queue_depth` on `/metrics`): every command was acked.
//!
//! Nothing here decides delivery: the firmware's mq-core session and `mqd` do.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd::{self, Step};
use crate::peer::Peer;

/// How long `mq pub`, `mq sub` and `mqd`'s start may each take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(15);

/// A replay that brings nothing new for this long has ended.
const REPLAY_QUIET: Duration = Duration::from_secs(1);

/// How many reconnects the gate refuses before it lets the device back in
/// after a restart, and how long it waits for them at most.
const REFUSALS: u32 = 2;
const REFUSALS_WAIT: Duration = Duration::from_secs(3);

/// `mqd`'s configuration for the scenarios: its defaults (the write-ahead log,
/// `fsync = "always"`), except that topics retain enough for the replay.
const MQD_CONFIG: &str = "[retention]\nmax_messages = 100000\n";

/// The `mqd` and `mq` binaries of this workspace.
#[derive(Clone)]
pub struct MqTools {
    pub mqd: PathBuf,
    pub mq: PathBuf,
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
            let step = Step::start("build mqd and mq (cargo build -p mq-std)");
            let mut build = cmd::cargo();
            build.args(["build", "-p", "mq-std", "--bin", "mqd", "--bin", "mq"]);
            if release {
                build.arg("--release");
            }
            cmd::run(&mut build)?;
            let dir = cmd::target_dir().join(if release { "release" } else { "debug" });
            let tools = MqTools {
                mqd: dir.join(exe("mqd")),
                mq: dir.join(exe("mq")),
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

/// A free loopback address (the port is free when this returns).
fn free_addr() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|err| format!("no free port: {err}"))
}

/// A running `mqd` with its data in its own directory; restartable on the same
/// port and data.
struct Mqd {
    tools: MqTools,
    dir: PathBuf,
    addr: SocketAddr,
    http: SocketAddr,
    child: Option<Child>,
    starts: u32,
}

impl Mqd {
    fn start(tools: MqTools, name: &str) -> Result<Mqd, String> {
        let dir = std::env::temp_dir().join(format!("xtask-qemu-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|err| format!("create {}: {err}", dir.display()))?;
        fs::write(dir.join("mqd.toml"), MQD_CONFIG).map_err(|err| err.to_string())?;
        let mut mqd = Mqd {
            tools,
            dir,
            addr: free_addr()?,
            http: free_addr()?,
            child: None,
            starts: 0,
        };
        mqd.run()?;
        Ok(mqd)
    }

    /// Starts the process and waits until it accepts connections.
    fn run(&mut self) -> Result<(), String> {
        self.starts += 1;
        let log = fs::File::create(self.log_path(self.starts)).map_err(|err| err.to_string())?;
        let child = Command::new(&self.tools.mqd)
            .arg("--config")
            .arg(self.dir.join("mqd.toml"))
            .args(["--listen", &self.addr.to_string()])
            .args(["--http", &self.http.to_string()])
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", self.tools.mqd.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + TOOL_TIMEOUT;
        while TcpStream::connect(self.addr).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!("mqd exited with {status}:\n{}", self.log()));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "mqd did not listen within {TOOL_TIMEOUT:?}:\n{}",
                    self.log()
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Kills it at once (SIGKILL on Unix): a crash.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_path(&self, start: u32) -> PathBuf {
        self.dir.join(format!("mqd-{start}.log"))
    }

    /// The logs of every start, oldest first.
    fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                let text = fs::read_to_string(self.log_path(n)).unwrap_or_default();
                format!("--- mqd run {n} ---\n{text}")
            })
            .collect()
    }

    /// `mq --server ADDR ...`.
    fn mq(&self) -> Command {
        let mut mq = Command::new(&self.tools.mq);
        mq.args(["--server", &self.addr.to_string()]);
        mq
    }

    /// Publishes each of `payloads` at QoS 1 to `topic` with `mq pub`, which
    /// exits once the broker has stored them all. Returns the running child.
    fn publish(&self, topic: &str, payloads: &[String]) -> Result<Child, String> {
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
    fn replay(
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
    fn metrics(&self) -> Result<String, String> {
        let mut stream = TcpStream::connect_timeout(&self.http, Duration::from_secs(5))
            .map_err(|err| format!("connect to mqd's /metrics: {err}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|err| err.to_string())?;
        write!(
            stream,
            "GET /metrics HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.http
        )
        .map_err(|err| format!("ask mqd for /metrics: {err}"))?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|err| format!("read mqd's /metrics: {err}"))?;
        match response.split_once("\r\n\r\n") {
            Some((head, body))
                if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") =>
            {
                Ok(body.to_owned())
            }
            _ => Err(format!(
                "mqd answered /metrics with `{}`",
                response.lines().next().unwrap_or_default()
            )),
        }
    }
}

impl Drop for Mqd {
    fn drop(&mut self) {
        self.kill();
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Waits for a child with a deadline (killing it then); its stderr on failure.
fn wait_for(what: &str, mut child: Child) -> Result<(), String> {
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

/// A forwarder in front of `mqd` that can be shut: while shut it accepts each
/// connection and closes it at once, so the firmware's reconnects fail while
/// the scenario publishes the commands that wait for it.
struct Gate {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    refused: Arc<AtomicU32>,
    forwarded: Arc<AtomicU32>,
}

impl Gate {
    fn start(upstream: SocketAddr) -> Result<Gate, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|err| format!("gate: {err}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|err| err.to_string())?;
        let gate = Gate {
            addr: listener.local_addr().map_err(|err| err.to_string())?,
            open: Arc::new(AtomicBool::new(true)),
            stop: Arc::new(AtomicBool::new(false)),
            refused: Arc::new(AtomicU32::new(0)),
            forwarded: Arc::new(AtomicU32::new(0)),
        };
        let (open, stop) = (gate.open.clone(), gate.stop.clone());
        let (refused, forwarded) = (gate.refused.clone(), gate.forwarded.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    Err(_) => return,
                };
                let _ = client.set_nonblocking(false);
                let server = open
                    .load(Ordering::SeqCst)
                    .then(|| TcpStream::connect_timeout(&upstream, Duration::from_secs(2)).ok())
                    .flatten();
                match server {
                    Some(server) => {
                        forwarded.fetch_add(1, Ordering::SeqCst);
                        forward(client, server);
                    }
                    None => {
                        refused.fetch_add(1, Ordering::SeqCst);
                        let _ = client.shutdown(Shutdown::Both);
                    }
                }
            }
        });
        Ok(gate)
    }

    fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Copies both ways between two connections; each end's close passes on.
fn forward(a: TcpStream, b: TcpStream) {
    let _ = a.set_nodelay(true);
    let _ = b.set_nodelay(true);
    for (from, to) in [(a.try_clone(), b.try_clone()), (Ok(b), Ok(a))] {
        let (Ok(mut from), Ok(mut to)) = (from, to) else {
            continue;
        };
        thread::spawn(move || {
            let ended = io::copy(&mut from, &mut to);
            let how = if ended.is_ok() {
                Shutdown::Write
            } else {
                Shutdown::Both
            };
            let _ = to.shutdown(how);
        });
    }
}

/// When the host side publishes the commands, and whether `mqd` restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// All commands once the firmware says it subscribed.
    Live,
    /// All commands before the firmware boots; it reads them from the topic's
    /// start (`from=0`): how fast the broker delivers to it.
    Preload,
    /// The first half once the firmware subscribed. At its marker: shut the
    /// gate, kill `mqd`, start it again on the same port and data, publish the
    /// second half while the device is kept out, open the gate.
    Restart,
}

/// What the firmware's run must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Everything both ways.
    Everything,
    /// The commands published while the device was away never arrive (a clean
    /// session: the broker kept nothing for it); telemetry still all arrives.
    CommandsLost,
}

/// `mqd` as the host peer of an mq firmware run (see the module docs).
pub struct MqdPeer {
    name: &'static str,
    device: &'static str,
    telemetry: u32,
    commands: u32,
    plan: Plan,
    expect: Expect,
    mqd: Option<Mqd>,
    gate: Option<Gate>,
    publishers: Vec<(String, Child)>,
    subscribed: bool,
    restarted: bool,
    lines: Vec<String>,
}

impl MqdPeer {
    /// For a firmware run as device `device` that publishes `telemetry`
    /// messages and expects `commands` commands.
    pub fn new(
        name: &'static str,
        device: &'static str,
        telemetry: u32,
        commands: u32,
        plan: Plan,
    ) -> MqdPeer {
        MqdPeer {
            name,
            device,
            telemetry,
            commands,
            plan,
            expect: Expect::Everything,
            mqd: None,
            gate: None,
            publishers: Vec::new(),
            subscribed: false,
            restarted: false,
            lines: Vec::new(),
        }
    }

    pub fn expect(mut self, expect: Expect) -> MqdPeer {
        self.expect = expect;
        self
    }

    fn command_topic(&self) -> String {
        format!("dev.{}.cmd", self.device)
    }

    fn telemetry_topic(&self) -> String {
        format!("dev.{}.telemetry", self.device)
    }

    fn mqd(&self) -> Result<&Mqd, String> {
        self.mqd
            .as_ref()
            .ok_or_else(|| "mqd is not running".to_owned())
    }

    /// Starts `mq pub` for commands `numbers`.
    fn publish_commands(&mut self, numbers: std::ops::RangeInclusive<u32>) -> Result<(), String> {
        if numbers.is_empty() {
            return Ok(());
        }
        let what = format!("mq pub of commands {}..={}", numbers.start(), numbers.end());
        let payloads: Vec<String> = numbers.map(|n| n.to_string()).collect();
        let child = self.mqd()?.publish(&self.command_topic(), &payloads)?;
        self.publishers.push((what, child));
        Ok(())
    }

    /// Waits for every `mq pub` started so far.
    fn published(&mut self) -> Result<(), String> {
        for (what, child) in self.publishers.drain(..) {
            wait_for(&what, child)?;
        }
        Ok(())
    }

    /// The firmware is mid-run: crash `mqd`, bring it back with the device
    /// kept out, queue the second half of the commands for it, let it in.
    fn restart(&mut self) -> Result<(), String> {
        self.published()?;
        let gate = self.gate.as_ref().ok_or("no gate in front of mqd")?;
        gate.set_open(false);
        let mqd = self.mqd.as_mut().ok_or("mqd is not running")?;
        mqd.kill();
        println!("    peer: mqd killed");
        mqd.run()?;
        println!(
            "    peer: mqd restarted on {} (same data); the device is kept out",
            mqd.addr
        );
        let half = self.commands / 2;
        self.publish_commands(half + 1..=self.commands)?;
        self.published()?;
        // Until the device has tried (and failed) to come back, so it is
        // known to have been away while those commands queued for it.
        let gate = self.gate.as_ref().ok_or("no gate in front of mqd")?;
        let until = Instant::now() + REFUSALS_WAIT;
        while gate.refused.load(Ordering::SeqCst) < REFUSALS && Instant::now() < until {
            thread::sleep(Duration::from_millis(2));
        }
        println!(
            "    peer: commands {}..={} published while the device is away, {} reconnects refused; letting it in",
            half + 1,
            self.commands,
            gate.refused.load(Ordering::SeqCst)
        );
        gate.set_open(true);
        self.restarted = true;
        Ok(())
    }

    /// Telemetry `1..=telemetry` all in `mqd`'s store: a one-line account.
    fn check_telemetry(&self) -> Result<String, String> {
        if self.telemetry == 0 {
            return Ok("no telemetry".to_owned());
        }
        let total = self.telemetry as usize;
        let number = |payload: &str| -> Option<u32> {
            let digits: String = payload
                .strip_prefix('t')?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        };
        let distinct = |seen: &[(u64, String)]| {
            let mut numbers: Vec<u32> = seen.iter().filter_map(|(_, p)| number(p)).collect();
            numbers.sort_unstable();
            numbers.dedup();
            numbers.len()
        };
        let seen = self
            .mqd()?
            .replay(&self.telemetry_topic(), |seen| distinct(seen) >= total)?;
        let mut got = vec![0u32; total + 1];
        for (seq, payload) in &seen {
            match number(payload) {
                Some(n) if (1..=self.telemetry).contains(&n) => got[n as usize] += 1,
                _ => {
                    return Err(format!(
                        "telemetry seq {seq} is `{payload}`: not t1..=t{total}"
                    ));
                }
            }
        }
        let missing: Vec<usize> = (1..=total).filter(|&n| got[n] == 0).collect();
        let twice = got.iter().filter(|&&count| count > 1).count();
        if !missing.is_empty() {
            return Err(format!(
                "{} of {total} telemetry messages missing from mqd (first {:?}); {} replayed",
                missing.len(),
                &missing[..missing.len().min(10)],
                seen.len()
            ));
        }
        Ok(format!(
            "telemetry 1..={total} all stored in mqd ({twice} stored twice)"
        ))
    }

    /// The device's command queue in `mqd` is empty: every command was acked.
    fn check_acked(&self) -> Result<String, String> {
        let metrics = self.mqd()?.metrics()?;
        let queue = format!(
            "mq_queue_depth{{owner=\"{}\",filter=\"{}\",kind=\"subscription\"}} ",
            self.device,
            self.command_topic()
        );
        let depth = metrics
            .lines()
            .find_map(|line| line.strip_prefix(&queue))
            .ok_or_else(|| format!("mqd lists no queue for {}'s commands", self.device))?;
        if depth.trim() != "0" {
            return Err(format!(
                "{} commands still queued or unacked in mqd for {}",
                depth.trim(),
                self.device
            ));
        }
        Ok("its command queue in mqd is empty (all acked)".to_owned())
    }

    /// The firmware's `mq: done ...` line as `key=value` pairs.
    fn done_line(&self) -> Result<Vec<(&str, u64)>, String> {
        let line = self
            .lines
            .iter()
            .find_map(|line| line.strip_prefix("mq: done "))
            .ok_or("the firmware printed no `mq: done` line")?;
        line.split_whitespace()
            .map(|pair| {
                let (key, value) = pair.split_once('=')?;
                Some((key, value.parse().ok()?))
            })
            .collect::<Option<_>>()
            .ok_or_else(|| format!("cannot read `mq: done {line}`"))
    }

    /// The `mq: connected` lines: (session present, publishes outstanding).
    fn connections(&self) -> Vec<(bool, u64)> {
        self.lines
            .iter()
            .filter_map(|line| {
                let rest = line.strip_prefix("mq: connected (session present: ")?;
                let (present, rest) = rest.split_once("), ")?;
                let resend = rest.split_whitespace().next()?.parse().ok()?;
                Some((present == "yes", resend))
            })
            .collect()
    }

    fn check_everything(&mut self) -> Result<String, String> {
        let done = self.done_line()?;
        let value = |key: &str| done.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        if value("telemetry") != Some(u64::from(self.telemetry))
            || value("commands") != Some(u64::from(self.commands))
        {
            return Err(format!(
                "the firmware reports telemetry={:?} commands={:?}, expected {} and {}",
                value("telemetry"),
                value("commands"),
                self.telemetry,
                self.commands
            ));
        }
        let mut summary = vec![self.check_telemetry()?];
        if self.commands > 0 {
            summary.push(format!(
                "{} commands executed ({} redelivered)",
                self.commands,
                value("again").unwrap_or(0)
            ));
            summary.push(self.check_acked()?);
        }
        if self.plan == Plan::Restart {
            summary.push(self.check_resumed()?);
        }
        Ok(summary.join("; "))
    }

    /// After the restart the firmware resumed its session and had publishes to
    /// resend.
    fn check_resumed(&self) -> Result<String, String> {
        let connections = self.connections();
        let after = connections
            .get(1..)
            .filter(|rest| !rest.is_empty())
            .ok_or_else(|| {
                format!(
                    "the firmware connected {} time(s), expected a reconnect",
                    connections.len()
                )
            })?;
        if after.iter().any(|(present, _)| !present) {
            return Err("a reconnect found no session (`session present: no`)".to_owned());
        }
        let resent = after[0].1;
        if resent == 0 {
            return Err(
                "the firmware had nothing to resend after the restart: the scenario missed its point"
                    .to_owned(),
            );
        }
        let refused = self
            .gate
            .as_ref()
            .map_or(0, |g| g.refused.load(Ordering::SeqCst));
        if refused == 0 {
            return Err("the firmware never tried to reconnect while mqd was away".to_owned());
        }
        Ok(format!(
            "mqd restarted mid-run: {refused} reconnects refused while away, then the session \
             resumed with {resent} telemetry messages outstanding, resent"
        ))
    }

    /// The clean session lost the commands published while the device was
    /// away, and the firmware timed out waiting for them.
    fn check_commands_lost(&mut self) -> Result<String, String> {
        if self.lines.iter().any(|line| line.starts_with("mq: done ")) {
            return Err("the firmware finished: no command was lost".to_owned());
        }
        let connections = self.connections();
        if !connections.iter().skip(1).all(|(present, _)| !present) || connections.len() < 2 {
            return Err(format!(
                "expected reconnects without a session, got {connections:?}"
            ));
        }
        let missing = self
            .lines
            .iter()
            .find(|line| line.starts_with("error: deadline passed"))
            .ok_or("the firmware did not report its deadline")?
            .clone();
        Ok(format!(
            "{}; the firmware: {}",
            self.check_telemetry()?,
            missing.trim_start_matches("error: ")
        ))
    }
}

impl Peer for MqdPeer {
    fn prepare(&mut self) -> Result<(), String> {
        tools().map(drop)
    }

    fn start(&mut self) -> Result<SocketAddr, String> {
        let mqd = Mqd::start(tools()?, self.name)?;
        let addr = mqd.addr;
        self.mqd = Some(mqd);
        if self.plan == Plan::Preload {
            self.publish_commands(1..=self.commands)?;
            self.published()?;
        }
        if self.plan == Plan::Restart {
            let gate = Gate::start(addr)?;
            let gate_addr = gate.addr;
            self.gate = Some(gate);
            return Ok(gate_addr);
        }
        Ok(addr)
    }

    fn poll(&mut self, lines: &[String]) -> Result<(), String> {
        for line in lines {
            if line.starts_with("mq: subscribed to ") && !self.subscribed {
                self.subscribed = true;
                match self.plan {
                    Plan::Live => self.publish_commands(1..=self.commands)?,
                    Plan::Restart => self.publish_commands(1..=self.commands / 2)?,
                    Plan::Preload => {}
                }
            }
            if line.starts_with("mq: marker") && self.plan == Plan::Restart && !self.restarted {
                self.restart()?;
            }
        }
        self.lines.extend_from_slice(lines);
        Ok(())
    }

    fn finish(&mut self) -> Result<String, String> {
        let result = self.published().and_then(|()| {
            if self.plan == Plan::Restart && !self.restarted {
                return Err(
                    "the firmware never printed its marker: mqd was not restarted".to_owned(),
                );
            }
            match self.expect {
                Expect::Everything => self.check_everything(),
                Expect::CommandsLost => self.check_commands_lost(),
            }
        });
        if let (Err(err), Some(mqd)) = (&result, &self.mqd) {
            let log = mqd.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "{err}\nmqd's log (last lines):\n{}",
                tail.join("\n")
            ));
        }
        self.gate = None;
        self.mqd = None;
        result
    }
}

impl Drop for MqdPeer {
    fn drop(&mut self) {
        for (_, child) in &mut self.publishers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
