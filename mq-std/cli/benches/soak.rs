//! Soak: `mqd`'s memory over a long QoS 1 run. Starts `mqd` (memory store, so
//! the figure is the broker's own memory, not the log's page cache) and
//! `mq bench --qos 1` against it, samples `mqd`'s resident set every few
//! seconds during the run and for a while after it, and prints the series and
//! its spread after warm-up. Memory must follow what is outstanding (bounded
//! by credit and queue bounds), not the message rate times the ack timeout.
//!
//! `cargo bench -p mq-cli --bench soak [-- SECONDS [SUBSCRIBERS]]` (default 120
//! seconds, 1 subscriber). Linux only (it reads `/proc/PID/status`).
//! `MQ_SOAK_BIN_DIR=DIR` takes `mqd` and `mq` from `DIR` instead of this build
//! (to measure another build, an older commit's say, the same way).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SAMPLE: Duration = Duration::from_secs(5);
const WARM_UP: Duration = Duration::from_secs(30);
const AFTER: Duration = Duration::from_secs(30);

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = args.first().copied().unwrap_or(120);
    let subscribers = args.get(1).copied().unwrap_or(1);
    if !cfg!(target_os = "linux") {
        println!("soak: reads /proc/PID/status, so it runs on Linux only");
        return;
    }
    let port = free_port();
    let http = free_port();
    let dir = std::env::temp_dir().join(format!("mq-soak-{}", std::process::id()));
    let (mqd_bin, mq_bin) = binaries();
    let mut mqd = Command::new(mqd_bin)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--http", &format!("127.0.0.1:{http}"), "--log", "warn"])
        .arg("--data-dir")
        .arg(&dir)
        .env("MQ_STORE", "memory")
        .stdout(Stdio::null())
        .spawn()
        .expect("start mqd");
    wait_listening(port);
    let mut bench = Command::new(mq_bin)
        .args([
            "--server",
            &format!("127.0.0.1:{port}"),
            "bench",
            "--qos",
            "1",
        ])
        .args([
            "--publishers",
            "1",
            "--subscribers",
            &subscribers.to_string(),
        ])
        .args(["--size", "100", "--duration", &seconds.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start mq bench");
    println!(
        "mqd (memory store) under `mq bench --qos 1 --publishers 1 --subscribers {subscribers} \
         --size 100` for {seconds} s, then idle for {} s",
        AFTER.as_secs()
    );
    println!("{:>6}  {:>9}  load", "t (s)", "RSS (MB)");
    let start = Instant::now();
    let end = Duration::from_secs(seconds) + AFTER;
    let mut after_warm_up = Vec::new();
    let mut report = None;
    while start.elapsed() <= end {
        let t = start.elapsed();
        let rss = rss_mb(&mqd);
        let loaded = report.is_none();
        println!(
            "{:>6}  {:>9.1}  {}",
            t.as_secs(),
            rss,
            if loaded { "publishing" } else { "idle" }
        );
        if t >= WARM_UP {
            after_warm_up.push(rss);
        }
        if report.is_none() && bench.try_wait().ok().flatten().is_some() {
            report = Some(output(&mut bench));
        }
        std::thread::sleep(SAMPLE);
    }
    let report = report.unwrap_or_else(|| output(&mut bench));
    let _ = mqd.kill();
    let _ = mqd.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let min = after_warm_up.iter().copied().fold(f64::MAX, f64::min);
    let max = after_warm_up.iter().copied().fold(0.0, f64::max);
    println!(
        "after warm-up ({} s): RSS {min:.1} to {max:.1} MB, spread {:.1} MB",
        WARM_UP.as_secs(),
        max - min
    );
    print!("{report}");
}

/// The `mqd` and `mq` to run: this build's, or those in `MQ_SOAK_BIN_DIR`.
fn binaries() -> (std::path::PathBuf, std::path::PathBuf) {
    match std::env::var_os("MQ_SOAK_BIN_DIR") {
        Some(dir) => {
            let dir = std::path::PathBuf::from(dir);
            (dir.join("mqd"), dir.join("mq"))
        }
        None => (
            env!("CARGO_BIN_EXE_mqd").into(),
            env!("CARGO_BIN_EXE_mq").into(),
        ),
    }
}

/// `mqd`'s resident set in MB.
fn rss_mb(child: &Child) -> f64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn output(child: &mut Child) -> String {
    use std::io::Read;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let _ = child.wait();
    out
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mqd did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}
