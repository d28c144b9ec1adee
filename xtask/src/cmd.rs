//! Running external programs for the tasks: echo a command, run it, report how it
//! ended; time a step; install Debian packages; find the workspace.

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Where cargo puts the workspace's build output (`CARGO_TARGET_DIR` or `target/`).
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// `cargo` found through `PATH` (rustup's proxy, so `+toolchain` works), run from
/// the workspace root.
pub fn cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace_root());
    cmd
}

/// Echoes `cmd` as a shell-like line, runs it with inherited stdio, and fails with
/// the command and its exit status unless it exited 0.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let line = display(cmd);
    println!("$ {line}");
    match cmd.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`{line}` failed ({status})")),
        Err(err) => Err(format!(
            "could not start `{}`: {err}",
            cmd.get_program().to_string_lossy()
        )),
    }
}

/// What a pipe gave so far, read on a thread of its own until its end.
struct Drain {
    read: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Drain {
    fn new<R: std::io::Read + Send + 'static>(pipe: Option<R>) -> Drain {
        let read = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let to = read.clone();
        let thread = std::thread::spawn(move || {
            let Some(mut pipe) = pipe else { return };
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                to.lock().expect("drain").extend_from_slice(&buf[..n]);
            }
        });
        Drain { read, thread }
    }

    /// What it read: all of it once the pipe ended, or, waiting no longer
    /// than `patience` (a killed command's children may hold the pipe
    /// open), what came until then.
    fn take(self, patience: Option<Duration>) -> Vec<u8> {
        let until = patience.map(|p| Instant::now() + p);
        while !self.thread.is_finished() && until.is_none_or(|u| Instant::now() < u) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::mem::take(&mut *self.read.lock().expect("drain"))
    }
}

/// Echoes `cmd`, runs it with its output captured and kills it after `limit`;
/// returns its standard output if it exited 0, else fails with all it printed.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Result<String, String> {
    let line = display(cmd);
    println!("$ {line}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("could not start `{line}`: {err}"))?;
    // Read both pipes while waiting: a child that fills one (64 KiB on
    // Linux) blocks until it is read, and would run into the deadline.
    let stdout = Drain::new(child.stdout.take());
    let stderr = Drain::new(child.stderr.take());
    let deadline = Instant::now() + limit;
    let mut late = false;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|err| format!("waiting for `{line}`: {err}"))?
        {
            break status;
        }
        if Instant::now() > deadline {
            late = true;
            let _ = child.kill();
            break child
                .wait()
                .map_err(|err| format!("waiting for `{line}`: {err}"))?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let patience = late.then_some(Duration::from_secs(1));
    let out = std::process::Output {
        status,
        stdout: stdout.take(patience),
        stderr: stderr.take(patience),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() && !late {
        return Ok(stdout);
    }
    let how = if late {
        format!("ran longer than {}", format_duration(limit))
    } else {
        format!("failed ({})", out.status)
    };
    Err(format!(
        "`{line}` {how}\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Runs `cmd` silently (no echo, output discarded): did it start and exit 0?
/// For probes such as `cargo fmt --version`.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs `cmd` silently and returns its standard output if it exited 0.
pub fn stdout_of(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Is `program` an executable file in some directory of `PATH`?
pub fn on_path(program: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The command line as a person would type it: environment overrides, program, arguments.
pub fn display(cmd: &Command) -> String {
    let envs = cmd
        .get_envs()
        .filter_map(|(key, value)| Some(format!("{}={}", key.to_string_lossy(), quote(value?))));
    let words = std::iter::once(quote(cmd.get_program())).chain(cmd.get_args().map(quote));
    envs.chain(words).collect::<Vec<_>>().join(" ")
}

fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A timed step of a task: announced as `==> name` when it starts.
pub struct Step {
    name: String,
    started: Instant,
}

impl Step {
    pub fn start(name: &str) -> Step {
        println!("==> {name}");
        Step {
            name: name.to_owned(),
            started: Instant::now(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// `12.3s` below a minute, `4m05s` above.
pub fn format_duration(took: Duration) -> String {
    let secs = took.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = took.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

static APT_UPDATED: AtomicBool = AtomicBool::new(false);

/// Installs those of `packages` that dpkg does not list as installed, with
/// `apt-get install -y --no-install-recommends`, after one `apt-get update` per
/// process. Uses `sudo` when not root and sudo exists.
pub fn ensure_apt(packages: &[&str]) -> Result<(), String> {
    if !on_path("apt-get") || !on_path("dpkg-query") {
        return Err(format!(
            "apt-get is not available to install {}",
            packages.join(" ")
        ));
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| !dpkg_installed(package))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("installing Debian packages: {}", missing.join(" "));
    if !APT_UPDATED.swap(true, Ordering::SeqCst) {
        run(apt_get()?.arg("update"))?;
    }
    run(apt_get()?
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing))
}

/// Makes sure `program` is on `PATH`, installing Debian's `package` if it is not.
pub fn ensure_program(program: &str, package: &str) -> Result<(), String> {
    if on_path(program) {
        return Ok(());
    }
    println!("{program} is missing: installing Debian's {package} with apt-get");
    ensure_apt(&[package])?;
    if on_path(program) {
        Ok(())
    } else {
        Err(format!(
            "{program} is still missing after installing {package}"
        ))
    }
}

fn dpkg_installed(package: &str) -> bool {
    stdout_of(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|status| status.trim() == "install ok installed")
}

/// `apt-get`, noninteractive, as root directly or through sudo.
fn apt_get() -> Result<Command, String> {
    let root = stdout_of(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0");
    if root {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        Ok(cmd)
    } else if on_path("sudo") {
        let mut cmd = Command::new("sudo");
        cmd.args(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
        Ok(cmd)
    } else {
        Err("installing Debian packages needs root or sudo, and this is neither".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let mut cmd = Command::new("/usr/bin/cargo");
        cmd.env("RUSTC_BOOTSTRAP", "1").args([
            "build",
            "-Zbuild-std=core,alloc",
            "--features",
            "a b",
            "",
        ]);
        assert_eq!(
            display(&cmd),
            "RUSTC_BOOTSTRAP=1 /usr/bin/cargo build -Zbuild-std=core,alloc --features 'a b' ''"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_millis(1234)), "1.2s");
        assert_eq!(format_duration(Duration::from_secs(245)), "4m05s");
    }

    #[cfg(unix)]
    #[test]
    fn output_larger_than_a_pipe_is_read_while_waiting() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "head -c 300000 /dev/zero; head -c 200000 /dev/zero >&2",
        ]);
        let out = output_within(&mut cmd, Duration::from_secs(20)).expect("it ends");
        assert_eq!(out.len(), 300_000);
    }

    #[cfg(unix)]
    #[test]
    fn a_command_past_its_limit_is_killed_and_reported() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; sleep 30"]);
        let err = output_within(&mut cmd, Duration::from_millis(300)).unwrap_err();
        assert!(
            err.contains("ran longer than") && err.contains("started"),
            "{err}"
        );
    }
}
