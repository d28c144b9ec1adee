//! Running the `mq` binary from a test: with a deadline, its output
//! collected, `MQ_SERVER` and `MQ_HTTP` pointing at an `mqd`.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Mqd;

/// The most one `mq` run may take.
pub const LIMIT: Duration = Duration::from_secs(30);

/// A finished `mq` run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(self.status.success(), "mq failed: {self:?}");
        self
    }
}

/// An `mq` process, started and not yet waited for.
pub struct Running {
    child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

pub fn reader(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

impl Running {
    /// Waits for the exit, up to [`LIMIT`]; kills it and panics after that.
    pub fn wait(mut self) -> Run {
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.stderr.take().unwrap().join().unwrap();
                panic!("mq did not exit within {LIMIT:?}; stderr: {stderr}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Run {
            status,
            stdout: self.stdout.take().unwrap().join().unwrap(),
            stderr: self.stderr.take().unwrap().join().unwrap(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that failed midway leaves no process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mq ARGS` with `MQ_SERVER` and `MQ_HTTP` pointing at `mqd`, fed `stdin`.
pub fn start(mqd: Option<&Mqd>, args: &[&str], stdin: &[u8]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mq"));
    cmd.args(args)
        .env_remove("MQ_SERVER")
        .env_remove("MQ_HTTP")
        .env_remove("MQ_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(mqd) = mqd {
        cmd.env("MQ_SERVER", mqd.addr.to_string())
            .env("MQ_HTTP", mqd.http.to_string());
    }
    let mut child = cmd.spawn().expect("mq starts");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let stdout = Some(reader(child.stdout.take().unwrap()));
    let stderr = Some(reader(child.stderr.take().unwrap()));
    Running {
        child,
        stdout,
        stderr,
    }
}

pub fn mq(mqd: &Mqd, args: &[&str]) -> Run {
    start(Some(mqd), args, b"").wait()
}

/// Waits until `mqd` counts `n` subscriptions (a background `mq sub` is ready).
pub fn wait_for_subscriptions(mqd: &Mqd, n: u64) {
    let deadline = Instant::now() + LIMIT;
    while mqd.metric("mq_subscriptions") < n {
        assert!(Instant::now() < deadline, "no subscription appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The metric `name` once it equals `want`, or its value after five seconds.
pub fn eventually(mqd: &Mqd, name: &str, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let value = mqd.metric(name);
        if value == want || Instant::now() >= deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
