//! `cargo xtask qemu [SCENARIO...]`: boots the firmware under QEMU's `mps2-an386`
//! against a peer on the host, once per scenario, and checks both the firmware's
//! exit code and what the peer saw.
//!
//! A [`Scenario`] names a firmware variant, its arguments, the exit code it must
//! end with, a timeout, and a [`Peer`]: the host side. The `baseline` firmware's
//! peers are a TCP echo and a throughput checker here; the `mq` firmware's is
//! `mqd` itself ([`crate::mqd::MqdPeer`]): started in `start`, restarted from
//! `poll` when the firmware prints its marker mid-run, and asked through the
//! `mq` CLI in `finish` whether every message went both ways.
//!
//! Networking is QEMU's user mode with `restrict=on`: the guest reaches nothing but
//! `10.0.2.100:7777`, which `guestfwd=...-cmd:` connects, per TCP connection, to a
//! relay process (`xtask qemu-relay ADDR`, this binary) that connects to the peer on
//! 127.0.0.1. So every guest connection is a host connection of its own, and a
//! reconnecting firmware reaches a restarted server.
//!
//! Each QEMU runs under `timeout` (and a watchdog here), so a locked-up guest is a
//! failure, never a hang. The firmware idles in WFI, so QEMU uses little CPU.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::cmd::{self, Step};
use crate::failure::Failure;
use crate::firmware;
use crate::mqd::{Expect, MqdPeer, Plan};
use crate::peer::Peer;

// The firmware's own definitions of its byte patterns and exit codes, compiled
// here too so both ends agree by construction.
#[allow(dead_code)]
#[path = "../../mq-embedded/firmware/mps2-an386/src/exit_code.rs"]
mod exit_code;
#[allow(dead_code)]
#[path = "../../mq-embedded/firmware/mps2-an386/src/pattern.rs"]
mod pattern;

use exit_code::ExitCode;
use pattern::EchoStream;

pub const USAGE: &str = "\
usage: cargo xtask qemu [--list] [SCENARIO...]

Builds the firmware (as `cargo xtask firmware` does), installs qemu-system-arm
if missing (Debian package), and boots the firmware under QEMU mps2-an386 once
per scenario (all of them by default) against a peer on 127.0.0.1. Fails if a
firmware exit code or a peer's check is not what the scenario expects.

The mq scenarios build and start the workspace's mqd (dev profile; set
XTASK_MQD_PROFILE=release for release builds). mqd reads its MQ_* environment
variables as usual, e.g. MQ_FSYNC=never or MQ_STORE=memory.";

const QEMU: &str = "qemu-system-arm";
const QEMU_PACKAGE: &str = "qemu-system-arm";

/// Where the guest finds the host peer (forwarded by QEMU's `guestfwd`).
const GUEST_PEER_IP: &str = "10.0.2.100";
const GUEST_PEER_PORT: u16 = 7777;

/// How much earlier than QEMU's timeout the firmware gives up by itself, so a
/// slow run ends with the firmware's own message.
const FIRMWARE_MARGIN: Duration = Duration::from_secs(3);

/// One QEMU boot and what it must show.
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    /// The firmware variant to boot (see `firmware::VARIANTS`).
    pub variant: &'static str,
    /// Firmware arguments; the runner adds `host`, `port` and `timeout_ms`.
    pub args: Vec<String>,
    pub expect: ExitCode,
    /// A check of what the firmware printed.
    pub output: fn(&[String]) -> Result<(), String>,
    pub timeout: Duration,
    pub peer: Box<dyn Peer>,
}

/// The firmware slept in WFI and received frames woke it: its idle is
/// interrupt-driven (the line is `idle: N sleeps, M LAN9118 interrupts`).
fn woken_by_frames(lines: &[String]) -> Result<(), String> {
    let line = lines
        .iter()
        .find(|line| line.starts_with("idle: "))
        .ok_or("the firmware printed no `idle:` line")?;
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    match numbers[..] {
        [sleeps, interrupts] if sleeps > 0 && interrupts > 0 => Ok(()),
        _ => Err(format!("not woken by the LAN9118 interrupt: `{line}`")),
    }
}

/// For runs that end before they idle.
fn anything(_: &[String]) -> Result<(), String> {
    Ok(())
}

/// Bytes each way in the throughput scenario.
const THROUGHPUT_BYTES: u64 = 4 << 20;

fn scenarios() -> Vec<Scenario> {
    let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        Scenario {
            name: "echo-dhcp",
            about: "DHCP, 300 frames of 1..=1400 bytes echoed and checked by both ends",
            variant: "baseline",
            args: args(&["mode=echo", "count=300", "size=1400"]),
            expect: ExitCode::Success,
            output: woken_by_frames,
            timeout: Duration::from_secs(20),
            peer: Box::new(EchoPeer::new(300, 1400, None)),
        },
        Scenario {
            name: "echo-static",
            about: "static address, 50 frames of 1..=512 bytes",
            variant: "baseline",
            args: args(&[
                "mode=echo",
                "count=50",
                "size=512",
                "addr=static",
                "ip=10.0.2.15/24",
                "gw=10.0.2.2",
            ]),
            expect: ExitCode::Success,
            output: woken_by_frames,
            timeout: Duration::from_secs(20),
            peer: Box::new(EchoPeer::new(50, 512, None)),
        },
        Scenario {
            name: "echo-reconnect",
            about: "3 connections one after the other, 40 frames each: each is a host connection",
            variant: "baseline",
            args: args(&["mode=echo", "count=40", "size=700", "connections=3"]),
            expect: ExitCode::Success,
            output: woken_by_frames,
            timeout: Duration::from_secs(20),
            peer: Box::new(EchoPeer::new(40, 700, None).connections(3)),
        },
        Scenario {
            name: "echo-corrupted",
            about: "the peer flips a bit in the echo: the firmware must exit with `mismatch`",
            variant: "baseline",
            args: args(&["mode=echo", "count=100", "size=1000"]),
            expect: ExitCode::Mismatch,
            output: woken_by_frames,
            timeout: Duration::from_secs(20),
            peer: Box::new(EchoPeer::new(100, 1000, Some(20_000))),
        },
        Scenario {
            name: "throughput",
            about: "4 MiB each way, checked; rates from the firmware's clock",
            variant: "baseline",
            args: vec![
                "mode=throughput".to_owned(),
                format!("bytes={THROUGHPUT_BYTES}"),
            ],
            expect: ExitCode::Success,
            output: woken_by_frames,
            timeout: Duration::from_secs(30),
            peer: Box::new(ThroughputPeer::new(THROUGHPUT_BYTES, None)),
        },
        Scenario {
            name: "throughput-corrupted",
            about: "the peer flips a bit of the download: the firmware must exit with `mismatch`",
            variant: "baseline",
            args: args(&["mode=throughput", "bytes=262144"]),
            expect: ExitCode::Mismatch,
            output: woken_by_frames,
            timeout: Duration::from_secs(20),
            peer: Box::new(ThroughputPeer::new(262_144, Some(100_000))),
        },
        Scenario {
            name: "mq-flow",
            about: "mq firmware and mqd: 100 telemetry out, 50 commands in and acked, QoS 1",
            variant: "mq",
            args: args(&["mode=mq", "telemetry=100", "commands=50", "interval_ms=2"]),
            expect: ExitCode::Success,
            output: woken_by_frames,
            timeout: Duration::from_secs(20),
            peer: Box::new(MqdPeer::new("mq-flow", "fw1", 100, 50, Plan::Live)),
        },
        Scenario {
            name: "mq-restart",
            about: "the same across a crash and restart of mqd mid-run: resumed, nothing lost",
            variant: "mq",
            args: args(&[
                "mode=mq",
                "telemetry=200",
                "commands=40",
                "interval_ms=5",
                "marker=80",
            ]),
            expect: ExitCode::Success,
            output: woken_by_frames,
            timeout: Duration::from_secs(20),
            peer: Box::new(MqdPeer::new("mq-restart", "fw1", 200, 40, Plan::Restart)),
        },
        Scenario {
            name: "mq-restart-clean",
            about: "the restart with a clean session: the commands sent while away must be lost",
            variant: "mq",
            args: args(&[
                "mode=mq",
                "session=clean",
                "telemetry=200",
                "commands=40",
                "interval_ms=5",
                "marker=80",
            ]),
            expect: ExitCode::Timeout,
            output: woken_by_frames,
            timeout: Duration::from_secs(8),
            peer: Box::new(
                MqdPeer::new("mq-restart-clean", "fw1", 200, 40, Plan::Restart)
                    .expect(Expect::CommandsLost),
            ),
        },
        Scenario {
            name: "mq-rate-up",
            about: "2000 telemetry messages at QoS 1 as fast as the outbox allows: msg/s",
            variant: "mq",
            args: args(&["mode=mq", "telemetry=2000", "commands=0", "interval_ms=0"]),
            expect: ExitCode::Success,
            output: woken_by_frames,
            timeout: Duration::from_secs(30),
            peer: Box::new(MqdPeer::new("mq-rate-up", "fw1", 2000, 0, Plan::Live)),
        },
        Scenario {
            name: "mq-rate-down",
            about: "2000 commands waiting in mqd, delivered at QoS 1 and acked: msg/s",
            variant: "mq",
            args: args(&["mode=mq", "telemetry=0", "commands=2000", "from=0"]),
            expect: ExitCode::Success,
            output: woken_by_frames,
            timeout: Duration::from_secs(30),
            peer: Box::new(MqdPeer::new("mq-rate-down", "fw1", 0, 2000, Plan::Preload)),
        },
        Scenario {
            name: "bad-argument",
            about: "an unknown mode: the firmware must exit with `bad arguments`, never connecting",
            variant: "baseline",
            args: args(&["mode=sideways"]),
            expect: ExitCode::Config,
            output: anything,
            timeout: Duration::from_secs(10),
            peer: Box::new(NoConnection::default()),
        },
    ]
}

pub fn run_qemu(args: &[String]) -> Result<(), Failure> {
    let mut all = scenarios();
    let mut wanted = Vec::new();
    for arg in args {
        match arg.as_str() {
            "--list" => {
                for s in &all {
                    println!("{:<16} {}", s.name, s.about);
                }
                return Ok(());
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            name if all.iter().any(|s| s.name == name) => wanted.push(name.to_owned()),
            other => {
                return Err(Failure::Usage(format!(
                    "no scenario `{other}` (see --list)"
                )));
            }
        }
    }
    if !wanted.is_empty() {
        all.retain(|s| wanted.iter().any(|w| w == s.name));
    }

    run_scenarios(all).map_err(Failure::Failed)
}

/// Every scenario, for `cargo xtask ci`.
pub fn check() -> Result<(), String> {
    run_scenarios(scenarios())
}

/// Builds the firmware, makes sure QEMU is there, boots each scenario and prints
/// what each showed; fails if any failed.
fn run_scenarios(mut all: Vec<Scenario>) -> Result<(), String> {
    let started = Instant::now();
    ensure_qemu()?;
    let built = firmware::build()?;
    for scenario in &mut all {
        scenario.peer.prepare()?;
    }
    let relay = std::env::current_exe()
        .map_err(|err| format!("cannot find this program for the relay: {err}"))?;

    let mut results = Vec::new();
    for mut scenario in all {
        let step = Step::start(&format!("qemu {}: {}", scenario.name, scenario.about));
        let outcome = match built.iter().find(|b| b.variant.name == scenario.variant) {
            Some(firmware) => boot(&mut scenario, &firmware.elf, &relay),
            None => Err(format!("no firmware variant `{}`", scenario.variant)),
        };
        let took = step.elapsed();
        match &outcome {
            Ok(report) => println!(
                "    ok in {}: {}",
                cmd::format_duration(took),
                report.summary
            ),
            Err(err) => println!("    FAILED in {}: {err}", cmd::format_duration(took)),
        }
        results.push((scenario.name, took, outcome));
    }

    println!();
    let mut failed = 0;
    for (name, took, outcome) in &results {
        let verdict = match outcome {
            Ok(_) => "ok".to_owned(),
            Err(err) => {
                failed += 1;
                format!("FAILED: {err}")
            }
        };
        println!("{name:<16} {:>6}  {verdict}", cmd::format_duration(*took));
    }
    for (name, _, outcome) in &results {
        if let Ok(report) = outcome {
            let rates = |l: &&String| l.starts_with("throughput ") || l.starts_with("mq rate ");
            for line in report.lines.iter().filter(rates) {
                println!("{name}: {line}");
            }
        }
    }
    println!(
        "qemu: {} passed, {failed} failed (total {})",
        results.len() - failed,
        cmd::format_duration(started.elapsed())
    );
    if failed == 0 {
        Ok(())
    } else {
        Err(format!(
            "{failed} of {} QEMU scenarios failed",
            results.len()
        ))
    }
}

/// Installs QEMU's Arm system emulator from Debian's packages if it is missing.
fn ensure_qemu() -> Result<(), String> {
    cmd::ensure_program(QEMU, QEMU_PACKAGE)?;
    let version = cmd::stdout_of(Command::new(QEMU).arg("--version"))
        .ok_or_else(|| format!("`{QEMU} --version` failed"))?;
    println!("{}", version.lines().next().unwrap_or_default());
    Ok(())
}

/// What a passing boot showed.
struct Report {
    summary: String,
    /// Everything the firmware printed.
    lines: Vec<String>,
}

/// Boots `elf` for `scenario` and checks the result.
fn boot(scenario: &mut Scenario, elf: &Path, relay: &Path) -> Result<Report, String> {
    let peer_addr = scenario.peer.start()?;
    let firmware_timeout = scenario.timeout.saturating_sub(FIRMWARE_MARGIN);
    let mut qemu = qemu_command(scenario, elf, relay, peer_addr, firmware_timeout)?;
    println!("$ {}", cmd::display(&qemu));
    let mut child = qemu
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start `timeout {QEMU}`: {err}"))?;
    let output = Output::capture(&mut child);

    // `timeout` ends QEMU; this watchdog only guards against `timeout` itself hanging.
    let watchdog = Instant::now() + scenario.timeout + Duration::from_secs(5);
    let mut lines = Vec::new();
    let status = loop {
        let new = output.lines_for(Duration::from_millis(20));
        if let Err(err) = scenario.peer.poll(&new) {
            kill(&mut child);
            let _ = scenario.peer.finish();
            return Err(format!("peer: {err}"));
        }
        lines.extend(new);
        if let Some(status) = child
            .try_wait()
            .map_err(|err| format!("waiting for QEMU: {err}"))?
        {
            break status;
        }
        if Instant::now() >= watchdog {
            kill(&mut child);
            let _ = scenario.peer.finish();
            return Err(format!(
                "QEMU still running {:?} after its timeout: killed",
                Duration::from_secs(5)
            ));
        }
    };
    let rest = output.rest();
    let peer = scenario
        .peer
        .poll(&rest)
        .and_then(|()| scenario.peer.finish());
    lines.extend(rest);

    let code = status.code();
    let named = code.and_then(ExitCode::from_status);
    if named != Some(scenario.expect) {
        let what = match (code, named) {
            (Some(124 | 137), _) => format!("QEMU timed out after {:?}", scenario.timeout),
            (Some(code), Some(named)) => format!("exit {code} ({})", named.meaning()),
            (Some(code), None) => format!("exit {code} (not a firmware code: QEMU failed?)"),
            (None, _) => format!("QEMU ended by a signal ({status})"),
        };
        let peer = match peer {
            Ok(summary) => format!("the peer saw: {summary}"),
            Err(err) => format!("the peer: {err}"),
        };
        return Err(format!(
            "expected exit {} ({}), got {what}; {peer}",
            scenario.expect as u8,
            scenario.expect.meaning()
        ));
    }
    let peer = peer.map_err(|err| format!("peer: {err}"))?;
    (scenario.output)(&lines).map_err(|err| format!("firmware output: {err}"))?;
    Ok(Report {
        summary: format!(
            "exit {} ({}); peer: {peer}",
            scenario.expect as u8,
            scenario.expect.meaning()
        ),
        lines,
    })
}

fn qemu_command(
    scenario: &Scenario,
    elf: &Path,
    relay: &Path,
    peer: SocketAddr,
    firmware_timeout: Duration,
) -> Result<Command, String> {
    let mut semihosting = String::from("enable=on,target=native,arg=mps2-an386");
    let fixed = [
        format!("host={GUEST_PEER_IP}"),
        format!("port={GUEST_PEER_PORT}"),
        format!("timeout_ms={}", firmware_timeout.as_millis()),
    ];
    for arg in fixed.iter().chain(&scenario.args) {
        if arg.contains([',', ' ']) {
            return Err(format!("firmware argument `{arg}` has a comma or a space"));
        }
        semihosting += &format!(",arg={arg}");
    }
    let relay = relay.to_str().ok_or("the relay's path is not UTF-8")?;
    if relay.contains([',', '\'']) {
        return Err(format!("the relay's path `{relay}` has a comma or a quote"));
    }
    let nic = format!(
        "user,model=lan9118,restrict=on,\
         guestfwd=tcp:{GUEST_PEER_IP}:{GUEST_PEER_PORT}-cmd:'{relay}' qemu-relay {peer}"
    );
    let mut cmd = Command::new("timeout");
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.args(["--kill-after=2"])
        .arg(scenario.timeout.as_secs().max(1).to_string())
        .arg(QEMU)
        .args([
            "-M",
            "mps2-an386",
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "none",
        ])
        .args(["-semihosting-config", &semihosting])
        .args(["-nic", &nic])
        .arg("-kernel")
        .arg(elf);
    Ok(cmd)
}

/// Ends a QEMU run that must not go on: `timeout` and QEMU, its child, which
/// share the process group `qemu_command` gave them.
fn kill(child: &mut Child) {
    #[cfg(unix)]
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// QEMU's stdout (the firmware's semihosting output) and stderr, line by line,
/// echoed as they come.
struct Output {
    lines: Receiver<Option<String>>,
    open: usize,
}

impl Output {
    fn capture(child: &mut Child) -> Output {
        let (send, lines) = mpsc::channel();
        let mut open = 0;
        let streams: [(Option<Box<dyn Read + Send>>, &str); 2] = [
            (child.stdout.take().map(|s| Box::new(s) as _), "fw"),
            (child.stderr.take().map(|s| Box::new(s) as _), "stderr"),
        ];
        for (stream, tag) in streams {
            let Some(stream) = stream else { continue };
            let send = send.clone();
            open += 1;
            thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    println!("    {tag}| {line}");
                    if send.send(Some(line)).is_err() {
                        return;
                    }
                }
                let _ = send.send(None);
            });
        }
        Output { lines, open }
    }

    /// The lines that arrive within `wait` (at least one wait, however many come).
    fn lines_for(&self, wait: Duration) -> Vec<String> {
        let mut lines = Vec::new();
        let deadline = Instant::now() + wait;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(Some(line)) => lines.push(line),
                Ok(None) => {}
                Err(RecvTimeoutError::Timeout) => return lines,
                // Both streams ended: QEMU is exiting; do not spin meanwhile.
                Err(RecvTimeoutError::Disconnected) => {
                    thread::sleep(deadline.saturating_duration_since(Instant::now()));
                    return lines;
                }
            }
        }
    }

    /// What is left once QEMU has exited (bounded: a stray holder of the pipe
    /// cannot block the run).
    fn rest(mut self) -> Vec<String> {
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.open > 0 {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(Some(line)) => lines.push(line),
                Ok(None) => self.open -= 1,
                Err(_) => break,
            }
        }
        lines
    }
}

/// `xtask qemu-relay ADDR`: run by QEMU (`guestfwd=...-cmd:`) for each guest
/// connection, with the guest's connection as stdin and stdout (and stderr, so it
/// prints nothing). Copies both ways between it and a TCP connection to `ADDR`;
/// when the guest closes its side, closes ours to the peer; when the peer closes,
/// exits (which closes the guest's).
pub fn relay(args: &[String]) -> Result<(), Failure> {
    let [addr] = args else {
        return Err(Failure::Usage("`qemu-relay` takes one address".to_owned()));
    };
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| Failure::Usage(format!("`{addr}` is not an address")))?;
    // Silent failures: stderr is the guest's connection.
    let peer =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|_| Failure::Reported)?;
    let _ = peer.set_nodelay(true);
    let mut to_peer = peer.try_clone().map_err(|_| Failure::Reported)?;
    thread::spawn(move || {
        let _ = io::copy(&mut io::stdin().lock(), &mut to_peer);
        let _ = to_peer.shutdown(Shutdown::Write);
    });
    let mut from_peer = peer;
    let mut stdout = io::stdout().lock();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        match from_peer.read(&mut buffer) {
            Ok(0) | Err(_) => return Ok(()),
            Ok(n) => {
                if stdout
                    .write_all(&buffer[..n])
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    return Ok(());
                }
            }
        }
    }
}

/// A peer that serves a number of TCP connections, one after the other, on a thread.
struct Connections {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Vec<String>, String>>>,
}

impl Connections {
    /// Listens on a free loopback port; the thread accepts `expected` connections
    /// in turn and runs `serve` on each, which sums it up in a line.
    fn start(
        expected: usize,
        mut serve: impl FnMut(TcpStream) -> Result<String, String> + Send + 'static,
    ) -> Result<(SocketAddr, Connections), String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|err| format!("listen: {err}"))?;
        let addr = listener.local_addr().map_err(|err| err.to_string())?;
        listener
            .set_nonblocking(true)
            .map_err(|err| err.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let mut seen = Vec::new();
            while seen.len() < expected {
                let stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        if stopped.load(Ordering::SeqCst) {
                            return Err(format!(
                                "the firmware made {} of {expected} connections",
                                seen.len()
                            ));
                        }
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(err) => return Err(format!("accept: {err}")),
                };
                stream
                    .set_nonblocking(false)
                    .map_err(|err| err.to_string())?;
                // The firmware's deadline ends a stalled run long before this.
                stream
                    .set_read_timeout(Some(Duration::from_secs(60)))
                    .map_err(|err| err.to_string())?;
                let n = seen.len() + 1;
                seen.push(serve(stream).map_err(|err| format!("connection {n}: {err}"))?);
            }
            Ok(seen)
        });
        Ok((
            addr,
            Connections {
                stop,
                thread: Some(thread),
            },
        ))
    }

    /// Waits for the connections' results (QEMU has exited, so they end soon);
    /// one line for all.
    fn finish(&mut self) -> Result<String, String> {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.take().ok_or("the peer was not started")?;
        let seen = thread
            .join()
            .map_err(|_| "the peer thread panicked".to_owned())??;
        Ok(match &seen[..] {
            [one] => one.clone(),
            [first, rest @ ..] if rest.iter().all(|line| line == first) => {
                format!("{} connections, each: {first}", seen.len())
            }
            _ => seen.join("; "),
        })
    }
}

/// Echoes every byte back while checking the stream is the expected frames;
/// optionally flips one bit of the echo at a byte offset (the firmware must notice).
struct EchoPeer {
    count: u32,
    size: u16,
    corrupt_at: Option<u64>,
    connections: usize,
    served: Option<Connections>,
}

impl EchoPeer {
    fn new(count: u32, size: u16, corrupt_at: Option<u64>) -> EchoPeer {
        EchoPeer {
            count,
            size,
            corrupt_at,
            connections: 1,
            served: None,
        }
    }

    /// Expects the frames `connections` times, each on a new connection.
    fn connections(self, connections: usize) -> EchoPeer {
        EchoPeer {
            connections,
            ..self
        }
    }
}

impl Peer for EchoPeer {
    fn start(&mut self) -> Result<SocketAddr, String> {
        let (count, size, corrupt_at) = (self.count, self.size, self.corrupt_at);
        let (addr, served) = Connections::start(self.connections, move |stream| {
            echo(stream, count, size, corrupt_at)
        })?;
        self.served = Some(served);
        Ok(addr)
    }

    fn finish(&mut self) -> Result<String, String> {
        self.served.as_mut().ok_or("not started")?.finish()
    }
}

fn echo(
    mut stream: TcpStream,
    count: u32,
    size: u16,
    corrupt_at: Option<u64>,
) -> Result<String, String> {
    let mut expected = EchoStream::new(count, size);
    let mut buffer = vec![0; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            // The firmware exits at once on a mismatch: its connection is reset.
            Err(_) if corrupt_at.is_some_and(|at| at < total) => break,
            Err(err) => return Err(format!("read after {total} bytes: {err}")),
        };
        for (k, &got) in buffer[..n].iter().enumerate() {
            let (frame, at) = (expected.frame, expected.at);
            match expected.next_byte() {
                Some(want) if want == got => {}
                Some(want) => {
                    return Err(format!(
                        "frame {frame} byte {at}: got {got:#04x}, want {want:#04x}"
                    ));
                }
                None => return Err(format!("{} bytes after the last frame", n - k)),
            }
        }
        if let Some(at) = corrupt_at
            && (total..total + n as u64).contains(&at)
        {
            buffer[(at - total) as usize] ^= 0x40;
        }
        if stream.write_all(&buffer[..n]).is_err() && corrupt_at.is_some() {
            break;
        }
        total += n as u64;
    }
    match corrupt_at {
        Some(at) if total <= at => Err(format!(
            "the stream ended at byte {total}, before the corruption at {at}"
        )),
        Some(at) => Ok(format!(
            "flipped a bit of echo byte {at}; the firmware stopped after {total} bytes"
        )),
        None if expected.done() => Ok(format!(
            "{count} frames, {total} bytes checked and echoed, clean close"
        )),
        None => Err(format!(
            "connection closed at frame {} of {count} ({total} bytes)",
            expected.frame
        )),
    }
}

/// Receives `bytes` (checking the pattern), sends `bytes`, then expects the
/// firmware to close; optionally flips one bit of what it sends at a byte offset
/// (the firmware must notice).
struct ThroughputPeer {
    bytes: u64,
    corrupt_at: Option<u64>,
    served: Option<Connections>,
}

impl ThroughputPeer {
    fn new(bytes: u64, corrupt_at: Option<u64>) -> ThroughputPeer {
        ThroughputPeer {
            bytes,
            corrupt_at,
            served: None,
        }
    }
}

impl Peer for ThroughputPeer {
    fn start(&mut self) -> Result<SocketAddr, String> {
        let (bytes, corrupt_at) = (self.bytes, self.corrupt_at);
        let (addr, served) =
            Connections::start(1, move |stream| throughput(stream, bytes, corrupt_at))?;
        self.served = Some(served);
        Ok(addr)
    }

    fn finish(&mut self) -> Result<String, String> {
        self.served.as_mut().ok_or("not started")?.finish()
    }
}

fn throughput(
    mut stream: TcpStream,
    bytes: u64,
    corrupt_at: Option<u64>,
) -> Result<String, String> {
    let mut buffer = vec![0; 64 * 1024];
    let mut received = 0u64;
    let mut first = None;
    while received < bytes {
        let want = buffer.len().min((bytes - received) as usize);
        let n = stream
            .read(&mut buffer[..want])
            .map_err(|err| format!("read after {received} bytes: {err}"))?;
        if n == 0 {
            return Err(format!(
                "the firmware closed after sending {received} of {bytes} bytes"
            ));
        }
        first.get_or_insert_with(Instant::now);
        for (k, &got) in buffer[..n].iter().enumerate() {
            let at = received + k as u64;
            if got != pattern::stream_byte(at) {
                return Err(format!(
                    "stream byte {at}: got {got:#04x}, want {:#04x}",
                    pattern::stream_byte(at)
                ));
            }
        }
        received += n as u64;
    }
    let up = first.map_or(Duration::ZERO, |t| t.elapsed());

    let mut sent = 0u64;
    while sent < bytes {
        let n = buffer.len().min((bytes - sent) as usize);
        for (k, slot) in buffer[..n].iter_mut().enumerate() {
            let at = sent + k as u64;
            *slot = pattern::stream_byte(at) ^ if corrupt_at == Some(at) { 0x40 } else { 0 };
        }
        match stream.write_all(&buffer[..n]) {
            Ok(()) => sent += n as u64,
            // The firmware exits at once on a mismatch: its connection is reset.
            Err(_) if corrupt_at.is_some_and(|at| at < sent + n as u64) => break,
            Err(err) => return Err(format!("write after {sent} bytes: {err}")),
        }
    }
    if let Some(at) = corrupt_at {
        return Ok(format!(
            "flipped a bit of stream byte {at} sent to the firmware"
        ));
    }
    match stream.read(&mut buffer) {
        Ok(0) => {}
        Ok(n) => return Err(format!("{n} bytes more than expected from the firmware")),
        Err(err) => return Err(format!("waiting for the firmware to close: {err}")),
    }
    let rate = bytes as f64 / up.as_secs_f64().max(1e-9);
    Ok(format!(
        "{bytes} bytes each way checked; up seen from the host: {:.1} MiB/s",
        rate / f64::from(1 << 20)
    ))
}

/// For runs that must end before any connection: fails if one came.
#[derive(Default)]
struct NoConnection {
    listener: Option<TcpListener>,
}

impl Peer for NoConnection {
    fn start(&mut self) -> Result<SocketAddr, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|err| format!("listen: {err}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|err| err.to_string())?;
        let addr = listener.local_addr().map_err(|err| err.to_string())?;
        self.listener = Some(listener);
        Ok(addr)
    }

    fn finish(&mut self) -> Result<String, String> {
        match self.listener.as_ref().ok_or("not started")?.accept() {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                Ok("no connection, as expected".to_owned())
            }
            Err(err) => Err(format!("accept: {err}")),
            Ok(_) => Err("the firmware connected".to_owned()),
        }
    }
}
