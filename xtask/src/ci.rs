//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.

use std::process::Command;
use std::time::Duration;

use crate::cmd::{self, Step, cargo, run};
use crate::failure::Failure;
use crate::toolchain::{self, Route};
use crate::{bench, embedded, ffi, firmware, mqtt, qemu};

/// The target that proves the std crates and `mq-ffi` build for Windows.
const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

type Action = fn(&mut Ci) -> Result<(), String>;

/// The checks, in the order they run.
const STEPS: &[(&str, Action)] = &[
    ("toolchain components (rustfmt, clippy)", |_| {
        toolchain::components()
    }),
    ("cargo fmt --check", |_| {
        run(cargo().args(["fmt", "--all", "--", "--check"]))
    }),
    ("cargo clippy", |_| {
        run(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    }),
    ("mq-ffi: mq.h matches the source", |_| ffi::header_fresh()),
    ("mq-ffi: tools for C, C++, Python tests", |_| {
        ffi::test_tools()
    }),
    ("cargo test", |_| run(cargo().args(["test", "--workspace"]))),
    ("mq-ffi: Python package tests (venv)", |_| {
        ffi::python_tests()
    }),
    (
        "MQTT interop: mosquitto clients and paho vs Mosquitto and mqd",
        |_| mqtt::interop(),
    ),
    (
        "simulations (mq and MQTT), 2000 seeds each (release)",
        |_| {
            run(cargo().env("MQ_SIM_SEEDS", "2000").args([
                "test",
                "--release",
                "-p",
                "mq-core",
                "--test",
                "sim",
                "--test",
                "sim_mqtt",
            ]))
        },
    ),
    (
        "Windows portability (check for x86_64-pc-windows-gnu)",
        |_| windows_check(),
    ),
    ("no_std target thumbv7em-none-eabihf", Ci::nostd_target),
    ("no_std mq-core (no default features)", |ci| {
        ci.nostd_build(None)
    }),
    ("no_std mq-core +alloc", |ci| ci.nostd_build(Some("alloc"))),
    ("no_std mq-core +defmt", |ci| ci.nostd_build(Some("defmt"))),
    ("no_std mq-embedded (tcp, serial, defmt)", |ci| {
        embedded::nostd(ci.nostd_cargo_build()?)
    }),
    ("firmware: fmt and clippy", |_| firmware::lint()),
    ("firmware: build, host tests, sizes", |_| firmware::check()),
    ("qemu: firmware against host peers", |_| qemu::check()),
    (
        "peer benchmark: clippy, tests, smoke run (mq, mq-mqtt, tcp)",
        |_| bench::ci_smoke(),
    ),
];

/// State carried from one step to the next.
struct Ci {
    route: Option<Route>,
}

pub fn run_ci(args: &[String]) -> Result<(), Failure> {
    if let Some(arg) = args.first() {
        return Err(Failure::Usage(format!(
            "`ci` takes no arguments, got `{arg}`"
        )));
    }
    let mut ci = Ci { route: None };
    let mut took: Vec<Duration> = Vec::new();
    let mut failed = None;
    for (name, action) in STEPS {
        let step = Step::start(name);
        let result = action(&mut ci);
        took.push(step.elapsed());
        if let Err(message) = result {
            eprintln!("error: ci step `{}` failed: {message}", step.name());
            failed = Some(message);
            break;
        }
    }

    let passed = took.len() - usize::from(failed.is_some());
    let width = STEPS.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    println!();
    println!("{:width$}  {:>8}  result", "step", "time");
    for (index, (name, _)) in STEPS.iter().enumerate() {
        let (time, result) = match took.get(index) {
            Some(&t) if index < passed => (cmd::format_duration(t), "ok"),
            Some(&t) => (cmd::format_duration(t), "FAILED"),
            None => ("-".to_owned(), "not run"),
        };
        println!("{name:width$}  {time:>8}  {result}");
    }
    println!(
        "total {}",
        cmd::format_duration(took.iter().sum::<Duration>())
    );
    match failed {
        None => {
            println!("ci: {passed} passed, 0 failed");
            Ok(())
        }
        Some(_) => {
            println!("ci: {passed} passed, 1 failed");
            Err(Failure::Reported)
        }
    }
}

impl Ci {
    fn nostd_target(&mut self) -> Result<(), String> {
        self.route = Some(Route::choose()?);
        Ok(())
    }

    /// `cargo build -p mq-core` for [`NOSTD_TARGET`](toolchain::NOSTD_TARGET) without default
    /// features, plus `feature`.
    fn nostd_build(&mut self, feature: Option<&str>) -> Result<(), String> {
        let mut cmd = self.nostd_cargo_build()?;
        cmd.args(["--package", "mq-core", "--no-default-features"]);
        if let Some(feature) = feature {
            cmd.args(["--features", feature]);
        }
        run(&mut cmd)
    }

    /// `cargo build --target NOSTD_TARGET` in the workspace through the route the
    /// no_std steps chose.
    fn nostd_cargo_build(&self) -> Result<Command, String> {
        let route = self
            .route
            .ok_or("no route to the no_std target was chosen")?;
        Ok(route.cargo_build(&cmd::workspace_root(), &cmd::target_dir()))
    }
}

/// The crates that must stay portable to Windows: the std adapters (the
/// clients, the server, the programs, the facade, the test harness) and the C
/// ABI.
const WINDOWS_CRATES: &[&str] = &[
    "mq-client",
    "mq-server",
    "mq-cli",
    "mq-std",
    "mq-testkit",
    "mq-ffi",
];

/// [`WINDOWS_CRATES`] type-check for a Windows target, tests included, with
/// warnings denied (no linker needed for `cargo check`).
fn windows_check() -> Result<(), String> {
    toolchain::rustup_add(WINDOWS_TARGET)?;
    let mut check = cargo();
    check.env("RUSTFLAGS", "-D warnings").arg("check");
    for krate in WINDOWS_CRATES {
        check.args(["-p", krate]);
    }
    run(check.args(["--all-targets", "--target", WINDOWS_TARGET]))
}
