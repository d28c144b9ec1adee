//! The serial build's line to `mqd`: UART0 on a pseudo-terminal that QEMU
//! creates (`-serial pty`) and names on its output, served by `mqd --serial`.
//!
//! `mqd` starts without the line (it must run before QEMU, for the commands
//! a scenario publishes first) and is restarted on it once QEMU named the
//! terminal. The restart scenario keeps the device away as the TCP gate does:
//! `mqd` comes back without the line, the second half of the commands queue
//! for the device, and only once the firmware reported the loss is `mqd`
//! restarted on the line again.

use super::MqdPeer;

/// What the peer knows of the line.
#[derive(Debug, Default)]
pub(super) struct SerialLine {
    /// The pseudo-terminal, once QEMU named it.
    pub path: Option<String>,
    /// `mqd` runs without the line since the restart: the device is away.
    pub away: bool,
    /// Losses the firmware reported (`mq: disconnected`) while away.
    pub noticed: u32,
}

/// QEMU's `char device redirected to PATH (label serial0)`: PATH, the
/// terminal UART0 is on.
fn pty_path(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("char device redirected to ")?;
    let (path, label) = rest.split_once(" (label ")?;
    (label == "serial0)").then_some(path)
}

impl MqdPeer {
    /// The restart over the serial line: `mqd` killed and back without the
    /// line, the second half of the commands queued; `poll` puts it back on
    /// the line once the firmware reported the loss.
    pub(super) fn restart_off_the_line(&mut self) -> Result<(), String> {
        let mqd = self.mqd.as_mut().ok_or("mqd is not running")?;
        mqd.restart_on_line(None)?;
        println!(
            "    peer: mqd killed and restarted on {} without the serial line (same data): the device is away",
            mqd.server.addr
        );
        let half = self.commands / 2;
        self.publish_commands(half + 1..=self.commands)?;
        self.published()?;
        println!(
            "    peer: commands {}..={} published while the device is away; waiting for it to notice",
            half + 1,
            self.commands
        );
        let serial = self.serial.as_mut().ok_or("not a serial run")?;
        serial.away = true;
        self.restarted = true;
        Ok(())
    }

    /// Starts `mqd` again on the pseudo-terminal QEMU named.
    fn onto_the_line(&mut self) -> Result<(), String> {
        let path = self.serial.as_ref().and_then(|s| s.path.clone());
        let path = path.ok_or("QEMU has not named UART0's terminal")?;
        let mqd = self.mqd.as_mut().ok_or("mqd is not running")?;
        mqd.restart_on_line(Some(&path))?;
        println!("    peer: mqd serving the serial line {path}");
        Ok(())
    }

    /// Reads QEMU's and the firmware's line for the serial run: puts `mqd` on
    /// the terminal once it is named, and back on it after the restart once
    /// the firmware noticed the loss.
    pub(super) fn follow_the_line(&mut self, line: &str) -> Result<(), String> {
        let Some(serial) = self.serial.as_mut() else {
            return Ok(());
        };
        if serial.path.is_none()
            && let Some(path) = pty_path(line)
        {
            serial.path = Some(path.to_owned());
            return self.onto_the_line();
        }
        if serial.away && line.starts_with("mq: disconnected") {
            serial.away = false;
            serial.noticed += 1;
            return self.onto_the_line();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::pty_path;

    #[test]
    fn reads_the_terminal_qemu_names() {
        assert_eq!(
            pty_path("char device redirected to /dev/pts/7 (label serial0)"),
            Some("/dev/pts/7")
        );
        assert_eq!(
            pty_path("char device redirected to /dev/pts/8 (label serial1)"),
            None
        );
        assert_eq!(pty_path("mq: subscribed to dev.fw1.cmd"), None);
    }
}
