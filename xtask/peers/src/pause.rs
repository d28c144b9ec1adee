//! `--pause-compilers`: other people's compilers share this machine's cores;
//! during each timed run they are stopped (SIGSTOP to every process named
//! `rustc`, `cc` or `ld`) and continued right after. A watchdog in its own
//! session continues them when this program ends, however it ends.

use std::process::{Command, Stdio};

const NAMES: [&str; 3] = ["rustc", "cc", "ld"];

pub struct Pause {
    watchdog: std::process::Child,
}

/// Compilers stopped until this drops.
pub struct Stopped<'a> {
    _pause: &'a Pause,
}

impl Pause {
    pub fn new() -> Result<Pause, String> {
        let resume: Vec<String> = NAMES
            .iter()
            .map(|n| format!("pkill -CONT -x {n}"))
            .collect();
        let script = format!(
            "while kill -0 {} 2>/dev/null; do sleep 0.5; done; {}",
            std::process::id(),
            resume.join("; ")
        );
        let watchdog = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the watchdog (setsid sh): {e}"))?;
        Ok(Pause { watchdog })
    }

    pub fn stop(&self) -> Stopped<'_> {
        signal("-STOP");
        Stopped { _pause: self }
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        signal("-CONT");
    }
}

impl Drop for Pause {
    fn drop(&mut self) {
        signal("-CONT");
        // The watchdog's loop ends with this process; nothing to wait for.
        let _ = self.watchdog.try_wait();
    }
}

fn signal(sig: &str) {
    for name in NAMES {
        let _ = Command::new("pkill")
            .args([sig, "-x", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
