//! Test executables outside `cargo test`: found in cargo's JSON messages, run
//! with their output in a log and a time limit, their `test result:` line
//! counted. The host test step and the Windows step run them this way.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd;

/// A test executable cargo built.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TestExe {
    /// Its target's name, and its kind but for integration tests
    /// (`patterns`, `mqd (bin)`).
    pub name: String,
    pub path: PathBuf,
    /// The directory of its package's manifest: `cargo test` runs it there.
    pub package_dir: Option<PathBuf>,
}

impl TestExe {
    /// A name unique among the workspace's executables, for a log file:
    /// the file's stem, which carries cargo's hash.
    pub fn log_name(&self) -> String {
        let stem = self.path.file_stem().unwrap_or_default().to_string_lossy();
        stem.replace([' ', '(', ')'], "")
    }
}

/// The test executables in cargo's JSON messages (`--message-format=json`):
/// each `compiler-artifact` built as a test (not the programs the tests use)
/// with an `executable`.
pub fn test_executables(messages: &str) -> Vec<TestExe> {
    let field = |line: &str, key: &str| -> Option<String> {
        let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
        let end = start + line[start..].find('"')?;
        Some(line[start..end].to_owned())
    };
    let mut found: Vec<TestExe> = messages
        .lines()
        .filter(|line| {
            // `"test":true` in the profile (a target says it too: "is tested").
            let profile = line.find("\"profile\":{").map(|at| &line[at..]);
            let profile = profile.and_then(|p| p.split('}').next()).unwrap_or("");
            line.contains("\"reason\":\"compiler-artifact\"") && profile.contains("\"test\":true")
        })
        .filter_map(|line| {
            let path = field(line, "executable")?;
            let target = &line[line.find("\"target\":{")?..];
            let name = field(target, "name")?;
            let kind = field(&target.replacen("\"kind\":[", "\"kind\":", 1), "kind")?;
            let name = if kind == "test" {
                name
            } else {
                format!("{name} ({kind})")
            };
            let package_dir = field(line, "manifest_path")
                .and_then(|m| Path::new(&m).parent().map(Path::to_path_buf));
            Some(TestExe {
                name,
                path: PathBuf::from(path),
                package_dir,
            })
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Runs `work` on each of `jobs`, `workers` at a time, in the order given,
/// and hands each job with its outcome to `done` on the calling thread as
/// soon as it finishes.
pub fn side_by_side<J: Send, O: Send>(
    jobs: Vec<J>,
    workers: usize,
    work: impl Fn(&J) -> O + Sync,
    mut done: impl FnMut(J, O),
) {
    let queue = Mutex::new(VecDeque::from(jobs));
    let (sender, finished) = mpsc::channel();
    thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            let sender = sender.clone();
            let (queue, work) = (&queue, &work);
            scope.spawn(move || {
                while let Some(job) = queue.lock().unwrap().pop_front() {
                    let outcome = work(&job);
                    if sender.send((job, outcome)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);
        for (job, outcome) in finished {
            done(job, outcome);
        }
    });
}

/// Runs `command` with its output in `log`, killing it after `limit`.
pub fn run_logged(command: &mut Command, log: &Path, limit: Duration) -> Result<(), String> {
    let file = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cmd::display(command)))?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => return Err(format!("exited with {status}")),
            None if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still running after {limit:?}: killed"));
            }
        }
    }
}

/// One test executable's `test result:` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestResult {
    pub passed: u32,
    pub failed: u32,
    pub ignored: u32,
    pub filtered: u32,
}

/// `test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out; ...`
pub fn parse_counts(output: &str) -> Option<TestResult> {
    let line = output
        .lines()
        .rev()
        .find(|l| l.starts_with("test result: "))?;
    let count = |what: &str| -> Option<u32> {
        line.split([';', '.'])
            .map(str::trim)
            .find_map(|part| part.strip_suffix(what)?.trim().parse().ok())
    };
    Some(TestResult {
        passed: count("passed")?,
        failed: count("failed")?,
        ignored: count("ignored")?,
        filtered: count("filtered out")?,
    })
}

/// What one test executable's run came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It exited successfully and printed its `test result:` line.
    Passed(TestResult),
    /// It did not: how many tests failed (at least one, for an executable
    /// that failed without saying which), why, and its counts if it printed
    /// them.
    Failed {
        failed: u32,
        why: String,
        counts: Option<TestResult>,
    },
}

impl Verdict {
    /// The verdict on a run that came to `result` (see [`run_logged`]) and
    /// printed `output`.
    pub fn of(result: &Result<(), String>, output: &str) -> Verdict {
        match (result, parse_counts(output)) {
            (Ok(()), Some(counts)) => Verdict::Passed(counts),
            (result, counts) => Verdict::Failed {
                failed: counts.map_or(1, |c| c.failed.max(1)),
                why: (result.as_ref().err().cloned())
                    .unwrap_or_else(|| "no `test result:` line".to_owned()),
                counts,
            },
        }
    }

    /// One line for the run's report.
    pub fn summary(&self) -> String {
        match self {
            Verdict::Passed(c) => format!("{} passed, {} ignored", c.passed, c.ignored),
            Verdict::Failed { failed, why, .. } => format!("FAILED ({failed} failed) {why}"),
        }
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_by_side_runs_every_job_once_and_hands_each_on() {
        let mut seen = Vec::new();
        side_by_side(
            (0..50).collect(),
            3,
            |j: &u32| j * 2,
            |j, o| seen.push((j, o)),
        );
        seen.sort();
        assert_eq!(seen, (0..50).map(|j| (j, j * 2)).collect::<Vec<_>>());
    }

    #[test]
    fn counts_come_from_the_result_line() {
        let c = parse_counts(
            "test a ... ok\n\ntest result: ok. 12 passed; 0 failed; 2 ignored; 0 measured; \
             1 filtered out; finished in 3.40s\n",
        )
        .unwrap();
        assert_eq!((c.passed, c.failed, c.ignored, c.filtered), (12, 0, 2, 1));
        assert!(parse_counts("no tests here").is_none());
    }

    #[test]
    fn a_run_passes_when_it_exits_well_and_prints_its_result_line() {
        let result = "test result: FAILED. 3 passed; 1 failed; 2 ignored; 0 measured; \
                      0 filtered out; finished in 1.00s\n";
        let passed = Verdict::of(
            &Ok(()),
            &result.replace("FAILED. 3 passed; 1", "ok. 4 passed; 0"),
        );
        assert_eq!(passed.summary(), "4 passed, 2 ignored");
        assert!(matches!(passed, Verdict::Passed(c) if c.passed == 4));
        let silent = Verdict::of(&Ok(()), "running 4 tests\n");
        assert_eq!(silent.summary(), "FAILED (1 failed) no `test result:` line");
        let failed = Verdict::of(&Err("exited with 101".to_owned()), result);
        assert_eq!(failed.summary(), "FAILED (1 failed) exited with 101");
        assert!(matches!(failed, Verdict::Failed { counts: Some(c), .. } if c.passed == 3));
        let killed = Verdict::of(&Err("killed".to_owned()), "");
        assert_eq!(killed.summary(), "FAILED (1 failed) killed");
    }

    #[test]
    fn executables_their_names_and_packages() {
        let json = r#"{"reason":"compiler-artifact","package_id":"x","manifest_path":"/w/ex/Cargo.toml","target":{"kind":["test"],"crate_types":["bin"],"name":"patterns","src_path":"/w/p.rs"},"profile":{"opt_level":"0","test":true},"executable":"/t/patterns-1.exe","fresh":true}
{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"mqd","test":true},"profile":{"test":false},"executable":"/t/mqd.exe"}
{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"mqd"},"profile":{"test":true},"executable":"/t/mqd-2.exe"}
{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"mq_client"},"executable":null}
{"reason":"build-finished","success":true}"#;
        let found = test_executables(json);
        let names: Vec<(&str, &Path)> = found
            .iter()
            .map(|t| (t.name.as_str(), t.path.as_path()))
            .collect();
        assert_eq!(
            names,
            [
                ("mqd (bin)", Path::new("/t/mqd-2.exe")),
                ("patterns", Path::new("/t/patterns-1.exe")),
            ]
        );
        assert_eq!(found[0].package_dir, None);
        assert_eq!(found[1].package_dir.as_deref(), Some(Path::new("/w/ex")));
        assert_eq!(found[1].log_name(), "patterns-1");
    }
}
