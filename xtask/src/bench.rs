//! `cargo xtask bench`: mq side by side with NATS, Mosquitto, Redis, ZeroMQ,
//! liner and raw loopback TCP.
//!
//! Builds the peer benchmark (`xtask/peers`, a package of its own so that the
//! peers' client crates stay out of the workspace's builds) and `mqd` in
//! release, makes sure the peers' servers answer (the machine's own on their
//! standard ports, else Debian's packages installed and started on free
//! loopback ports, and stopped at the end), runs the benchmark, and rewrites
//! the marked section of `BENCHMARKS.md` with its table, the machine, the
//! versions and the command. `cargo xtask ci` runs [`ci_smoke`]: clippy, the
//! package's tests and a few-second run against mq (both protocols, and over TLS) and raw TCP only (about
//! 3 to 5 minutes, nearly all of it compiling the peers' client crates).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{self, cargo, run};
use crate::failure::Failure;

pub const USAGE: &str = "\
usage: cargo xtask bench [--quick] [--workloads 1,2,3,...,9] [--systems mq,nats,...]
                         [--pause-compilers] [--no-write] [--limit SECS] [--rounds N]

  --quick            a tenth of the counts (the table is printed, BENCHMARKS.md is left alone)
  --workloads LIST   workloads to run: 1 (1 windowed, 1p a plain loop), 2 (2a 1 KiB, 2b 64 KiB),
                     3, 4, 5, 6, and peer to peer (mq-peer and liner, at least once):
                     7 send_to 1-to-1, 8 send_all fan-out, 9 liner's seed cycles
  --systems LIST     mq, mq-mqtt, mq-nats, mq-tls, nats, mosquitto, redis, zeromq, liner, tcp,
                     mq-peer (mq's desktop peers, no mqd)
  --pause-compilers  SIGSTOP every rustc, cc and ld during each timed run (SIGCONT after)
  --no-write         do not rewrite BENCHMARKS.md (implied by --quick and by a selection)
  --limit SECS       longest a run may publish (default 60)
  --rounds N         runs of each row, the median reported (default 3)";

const BEGIN: &str = "<!-- BEGIN cargo xtask bench -->";
const END: &str = "<!-- END cargo xtask bench -->";

/// The C and C++ compilers that zmq-sys (libzmq) and rusqlite (SQLite) build with.
const BUILD_PACKAGES: &[&str] = &["gcc", "g++", "make", "pkg-config"];

fn peers_manifest() -> PathBuf {
    cmd::workspace_root().join("xtask/peers/Cargo.toml")
}

/// Where the peer benchmark's programs are built: the workspace's target
/// directory, where cargo keeps each build of a crate apart by its features
/// and profile, so the dependencies both workspaces build alike (tokio, serde
/// and most of the rest) are compiled once, not once per workspace.
pub(crate) fn peers_target() -> PathBuf {
    cmd::target_dir()
}

/// `cargo <args> --manifest-path xtask/peers/mesh/Cargo.toml` (mq's peers for
/// the bench, a program of its own: see its manifest) into the same target
/// dir, so that its program lands next to the bench's.
pub(crate) fn mesh_cargo(args: &[&str]) -> Command {
    let mut c = cargo();
    c.env("CARGO_TARGET_DIR", peers_target())
        .args(args)
        .arg("--manifest-path")
        .arg(cmd::workspace_root().join("xtask/peers/mesh/Cargo.toml"));
    c
}

/// `cargo <args> --manifest-path xtask/peers/Cargo.toml` with its target dir.
pub(crate) fn peers_cargo(args: &[&str]) -> Command {
    let mut c = cargo();
    c.env("CARGO_TARGET_DIR", peers_target())
        .args(args)
        .arg("--manifest-path")
        .arg(peers_manifest());
    c
}

struct Options {
    quick: bool,
    workloads: Option<String>,
    systems: Option<String>,
    pause: bool,
    write: bool,
    limit: Option<String>,
    rounds: Option<String>,
}

fn parse(args: &[String]) -> Result<Options, Failure> {
    let mut o = Options {
        quick: false,
        workloads: None,
        systems: None,
        pause: false,
        write: true,
        limit: None,
        rounds: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| Failure::Usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--quick" => o.quick = true,
            "--workloads" => o.workloads = Some(value("--workloads")?),
            "--systems" => o.systems = Some(value("--systems")?),
            "--pause-compilers" => o.pause = true,
            "--no-write" => o.write = false,
            "--limit" => o.limit = Some(value("--limit")?),
            "--rounds" => o.rounds = Some(value("--rounds")?),
            other => return Err(Failure::Usage(format!("unknown argument `{other}`"))),
        }
    }
    // Only a full run of everything replaces the committed table.
    if o.quick || o.workloads.is_some() || o.systems.is_some() || o.limit.is_some() {
        o.write = false;
    }
    Ok(o)
}

pub fn run_bench(args: &[String]) -> Result<(), Failure> {
    let o = parse(args)?;
    let command = std::iter::once("cargo xtask bench".to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let systems: Vec<String> = o
        .systems
        .as_deref()
        .unwrap_or("mq,mq-mqtt,mq-nats,mq-tls,nats,mosquitto,redis,zeromq,liner,tcp,mq-peer")
        .split(',')
        .map(str::to_string)
        .collect();
    let wants = |s: &str| systems.iter().any(|x| x == s);

    cmd::ensure_apt(BUILD_PACKAGES).map_err(Failure::Failed)?;
    run(cargo().args(["build", "--release", "-p", "mq-cli", "--bin", "mqd"]))
        .map_err(Failure::Failed)?;
    run(&mut peers_cargo(&["build", "--release"])).map_err(Failure::Failed)?;
    if wants("mq-peer") {
        run(&mut mesh_cargo(&["build", "--release"])).map_err(Failure::Failed)?;
    }

    let mut servers = Servers::default();
    let mut bench = Command::new(peers_target().join("release/mq-peer-bench"));
    bench
        .arg("--mqd")
        .arg(cmd::target_dir().join("release/mqd"));
    if wants("nats") {
        bench.arg("--nats").arg(servers.ensure(&NATS));
    }
    if wants("mosquitto") {
        bench.arg("--mqtt").arg(servers.ensure(&MOSQUITTO));
    }
    if wants("redis") || wants("liner") {
        bench.arg("--redis").arg(servers.ensure(&REDIS));
    }
    let durable_needed = o
        .workloads
        .as_deref()
        .is_none_or(|w| w.split(',').any(|x| x == "3"));
    if wants("redis") && durable_needed {
        match servers.start(&REDIS_DURABLE) {
            Ok(addr) => {
                bench.arg("--redis-durable").arg(addr);
            }
            Err(e) => println!("bench: no durable Redis for workload 3 ({e}); its row will say so"),
        }
    }
    let markdown = cmd::target_dir().join("peer-bench.md");
    bench.arg("--markdown").arg(&markdown);
    if o.quick {
        bench.arg("--quick");
    }
    if o.pause {
        bench.arg("--pause-compilers");
    }
    for (flag, value) in [
        ("--workloads", &o.workloads),
        ("--systems", &o.systems),
        ("--limit", &o.limit),
        ("--rounds", &o.rounds),
    ] {
        if let Some(v) = value {
            bench.arg(flag).arg(v);
        }
    }
    let result = run(&mut bench);
    drop(servers);
    result.map_err(Failure::Failed)?;

    if !o.write {
        println!("bench: BENCHMARKS.md left alone (only a full run of everything rewrites it)");
        return Ok(());
    }
    let table = std::fs::read_to_string(&markdown)
        .map_err(|e| Failure::Failed(format!("{}: {e}", markdown.display())))?;
    let path = cmd::workspace_root().join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let new = splice(&old, &section(&command, &machine(), &table));
    std::fs::write(&path, new).map_err(|e| Failure::Failed(format!("{}: {e}", path.display())))?;
    println!("bench: rewrote the marked section of {}", path.display());
    Ok(())
}

/// The CI step: the package passes clippy and its tests, and a smoke run
/// against mq (its three protocols, over TLS, and its desktop peers) and raw
/// TCP completes without a failed row.
pub fn ci_smoke() -> Result<(), String> {
    cmd::ensure_apt(BUILD_PACKAGES)?;
    run(peers_cargo(&["clippy", "--all-targets"]).args(["--", "-D", "warnings"]))?;
    run(&mut peers_cargo(&["test"]))?;
    run(&mut peers_cargo(&["build"]))?;
    run(mesh_cargo(&["clippy", "--all-targets"]).args(["--", "-D", "warnings"]))?;
    run(&mut mesh_cargo(&["build"]))?;
    run(cargo().args(["build", "-p", "mq-cli", "--bin", "mqd"]))?;
    run(Command::new(peers_target().join("debug/mq-peer-bench"))
        .arg("--mqd")
        .arg(cmd::target_dir().join("debug/mqd"))
        .args([
            "--smoke",
            "--systems",
            "mq,mq-mqtt,mq-nats,mq-tls,tcp,mq-peer",
            "--strict",
            "--limit",
            "20",
        ]))
}

/// The section between the markers.
fn section(command: &str, machine: &str, table: &str) -> String {
    format!(
        "{BEGIN}\n\
## Side by side with NATS, Mosquitto, Redis, ZeroMQ and liner\n\n\
`{command}` (the section between the marker comments is written by it)\n\n\
Machine: {machine}.\n\n\
Every system runs on this machine in the same run, driven the same way as `mq bench`\n\
drives mq: one client connection per publisher and per receiver, all in one process\n\
(tokio; ZeroMQ, liner and raw TCP on threads of their own, sending as fast as their\n\
calls return), asynchronous publishes kept 256 in flight (Redis: 4 pipelines of 64),\n\
payloads stamped with their send time. Rates are measured at the receivers, from the first\n\
publish to the last arrival (workload 3: at the publisher, to the last\n\
acknowledgement; workload 4: round trips per second). Latency is from the publish\n\
call to the arrival (workload 3: to the acknowledgement; workload 4: the round trip).\n\
\"delivered / expected\" shows what fire-and-forget lost; \"mq ÷ peer\" is mq's\n\
msgs/s over the row's (above 1: mq is faster). Each run of mq gets a fresh `mqd`\n\
(empty data directory, defaults: the write-ahead log with fsync `always`).\n\n\
{table}\n{END}\n"
    )
}

/// `old` with the marked section replaced by `section` (appended when absent).
fn splice(old: &str, section: &str) -> String {
    match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let after = &old[e + END.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{section}{after}", &old[..b])
        }
        _ => {
            let sep = if old.is_empty() || old.ends_with("\n\n") {
                ""
            } else if old.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{old}{sep}{section}")
        }
    }
}

/// CPU model, cores, memory and kernel, from /proc.
fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_string();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = read("/proc/sys/kernel/osrelease");
    format!(
        "{model}, {cores} cores, {:.1} GiB RAM, Linux {}",
        mem_kib as f64 / (1 << 20) as f64,
        kernel.trim()
    )
}

// ------------------------------------------------------------------ servers

/// A server a peer needs.
pub(crate) struct Server {
    name: &'static str,
    /// Debian package that has it.
    package: &'static str,
    program: &'static str,
    /// Where the machine's own runs, if it has one.
    standard: Option<&'static str>,
    /// Does something that speaks its protocol answer at this address?
    answers: fn(&str) -> bool,
    /// Arguments to run it on `port` with its files in `dir`.
    args: fn(u16, &Path) -> Vec<String>,
}

pub(crate) const NATS: Server = Server {
    name: "NATS",
    package: "nats-server",
    program: "nats-server",
    standard: Some("127.0.0.1:4222"),
    answers: |addr| exchange(addr, b"", b"INFO "),
    args: |port, dir| {
        vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-js".into(),
            "-sd".into(),
            dir.display().to_string(),
        ]
    },
};

pub(crate) const MOSQUITTO: Server = Server {
    name: "Mosquitto",
    package: "mosquitto",
    program: "mosquitto",
    standard: Some("127.0.0.1:1883"),
    // MQTT 3.1.1 CONNECT, clean session, keepalive 10 s, client id "x";
    // CONNACK starts with 0x20.
    answers: |addr| {
        exchange(
            addr,
            &[
                0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 10, 0, 1, b'x',
            ],
            &[0x20],
        )
    },
    args: |port, dir| {
        let conf = dir.join("mosquitto.conf");
        let text = format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n");
        let _ = std::fs::write(&conf, text);
        vec!["-c".into(), conf.display().to_string()]
    },
};

fn redis_args(port: u16, dir: &Path, durable: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "--bind",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--save",
        "",
        "--dir",
        &dir.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if durable {
        args.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
    } else {
        args.extend(["--appendonly", "no"].map(String::from));
    }
    args
}

pub(crate) const REDIS: Server = Server {
    name: "Redis",
    package: "redis-server",
    program: "redis-server",
    standard: Some("127.0.0.1:6379"),
    answers: |addr| exchange(addr, b"PING\r\n", b"+PONG"),
    args: |port, dir| redis_args(port, dir, false),
};

/// Always one of our own: the machine's Redis keeps nothing on disk.
const REDIS_DURABLE: Server = Server {
    name: "Redis (appendfsync always)",
    standard: None,
    args: |port, dir| redis_args(port, dir, true),
    ..REDIS
};

/// Writes `send` to `addr` and checks the answer starts with `expect`.
pub(crate) fn exchange(addr: &str, send: &[u8], expect: &[u8]) -> bool {
    let Ok(addr) = addr.parse() else { return false };
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if !send.is_empty() && s.write_all(send).is_err() {
        return false;
    }
    let mut got = vec![0u8; expect.len()];
    s.read_exact(&mut got).is_ok() && got == expect
}

/// Servers this run started; stopped (and their files removed) on drop.
#[derive(Default)]
pub(crate) struct Servers {
    started: Vec<(&'static str, Child, PathBuf)>,
}

impl Servers {
    /// The address to use for `server`: the machine's own when it answers,
    /// else one started here; `unavailable:REASON` when neither works.
    pub(crate) fn ensure(&mut self, server: &Server) -> String {
        if let Some(addr) = server.standard
            && (server.answers)(addr)
        {
            println!("bench: {} answers on {addr}", server.name);
            return addr.to_string();
        }
        println!(
            "bench: {} does not answer on {}; starting one from Debian's {}",
            server.name,
            server.standard.unwrap_or("its port"),
            server.package
        );
        match self.start(server) {
            Ok(addr) => addr,
            Err(e) => {
                println!("bench: {}: {e}", server.name);
                format!("unavailable:{e}")
            }
        }
    }

    /// Installs `server`'s package if needed and starts it on a free loopback port.
    fn start(&mut self, server: &Server) -> Result<String, String> {
        cmd::ensure_apt(&[server.package])?;
        let program = ["/usr/sbin", "/usr/bin", "/usr/local/bin"]
            .iter()
            .map(|d| Path::new(d).join(server.program))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("{} is not installed", server.program))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let dir = std::env::temp_dir().join(format!(
            "xtask-bench-{}-{}-{port}",
            std::process::id(),
            server.program
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let log = std::fs::File::create(dir.join("log")).map_err(|e| e.to_string())?;
        let child = Command::new(&program)
            .args((server.args)(port, &dir))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let addr = format!("127.0.0.1:{port}");
        self.started.push((server.name, child, dir.clone()));
        let deadline = Instant::now() + Duration::from_secs(15);
        while !(server.answers)(&addr) {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                return Err(format!(
                    "{} did not answer on {addr} within 15 s: {}",
                    server.program,
                    log.trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!("bench: started {} on {addr}", server.name);
        Ok(addr)
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for (name, mut child, dir) in self.started.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
            println!("bench: stopped the {name} started for the run");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_the_marked_section() {
        let old = format!("# B\n\nintro\n\n{BEGIN}\nold table\n{END}\n\n## after\n");
        let new = splice(&old, &format!("{BEGIN}\nnew\n{END}\n"));
        assert_eq!(
            new,
            format!("# B\n\nintro\n\n{BEGIN}\nnew\n{END}\n\n## after\n")
        );
        // Again: the same result (idempotent).
        assert_eq!(splice(&new, &format!("{BEGIN}\nnew\n{END}\n")), new);
    }

    #[test]
    fn splice_appends_when_unmarked() {
        let section = format!("{BEGIN}\nt\n{END}\n");
        assert_eq!(splice("# B\n", &section), format!("# B\n\n{section}"));
        assert_eq!(splice("", &section), section);
    }

    #[test]
    fn only_a_full_run_writes() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(parse(&[]).ok().unwrap().write);
        assert!(parse(&args(&["--pause-compilers"])).ok().unwrap().write);
        assert!(!parse(&args(&["--quick"])).ok().unwrap().write);
        assert!(!parse(&args(&["--systems", "mq"])).ok().unwrap().write);
        assert!(parse(&args(&["--bogus"])).is_err());
        assert!(parse(&args(&["--workloads"])).is_err());
    }

    #[test]
    fn redis_durable_fsyncs_always() {
        let args = (REDIS_DURABLE.args)(7000, Path::new("/tmp/x"));
        assert!(args.windows(2).any(|w| w == ["--appendfsync", "always"]));
        let plain = (REDIS.args)(7000, Path::new("/tmp/x"));
        assert!(plain.windows(2).any(|w| w == ["--appendonly", "no"]));
    }
}
