//! What the builds need from the toolchain: rustfmt and clippy, rustup's
//! targets, and the route to a `core` for the no_std target (rustup's prebuilt
//! one, else Debian's compiler building it from source).

use std::env;
use std::path::Path;
use std::process::Command;

use crate::cmd::{self, cargo, run, succeeds};

/// The embedded target that proves `mq-core` is `no_std`.
pub const NOSTD_TARGET: &str = "thumbv7em-none-eabihf";

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

/// Makes sure `cargo fmt` and `cargo clippy` work, adding their rustup components if not.
pub fn components() -> Result<(), String> {
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

/// Makes sure rustup has [`NOSTD_TARGET`], adding it if not.
fn rustup_target() -> Result<(), String> {
    rustup_add(NOSTD_TARGET)
}

/// Makes sure rustup has the standard library for `target`, adding it if missing.
pub fn rustup_add(target: &str) -> Result<(), String> {
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
