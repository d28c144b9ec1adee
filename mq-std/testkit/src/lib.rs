//! The one test harness that runs a real `mqd`: every crate's tests that need
//! the daemon (mq-std, mq-cli, mq-ffi, mq-embedded, the examples), the QEMU
//! scenarios of `cargo xtask qemu` and the peer benchmark start it through
//! [`Mqd`].
//!
//! - **Finding `mqd`.** `CARGO_BIN_EXE_mqd` exists only in mq-cli's own tests,
//!   so [`mqd_binary`] builds it instead: `cargo build -p mq-cli --bin mqd` with
//!   the target directory, target and profile of the running test executable
//!   (found from its own path, `<target>[/<triple>]/<profile>/deps/<test>`),
//!   once per test process. Cargo decides whether anything is stale: when
//!   nothing is, that is a no-op, so a test never runs an old `mqd`. Where
//!   cargo cannot run (tests cross-compiled for Windows and run under Wine),
//!   [`MQD_VAR`] names an `mqd` built beforehand. Programs that built `mqd`
//!   themselves (xtask) name it with [`Builder::binary`], and
//!   [`Builder::runner`] runs it through another program (`wine mqd.exe`).
//! - **Stopping.** [`Mqd::interrupt`] is Ctrl-C (SIGINT on Unix, the console's
//!   `CTRL_C_EVENT` on Windows), [`Mqd::terminate`] SIGTERM (Unix) and
//!   `Mqd::close_console` (Windows only) the console closing (`CTRL_CLOSE_EVENT`):
//!   each waits for `mqd`'s graceful exit.
//! - **Ports.** `mqd` binds port 0 for the broker and its HTTP endpoint and
//!   writes the addresses it got to a file (`--ready-file`), which the harness
//!   waits for: no port is picked, freed and raced for. A restart
//!   ([`Mqd::restart`]) asks for the same ports again, so clients reconnect to
//!   the address they know.
//! - **MQTT and NATS.** [`Builder::mqtt`] and [`Builder::nats`] also serve
//!   those protocols on ports of their own (port 0 too), found in the ready
//!   file as well ([`Mqd::mqtt`], [`Mqd::nats`]).
//! - **Data.** Each `mqd` has a directory of its own (config, data, logs);
//!   [`Mqd::crash`] kills it and keeps the directory for [`Mqd::start_in`], and
//!   [`Mqd::restart`] starts it again on the same data.
//! - **Logs.** Every start logs to a file of its own in the directory;
//!   [`Mqd::log`] has them all, failures to start include them, and a test that
//!   panics while it holds an `Mqd` prints the end of the log and keeps the
//!   directory.
//! - **Cleanup.** Dropping an [`Mqd`] kills the process (SIGKILL on Unix,
//!   `TerminateProcess` on Windows) and removes its directory.

mod binary;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(windows)]
mod windows;

pub use binary::{MQD_VAR, artifact_dir, cargo_build, mqd_binary};

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long `mqd` may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful stop may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of the log a failing test prints.
const LOG_TAIL: usize = 60;

/// How to start an [`Mqd`]: [`Mqd::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    config: String,
    binary: Option<PathBuf>,
    runner: Option<PathBuf>,
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
    log: String,
    mqtt: bool,
    nats: bool,
}

impl Builder {
    /// Also serves MQTT (`mqd --mqtt 127.0.0.1:0`); its address is
    /// [`Mqd::mqtt`].
    pub fn mqtt(mut self) -> Builder {
        self.mqtt = true;
        self
    }

    /// Also serves the NATS client protocol (`mqd --nats 127.0.0.1:0`); its
    /// address is [`Mqd::nats`].
    pub fn nats(mut self) -> Builder {
        self.nats = true;
        self
    }

    /// Runs this `mqd` binary instead of building the workspace's.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Builder {
        self.binary = Some(path.into());
        self
    }

    /// Runs the binary through `program` (`program BINARY ARGS...`): `wine`
    /// for a Windows `mqd.exe` on Linux. [`Mqd::interrupt`] and
    /// [`Mqd::kill`] then act on that process.
    pub fn runner(mut self, program: impl Into<PathBuf>) -> Builder {
        self.runner = Some(program.into());
        self
    }

    /// Sets `key` to `value` in the environment of `mqd` (and its runner):
    /// `WINEPREFIX` for Wine, say.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Builder {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Keeps config, data and logs in `dir` (created if missing, kept if it
    /// holds data: how a test starts `mqd` again on the data of one it crashed).
    /// Default: a fresh directory under the system's temporary directory.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.dir = Some(dir.into());
        self
    }

    /// `mqd --log FILTER`; default `info`.
    pub fn log(mut self, filter: impl Into<String>) -> Builder {
        self.log = filter.into();
        self
    }

    /// Starts `mqd` and waits until it accepts connections; panics if it does
    /// not, with its log.
    #[track_caller]
    pub fn start(self) -> Mqd {
        self.try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`start`](Self::start), failing with a message (and the log) instead of
    /// panicking.
    pub fn try_start(self) -> Result<Mqd, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = match self.dir {
            Some(dir) => dir,
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "mq-testkit-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                let _ = std::fs::remove_dir_all(&dir);
                dir
            }
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(dir.join("mqd.toml"), &self.config)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let binary = match self.binary {
            Some(binary) => binary,
            None => mqd_binary().to_path_buf(),
        };
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut mqd = Mqd {
            child: None,
            addr: any,
            http: any,
            mqtt: self.mqtt.then_some(any),
            nats: self.nats.then_some(any),
            dir,
            binary,
            runner: self.runner,
            env: self.env,
            log_filter: self.log,
            logs: Vec::new(),
            keep_dir: false,
            ready: String::new(),
        };
        mqd.run()?;
        Ok(mqd)
    }
}

/// A running `mqd` (see the crate docs): killed on drop.
#[derive(Debug)]
pub struct Mqd {
    child: Option<Child>,
    /// The broker's address.
    pub addr: SocketAddr,
    /// The HTTP endpoint's address (`/metrics`, `/health`).
    pub http: SocketAddr,
    /// The MQTT listener's address, when started with [`Builder::mqtt`].
    pub mqtt: Option<SocketAddr>,
    /// The NATS listener's address, when started with [`Builder::nats`].
    pub nats: Option<SocketAddr>,
    /// Its directory: `mqd.toml`, `data/`, the logs.
    pub dir: PathBuf,
    binary: PathBuf,
    runner: Option<PathBuf>,
    env: Vec<(String, String)>,
    log_filter: String,
    /// The log file of every start, oldest first.
    logs: Vec<PathBuf>,
    keep_dir: bool,
    /// The ready file of the last start.
    ready: String,
}

impl Mqd {
    /// How to start one with `config` (TOML, may be empty).
    pub fn builder(config: &str) -> Builder {
        Builder {
            config: config.to_owned(),
            binary: None,
            runner: None,
            env: Vec::new(),
            dir: None,
            log: "info".to_owned(),
            mqtt: false,
            nats: false,
        }
    }

    /// Starts the workspace's `mqd` with `config` in a fresh directory and
    /// waits until it accepts connections.
    #[track_caller]
    pub fn start(config: &str) -> Mqd {
        Mqd::builder(config).start()
    }

    /// Starts the workspace's `mqd` with `config` on the data in `dir` (left by
    /// [`crash`](Self::crash)).
    #[track_caller]
    pub fn start_in(dir: PathBuf, config: &str) -> Mqd {
        Mqd::builder(config).dir(dir).start()
    }

    /// Starts the process on `self.addr` and `self.http` (port 0 the first
    /// time) and waits until it wrote the addresses it listens on.
    fn run(&mut self) -> Result<(), String> {
        let ready = self.dir.join("mqd.ready");
        let _ = std::fs::remove_file(&ready);
        let log_path = (1..)
            .map(|n| self.dir.join(format!("mqd.{n}.log")))
            .find(|p| !p.exists())
            .expect("a free log name");
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        self.logs.push(log_path);
        let mut command = match &self.runner {
            Some(runner) => {
                let mut command = Command::new(runner);
                command.arg(&self.binary);
                command
            }
            None => Command::new(&self.binary),
        };
        if let Some(mqtt) = self.mqtt {
            command.args(["--mqtt", &mqtt.to_string()]);
        }
        if let Some(nats) = self.nats {
            command.args(["--nats", &nats.to_string()]);
        }
        let child = command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("--config")
            .arg(self.dir.join("mqd.toml"))
            .args(["--listen", &self.addr.to_string()])
            .args(["--http", &self.http.to_string()])
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args(["--log", &self.log_filter])
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            // Written to a temporary name and renamed: whole once it exists.
            if let Ok(text) = std::fs::read_to_string(&ready) {
                return self.listening_on(&text);
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("mqd exited with {status}:\n{}", self.log()));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "mqd did not listen within {START_TIMEOUT:?}:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Takes the addresses from the ready file (`listen=ADDR`, `http=ADDR`,
    /// `mqtt=ADDR`, `nats=ADDR`).
    fn listening_on(&mut self, text: &str) -> Result<(), String> {
        let addr = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .and_then(|a| a.trim().parse().ok())
                .ok_or_else(|| format!("mqd's ready file has no {key} address: {text:?}"))
        };
        self.ready = text.to_string();
        self.addr = addr("listen")?;
        self.http = addr("http")?;
        if self.mqtt.is_some() {
            self.mqtt = Some(addr("mqtt")?);
        }
        if self.nats.is_some() {
            self.nats = Some(addr("nats")?);
        }
        Ok(())
    }

    /// An address from the ready file by its key: `listen_tls`, `mqtt_tls`,
    /// `http_tls` for listeners the config asks for.
    pub fn ready_addr(&self, key: &str) -> Option<SocketAddr> {
        self.ready
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .and_then(|a| a.trim().parse().ok())
    }

    /// SIGHUP: `mqd` reloads its TLS files, tokens and identities.
    #[cfg(unix)]
    #[track_caller]
    pub fn hangup(&self) {
        self.signal("-HUP");
    }

    /// Every start's log, oldest first.
    pub fn log(&self) -> String {
        let mut all = String::new();
        for (n, path) in self.logs.iter().enumerate() {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let _ = write!(
                all,
                "--- mqd run {} ({}) ---\n{text}",
                n + 1,
                path.display()
            );
        }
        all
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("mqd is running").id()
    }

    /// Resident set size in KiB (Linux: `/proc/<pid>/status`; Windows: the
    /// working set).
    #[cfg(windows)]
    pub fn rss_kib(&self) -> u64 {
        windows::working_set(self.child.as_ref().expect("mqd is running"))
            .unwrap_or_else(|e| panic!("the working set of mqd: {e}"))
            / 1024
    }

    /// Resident set size in KiB (Linux: `/proc/<pid>/status`; Windows: the
    /// working set).
    #[cfg(not(windows))]
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/<pid>/status (Linux)");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc/pid/status")
    }

    /// The body of `GET path` on the HTTP endpoint, if it answers 200.
    pub fn http_get(&self, path: &str) -> Result<String, String> {
        let get = || -> io::Result<String> {
            let mut s = TcpStream::connect_timeout(&self.http, Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.http)?;
            let mut response = String::new();
            s.read_to_string(&mut response)?;
            Ok(response)
        };
        let response = get().map_err(|e| format!("GET {path} from mqd: {e}"))?;
        match response.split_once("\r\n\r\n") {
            Some((head, body)) if head.split_whitespace().nth(1) == Some("200") => {
                Ok(body.to_owned())
            }
            _ => Err(format!(
                "mqd answered GET {path} with `{}`",
                response.lines().next().unwrap_or_default()
            )),
        }
    }

    /// The value of an unlabelled metric on `/metrics`; panics without it.
    #[track_caller]
    pub fn metric(&self, name: &str) -> u64 {
        let text = self.http_get("/metrics").unwrap_or_else(|e| panic!("{e}"));
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing"))
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    #[cfg(unix)]
    #[track_caller]
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("-TERM");
        self.wait(STOP_TIMEOUT)
    }

    /// Ctrl-C: SIGINT on Unix (under Wine, whose [`runner`](Builder::runner)
    /// turns it into the console's `CTRL_C_EVENT`), and on Windows the
    /// console's `CTRL_C_EVENT` itself. Waits (bounded) for the exit.
    #[track_caller]
    pub fn interrupt(&mut self) -> ExitStatus {
        #[cfg(unix)]
        self.signal("-INT");
        #[cfg(windows)]
        self.console_event(windows::CTRL_C_EVENT);
        self.wait(STOP_TIMEOUT)
    }

    /// The console `mqd` runs in closing (`CTRL_CLOSE_EVENT`): Windows then
    /// gives the process 5 s before it ends it. Waits for the exit.
    #[cfg(windows)]
    #[track_caller]
    pub fn close_console(&mut self) -> ExitStatus {
        self.console_event(windows::CTRL_CLOSE_EVENT);
        self.wait(STOP_TIMEOUT)
    }

    #[cfg(unix)]
    #[track_caller]
    fn signal(&self, which: &str) {
        let status = Command::new("kill")
            .arg(which)
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {which} failed");
    }

    #[cfg(windows)]
    #[track_caller]
    fn console_event(&self, event: u32) {
        let child = self.child.as_ref().expect("mqd is running");
        windows::console_event(child, event)
            .unwrap_or_else(|e| panic!("cannot deliver console event {event} to mqd: {e}"));
    }

    /// Waits up to `limit` for the process to exit; panics (with the log) if
    /// it does not.
    #[track_caller]
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("mqd is running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("waiting works") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "mqd did not exit: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it at once (SIGKILL on Unix): a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills it (a crash) and returns its directory, left in place for
    /// [`start_in`](Self::start_in).
    pub fn crash(mut self) -> PathBuf {
        self.kill();
        self.keep_dir = true;
        self.dir.clone()
    }

    /// Kills it if it runs and starts it again on the same ports and data;
    /// panics if it does not come back.
    #[track_caller]
    pub fn restart(&mut self) {
        self.try_restart().unwrap_or_else(|e| panic!("{e}"));
    }

    /// [`restart`](Self::restart), failing with a message instead.
    pub fn try_restart(&mut self) -> Result<(), String> {
        self.kill();
        self.run()
    }
}

impl Drop for Mqd {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
            eprintln!(
                "mq-testkit: the test failed with mqd in {} (kept); the end of its log:\n{}",
                self.dir.display(),
                tail.join("\n")
            );
        } else if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
