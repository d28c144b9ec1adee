//! `cargo xtask ci`'s test step: the workspace's tests (all but mq-catalog's,
//! which need the databases: the catalog step runs them), with the test
//! executables run side by side.
//!
//! `cargo test` runs one test executable after another, and many of them
//! spend their time waiting for the processes they start (`mqd`, compilers,
//! Python). This step builds them with `cargo test --no-run`, runs the doc
//! tests with `cargo test --doc`, then runs the executables as `cargo test`
//! would (in their package's directory, with `CARGO_MANIFEST_DIR`; `CARGO`
//! is inherited from `cargo xtask`) on one worker per core, the slowest of
//! the last run first. Each one's output goes to a log under
//! `target/host-tests/`; a failure prints its log.
//!
//! `mqd` is built once before and the executables are given a copy of it
//! ([`mq_testkit::MQD_VAR`]): otherwise each would run `cargo build -p mq-cli
//! --bin mqd` itself, and cargo links `target/debug/mqd` anew on every build,
//! fresh or not, so one executable could find it missing while another's
//! cargo replaces it.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd::{self, Step, cargo, run};
use crate::testbins::{TestExe, Verdict, run_logged, side_by_side, tail, test_executables};

/// What `cargo test` leaves out: mq-catalog's tests and the mesh of `mqd`
/// nodes over each catalog need Redis and PostgreSQL (the next step).
const EXCLUDE: &str = "mq-catalog";
const SKIP: &str = "three_nodes_over_";
/// Longer than any test executable takes (the slowest takes under a minute).
const LIMIT: Duration = Duration::from_secs(600);
/// The last run's time of each executable, by log name, for the order.
const TIMES: &str = "times.txt";

/// The step (see the module docs).
pub fn check() -> Result<(), String> {
    let exes = build()?;
    run(cargo().args(["test", "--workspace", "--exclude", EXCLUDE, "--doc"]))?;
    let step = Step::start("test executables, side by side");
    let logs = cmd::target_dir().join("host-tests");
    fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let mqd = mqd_copy(&logs)?;
    let last = last_times(&logs.join(TIMES));
    let mut queue = exes;
    // The slowest first (new ones first of all), so no long one starts last.
    queue.sort_by(|a, b| {
        let time = |t: &TestExe| last.get(&t.log_name()).copied().unwrap_or(f64::MAX);
        time(b).total_cmp(&time(a))
    });
    let workers = thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "running {} test executables, {workers} at a time (logs in {})",
        queue.len(),
        logs.display()
    );
    let mut failures = Vec::new();
    let mut times = String::new();
    let (mut passed, mut ignored) = (0, 0);
    let work = |exe: &TestExe| run_one(exe, &logs, &mqd);
    side_by_side(queue, workers, work, |exe, (result, took, text)| {
        times.push_str(&format!("{} {:.2}\n", exe.log_name(), took.as_secs_f64()));
        let took = cmd::format_duration(took);
        let verdict = Verdict::of(&result, &text);
        match &verdict {
            Verdict::Passed(c) => {
                passed += c.passed;
                ignored += c.ignored;
            }
            Verdict::Failed { why, .. } => {
                failures.push(format!("{}: {why}\n{}", exe.name, tail(&text, 200)));
            }
        }
        println!("    {}: {} in {took}", exe.name, verdict.summary());
    });
    let _ = fs::write(logs.join(TIMES), times);
    println!(
        "tests: {passed} passed, {} executables failed, {ignored} ignored, in {}",
        failures.len(),
        cmd::format_duration(step.elapsed())
    );
    if failures.is_empty() {
        return Ok(());
    }
    for failure in &failures {
        eprintln!("--- {failure}");
    }
    Err(format!("{} test executables failed", failures.len()))
}

/// `cargo test --no-run` of the step's packages: the executables it built.
fn build() -> Result<Vec<TestExe>, String> {
    let mut build = cargo();
    build.args([
        "test",
        "--workspace",
        "--exclude",
        EXCLUDE,
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    println!("$ {}", cmd::display(&build));
    let out = build
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("building the tests failed ({})", out.status));
    }
    let exes = test_executables(&String::from_utf8_lossy(&out.stdout));
    if exes.is_empty() {
        return Err("cargo built no test executables".to_owned());
    }
    Ok(exes)
}

/// Runs `exe` as `cargo test` would: its result, how long it took, its output.
fn run_one(exe: &TestExe, logs: &Path, mqd: &Path) -> (Result<(), String>, Duration, String) {
    let log = logs.join(format!("{}.log", exe.log_name()));
    let mut command = Command::new(&exe.path);
    command.args(["--skip", SKIP]).env(mq_testkit::MQD_VAR, mqd);
    if let Some(dir) = &exe.package_dir {
        command.current_dir(dir).env("CARGO_MANIFEST_DIR", dir);
    }
    let started = Instant::now();
    let result = run_logged(&mut command, &log, LIMIT);
    let text = fs::read_to_string(&log).unwrap_or_default();
    (result, started.elapsed(), text)
}

/// `mqd` as mq-testkit builds it (`cargo build -p mq-cli --bin mqd`), copied
/// into `dir`, where no later build replaces it.
fn mqd_copy(dir: &Path) -> Result<PathBuf, String> {
    run(cargo().args(["build", "-p", "mq-cli", "--bin", "mqd"]))?;
    let name = format!("mqd{}", std::env::consts::EXE_SUFFIX);
    let built = cmd::target_dir().join("debug").join(&name);
    let copy = dir.join(name);
    fs::copy(&built, &copy).map_err(|e| format!("copying {}: {e}", built.display()))?;
    Ok(copy)
}

/// The times in `file` (`name seconds` per line); none when it is missing.
fn last_times(file: &Path) -> HashMap<String, f64> {
    let text = fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (name, secs) = line.rsplit_once(' ')?;
            Some((name.to_owned(), secs.parse().ok()?))
        })
        .collect()
}
