//! `mq-peer-bench`: mq side by side with NATS, Mosquitto, Redis, ZeroMQ, liner
//! and the physical limit of one loopback TCP connection, in one run on one
//! machine, every system driven the same way: one client connection per
//! publisher and per receiver, windowed publishes, payloads stamped with their
//! send time, rates and latency measured at the receivers.
//!
//! `cargo xtask bench` builds this program and `mqd`, makes sure the peers'
//! servers are reachable (starting them if not) and runs it; it can also run
//! by hand:
//!
//! ```sh
//! mq-peer-bench --mqd target/release/mqd --quick --systems mq,nats
//! ```
//!
//! Every run of mq gets a fresh `mqd` (free loopback port, empty data
//! directory, its default configuration: the write-ahead log with fsync
//! `always`). Peers are given by address; `unavailable:REASON` puts the reason
//! in their rows instead of figures.

mod cpu;
mod cycles;
#[path = "../../../mq-std/cli/src/bin/mq/digits.rs"]
mod digits;
#[path = "../../../mq-std/cli/src/bin/mq/histogram.rs"]
#[allow(dead_code)]
mod histogram;
// `write` is for the child, `mq-peer-load`.
#[allow(dead_code)]
mod line;
mod measure;
mod mqd;
mod pause;
mod report;
mod seen;
mod systems;
#[path = "../../../mq-std/cli/src/bin/mq/window.rs"]
#[allow(dead_code)]
mod window;
mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::measure::Measured;
use crate::report::{Outcome, Row};
use crate::workload::{Scale, System, Workload};

#[derive(Debug, Parser)]
#[command(name = "mq-peer-bench", about = "mq side by side with its peers")]
struct Args {
    /// The `mqd` binary to run (fresh for every run of mq).
    #[arg(long, value_name = "PATH")]
    mqd: Option<PathBuf>,
    /// The `mq-peer-load` program (mq's peers, run as a child process);
    /// default: next to this program.
    #[arg(long, value_name = "PATH")]
    mq_peer_load: Option<PathBuf>,
    /// NATS server with JetStream, `HOST:PORT` or `unavailable:REASON`.
    #[arg(long, default_value = "127.0.0.1:4222")]
    nats: String,
    /// MQTT broker (Mosquitto), `HOST:PORT` or `unavailable:REASON`.
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: String,
    /// Redis server for pub/sub, streams and liner's catalog, `HOST:PORT` or
    /// `unavailable:REASON`.
    #[arg(long, default_value = "127.0.0.1:6379")]
    redis: String,
    /// Redis server with `appendfsync always` for the durable workload; without
    /// it workload 3 runs on `--redis` and its row says it is not durable.
    #[arg(long, value_name = "HOST:PORT")]
    redis_durable: Option<String>,
    /// A tenth of the issue's counts.
    #[arg(long)]
    quick: bool,
    /// A few thousand messages per run: checks the harness works.
    #[arg(long, conflicts_with = "quick")]
    smoke: bool,
    /// Workloads to run (ids: 1, 1p, 2a, 2b, 3, 4, 5, 6, 7, 8, 9; `2` is 2a
    /// and 2b; 7-9 are peer to peer).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Systems to run (mq, mq-mqtt, mq-nats, mq-tls, nats, mosquitto, redis,
    /// zeromq, liner, tcp, mq-peer).
    #[arg(long, value_delimiter = ',')]
    systems: Vec<String>,
    /// Stop (SIGSTOP) every `rustc`, `cc` and `ld` of the machine during each
    /// timed run and continue them after (a watchdog continues them if this
    /// program dies).
    #[arg(long)]
    pause_compilers: bool,
    /// Also write the table and versions as Markdown to this file.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Exit 1 when a run failed or a selected system was unavailable (not
    /// for n/a rows).
    #[arg(long)]
    strict: bool,
    /// Longest a run may publish, in seconds; the run stops there and its row
    /// says so.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    limit: u64,
    /// Runs of each workload and system; the row is the median by rate (one
    /// run with `--smoke`).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// Where a peer's server is.
#[derive(Debug, Clone)]
pub enum Endpoint {
    At(String),
    Unavailable(String),
}

impl Endpoint {
    fn parse(s: &str) -> Endpoint {
        match s.strip_prefix("unavailable:") {
            Some(reason) => Endpoint::Unavailable(reason.to_string()),
            None => Endpoint::At(s.to_string()),
        }
    }

    pub fn addr(&self) -> Result<&str, String> {
        match self {
            Endpoint::At(a) => Ok(a),
            Endpoint::Unavailable(r) => Err(r.clone()),
        }
    }
}

/// What every run needs to know.
pub struct Ctx {
    pub mqd: Option<PathBuf>,
    pub mq_peer_load: Option<PathBuf>,
    pub nats: Endpoint,
    pub mqtt: Endpoint,
    pub redis: Endpoint,
    pub redis_durable: Option<String>,
    /// Unique per process: keeps names apart from other runs on shared servers.
    pub run_id: String,
    /// Longest a run may publish.
    pub limit: Duration,
    /// Runs per row (the median is reported).
    pub rounds: usize,
}

impl Ctx {
    /// A name unique to this process and `what`.
    pub fn name(&self, what: &str) -> String {
        format!("mqbench{}{what}", self.run_id)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let scale = if args.smoke {
        Scale::Smoke
    } else if args.quick {
        Scale::Quick
    } else {
        Scale::Full
    };
    let workloads = match select_workloads(workload::workloads(scale), &args.workloads) {
        Ok(w) => w,
        Err(e) => return usage(&e),
    };
    let systems = match select_systems(&args.systems) {
        Ok(s) => s,
        Err(e) => return usage(&e),
    };
    let ctx = Ctx {
        mqd: args.mqd.clone(),
        mq_peer_load: args.mq_peer_load.clone(),
        nats: Endpoint::parse(&args.nats),
        mqtt: Endpoint::parse(&args.mqtt),
        redis: Endpoint::parse(&args.redis),
        redis_durable: args.redis_durable.clone(),
        run_id: format!("{:x}", std::process::id()),
        limit: Duration::from_secs(args.limit.max(1)),
        rounds: if args.smoke { 1 } else { args.rounds.max(1) },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mq-peer-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pause = if args.pause_compilers {
        match pause::Pause::new() {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("mq-peer-bench: --pause-compilers: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let (rows, versions) = runtime.block_on(run(&ctx, &workloads, &systems, pause.as_ref()));
    drop(pause);

    let table = report::markdown(&rows);
    println!("\n{table}");
    let versions_md = report::versions(&versions);
    println!("{versions_md}");
    if let Some(path) = &args.markdown {
        let text = format!("{table}\n{versions_md}");
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("mq-peer-bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let failed = rows
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed(_) | Outcome::Unavailable(_)))
        .count();
    if args.strict && failed > 0 {
        eprintln!("mq-peer-bench: {failed} run(s) failed or had no server");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn usage(message: &str) -> ExitCode {
    eprintln!("mq-peer-bench: {message}");
    ExitCode::from(2)
}

fn select_workloads(all: Vec<Workload>, ids: &[String]) -> Result<Vec<Workload>, String> {
    if ids.is_empty() {
        return Ok(all);
    }
    for id in ids {
        if !all
            .iter()
            .any(|w| w.id == id || w.id.trim_end_matches(['a', 'b', 'p']) == id)
        {
            let known: Vec<&str> = all.iter().map(|w| w.id).collect();
            return Err(format!(
                "unknown workload `{id}` (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(all
        .into_iter()
        .filter(|w| {
            ids.iter()
                .any(|id| w.id == id || w.id.trim_end_matches(['a', 'b', 'p']) == id)
        })
        .collect())
}

fn select_systems(ids: &[String]) -> Result<Vec<System>, String> {
    if ids.is_empty() {
        return Ok(System::ALL.to_vec());
    }
    let mut out = Vec::new();
    for id in ids {
        match System::ALL.iter().find(|s| s.id() == id) {
            Some(&s) => out.push(s),
            None => {
                let known: Vec<&str> = System::ALL.iter().map(|s| s.id()).collect();
                return Err(format!(
                    "unknown system `{id}` (known: {})",
                    known.join(", ")
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Runs every selected workload against every selected system, printing each
/// row as it completes. Returns the rows and the versions the systems reported.
async fn run(
    ctx: &Ctx,
    workloads: &[Workload],
    systems: &[System],
    pause: Option<&pause::Pause>,
) -> (Vec<Row>, BTreeMap<String, String>) {
    let mut versions = BTreeMap::new();
    let mut available = BTreeMap::new();
    for &s in systems {
        match systems::probe(ctx, s).await {
            Ok(found) => {
                versions.extend(found);
                available.insert(s, Ok(()));
            }
            Err(e) => {
                println!("{s}: unavailable: {e}");
                available.insert(s, Err(e));
            }
        }
    }
    versions.extend(report::crate_versions());

    let mut rows = Vec::new();
    for w in workloads {
        println!("\n== {} {} ({} messages)", w.id, w.title, w.count);
        for &s in systems {
            let outcome = match (s.mode(w), &available[&s]) {
                (Err(why), _) => Outcome::NotApplicable(why.to_string()),
                (Ok(_), Err(why)) => Outcome::Unavailable(why.clone()),
                (Ok(_), Ok(())) => match rounds(ctx, s, w, pause).await {
                    Ok(m) => Outcome::Done(m),
                    Err(e) => Outcome::Failed(e),
                },
            };
            let row = Row {
                workload: w.clone(),
                system: s,
                mode: s.mode(w).unwrap_or("").to_string(),
                outcome,
            };
            println!("{}", report::line(&row));
            rows.push(row);
        }
    }
    (rows, versions)
}

/// [`Ctx::rounds`] runs; the median by rate, with how many there were.
async fn rounds(
    ctx: &Ctx,
    s: System,
    w: &Workload,
    pause: Option<&pause::Pause>,
) -> Result<Measured, String> {
    let mut runs = Vec::with_capacity(ctx.rounds);
    for _ in 0..ctx.rounds {
        let _paused = pause.map(pause::Pause::stop);
        runs.push(run_one(ctx, s, w).await?);
    }
    runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    let n = runs.len();
    let spread = (n > 1).then(|| {
        let r = |m: &Measured| digits::group_digits(m.rate());
        format!("median of {n} ({} to {})", r(&runs[0]), r(&runs[n - 1]))
    });
    let median = runs.swap_remove(n / 2);
    Ok(match (spread, median.note.clone()) {
        (None, _) => median,
        (Some(spread), None) => median.with_note(spread),
        (Some(spread), Some(note)) => median.with_note(format!("{note}; {spread}")),
    })
}

async fn run_one(ctx: &Ctx, s: System, w: &Workload) -> Result<Measured, String> {
    // Let the previous run's connections and servers wind down.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let meter = cpu::Meter::start(s);
    let mut m = systems::run(ctx, s, w).await?;
    m.cpu = meter.stop();
    Ok(m)
}
