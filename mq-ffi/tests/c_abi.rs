//! The C ABI from C and C++: `tests/c/mq_test.c` and `tests/cpp/mq_test.cpp`
//! run against a real `mqd`. They check every function, error paths included,
//! and count their checks; a failed check, a memory error or a leak fails the
//! test. Each program runs twice:
//!
//! - compiled with AddressSanitizer, UBSan and LeakSanitizer, linked with the
//!   static library (the sanitizers see the C/C++ side, and every allocation);
//! - linked with the shared library under valgrind's memcheck, which sees the
//!   Rust side's reads and writes of C memory too.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

fn source(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(path)
}

/// Runs `cmd` (a test program, maybe under a tool) against a broker with
/// tokens and a TLS listener; checks it exited 0 and reported no failed check.
fn run_against_broker(mut cmd: Command) -> String {
    let tls = Tls::new();
    let mqd = Mqd::start(&tls.config());
    cmd.arg(mqd.addr.to_string()).arg(TOKEN).arg(NARROW_TOKEN);
    cmd.args(tls.args(&mqd));
    let out = run_bounded(&mut cmd, Duration::from_secs(600));
    let stdout = expect_success(&format!("{cmd:?}"), &out);
    print!("{stdout}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    stdout
}

fn sanitized(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1")
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
    cmd
}

/// valgrind's memcheck, failing the run on any error or definite leak; with
/// the suppressions of `valgrind-ring.supp` (ring's assembly AEAD, which
/// memcheck cannot follow, under the TLS tests).
fn memcheck(program: &Path) -> Command {
    let mut cmd = tool("valgrind");
    cmd.args([
        "--quiet",
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite",
    ])
    .arg(format!(
        "--suppressions={}",
        source("valgrind-ring.supp").display()
    ))
    .arg(program);
    cmd
}

#[test]
fn c_tests_pass_under_address_sanitizer() {
    let program = scratch("c-asan").join("mq_test");
    build_with_asan("gcc", "c11", &[source("c/mq_test.c")], &program);
    run_against_broker(sanitized(&program));
}

#[test]
fn c_tests_pass_under_valgrind() {
    let program = scratch("c-valgrind").join("mq_test");
    build_shared("gcc", "c11", &[source("c/mq_test.c")], &program);
    run_against_broker(memcheck(&program));
}

#[test]
fn cpp_tests_pass_under_address_sanitizer() {
    let program = scratch("cpp-asan").join("mq_test");
    build_with_asan("g++", "c++17", &[source("cpp/mq_test.cpp")], &program);
    run_against_broker(sanitized(&program));
}

/// In C++20, where `mq::bytes` also takes a `std::span`.
#[test]
fn cpp20_tests_pass_under_valgrind() {
    let program = scratch("cpp-valgrind").join("mq_test");
    build_shared("g++", "c++20", &[source("cpp/mq_test.cpp")], &program);
    run_against_broker(memcheck(&program));
}
