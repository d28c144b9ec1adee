//! The peer functions of the C ABI from C and C++: `tests/c/peer_test.c`
//! runs two peers in its process (no daemon, one SQLite catalog in a
//! scratch directory) and checks every `mq_peer_*` function, error paths
//! included; `tests/cpp/peer_test.cpp` does the same through `mq::peer`.
//! As `c_abi.rs` does, the C program runs twice: with AddressSanitizer,
//! UBSan and LeakSanitizer on the static library, and under valgrind's
//! memcheck on the shared library; the C++ one with the sanitizers.

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

/// Runs the program on a fresh directory; checks it exited 0 and reported no
/// failed check.
fn run_in(mut cmd: Command, dir: &Path) {
    cmd.arg(dir);
    let out = run_bounded(&mut cmd, Duration::from_secs(600));
    let stdout = expect_success(&format!("{cmd:?}"), &out);
    print!("{stdout}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

/// Builds `source` with the sanitizers and runs it on a fresh directory.
fn sanitized(compiler: &str, std: &str, file: &str, name: &str) {
    let dir = scratch(name);
    let program = dir.join("peer_test");
    build_with_asan(compiler, std, &[source(file)], &program);
    let mut cmd = Command::new(&program);
    cmd.env("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1")
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("a data directory");
    run_in(cmd, &data);
}

#[test]
fn c_peer_tests_pass_under_address_sanitizer() {
    sanitized("gcc", "c11", "c/peer_test.c", "peer-asan");
}

#[test]
fn cpp_peer_tests_pass_under_address_sanitizer() {
    sanitized("g++", "c++17", "cpp/peer_test.cpp", "peer-cpp-asan");
}

#[test]
fn c_peer_tests_pass_under_valgrind() {
    let dir = scratch("peer-valgrind");
    let program = dir.join("peer_test");
    build_shared("gcc", "c11", &[source("c/peer_test.c")], &program);
    let mut cmd = tool("valgrind");
    cmd.args([
        "--quiet",
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite",
    ])
    .arg(&program);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("a data directory");
    run_in(cmd, &data);
}
