//! The Windows step's test executables, each run under Wine with its log
//! (a fault of Wine itself gets one more run), and their counts.

use std::fmt::Write as _;
use std::fs;
use std::time::{Duration, Instant};

use super::{Built, NOT_BUILT, NOT_UNDER_WINE, WINE_GLITCHES, Wine, windows_path};
use crate::cmd::{self, Step};
use crate::testbins::{TestExe, Verdict, run_logged, tail};

/// How long one test executable may run under Wine.
const TEST_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Default)]
pub(super) struct Counts {
    pub(super) passed: u32,
    pub(super) failed: u32,
    pub(super) ignored: u32,
    pub(super) not_run: u32,
}

/// Runs every test executable under Wine (the slow ones of
/// [`NOT_UNDER_WINE`] only with `all`) and prints the counts.
pub(super) fn run_tests(wine: &Wine, built: &Built, all: bool) -> Result<Counts, String> {
    let step = Step::start("windows: the std crates' tests under Wine");
    for (package, why) in NOT_BUILT {
        println!("not built for Windows: {package}: {why}");
    }
    let logs = cmd::target_dir().join("windows-tests");
    fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let mut total = Counts::default();
    let mut table = String::new();
    let mut failures = Vec::new();
    for TestExe {
        name, path: exe, ..
    } in &built.tests
    {
        let skips: Vec<&(&str, &str, &str)> = NOT_UNDER_WINE
            .iter()
            .filter(|(binary, _, _)| !all && binary == name)
            .collect();
        let mut command = wine.command();
        command.arg(windows_path(exe));
        if !skips.is_empty() {
            command.arg("--exact");
        }
        for (_, test, why) in &skips {
            println!("not run under Wine: {name}::{test}: {why}");
            command.args(["--skip", test]);
        }
        command
            .env(mq_testkit::MQD_VAR, windows_path(&built.mqd))
            .current_dir(&logs);
        let log = logs.join(format!("{}.log", name.replace([' ', '(', ')'], "")));
        let started = Instant::now();
        let mut result = run_logged(&mut command, &log, TEST_TIMEOUT);
        let mut text = fs::read_to_string(&log).unwrap_or_default();
        if result.is_err()
            && let Some(glitch) = wine_glitch(&text)
        {
            println!(
                "    {name}: failed with a fault of Wine itself ({glitch}); running it once more"
            );
            let first = logs.join(format!("{}.first.log", name.replace([' ', '(', ')'], "")));
            let _ = fs::rename(&log, &first);
            result = run_logged(&mut command, &log, TEST_TIMEOUT);
            text = fs::read_to_string(&log).unwrap_or_default();
            println!("    (the first run's log: {})", first.display());
        }
        let took = cmd::format_duration(started.elapsed());
        let verdict = Verdict::of(&result, &text);
        let verdict = match &verdict {
            Verdict::Passed(c) if c.filtered == skips.len() as u32 => {
                total.passed += c.passed;
                total.ignored += c.ignored;
                total.not_run += c.filtered;
                verdict.summary()
            }
            Verdict::Passed(c) => {
                failures.push(format!(
                    "{name}: {} tests filtered out, but the skip list names {} (is it stale?)",
                    c.filtered,
                    skips.len()
                ));
                "skip list mismatch".to_owned()
            }
            Verdict::Failed {
                failed,
                why,
                counts,
                ..
            } => {
                total.failed += failed;
                total.passed += counts.map_or(0, |c| c.passed);
                failures.push(format!("{name}: {why}\n{}", tail(&text, 80)));
                verdict.summary()
            }
        };
        println!("    {name}: {verdict} in {took}");
        let _ = writeln!(table, "  {name:32} {verdict:>28}  {took:>7}");
    }
    println!("test executables under Wine (logs in {}):", logs.display());
    print!("{table}");
    println!(
        "windows tests: {} passed, {} failed, {} ignored, {} not run under Wine, in {}",
        total.passed,
        total.failed,
        total.ignored,
        total.not_run,
        cmd::format_duration(step.elapsed())
    );
    if failures.is_empty() {
        Ok(total)
    } else {
        for failure in &failures {
            eprintln!("--- {failure}");
        }
        Err(format!(
            "{} test executables failed under Wine",
            failures.len()
        ))
    }
}

/// The fault of Wine itself that a failed test executable's log shows, if
/// any. Besides the known messages, a log with nothing in it: libtest prints
/// `running N tests` before any test starts, so an executable that exited
/// without a line never reached its tests (seen once in CI: `mqd_nats`
/// exited with status 1 after 0.1 s, its log empty, while wineserver dumped
/// its objects).
fn wine_glitch(log: &str) -> Option<String> {
    if log.trim().is_empty() {
        return Some("the process ended before libtest printed its first line".to_owned());
    }
    WINE_GLITCHES
        .iter()
        .find(|g| log.contains(g.0))
        .map(|(said, what)| format!("{what}: `{said}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_log_or_a_known_message_is_wines_fault_a_failed_test_is_not() {
        assert!(wine_glitch("").is_some());
        assert!(wine_glitch("  \n").is_some());
        assert!(
            wine_glitch("running 4 tests\nwine client error:1a: write: Bad file descriptor\n")
                .is_some()
        );
        let failed = "running 4 tests\ntest a ... FAILED\n\ntest result: FAILED. 3 passed; 1 failed; \
                      0 ignored; 0 measured; 0 filtered out; finished in 1.00s\n";
        assert!(wine_glitch(failed).is_none());
    }
}
