//! Finding `mqd` and building what tests need: the running test
//! executable's target directory, target and profile, and cargo run for them.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Names an `mqd` binary to run instead of building one: how tests that run
/// where cargo cannot (cross-compiled for Windows, run under Wine) find the
/// `mqd.exe` built beforehand (`cargo xtask ci` sets it).
pub const MQD_VAR: &str = "MQ_TESTKIT_MQD";

/// The target triple this crate (and so the running test) was compiled for.
const TARGET: &str = env!("MQ_TESTKIT_TARGET");

/// Where the running test executable's cargo build put its artifacts, and how
/// to build more of them the same way.
struct Build {
    /// `<target>[/<triple>]/<profile>`.
    artifacts: PathBuf,
    target_dir: PathBuf,
    triple: Option<String>,
    profile: String,
}

fn build() -> &'static Build {
    static BUILD: OnceLock<Build> = OnceLock::new();
    BUILD.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test knows its own path");
        let mut artifacts = exe
            .parent()
            .expect("the test runs from <target>/<profile>/deps")
            .to_path_buf();
        if artifacts
            .file_name()
            .is_some_and(|n| n == "deps" || n == "examples")
        {
            artifacts.pop();
        }
        let profile = artifacts
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a profile directory")
            .to_owned();
        let parent = artifacts.parent().expect("a target directory");
        // With `--target T` cargo builds into `<target>/T/<profile>` (and marks
        // `<target>/T` with a CACHEDIR.TAG of its own, like `<target>`).
        let (target_dir, triple) = if parent.file_name().is_some_and(|n| n == TARGET) {
            let target_dir = parent
                .parent()
                .expect("a target directory above the triple");
            (target_dir.to_path_buf(), Some(TARGET.to_owned()))
        } else {
            (parent.to_path_buf(), None)
        };
        Build {
            artifacts,
            target_dir,
            triple,
            profile,
        }
    })
}

/// `<target>[/<triple>]/<profile>` of the running test executable: where
/// [`cargo_build`] puts what it builds (binaries, libraries).
pub fn artifact_dir() -> &'static Path {
    &build().artifacts
}

/// Runs `cargo build --quiet ARGS` (with `$CARGO`, in this workspace) for the
/// target directory, target and profile the running test was built with;
/// panics when the build fails. Cargo's own output (errors, warnings) goes to
/// the terminal.
pub fn cargo_build(args: &[&str]) {
    let b = build();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet"])
        .args(args)
        .arg("--target-dir")
        .arg(&b.target_dir)
        .stdin(Stdio::null());
    if let Some(triple) = &b.triple {
        cmd.args(["--target", triple]);
    }
    match b.profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("mq-testkit: cannot run cargo ({cmd:?}): {e}"));
    assert!(
        status.success(),
        "mq-testkit: `{cmd:?}` failed ({status}); cargo's output is above"
    );
}

/// The workspace's `mqd`, built (or found up to date) once per test process,
/// or the one [`MQD_VAR`] names; see the crate docs.
pub fn mqd_binary() -> &'static Path {
    static MQD: OnceLock<PathBuf> = OnceLock::new();
    MQD.get_or_init(|| {
        if let Some(path) = std::env::var_os(MQD_VAR).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "mq-testkit: {MQD_VAR} names {}, which is not a file",
                path.display()
            );
            return path;
        }
        let path = artifact_dir().join(format!("mqd{}", std::env::consts::EXE_SUFFIX));
        let what = "cargo build -p mq-cli --bin mqd";
        if path.is_file() {
            // Captured by the test harness: shown with a failure only.
            eprintln!(
                "mq-testkit: {what} (to be sure {} is fresh)",
                path.display()
            );
        } else {
            // A real build, which can take a while: say so at once.
            let _ = writeln!(
                io::stderr(),
                "mq-testkit: {} is not built yet: {what} (once)",
                path.display()
            );
        }
        cargo_build(&["-p", "mq-cli", "--bin", "mqd"]);
        assert!(
            path.is_file(),
            "mq-testkit: {} is missing after `{what}`",
            path.display()
        );
        path
    })
}
