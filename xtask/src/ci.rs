//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.

use std::process::Command;
use std::time::Duration;

use crate::cmd::{self, Step, cargo, run};
use crate::failure::Failure;
use crate::toolchain::{self, Route};
use crate::{
    bench, catalog, console, embedded, ffi, firmware, host_tests, install_check, mqtt, nats,
    python, qemu, tls, windows,
};

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
    // Links in docs that name an item of another build (alloc only, Windows
    // only) break without a warning anywhere else.
    (
        "cargo doc: no broken links (all crates; mq-core without alloc)",
        |_| {
            run(cargo().env("RUSTDOCFLAGS", "-D warnings").args([
                "doc",
                "--workspace",
                "--no-deps",
            ]))?;
            run(cargo().env("RUSTDOCFLAGS", "-D warnings").args([
                "doc",
                "-p",
                "mq-core",
                "--no-deps",
                "--no-default-features",
            ]))
        },
    ),
    ("mq-ffi: mq.h matches the source", |_| ffi::header_fresh()),
    ("mq-ffi: tools for C, C++, Python tests", |_| {
        ffi::test_tools()
    }),
    // mq-catalog's tests and the mesh of mqd nodes over each catalog
    // (`three_nodes_over_*`) need Redis and PostgreSQL: the next step has them.
    ("cargo test (test executables side by side)", |_| {
        host_tests::check()
    }),
    (
        "mq-catalog and mqd nodes on SQLite, Redis and PostgreSQL (started if absent)",
        |_| catalog::check(),
    ),
    (
        "mq-ffi: Python wheel and source install, tests (fresh venvs)",
        |_| python::python_tests(),
    ),
    (
        "mq-ffi: C/C++ install, pkg-config and CMake consumers",
        |_| install_check::check(),
    ),
    (
        "MQTT interop: mosquitto clients and paho vs Mosquitto and mqd",
        |_| mqtt::interop(),
    ),
    (
        "web console in headless Chromium against mqd with traffic",
        |_| console::check(),
    ),
    (
        "NATS interop: async-nats, nats-py and a raw socket vs nats-server and mqd",
        |_| nats::interop(),
    ),
    (
        "TLS interop: openssl s_client and mosquitto_pub --cafile vs mqd",
        |_| tls::interop(),
    ),
    (
        "simulations (mq, MQTT, NATS, purges, mesh, offline queues), 2000 seeds each (release)",
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
                "--test",
                "sim_admin",
                "--test",
                "sim_nats",
                "--test",
                "sim_mesh",
                "--test",
                "sim_offline",
            ]))
        },
    ),
    (
        "write-ahead log through power cuts, 4 policies x 2000 seeds (release)",
        |_| {
            run(cargo().env("MQ_WAL_CRASH_SEEDS", "2000").args([
                "test",
                "--release",
                "-p",
                "mq-server",
                "--test",
                "wal_power",
            ]))
        },
    ),
    ("Windows: build with MinGW-w64, run under Wine", |_| {
        windows::check(false)
    }),
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
    (
        "firmware: build, host tests, sizes, panicking paths",
        |_| firmware::check(),
    ),
    ("qemu: firmware against host peers", |_| qemu::check()),
    (
        "peer benchmark: clippy, tests, smoke run (mq, mq-mqtt, mq-nats, mq-tls, tcp)",
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
