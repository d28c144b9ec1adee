//! A fresh `mqd` for one run, through mq-testkit (the harness every test that
//! needs `mqd` uses): ports it bound itself, an empty data directory in the
//! system's temporary directory, its default configuration otherwise (the
//! write-ahead log, fsync `always`), killed and its directory removed on drop.

use std::path::Path;
use std::process::Command;

pub use mq_testkit::Mqd;

/// Starts `binary` and waits until it serves.
pub fn start(binary: &Path) -> Result<Mqd, String> {
    Mqd::builder("").binary(binary).log("warn").try_start()
}

/// Starts `binary` serving MQTT too (`--mqtt` on a free port).
pub fn start_mqtt(binary: &Path) -> Result<Mqd, String> {
    Mqd::builder("")
        .binary(binary)
        .log("warn")
        .mqtt()
        .try_start()
}

/// Starts `binary` serving NATS too (`--nats` on a free port).
pub fn start_nats(binary: &Path) -> Result<Mqd, String> {
    Mqd::builder("")
        .binary(binary)
        .log("warn")
        .nats()
        .try_start()
}

/// `mqd --version`.
pub fn version(binary: &Path) -> Result<String, String> {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
