//! Every example program, in every language, against a fresh `mqd`: each must
//! print exactly `expected/<pattern>.txt`. The C and C++ programs are compiled
//! with gcc/g++ against mq-ffi's static library, the Python ones run with
//! `python3` on the package in `mq-ffi/python` (no installation needed).
//! And the cross-language exchange: a C and a Python program talk to a Rust
//! program through one `mqd`.

#[path = "../../mq-ffi/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const LIMIT: Duration = Duration::from_secs(60);

fn here(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The Rust program of a pattern (a binary of this crate).
fn rust_program(pattern: &str) -> PathBuf {
    PathBuf::from(match pattern {
        "one-to-one" => env!("CARGO_BIN_EXE_one-to-one"),
        "one-to-one-of-many" => env!("CARGO_BIN_EXE_one-to-one-of-many"),
        "one-to-many" => env!("CARGO_BIN_EXE_one-to-many"),
        "many-to-many" => env!("CARGO_BIN_EXE_many-to-many"),
        "producer-consumer" => env!("CARGO_BIN_EXE_producer-consumer"),
        "interop-echo" => env!("CARGO_BIN_EXE_interop-echo"),
        other => panic!("no Rust program {other}"),
    })
}

/// Compiles `examples/<dir>/<file>` (C or C++) against the static library.
fn compile(dir: &str, file: &str) -> PathBuf {
    let (compiler, std) = if dir == "cpp" {
        ("g++", "-std=c++17")
    } else {
        ("gcc", "-std=c11")
    };
    let a = artifacts();
    let out = scratch(&format!("examples-{dir}-{file}")).join("program");
    let mut cmd = tool(compiler);
    cmd.arg(std)
        .args(["-O1", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(a.include_dir())
        .arg(here(&format!("{dir}/{file}")))
        .arg(a.staticlib())
        .args(native_libs())
        .arg("-o")
        .arg(&out);
    expect_success(&format!("compiling {file}"), &run_bounded(&mut cmd, LIMIT));
    out
}

/// `python3` running `examples/python/<file>` on the package in the source tree.
fn python(file: &str) -> Command {
    let mut cmd = tool("python3");
    cmd.arg(here(&format!("python/{file}")))
        .env("PYTHONPATH", here("../mq-ffi/python"))
        .env("MQ_LIB", artifacts().cdylib());
    cmd
}

/// Runs a pattern's program in each language against its own fresh broker and
/// compares what it prints with the expected lines.
fn check_pattern(pattern: &str) {
    let expected = std::fs::read_to_string(here(&format!("expected/{pattern}.txt")))
        .expect("the expected output");
    let file = pattern.replace('-', "_");
    let programs: [(&str, Command); 4] = [
        ("Rust", Command::new(rust_program(pattern))),
        ("C", Command::new(compile("c", &format!("{file}.c")))),
        ("C++", Command::new(compile("cpp", &format!("{file}.cpp")))),
        ("Python", python(&format!("{file}.py"))),
    ];
    for (language, mut cmd) in programs {
        let mqd = Mqd::start(OPEN_CONFIG);
        let out = run_bounded(cmd.arg(mqd.addr.to_string()), LIMIT);
        let stdout = expect_success(&format!("{pattern} in {language}"), &out);
        assert_eq!(
            stdout, expected,
            "{pattern} in {language} printed something else"
        );
    }
}

#[test]
fn one_to_one() {
    check_pattern("one-to-one");
}

#[test]
fn one_to_one_of_many() {
    check_pattern("one-to-one-of-many");
}

#[test]
fn one_to_many() {
    check_pattern("one-to-many");
}

#[test]
fn many_to_many() {
    check_pattern("many-to-many");
}

#[test]
fn producer_consumer() {
    check_pattern("producer-consumer");
}

#[test]
fn c_and_python_exchange_messages_with_rust() {
    let c_client = compile("c", "interop_client.c");
    let mqd = Mqd::start(OPEN_CONFIG);
    let addr = mqd.addr.to_string();
    let mut echo = Command::new(rust_program("interop-echo"))
        .args([addr.as_str(), "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("interop-echo starts");
    let mut lines = BufReader::new(echo.stdout.take().expect("its stdout"));
    let mut ready = String::new();
    lines.read_line(&mut ready).expect("a line");
    assert_eq!(ready, "ready\n", "interop-echo did not get ready");

    let c = expect_success(
        "the C client",
        &run_bounded(Command::new(c_client).arg(&addr), LIMIT),
    );
    assert_eq!(c, "reply: HELLO FROM C\n");
    let py = expect_success(
        "the Python client",
        &run_bounded(python("interop_client.py").arg(&addr), LIMIT),
    );
    assert_eq!(py, "reply: HELLO FROM PYTHON\n");

    let deadline = Instant::now() + LIMIT;
    while echo.try_wait().expect("waiting works").is_none() {
        assert!(Instant::now() < deadline, "interop-echo did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut rest = String::new();
    lines.read_to_string(&mut rest).expect("its output");
    assert!(echo.wait().expect("exit status").success(), "{rest}");
    assert_eq!(
        rest,
        "echoed c: hello from c\nechoed python: hello from python\n"
    );
}
