//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.

use std::env;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cmd::{self, Step, cargo, run, succeeds};
use crate::{Failure, embedded, ffi, firmware, qemu};

/// The embedded target that proves `mq-core` is `no_std`.
pub const NOSTD_TARGET: &str = "thumbv7em-none-eabihf";

/// The target that proves `mq-std` and `mq-ffi` build for Windows.
const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

/// Debian's route to a `core`/`alloc` for [`NOSTD_TARGET`] where rustup cannot add it.
const DEBIAN_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "gcc-arm-none-eabi",
];

/// Set to `rustup` or `debian` to force how the no_std target is obtained
/// (to exercise the fallback on a machine that has rustup).
const ROUTE_OVERRIDE: &str = "XTASK_NOSTD_ROUTE";

type Action = fn(&mut Ci) -> Result<(), String>;

/// The checks, in the order they run.
const STEPS: &[(&str, Action)] = &[
    ("toolchain components (rustfmt, clippy)", |_| components()),
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
    ("mq-ffi: mq.h matches the source", ffi::header_fresh),
    ("mq-ffi: tools for C, C++, Python tests", ffi::test_tools),
    ("cargo test", |_| run(cargo().args(["test", "--workspace"]))),
    ("mq-ffi: Python package tests (venv)", ffi::python_tests),
    ("simulation, 2000 seeds (release)", |_| {
        run(cargo().env("MQ_SIM_SEEDS", "2000").args([
            "test",
            "--release",
            "-p",
            "mq-core",
            "--test",
            "sim",
        ]))
    }),
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
    ("no_std mq-embedded (tcp, serial, defmt)", embedded::nostd),
    ("firmware: fmt and clippy", |_| firmware::lint()),
    ("firmware: build, host tests, sizes", |_| firmware::check()),
    ("qemu: firmware against host peers", |_| qemu::check()),
    ("peer benchmark: clippy, tests, smoke run (mq, tcp)", |_| {
        crate::bench::ci_smoke()
    }),
];

/// How the no_std builds (mq-core, the firmware) get a `core` for [`NOSTD_TARGET`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// rustup's prebuilt standard library for the target.
    Rustup,
    /// Debian's rustc and cargo building `core`/`alloc` from source (`-Zbuild-std`).
    Debian,
}

impl Route {
    /// Picks the route to [`NOSTD_TARGET`]: rustup's target (added if missing), else
    /// Debian's packages. Fails saying what is missing when neither works.
    pub fn choose() -> Result<Route, String> {
        let rustup_failure = match env::var(ROUTE_OVERRIDE).unwrap_or_default().as_str() {
            "" => match rustup_target() {
                Ok(()) => return Ok(Route::Rustup),
                Err(err) => err,
            },
            "rustup" => {
                rustup_target()?;
                return Ok(Route::Rustup);
            }
            "debian" => format!("{ROUTE_OVERRIDE}=debian: not using rustup"),
            other => {
                return Err(format!(
                    "{ROUTE_OVERRIDE}={other} is neither `rustup` nor `debian`"
                ));
            }
        };
        println!("{rustup_failure}");
        println!(
            "falling back to Debian's toolchain: {}",
            DEBIAN_PACKAGES.join(" ")
        );
        debian_toolchain().map_err(|debian_failure| {
            format!(
                "no way to build for {NOSTD_TARGET}: {rustup_failure}; \
                 and the Debian fallback failed: {debian_failure}"
            )
        })?;
        Ok(Route::Debian)
    }

    /// `cargo build --target NOSTD_TARGET` by this route, run in `dir`, with its
    /// artifacts under `target_dir` (Debian's compiler: under `target_dir/debian`).
    pub fn cargo_build(self, dir: &Path, target_dir: &Path) -> Command {
        let mut cmd = match self {
            Route::Rustup => {
                let mut cmd = Command::new("cargo");
                cmd.arg("build").arg("--target-dir").arg(target_dir);
                cmd
            }
            Route::Debian => {
                let mut cmd = Command::new("/usr/bin/cargo");
                cmd.env("RUSTC_BOOTSTRAP", "1")
                    .env("RUSTC", "/usr/bin/rustc")
                    .env_remove("RUSTUP_TOOLCHAIN")
                    .arg("build")
                    .arg("-Zbuild-std=core,alloc")
                    // A different compiler: keep its artifacts apart from rustup's.
                    .arg("--target-dir")
                    .arg(target_dir.join("debian"));
                cmd
            }
        };
        cmd.current_dir(dir).args(["--target", NOSTD_TARGET]);
        cmd
    }
}

/// State carried from one step to the next.
pub(crate) struct Ci {
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

/// Makes sure `cargo fmt` and `cargo clippy` work, adding their rustup components if not.
fn components() -> Result<(), String> {
    for (subcommand, component) in [("fmt", "rustfmt"), ("clippy", "clippy")] {
        if succeeds(cargo().args([subcommand, "--version"])) {
            println!("cargo {subcommand}: present");
            continue;
        }
        println!(
            "cargo {subcommand} is missing: installing the `{component}` component with rustup"
        );
        run(Command::new("rustup").args(["component", "add", component])).map_err(|err| {
            format!("`cargo {subcommand}` is missing and adding `{component}` failed: {err}")
        })?;
        if !succeeds(cargo().args([subcommand, "--version"])) {
            return Err(format!(
                "`cargo {subcommand}` still fails after `rustup component add {component}`"
            ));
        }
    }
    Ok(())
}

impl Ci {
    fn nostd_target(&mut self) -> Result<(), String> {
        self.route = Some(Route::choose()?);
        Ok(())
    }

    /// `cargo build -p mq-core` for [`NOSTD_TARGET`] without default features, plus `feature`.
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
    pub(crate) fn nostd_cargo_build(&self) -> Result<Command, String> {
        let route = self
            .route
            .ok_or("no route to the no_std target was chosen")?;
        Ok(route.cargo_build(&cmd::workspace_root(), &cmd::target_dir()))
    }
}

/// Makes sure rustup has [`NOSTD_TARGET`], adding it if not.
fn rustup_target() -> Result<(), String> {
    rustup_add(NOSTD_TARGET)
}

/// Makes sure rustup has the standard library for `target`, adding it if missing.
fn rustup_add(target: &str) -> Result<(), String> {
    let installed = cmd::stdout_of(Command::new("rustup").args(["target", "list", "--installed"]))
        .ok_or_else(|| {
            "rustup is not available (`rustup target list --installed` failed)".to_owned()
        })?;
    if installed.lines().any(|line| line.trim() == target) {
        println!("rustup target {target}: present");
        return Ok(());
    }
    println!("rustup target {target} is missing: adding it with rustup");
    run(Command::new("rustup").args(["target", "add", target]))
        .map_err(|err| format!("rustup could not add {target}: {err}"))
}

/// `mq-std` and `mq-ffi` must stay portable to Windows: they type-check for a
/// Windows target with warnings denied (no linker needed for `cargo check`).
fn windows_check() -> Result<(), String> {
    rustup_add(WINDOWS_TARGET)?;
    run(cargo().env("RUSTFLAGS", "-D warnings").args([
        "check",
        "-p",
        "mq-std",
        "-p",
        "mq-ffi",
        "--all-targets",
        "--target",
        WINDOWS_TARGET,
    ]))
}

/// Installs Debian's rustc, cargo and standard library source, and checks they are there.
fn debian_toolchain() -> Result<(), String> {
    cmd::ensure_apt(DEBIAN_PACKAGES)?;
    for program in ["/usr/bin/rustc", "/usr/bin/cargo"] {
        if !Path::new(program).is_file() {
            return Err(format!(
                "{program} is missing after installing the packages"
            ));
        }
    }
    let version = cmd::stdout_of(Command::new("/usr/bin/rustc").arg("--version"))
        .ok_or("/usr/bin/rustc --version failed")?;
    println!("using {}", version.trim());
    Ok(())
}
