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
//! The `serial` firmware talks to `mqd --serial` over UART0, which QEMU
//! connects to a pseudo-terminal (`-serial pty`): QEMU prints the terminal's
//! path (`char device redirected to /dev/pts/N`) and the peer starts `mqd` on
//! it (`crate::mqd`).
//!
//! Each QEMU runs under `timeout` (and a watchdog here), so a locked-up guest is a
//! failure, never a hang. The firmware idles in WFI, so QEMU uses little CPU.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd::{self, Step};
use crate::failure::Failure;
use crate::firmware;
use crate::peer::Peer;

mod scenarios;
mod tcp_peers;

// The firmware's own definitions of its byte patterns and exit codes, compiled
// here too so both ends agree by construction.
#[allow(dead_code)]
#[path = "../../mq-embedded/firmware/mps2-an386/src/exit_code.rs"]
mod exit_code;
#[allow(dead_code)]
#[path = "../../mq-embedded/firmware/mps2-an386/src/pattern.rs"]
mod pattern;

use exit_code::ExitCode;
use scenarios::scenarios;

pub const USAGE: &str = "\
usage: cargo xtask qemu [--list] [SCENARIO...]

Builds the firmware (as `cargo xtask firmware` does), installs qemu-system-arm
if missing (Debian package), and boots the firmware under QEMU mps2-an386 once
per scenario (all of them by default) against a peer on 127.0.0.1. Fails if a
firmware exit code or a peer's check is not what the scenario expects.

The mq and serial scenarios build and start the workspace's mqd (dev profile; set
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
    /// UART0 is a pseudo-terminal (`-serial pty`; QEMU prints its path, which
    /// the peer reads), rather than nothing.
    pub uart: bool,
    pub peer: Box<dyn Peer>,
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
            if scenario.uart { "pty" } else { "none" },
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
