//! `cargo xtask ci`'s Windows step: the std crates, `mqd`, `mq` and the C
//! library built for [`TARGET`] with MinGW-w64 and run under Wine.
//!
//! 1. The tools: rustup's target, MinGW-w64's gcc and Wine (Debian's
//!    packages, installed with a message when missing).
//! 2. clippy for the target, so code that only Windows compiles is linted.
//! 3. A Wine prefix of the step's own under the target directory; when its
//!    Wine lacks `bcryptprimitives.dll` (which Rust's std imports), a
//!    stand-in built from `xtask/windows/bcryptprimitives.c` goes into it.
//! 4. The test executables of the std crates (`cargo test --no-run
//!    --target`), each run under Wine; tests that start `mqd` get `mqd.exe`
//!    through mq-testkit ([`mq_testkit::MQD_VAR`]). It prints each
//!    executable's counts and the total; a test not run under Wine is named,
//!    with why ([`NOT_UNDER_WINE`]), and so are the packages not built for
//!    Windows ([`NOT_BUILT`]).
//! 5. `mqd.exe` on a free loopback port with its write-ahead log, driven from
//!    Linux: `mq.exe` publishes at QoS 1, a C example linked against the
//!    Windows static library runs against it, Ctrl-C stops it gracefully
//!    (SIGINT to the Wine process, which Wine turns into the console's
//!    `CTRL_C_EVENT`), and what it acknowledged is there after a restart and
//!    after a crash.
//! 6. Desktop peers with no daemon (`peers`): `examples/c/peers.c`, linked
//!    the same way, runs liner's patterns in one Windows process and talks
//!    peer to peer across two.
//!
//! The console closing (`CTRL_CLOSE_EVENT`) cannot come from Linux: Wine's
//! console host sends it to no one when it closes, and a headless Wine has
//! no console window to close. The test executables deliver it (and Ctrl-C)
//! from inside Windows as a console does, by starting a thread in `mqd.exe`
//! at `kernel32!CtrlRoutine` (mq-testkit's `Mqd::close_console`).

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{self, Step, cargo, run};
use crate::mq_tools::{self, MqTools, Runner};
use crate::testbins::{TestExe, parse_counts, run_logged, tail, test_executables};
use crate::toolchain;

mod peers;

/// The Windows target: MinGW-w64's ABI, which Debian's cross compiler builds.
pub const TARGET: &str = "x86_64-pc-windows-gnu";

/// MinGW-w64's C compiler for [`TARGET`] (what rustc links with).
const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";

/// Wine's 64-bit loader and the packages that bring it (and `wine`, the
/// command that picks it).
const WINE: &str = "wine";
const WINE_PACKAGES: &[&str] = &["wine", "wine64"];

/// The crates that must build for Windows (clippy, tests included): the std
/// adapters, the test harness and the C ABI. (mq-catalog's tests need Redis
/// and PostgreSQL, so they build here and run on Linux only.)
const CRATES: &[&str] = &[
    "mq-client",
    "mq-catalog",
    "mq-server",
    "mq-cli",
    "mq-std",
    "mq-testkit",
    "mq-ffi",
];

/// The packages whose tests run under Wine.
const TESTED: &[&str] = &["mq-client", "mq-server", "mq-cli", "mq-std", "mq-testkit"];

/// Tests that are built but not run under Wine: (test executable, test, why).
const NOT_UNDER_WINE: &[(&str, &str, &str)] = &[
    (
        "mqd_limits",
        "slow_consumer_does_not_grow_memory_past_the_bound",
        "it pushes 400 MB through loopback TCP, and under Wine every socket call is a \
         round trip to wineserver: about 2 minutes for a bound on memory, not a \
         Windows difference (it passes under Wine: \
         `cargo xtask windows --all` runs it)",
    ),
    (
        "mesh_nodes",
        "three_nodes_over_redis",
        "it needs the Redis that the catalog step makes sure of; the mqd nodes run \
         under Wine over SQLite (three_nodes_over_sqlite), and the catalog's \
         backends are the same code on Windows",
    ),
    (
        "mesh_nodes",
        "three_nodes_over_postgres",
        "it needs the PostgreSQL that the catalog step makes sure of; the mqd nodes \
         run under Wine over SQLite (three_nodes_over_sqlite)",
    ),
];

/// Failures that are Wine's, not mq's: (what the log says, what it is). A
/// test executable that fails with one of them is run once more, saying so.
const WINE_GLITCHES: &[(&str, &str)] = &[
    (
        "Os { code: 1359, kind: Uncategorized, message: \"Internal error.\" }",
        "CreateProcess failing with ERROR_INTERNAL_ERROR under load",
    ),
    (
        "wine client error",
        "a Windows process losing its connection to wineserver",
    ),
];

/// Packages whose tests are not built for Windows, and why.
const NOT_BUILT: &[(&str, &str)] = &[
    (
        "mq-ffi",
        "its tests compile C and C++ at run time with gcc under AddressSanitizer \
         and valgrind, which the Windows side has not; the C library is checked \
         below by linking examples/c/one_to_one.c with MinGW-w64 and running it",
    ),
    (
        "mq-examples",
        "its tests run the examples through Python and C/C++ compilers at run time",
    ),
    (
        "mq-embedded",
        "its host tests drive a pseudo-terminal (Unix) and the no_std clients",
    ),
];

/// How long one test executable may run under Wine.
const TEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The C example linked against the Windows static library, and what it prints.
const C_EXAMPLE: &str = "examples/c/one_to_one.c";
const C_EXAMPLE_PRINTS: &[&str] = &[
    "received: order 1",
    "received: order 2",
    "received: order 3",
];

/// The Windows libraries that Rust's std and mq-ffi's dependencies need,
/// linked into a C program with the static library (`rustc --print
/// native-static-libs`).
const NATIVE_LIBS: &[&str] = &[
    "-lws2_32",
    "-lntdll",
    "-luserenv",
    "-lbcrypt",
    "-ladvapi32",
    "-lkernel32",
    // GetUserNameExW, which the PostgreSQL client of the peer's catalog
    // (through `whoami`) calls.
    "-lsecur32",
];

/// `cargo xtask windows [--all]`: the Windows step alone; `--all` also runs
/// the tests [`NOT_UNDER_WINE`] leaves out for time.
pub fn run_windows(args: &[String]) -> Result<(), crate::failure::Failure> {
    use crate::failure::Failure;
    let all = match args {
        [] => false,
        [flag] if flag == "--all" => true,
        [arg, ..] => {
            return Err(Failure::Usage(format!(
                "`windows` takes only `--all`, got `{arg}`"
            )));
        }
    };
    check(all).map_err(Failure::Failed)
}

/// The CI step (see the module docs); `all` runs [`NOT_UNDER_WINE`] too.
pub fn check(all: bool) -> Result<(), String> {
    tools()?;
    let lint = Step::start("windows: clippy for x86_64-pc-windows-gnu");
    let mut clippy = cargo();
    clippy.arg("clippy");
    for krate in CRATES {
        clippy.args(["-p", krate]);
    }
    run(clippy.args(["--all-targets", "--target", TARGET, "--", "-D", "warnings"]))?;
    println!("    {}", cmd::format_duration(lint.elapsed()));

    let built = build()?;
    let wine = Wine::prepare()?;
    let tests = run_tests(&wine, &built, all);
    let daemon = run_daemon(&wine, &built);
    let peers = peers::check(&wine, &built.static_lib);
    wine.shut_down();
    let counts = tests?;
    daemon?;
    peers?;
    println!(
        "windows: {} passed, {} failed, {} not run under Wine",
        counts.passed, counts.failed, counts.not_run
    );
    Ok(())
}

/// Rustup's target, MinGW-w64's gcc and Wine, installed when missing.
fn tools() -> Result<(), String> {
    toolchain::rustup_add(TARGET)?;
    cmd::ensure_program(MINGW_GCC, "gcc-mingw-w64-x86-64")?;
    if !cmd::on_path(WINE) {
        println!(
            "{WINE} is missing: installing Debian's {} to run the Windows build",
            WINE_PACKAGES.join(" and ")
        );
    }
    cmd::ensure_apt(WINE_PACKAGES)?;
    if !cmd::on_path(WINE) {
        return Err(format!(
            "{WINE} is still missing after installing {}",
            WINE_PACKAGES.join(" ")
        ));
    }
    let version = cmd::stdout_of(Command::new(WINE).arg("--version").env("WINEDEBUG", "-all"))
        .unwrap_or_default();
    println!("{MINGW_GCC} and {}: present", version.trim());
    Ok(())
}

/// What the build made.
struct Built {
    mqd: PathBuf,
    mq: PathBuf,
    static_lib: PathBuf,
    /// (test executable's name, path), of the packages in [`TESTED`].
    tests: Vec<TestExe>,
}

/// Builds `mqd`, `mq`, the C library and the test executables for [`TARGET`].
fn build() -> Result<Built, String> {
    let step = Step::start("windows: build mqd.exe, mq.exe, the C library and the tests");
    run(cargo().args([
        "build", "--target", TARGET, "-p", "mq-cli", "--bins", "-p", "mq-ffi", "--lib",
    ]))?;
    let mut test = cargo();
    test.args([
        "test",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ])
    .args(["--target", TARGET]);
    for krate in TESTED {
        test.args(["-p", krate]);
    }
    println!("$ {}", cmd::display(&test));
    let out = test
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the tests for {TARGET} failed ({})",
            out.status
        ));
    }
    let tests = test_executables(&String::from_utf8_lossy(&out.stdout));
    let dir = cmd::target_dir().join(TARGET).join("debug");
    let built = Built {
        mqd: dir.join("mqd.exe"),
        mq: dir.join("mq.exe"),
        static_lib: dir.join("libmq_ffi.a"),
        tests,
    };
    for path in [&built.mqd, &built.mq, &built.static_lib] {
        if !path.is_file() {
            return Err(format!("{} is missing after the build", path.display()));
        }
    }
    println!(
        "    {} test executables, built in {}",
        built.tests.len(),
        cmd::format_duration(step.elapsed())
    );
    Ok(built)
}

/// The Wine prefix the step runs in: its own, under the target directory.
struct Wine {
    prefix: PathBuf,
}

impl Wine {
    /// Creates the prefix if needed and puts the `bcryptprimitives.dll`
    /// stand-in into it when this Wine has none.
    fn prepare() -> Result<Wine, String> {
        let step = Step::start("windows: the Wine prefix");
        let wine = Wine {
            prefix: cmd::target_dir().join("wine-prefix"),
        };
        let system32 = wine.prefix.join("drive_c/windows/system32");
        if !system32.is_dir() {
            println!("creating the Wine prefix {}", wine.prefix.display());
            run(wine.command().args(["wineboot", "--init"]))?;
        }
        let dll = system32.join("bcryptprimitives.dll");
        if !dll.is_file() {
            println!(
                "this Wine has no bcryptprimitives.dll, whose ProcessPrng Rust's std \
                 imports: building a stand-in from xtask/windows/bcryptprimitives.c"
            );
            let source = cmd::workspace_root().join("xtask/windows/bcryptprimitives.c");
            run(Command::new(MINGW_GCC)
                .args(["-shared", "-O2", "-o"])
                .arg(&dll)
                .arg(&source)
                .arg("-lbcrypt"))?;
        }
        // One wineserver for the whole step (ended by `shut_down`). Left to
        // itself it exits a moment after the last Windows process; a program
        // started in that moment (mqd.exe restarted right after it stopped)
        // fails with `wine client error:0: recvmsg: Connection reset by peer`.
        // `-p` refuses while another server runs (the one `wineboot` just
        // used, on a new prefix): wait for that one to end first.
        run(Command::new("wineserver").arg("-w").envs(wine.env()))?;
        run(Command::new("wineserver").arg("-p").envs(wine.env()))?;
        println!("    {}", cmd::format_duration(step.elapsed()));
        Ok(wine)
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("WINEPREFIX".into(), self.prefix.display().to_string()),
            // Wine's own diagnostics (fixme:, err:) drown the programs' output.
            ("WINEDEBUG".into(), "-all".into()),
            // No prompt to install Mono or Gecko into a new prefix.
            ("WINEDLLOVERRIDES".into(), "mscoree,mshtml=".into()),
        ]
    }

    /// `wine` in this prefix.
    fn command(&self) -> Command {
        let mut command = Command::new(WINE);
        command.envs(self.env());
        command
    }

    /// `wine PROGRAM`, for mq_tools and mq-testkit.
    fn runner(&self) -> Runner {
        Runner {
            program: PathBuf::from(WINE),
            env: self.env(),
        }
    }

    /// Ends whatever still runs in the prefix (an `mqd.exe` a failed test left).
    fn shut_down(&self) {
        let _ = Command::new("wineserver")
            .arg("-k")
            .envs(self.env())
            .status();
    }
}

/// `Z:\...`: a Linux path as Windows programs under Wine see it (Wine maps
/// `Z:` to `/`).
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

#[derive(Default)]
struct Counts {
    passed: u32,
    failed: u32,
    ignored: u32,
    not_run: u32,
}

/// Runs every test executable under Wine (the slow ones of
/// [`NOT_UNDER_WINE`] only with `all`) and prints the counts.
fn run_tests(wine: &Wine, built: &Built, all: bool) -> Result<Counts, String> {
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
        let counts = parse_counts(&text);
        let verdict = match (&result, &counts) {
            (Ok(()), Some(c)) if c.filtered == skips.len() as u32 => {
                total.passed += c.passed;
                total.ignored += c.ignored;
                total.not_run += c.filtered;
                format!("{} passed, {} ignored", c.passed, c.ignored)
            }
            (Ok(()), Some(c)) => {
                failures.push(format!(
                    "{name}: {} tests filtered out, but the skip list names {} (is it stale?)",
                    c.filtered,
                    skips.len()
                ));
                "skip list mismatch".to_owned()
            }
            (result, counts) => {
                let failed = counts.as_ref().map_or(1, |c| c.failed.max(1));
                total.failed += failed;
                total.passed += counts.as_ref().map_or(0, |c| c.passed);
                let why = result.as_ref().err().cloned().unwrap_or_default();
                failures.push(format!("{name}: {why}\n{}", tail(&text, 80)));
                format!("FAILED ({failed} failed) {why}")
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

/// `mqd.exe` on a loopback port with its log, driven from Linux (see the
/// module docs).
fn run_daemon(wine: &Wine, built: &Built) -> Result<(), String> {
    let step = Step::start("windows: mqd.exe, mq.exe and a C program under Wine");
    let tools = MqTools {
        mqd: built.mqd.clone(),
        mq: built.mq.clone(),
        runner: Some(wine.runner()),
    };
    let mut mqd = mq_tools::Mqd::start(tools, "windows")?;
    println!(
        "mqd.exe listens on {} (data in {})",
        mqd.server.addr,
        mqd.server.dir.join("data").display()
    );
    let result = drive_daemon(wine, built, &mut mqd);
    if result.is_err() {
        eprintln!("mqd.exe's log:\n{}", tail(&mqd.server.log(), 40));
    }
    println!("    {}", cmd::format_duration(step.elapsed()));
    result
}

const TOPIC: &str = "windows.smoke";

fn drive_daemon(wine: &Wine, built: &Built, mqd: &mut mq_tools::Mqd) -> Result<(), String> {
    let payloads: Vec<String> = (1..=3).map(|n| format!("m{n}")).collect();
    mq_tools::wait_for("mq.exe pub --qos 1", mqd.publish(TOPIC, &payloads)?)?;
    expect_replay(mqd, &payloads, "published by mq.exe")?;

    c_example(wine, built, mqd.server.addr)?;

    let status = mqd.server.interrupt();
    let log = mqd.server.log();
    if !status.success() || !log.contains("stopping signal=\"Ctrl-C\"") || !log.contains("stopped")
    {
        return Err(format!(
            "Ctrl-C (SIGINT to the Wine process) did not stop mqd.exe gracefully ({status})"
        ));
    }
    println!("Ctrl-C: mqd.exe stopped gracefully ({status})");

    mqd.server.try_restart()?;
    expect_replay(mqd, &payloads, "after the graceful stop and a restart")?;
    mqd.server.kill();
    mqd.server.try_restart()?;
    expect_replay(
        mqd,
        &payloads,
        "after a crash (TerminateProcess) and a restart",
    )?;
    Ok(())
}

/// `mq.exe sub --from 0` replays exactly `payloads` on [`TOPIC`].
fn expect_replay(mqd: &mq_tools::Mqd, payloads: &[String], when: &str) -> Result<(), String> {
    let seen = mqd.replay(TOPIC, |seen| seen.len() >= payloads.len())?;
    let got: Vec<&str> = seen.iter().map(|(_, p)| p.as_str()).collect();
    if got != payloads {
        return Err(format!(
            "{when}: mq.exe replayed {got:?}, expected {payloads:?}"
        ));
    }
    println!("{when}: mq.exe replays {got:?}");
    Ok(())
}

/// Links [`C_EXAMPLE`] against the Windows static library with MinGW-w64 and
/// runs it under Wine against `mqd.exe`.
fn c_example(wine: &Wine, built: &Built, addr: std::net::SocketAddr) -> Result<(), String> {
    let root = cmd::workspace_root();
    let exe = cmd::target_dir().join(TARGET).join("one_to_one.exe");
    run(Command::new(MINGW_GCC)
        .current_dir(&root)
        .args([
            "-std=c11",
            "-Wall",
            "-Werror",
            "-Imq-ffi/include",
            C_EXAMPLE,
        ])
        .arg(&built.static_lib)
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&exe))?;
    let mut command = wine.command();
    command.arg(windows_path(&exe)).arg(addr.to_string());
    println!("$ {}", cmd::display(&command));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the C example: {e}"))?;
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .map(|mut s| s.read_to_string(&mut stdout));
    child
        .stderr
        .take()
        .map(|mut s| s.read_to_string(&mut stderr));
    let status = child.wait().map_err(|e| e.to_string())?;
    print!("{stdout}");
    let missing: Vec<&&str> = C_EXAMPLE_PRINTS
        .iter()
        .filter(|line| !stdout.lines().any(|l| l.trim_end() == **line))
        .collect();
    if !status.success() || !missing.is_empty() {
        return Err(format!(
            "{C_EXAMPLE} under Wine ({status}) did not print {missing:?}: {}",
            stderr.trim()
        ));
    }
    println!("{C_EXAMPLE}, linked against libmq_ffi.a for Windows: ok");
    Ok(())
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

    #[test]
    fn linux_paths_as_wine_sees_them() {
        assert_eq!(
            windows_path(Path::new("/work/t/a.exe")),
            "Z:\\work\\t\\a.exe"
        );
    }
}
