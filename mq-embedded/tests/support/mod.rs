//! Test support: a real `mqd` child process (built on demand), restartable on
//! the same port and data, and a clock for the drivers.

#![allow(dead_code)]

pub mod scenario;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The `mqd` binary of this workspace, built once per test process.
///
/// `CARGO_BIN_EXE_mqd` exists only in mq-std's own tests, so this runs the
/// cargo that runs the tests (`$CARGO`): `cargo build -p mq-std --bin mqd` in
/// the same profile. Cargo has released its build lock by the time tests run,
/// so this neither deadlocks nor rebuilds anything under `cargo test
/// --workspace` (which built `mqd` for mq-std's tests already); under `cargo
/// test -p mq-embedded` it builds `mqd` once. The path comes from cargo's JSON
/// output, so a custom target directory is found too.
pub fn mqd_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "-p",
            "mq-std",
            "--bin",
            "mqd",
            "--message-format=json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit());
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd.output().expect("cargo runs");
        assert!(
            out.status.success(),
            "cargo build -p mq-std --bin mqd failed"
        );
        let stdout = String::from_utf8(out.stdout).expect("utf-8 from cargo");
        stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|v| v["target"]["name"] == "mqd")
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the mqd executable")
    })
}

pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A running `mqd` with a write-ahead log in its own directory.
pub struct Mqd {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    starts: u32,
}

impl Mqd {
    /// Starts `mqd` with `config` (TOML) on a free port and waits until it
    /// accepts.
    pub fn start(config: &str) -> Mqd {
        let dir = std::env::temp_dir().join(format!(
            "mq-embedded-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("mqd.toml"), config).unwrap();
        let mut mqd = Mqd {
            child: None,
            addr: free_port(),
            dir,
            starts: 0,
        };
        mqd.run();
        mqd
    }

    fn run(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.join(format!("mqd-{}.log", self.starts))).unwrap();
        let child = Command::new(mqd_binary())
            .arg("--config")
            .arg(self.dir.join("mqd.toml"))
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--http")
            .arg("")
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("--log")
            .arg("info,mq_std=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mqd starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(self.addr).is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("mqd exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "mqd did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills it at once (SIGKILL on Unix): a crash.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.child = None;
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }

    /// Every log so far, oldest first.
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                let text = std::fs::read_to_string(self.dir.join(format!("mqd-{n}.log")))
                    .unwrap_or_default();
                format!("--- mqd run {n} ---\n{text}")
            })
            .collect()
    }
}

impl Drop for Mqd {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The drivers' clock: microseconds since the test started.
pub struct Clock(Instant);

impl Clock {
    pub fn new() -> Clock {
        Clock(Instant::now())
    }

    pub fn now(&self) -> mq_embedded::Instant {
        mq_embedded::Instant::from_micros(self.0.elapsed().as_micros() as u64)
    }
}

/// A host-side client of the same broker (mq-std's blocking client), with a
/// persistent session that reconnects by itself.
pub fn host_client(addr: SocketAddr, id: &str) -> mq_std::blocking::Client {
    let mut opts = mq_std::client::ClientOptions::new(addr.to_string());
    opts.client_id = id.to_string();
    opts.session = mq_std::core::wire::SessionMode::Resume;
    opts.keepalive = Duration::from_secs(2);
    opts.reconnect_min = Duration::from_millis(20);
    opts.reconnect_max = Duration::from_millis(300);
    mq_std::blocking::Client::connect(opts).expect("host client connects")
}
