//! `cargo xtask <task>`: the project's automation, in Rust with std only, plus
//! cbindgen for `codegen` (see `.cargo/config.toml` for the alias).

mod bench;
mod by_source;
mod catalog;
mod ci;
mod cmd;
mod console;
mod embedded;
mod failure;
mod ffi;
mod firmware;
mod fuzz;
mod gate;
mod goals;
mod host_tests;
mod install;
mod install_check;
mod interop;
mod mq_tools;
mod mqd;
mod mqtt;
mod nats;
mod panic_paths;
mod peer;
mod python;
mod qemu;
mod symbols;
mod testbins;
mod tls;
mod toolchain;
mod windows;

use std::env;
use std::process::ExitCode;

use failure::Failure;

/// The tasks, as listed by `cargo xtask help`.
const TASKS: &[(&str, &str)] = &[
    (
        "ci",
        "everything CI checks: fmt, clippy, tests, no_std builds, firmware, QEMU",
    ),
    (
        "firmware",
        "build the mps2-an386 firmware variants, run its host tests, print their sizes",
    ),
    (
        "qemu [--list] [SCENARIO...]",
        "boot the firmware under QEMU against host peers and check the results",
    ),
    (
        "codegen [--check]",
        "regenerate mq-ffi/include/mq.h from mq-ffi's source (cbindgen); --check: fail if stale",
    ),
    (
        "bench [--quick] [--pause-compilers] ...",
        "mq side by side with NATS, Mosquitto, Redis, ZeroMQ, liner, raw TCP; rewrites BENCHMARKS.md",
    ),
    (
        "fuzz [TARGET] [--seconds N]",
        "run cargo-fuzz on mq-core/fuzz (all targets, 30 s each, by default)",
    ),
    (
        "windows [--all]",
        "build for x86_64-pc-windows-gnu (MinGW-w64) and run the tests, mqd and a C program under Wine",
    ),
    (
        "ffi-python",
        "build mq-ffi/python's wheel (maturin), pip-install it in fresh venvs, run its tests",
    ),
    (
        "install --prefix DIR",
        "install mq-ffi for C and C++: headers, libraries, pkg-config and CMake files",
    ),
    (
        "install-check",
        "install into a temporary prefix, build and run programs through pkg-config and CMake, as ci does",
    ),
    (
        "mqtt-interop",
        "MQTT clients (mosquitto_*, paho) against Mosquitto and mqd, and bad input, as ci does",
    ),
    (
        "console",
        "mqd's web console in headless Chromium: what it shows, purge and delete, a screenshot",
    ),
    (
        "nats-interop",
        "NATS clients (async-nats, nats-py, a raw socket) against nats-server and mqd, as ci does",
    ),
    (
        "tls-interop",
        "openssl s_client and mosquitto_pub --cafile against mqd's TLS listeners, as ci does",
    ),
    (
        "catalog",
        "mq-catalog's tests and three mqd nodes on SQLite, Redis and PostgreSQL (starting those that do not answer), as ci does",
    ),
    (
        "test",
        "the workspace's tests but mq-catalog's, the test executables side by side, as ci does",
    ),
    ("help", "print this list"),
];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match task {
        "bench" => bench::run_bench(rest),
        "ci" => ci::run_ci(rest),
        "codegen" => ffi::run_codegen(rest),
        "fuzz" => fuzz::run_fuzz(rest),
        "firmware" => firmware::run_firmware(rest),
        "qemu" => qemu::run_qemu(rest),
        // Not for people: QEMU runs it per guest connection (see qemu.rs).
        "qemu-relay" => qemu::relay(rest),
        "ffi-python" => python::python_tests().map_err(Failure::Failed),
        "windows" => windows::run_windows(rest),
        "install" => install::run_install(rest),
        "install-check" => install_check::check().map_err(Failure::Failed),
        "mqtt-interop" => mqtt::interop().map_err(Failure::Failed),
        "console" => console::check().map_err(Failure::Failed),
        "nats-interop" => nats::interop().map_err(Failure::Failed),
        "tls-interop" => tls::interop().map_err(Failure::Failed),
        "catalog" => catalog::check().map_err(Failure::Failed),
        "test" => host_tests::check().map_err(Failure::Failed),
        "help" | "-h" | "--help" => {
            print!("{}", usage());
            Ok(())
        }
        other => Err(Failure::Usage(format!("unknown task `{other}`"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("xtask {task}: {message}\n");
            if task == "fuzz" {
                eprintln!("{}", fuzz::USAGE);
            } else if task == "qemu" {
                eprintln!("{}", qemu::USAGE);
            } else if task == "install" {
                eprintln!("{}", install::USAGE);
            } else if task == "bench" {
                eprintln!("{}", bench::USAGE);
            } else {
                eprint!("{}", usage());
            }
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("xtask {task}: error: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::Reported) => ExitCode::FAILURE,
    }
}

fn usage() -> String {
    let width = TASKS.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut text = String::from("usage: cargo xtask <task>\n\ntasks:\n");
    for (name, what) in TASKS {
        text += &format!("  {name:width$}  {what}\n");
    }
    text
}
