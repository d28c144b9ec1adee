//! `mq-peer-load`: mq's desktop peers (`mq_std::peer`) on one peer-to-peer
//! workload of `cargo xtask bench`, in this process: a publisher's peer and
//! one peer per receiver, each with its own write-ahead log, in one SQLite
//! catalog, no `mqd`. Prints the result as the last line of its output for
//! `mq-peer-bench`, which starts it (see `../Cargo.toml` for why it is a
//! program of its own).
//!
//! ```sh
//! mq-peer-load --shape one|fanout:4|cycles:10000 --count N --size BYTES --limit SECS --dir DIR
//!              [--fsync always|never|interval:MS] [--window N]
//! ```
//!
//! `--fsync` is each peer's log's [`FsyncPolicy`]: `always` (the default,
//! the bench's row) fsyncs every group commit before acknowledging any of
//! it; the others acknowledge before the fsync (what a power cut may lose:
//! see [`FsyncPolicy`]).

/// The allocator `mqd` and `mq peer` run on, from their file: the library
/// crates leave the choice to the program, and under glibc's the peers'
/// short-lived allocations per message (records, chunks, the clients'
/// messages) cost about a sixth of this program's time.
#[path = "../../../../mq-std/cli/src/bin/common/alloc.rs"]
mod alloc;
#[path = "../../src/cpu.rs"]
#[allow(dead_code)]
mod cpu;
#[path = "../../src/cycles.rs"]
mod cycles;
#[path = "../../../../mq-std/cli/src/bin/mq/histogram.rs"]
#[allow(dead_code)]
mod histogram;
#[path = "../../src/line.rs"]
#[allow(dead_code)]
mod line;
#[path = "../../src/measure.rs"]
#[allow(dead_code)]
mod measure;
mod peers;
#[path = "../../src/seen.rs"]
mod seen;
#[path = "../../../../mq-std/cli/src/bin/common/thp.rs"]
mod thp;
#[path = "../../src/workload.rs"]
#[allow(dead_code)]
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use mq_std::wal::FsyncPolicy;

use crate::workload::{Kind, Shape, Workload};

/// What to run.
struct Args {
    kind: Kind,
    count: u64,
    size: usize,
    limit: Duration,
    dir: PathBuf,
    fsync: FsyncPolicy,
    /// QoS 1 publishes outstanding at once.
    window: usize,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut kind, mut count, mut size, mut limit, mut dir) = (None, None, None, None, None);
    let mut fsync = FsyncPolicy::Always;
    let mut window = peers::WINDOW;
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--shape" => {
                kind = Some(match value.split_once(':') {
                    None if value == "one" => Kind::Peer(Shape::One),
                    Some(("fanout", n)) => Kind::Peer(Shape::FanOut(number(n)? as usize)),
                    Some(("cycles", n)) => Kind::Cycles(number(n)?),
                    _ => return Err(format!("--shape {value}: one, fanout:N or cycles:N")),
                })
            }
            "--count" => count = Some(number(&value)?),
            "--size" => size = Some(number(&value)? as usize),
            "--limit" => limit = Some(Duration::from_secs(number(&value)?)),
            "--dir" => dir = Some(PathBuf::from(value)),
            "--window" => window = number(&value)? as usize,
            "--fsync" => {
                fsync = match value.split_once(':') {
                    None if value == "always" => FsyncPolicy::Always,
                    None if value == "never" => FsyncPolicy::Never,
                    Some(("interval", ms)) => {
                        FsyncPolicy::Interval(Duration::from_millis(number(ms)?))
                    }
                    _ => return Err(format!("--fsync {value}: always, never or interval:MS")),
                }
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(Args {
        kind: kind.ok_or("no --shape")?,
        count: count.ok_or("no --count")?,
        size: size.ok_or("no --size")?.max(16),
        limit: limit.ok_or("no --limit")?,
        dir: dir.ok_or("no --dir")?,
        fsync,
        window,
    })
}

fn main() -> ExitCode {
    thp::no_huge_pages();
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mq-peer-load: {e}");
            return ExitCode::from(2);
        }
    };
    let w = Workload {
        id: "peer",
        title: "",
        kind: args.kind,
        size: args.size,
        count: args.count,
        plain: false,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mq-peer-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(peers::run(
        &w,
        args.limit,
        &args.dir,
        args.fsync,
        args.window,
    )) {
        Ok(m) => {
            println!("{}", line::write(&m));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mq-peer-load: {e}");
            ExitCode::FAILURE
        }
    }
}
