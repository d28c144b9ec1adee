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
//!
//! Steps 1, 2 and the build are here; the Wine prefix (3) is in
//! `windows/wine.rs`, the tests (4) in `windows/under_wine.rs`, `mqd.exe`
//! (5) in `windows/daemon.rs` and the peers (6) in `windows/peers.rs`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::cmd::{self, Step, cargo, run};
use crate::testbins::{TestExe, run_logged, test_executables};
use crate::toolchain;

mod daemon;
mod peers;
mod under_wine;
mod wine;

use daemon::run_daemon;
use under_wine::run_tests;
use wine::{Wine, windows_path};

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
