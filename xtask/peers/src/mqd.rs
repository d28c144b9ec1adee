//! A fresh `mqd` for one run: a free loopback port, an empty data directory in
//! the system's temporary directory, its default configuration otherwise (the
//! write-ahead log, fsync `always`), killed and its directory removed on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Mqd {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Mqd {
    pub fn start(binary: &Path) -> Result<Mqd, String> {
        let dir = std::env::temp_dir().join(format!(
            "mq-peer-bench-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let addr = free_port()?;
        let log = std::fs::File::create(dir.join("mqd.log")).map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--http")
            .arg("")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--log")
            .arg("warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut mqd = Mqd { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = mqd.child.try_wait() {
                return Err(format!("mqd exited ({status}): {}", mqd.log()));
            }
            if Instant::now() > deadline {
                return Err(format!("mqd did not listen on {addr}: {}", mqd.log()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(mqd)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mqd.log")).unwrap_or_default()
    }
}

impl Drop for Mqd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// `mqd --version`.
pub fn version(binary: &Path) -> Result<String, String> {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
