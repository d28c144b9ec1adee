//! The QEMU scenarios' `mqd` peer: the workspace's broker on a free loopback
//! port, checked through the workspace's `mq` CLI.
//!
//! [`MqdPeer`] starts `mqd` (and, for a restart, a [`Gate`] in front of it),
//! publishes the commands the firmware expects with `mq pub --qos 1`, restarts
//! `mqd` mid-run when the firmware prints its marker, and at the end checks
//! through the broker that every message went where it should:
//!
//! - telemetry: `mq sub --from 0` replays the device's telemetry topic from
//!   `mqd`'s store; every number `1..=telemetry` must be there;
//! - commands: the firmware exits 0 only once it executed every command, and
//!   says so in its `mq: done` line; the device's command queue in `mqd` must
//!   be empty (`mq_queue_depth` on `/metrics`): every command was acked.
//!
//! The serial build reaches `mqd` over UART0 on a pseudo-terminal rather
//! than TCP ([`MqdPeer::serial`], see `serial_line`).
//!
//! Nothing here decides delivery: the firmware's mq-core session and `mqd` do.

use std::net::SocketAddr;
use std::process::Child;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use crate::gate::Gate;
use crate::mq_tools::{Mqd, tools, wait_for};
use crate::peer::Peer;

mod serial_line;

use serial_line::SerialLine;

/// How many reconnects the gate refuses before it lets the device back in
/// after a restart, and how long it waits for them at most.
const REFUSALS: u32 = 2;
const REFUSALS_WAIT: Duration = Duration::from_secs(3);

/// When the host side publishes the commands, and whether `mqd` restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// All commands once the firmware says it subscribed.
    Live,
    /// All commands before the firmware boots; it reads them from the topic's
    /// start (`from=0`): how fast the broker delivers to it.
    Preload,
    /// The first half once the firmware subscribed. At its marker: shut the
    /// gate, kill `mqd`, start it again on the same port and data, publish the
    /// second half while the device is kept out, open the gate. (Over the
    /// serial line: `mqd` comes back without the line, and on it again once
    /// the firmware reported the loss.)
    Restart,
}

/// What the firmware's run must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Everything both ways.
    Everything,
    /// The commands published while the device was away never arrive (a clean
    /// session: the broker kept nothing for it); telemetry still all arrives.
    CommandsLost,
}

/// `mqd` as the host peer of an mq firmware run (see the module docs).
pub struct MqdPeer {
    name: &'static str,
    device: &'static str,
    telemetry: u32,
    commands: u32,
    plan: Plan,
    expect: Expect,
    mqd: Option<Mqd>,
    gate: Option<Gate>,
    /// Over the serial line rather than TCP.
    serial: Option<SerialLine>,
    publishers: Vec<(String, Child)>,
    subscribed: bool,
    restarted: bool,
    lines: Vec<String>,
}

impl MqdPeer {
    /// For a firmware run as device `device` that publishes `telemetry`
    /// messages and expects `commands` commands.
    pub fn new(
        name: &'static str,
        device: &'static str,
        telemetry: u32,
        commands: u32,
        plan: Plan,
    ) -> MqdPeer {
        MqdPeer {
            name,
            device,
            telemetry,
            commands,
            plan,
            expect: Expect::Everything,
            mqd: None,
            gate: None,
            serial: None,
            publishers: Vec::new(),
            subscribed: false,
            restarted: false,
            lines: Vec::new(),
        }
    }

    pub fn expect(mut self, expect: Expect) -> MqdPeer {
        self.expect = expect;
        self
    }

    /// The device is the serial build, on UART0's pseudo-terminal.
    pub fn serial(mut self) -> MqdPeer {
        self.serial = Some(SerialLine::default());
        self
    }

    fn command_topic(&self) -> String {
        format!("dev.{}.cmd", self.device)
    }

    fn telemetry_topic(&self) -> String {
        format!("dev.{}.telemetry", self.device)
    }

    fn mqd(&self) -> Result<&Mqd, String> {
        self.mqd
            .as_ref()
            .ok_or_else(|| "mqd is not running".to_owned())
    }

    /// Starts `mq pub` for commands `numbers`.
    fn publish_commands(&mut self, numbers: std::ops::RangeInclusive<u32>) -> Result<(), String> {
        if numbers.is_empty() {
            return Ok(());
        }
        let what = format!("mq pub of commands {}..={}", numbers.start(), numbers.end());
        let payloads: Vec<String> = numbers.map(|n| n.to_string()).collect();
        let child = self.mqd()?.publish(&self.command_topic(), &payloads)?;
        self.publishers.push((what, child));
        Ok(())
    }

    /// Waits for every `mq pub` started so far.
    fn published(&mut self) -> Result<(), String> {
        for (what, child) in self.publishers.drain(..) {
            wait_for(&what, child)?;
        }
        Ok(())
    }

    /// The firmware is mid-run: crash `mqd`, bring it back with the device
    /// kept out, queue the second half of the commands for it, let it in.
    fn restart(&mut self) -> Result<(), String> {
        self.published()?;
        if self.serial.is_some() {
            return self.restart_off_the_line();
        }
        let gate = self.gate.as_ref().ok_or("no gate in front of mqd")?;
        gate.set_open(false);
        let mqd = self.mqd.as_mut().ok_or("mqd is not running")?;
        mqd.server.kill();
        println!("    peer: mqd killed");
        mqd.server.try_restart()?;
        println!(
            "    peer: mqd restarted on {} (same data); the device is kept out",
            mqd.server.addr
        );
        let half = self.commands / 2;
        self.publish_commands(half + 1..=self.commands)?;
        self.published()?;
        // Until the device has tried (and failed) to come back, so it is
        // known to have been away while those commands queued for it.
        let gate = self.gate.as_ref().ok_or("no gate in front of mqd")?;
        let until = Instant::now() + REFUSALS_WAIT;
        while gate.refused.load(Ordering::SeqCst) < REFUSALS && Instant::now() < until {
            thread::sleep(Duration::from_millis(2));
        }
        println!(
            "    peer: commands {}..={} published while the device is away, {} reconnects refused; letting it in",
            half + 1,
            self.commands,
            gate.refused.load(Ordering::SeqCst)
        );
        gate.set_open(true);
        self.restarted = true;
        Ok(())
    }

    /// Telemetry `1..=telemetry` all in `mqd`'s store: a one-line account.
    fn check_telemetry(&self) -> Result<String, String> {
        if self.telemetry == 0 {
            return Ok("no telemetry".to_owned());
        }
        let total = self.telemetry as usize;
        let number = |payload: &str| -> Option<u32> {
            let digits: String = payload
                .strip_prefix('t')?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        };
        let distinct = |seen: &[(u64, String)]| {
            let mut numbers: Vec<u32> = seen.iter().filter_map(|(_, p)| number(p)).collect();
            numbers.sort_unstable();
            numbers.dedup();
            numbers.len()
        };
        let seen = self
            .mqd()?
            .replay(&self.telemetry_topic(), |seen| distinct(seen) >= total)?;
        let mut got = vec![0u32; total + 1];
        for (seq, payload) in &seen {
            match number(payload) {
                Some(n) if (1..=self.telemetry).contains(&n) => got[n as usize] += 1,
                _ => {
                    return Err(format!(
                        "telemetry seq {seq} is `{payload}`: not t1..=t{total}"
                    ));
                }
            }
        }
        let missing: Vec<usize> = (1..=total).filter(|&n| got[n] == 0).collect();
        let twice = got.iter().filter(|&&count| count > 1).count();
        if !missing.is_empty() {
            return Err(format!(
                "{} of {total} telemetry messages missing from mqd (first {:?}); {} replayed",
                missing.len(),
                &missing[..missing.len().min(10)],
                seen.len()
            ));
        }
        Ok(format!(
            "telemetry 1..={total} all stored in mqd ({twice} stored twice)"
        ))
    }

    /// The device's command queue in `mqd` is empty: every command was acked.
    fn check_acked(&self) -> Result<String, String> {
        let metrics = self.mqd()?.metrics()?;
        let queue = format!(
            "mq_queue_depth{{owner=\"{}\",filter=\"{}\",kind=\"subscription\"}} ",
            self.device,
            self.command_topic()
        );
        let depth = metrics
            .lines()
            .find_map(|line| line.strip_prefix(&queue))
            .ok_or_else(|| format!("mqd lists no queue for {}'s commands", self.device))?;
        if depth.trim() != "0" {
            return Err(format!(
                "{} commands still queued or unacked in mqd for {}",
                depth.trim(),
                self.device
            ));
        }
        Ok("its command queue in mqd is empty (all acked)".to_owned())
    }

    /// The firmware's `mq: done ...` line as `key=value` pairs.
    fn done_line(&self) -> Result<Vec<(&str, u64)>, String> {
        let line = self
            .lines
            .iter()
            .find_map(|line| line.strip_prefix("mq: done "))
            .ok_or("the firmware printed no `mq: done` line")?;
        line.split_whitespace()
            .map(|pair| {
                let (key, value) = pair.split_once('=')?;
                Some((key, value.parse().ok()?))
            })
            .collect::<Option<_>>()
            .ok_or_else(|| format!("cannot read `mq: done {line}`"))
    }

    /// The `mq: connected` lines: (session present, publishes outstanding).
    fn connections(&self) -> Vec<(bool, u64)> {
        self.lines
            .iter()
            .filter_map(|line| {
                let rest = line.strip_prefix("mq: connected (session present: ")?;
                let (present, rest) = rest.split_once("), ")?;
                let resend = rest.split_whitespace().next()?.parse().ok()?;
                Some((present == "yes", resend))
            })
            .collect()
    }

    fn check_everything(&mut self) -> Result<String, String> {
        let done = self.done_line()?;
        let value = |key: &str| done.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        if value("telemetry") != Some(u64::from(self.telemetry))
            || value("commands") != Some(u64::from(self.commands))
        {
            return Err(format!(
                "the firmware reports telemetry={:?} commands={:?}, expected {} and {}",
                value("telemetry"),
                value("commands"),
                self.telemetry,
                self.commands
            ));
        }
        let mut summary = vec![self.check_telemetry()?];
        if self.commands > 0 {
            summary.push(format!(
                "{} commands executed ({} redelivered)",
                self.commands,
                value("again").unwrap_or(0)
            ));
            summary.push(self.check_acked()?);
        }
        if self.plan == Plan::Restart {
            summary.push(self.check_resumed()?);
        }
        Ok(summary.join("; "))
    }

    /// After the restart the firmware resumed its session and had publishes to
    /// resend.
    fn check_resumed(&self) -> Result<String, String> {
        let connections = self.connections();
        let after = connections
            .get(1..)
            .filter(|rest| !rest.is_empty())
            .ok_or_else(|| {
                format!(
                    "the firmware connected {} time(s), expected a reconnect",
                    connections.len()
                )
            })?;
        if after.iter().any(|(present, _)| !present) {
            return Err("a reconnect found no session (`session present: no`)".to_owned());
        }
        let resent = after[0].1;
        if resent == 0 {
            return Err(
                "the firmware had nothing to resend after the restart: the scenario missed its point"
                    .to_owned(),
            );
        }
        let (away, how) = match &self.serial {
            Some(serial) => (
                serial.noticed,
                "loss(es) noticed by the firmware off the line",
            ),
            None => (
                self.gate
                    .as_ref()
                    .map_or(0, |g| g.refused.load(Ordering::SeqCst)),
                "reconnects refused",
            ),
        };
        if away == 0 {
            return Err("the firmware never tried to reconnect while mqd was away".to_owned());
        }
        Ok(format!(
            "mqd restarted mid-run: {away} {how} while away, then the session \
             resumed with {resent} telemetry messages outstanding, resent"
        ))
    }

    /// The clean session lost the commands published while the device was
    /// away, and the firmware timed out waiting for them.
    fn check_commands_lost(&mut self) -> Result<String, String> {
        if self.lines.iter().any(|line| line.starts_with("mq: done ")) {
            return Err("the firmware finished: no command was lost".to_owned());
        }
        let connections = self.connections();
        if !connections.iter().skip(1).all(|(present, _)| !present) || connections.len() < 2 {
            return Err(format!(
                "expected reconnects without a session, got {connections:?}"
            ));
        }
        let missing = self
            .lines
            .iter()
            .find(|line| line.starts_with("error: deadline passed"))
            .ok_or("the firmware did not report its deadline")?
            .clone();
        Ok(format!(
            "{}; the firmware: {}",
            self.check_telemetry()?,
            missing.trim_start_matches("error: ")
        ))
    }
}

impl Peer for MqdPeer {
    fn prepare(&mut self) -> Result<(), String> {
        tools().map(drop)
    }

    fn start(&mut self) -> Result<SocketAddr, String> {
        let mqd = Mqd::start(tools()?, self.name)?;
        let addr = mqd.server.addr;
        self.mqd = Some(mqd);
        if self.plan == Plan::Preload {
            self.publish_commands(1..=self.commands)?;
            self.published()?;
        }
        if self.plan == Plan::Restart && self.serial.is_none() {
            let gate = Gate::start(addr)?;
            let gate_addr = gate.addr;
            self.gate = Some(gate);
            return Ok(gate_addr);
        }
        Ok(addr)
    }

    fn poll(&mut self, lines: &[String]) -> Result<(), String> {
        for line in lines {
            self.follow_the_line(line)?;
            if line.starts_with("mq: subscribed to ") && !self.subscribed {
                self.subscribed = true;
                match self.plan {
                    Plan::Live => self.publish_commands(1..=self.commands)?,
                    Plan::Restart => self.publish_commands(1..=self.commands / 2)?,
                    Plan::Preload => {}
                }
            }
            if line.starts_with("mq: marker") && self.plan == Plan::Restart && !self.restarted {
                self.restart()?;
            }
        }
        self.lines.extend_from_slice(lines);
        Ok(())
    }

    fn finish(&mut self) -> Result<String, String> {
        let result = self.published().and_then(|()| {
            if self.plan == Plan::Restart && !self.restarted {
                return Err(
                    "the firmware never printed its marker: mqd was not restarted".to_owned(),
                );
            }
            match &self.serial {
                Some(serial) if serial.path.is_none() => {
                    return Err("QEMU never named UART0's pseudo-terminal".to_owned());
                }
                Some(serial) if serial.away => {
                    return Err(
                        "the firmware never reported the loss of mqd: it stayed off the line"
                            .to_owned(),
                    );
                }
                _ => {}
            }
            match self.expect {
                Expect::Everything => self.check_everything(),
                Expect::CommandsLost => self.check_commands_lost(),
            }
        });
        if let (Err(err), Some(mqd)) = (&result, &self.mqd) {
            let log = mqd.server.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "{err}\nmqd's log (last lines):\n{}",
                tail.join("\n")
            ));
        }
        self.gate = None;
        self.mqd = None;
        result
    }
}

impl Drop for MqdPeer {
    fn drop(&mut self) {
        for (_, child) in &mut self.publishers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
