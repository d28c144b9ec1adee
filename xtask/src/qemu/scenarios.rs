//! The scenarios `cargo xtask qemu` runs, and the checks of what the firmware
//! printed.

use std::time::Duration;

use super::Scenario;
use super::exit_code::ExitCode;
use super::tcp_peers::{EchoPeer, NoConnection, ThroughputPeer};
use crate::mqd::{Expect, MqdPeer, Plan};

/// The firmware slept in WFI and received frames woke it: its idle is
/// interrupt-driven (the line is `idle: N sleeps, M LAN9118 interrupts`).
fn woken_by_frames(lines: &[String]) -> Result<(), String> {
    woken_by(lines, "LAN9118")
}

/// The same for the serial build, woken by UART0's receive interrupt (`idle:
/// N sleeps, M UART interrupts`).
fn woken_by_uart(lines: &[String]) -> Result<(), String> {
    woken_by(lines, "UART")
}

fn woken_by(lines: &[String], device: &str) -> Result<(), String> {
    let line = lines
        .iter()
        .find(|line| line.starts_with("idle: "))
        .ok_or("the firmware printed no `idle:` line")?;
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    match numbers[..] {
        [sleeps, interrupts]
            if sleeps > 0 && interrupts > 0 && line.ends_with(&format!("{device} interrupts")) =>
        {
            Ok(())
        }
        _ => Err(format!("not woken by the {device} interrupt: `{line}`")),
    }
}

/// For runs that end before they idle.
fn anything(_: &[String]) -> Result<(), String> {
    Ok(())
}

/// Messages each way in the serial rate scenarios.
const SERIAL_RATE: u32 = 1000;

/// Bytes each way in the throughput scenario.
const THROUGHPUT_BYTES: u64 = 4 << 20;

pub(super) fn scenarios() -> Vec<Scenario> {
    let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        Scenario {
            name: "echo-dhcp",
            about: "DHCP, 300 frames of 1..=1400 bytes echoed and checked by both ends",
            variant: "baseline",
            args: args(&["mode=echo", "count=300", "size=1400"]),
            expect: ExitCode::Success,
            output: woken_by_frames,
            uart: false,
            timeout: Duration::from_secs(20),
            peer: Box::new(EchoPeer::new(300, 1400, None)),
        },
        Scenario {
            name: "echo-static",
            about: "static address, 50 frames of 1..=512 bytes",
            variant: "baseline",
            args: args(&[
                "mode=echo",
                "count=50",
                "size=512",
                "addr=static",
                "ip=10.0.2.15/24",
                "gw=10.0.2.2",
            ]),
            expect: ExitCode::Success,
            output: woken_by_frames,
            uart: false,
            timeout: Duration::from_secs(20),
            peer: Box::new(EchoPeer::new(50, 512, None)),
        },
        Scenario {
            name: "echo-reconnect",
            about: "3 connections one after the other, 40 frames each: each is a host connection",
            variant: "baseline",
            args: args(&["mode=echo", "count=40", "size=700", "connections=3"]),
            expect: ExitCode::Success,
            output: woken_by_frames,
            uart: false,
            timeout: Duration::from_secs(20),
            peer: Box::new(EchoPeer::new(40, 700, None).connections(3)),
        },
        Scenario {
            name: "echo-corrupted",
            about: "the peer flips a bit in the echo: the firmware must exit with `mismatch`",
            variant: "baseline",
            args: args(&["mode=echo", "count=100", "size=1000"]),
            expect: ExitCode::Mismatch,
            output: woken_by_frames,
            uart: false,
            timeout: Duration::from_secs(20),
            peer: Box::new(EchoPeer::new(100, 1000, Some(20_000))),
        },
        Scenario {
            name: "throughput",
            about: "4 MiB each way, checked; rates from the firmware's clock",
            variant: "baseline",
            args: vec![
                "mode=throughput".to_owned(),
                format!("bytes={THROUGHPUT_BYTES}"),
            ],
            expect: ExitCode::Success,
            output: woken_by_frames,
            uart: false,
            timeout: Duration::from_secs(30),
            peer: Box::new(ThroughputPeer::new(THROUGHPUT_BYTES, None)),
        },
        Scenario {
            name: "throughput-corrupted",
            about: "the peer flips a bit of the download: the firmware must exit with `mismatch`",
            variant: "baseline",
            args: args(&["mode=throughput", "bytes=262144"]),
            expect: ExitCode::Mismatch,
            output: woken_by_frames,
            uart: false,
            timeout: Duration::from_secs(20),
            peer: Box::new(ThroughputPeer::new(262_144, Some(100_000))),
        },
        Scenario {
            name: "mq-flow",
            about: "mq firmware and mqd: 100 telemetry out, 50 commands in and acked, QoS 1",
            variant: "mq",
            args: args(&["mode=mq", "telemetry=100", "commands=50", "interval_ms=2"]),
            expect: ExitCode::Success,
            output: woken_by_frames,
            uart: false,
            timeout: Duration::from_secs(20),
            peer: Box::new(MqdPeer::new("mq-flow", "fw1", 100, 50, Plan::Live)),
        },
        Scenario {
            name: "mq-restart",
            about: "the same across a crash and restart of mqd mid-run: resumed, nothing lost",
            variant: "mq",
            args: args(&[
                "mode=mq",
                "telemetry=200",
                "commands=40",
                "interval_ms=5",
                "marker=80",
            ]),
            expect: ExitCode::Success,
            output: woken_by_frames,
            uart: false,
            timeout: Duration::from_secs(20),
            peer: Box::new(MqdPeer::new("mq-restart", "fw1", 200, 40, Plan::Restart)),
        },
        Scenario {
            name: "mq-restart-clean",
            about: "the restart with a clean session: the commands sent while away must be lost",
            variant: "mq",
            args: args(&[
                "mode=mq",
                "session=clean",
                "telemetry=200",
                "commands=40",
                "interval_ms=5",
                "marker=80",
            ]),
            expect: ExitCode::Timeout,
            output: woken_by_frames,
            uart: false,
            timeout: Duration::from_secs(8),
            peer: Box::new(
                MqdPeer::new("mq-restart-clean", "fw1", 200, 40, Plan::Restart)
                    .expect(Expect::CommandsLost),
            ),
        },
        Scenario {
            name: "mq-rate-up",
            about: "2000 telemetry messages at QoS 1 as fast as the outbox allows: msg/s",
            variant: "mq",
            args: args(&["mode=mq", "telemetry=2000", "commands=0", "interval_ms=0"]),
            expect: ExitCode::Success,
            output: woken_by_frames,
            uart: false,
            timeout: Duration::from_secs(30),
            peer: Box::new(MqdPeer::new("mq-rate-up", "fw1", 2000, 0, Plan::Live)),
        },
        Scenario {
            name: "mq-rate-down",
            about: "2000 commands waiting in mqd, delivered at QoS 1 and acked: msg/s",
            variant: "mq",
            args: args(&["mode=mq", "telemetry=0", "commands=2000", "from=0"]),
            expect: ExitCode::Success,
            output: woken_by_frames,
            uart: false,
            timeout: Duration::from_secs(30),
            peer: Box::new(MqdPeer::new("mq-rate-down", "fw1", 0, 2000, Plan::Preload)),
        },
        Scenario {
            name: "serial-flow",
            about: "serial firmware and mqd --serial over a pty: 100 telemetry out, 50 commands in, QoS 1",
            variant: "serial",
            args: args(&["mode=mq", "telemetry=100", "commands=50", "interval_ms=2"]),
            expect: ExitCode::Success,
            output: woken_by_uart,
            uart: true,
            timeout: Duration::from_secs(20),
            peer: Box::new(MqdPeer::new("serial-flow", "fw1", 100, 50, Plan::Live).serial()),
        },
        Scenario {
            name: "serial-restart",
            about: "the same across a crash of mqd, kept off the line while commands queue: resumed, nothing lost",
            variant: "serial",
            args: args(&[
                "mode=mq",
                "telemetry=200",
                "commands=40",
                "interval_ms=5",
                "marker=80",
            ]),
            expect: ExitCode::Success,
            output: woken_by_uart,
            uart: true,
            timeout: Duration::from_secs(25),
            peer: Box::new(MqdPeer::new("serial-restart", "fw1", 200, 40, Plan::Restart).serial()),
        },
        Scenario {
            name: "serial-rate-up",
            about: "telemetry over the serial line at QoS 1 as fast as the outbox allows: msg/s",
            variant: "serial",
            args: vec![
                "mode=mq".to_owned(),
                format!("telemetry={SERIAL_RATE}"),
                "commands=0".to_owned(),
                "interval_ms=0".to_owned(),
            ],
            expect: ExitCode::Success,
            output: woken_by_uart,
            uart: true,
            timeout: Duration::from_secs(30),
            peer: Box::new(
                MqdPeer::new("serial-rate-up", "fw1", SERIAL_RATE, 0, Plan::Live).serial(),
            ),
        },
        Scenario {
            name: "serial-rate-down",
            about: "commands waiting in mqd, delivered over the serial line at QoS 1 and acked: msg/s",
            variant: "serial",
            args: vec![
                "mode=mq".to_owned(),
                "telemetry=0".to_owned(),
                format!("commands={SERIAL_RATE}"),
                "from=0".to_owned(),
            ],
            expect: ExitCode::Success,
            output: woken_by_uart,
            uart: true,
            timeout: Duration::from_secs(30),
            peer: Box::new(
                MqdPeer::new("serial-rate-down", "fw1", 0, SERIAL_RATE, Plan::Preload).serial(),
            ),
        },
        Scenario {
            name: "bad-argument",
            about: "an unknown mode: the firmware must exit with `bad arguments`, never connecting",
            variant: "baseline",
            args: args(&["mode=sideways"]),
            expect: ExitCode::Config,
            output: anything,
            uart: false,
            timeout: Duration::from_secs(10),
            peer: Box::new(NoConnection::default()),
        },
    ]
}
