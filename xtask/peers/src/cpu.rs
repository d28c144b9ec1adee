//! CPU seconds a run costs: the broker's and the clients'.
//!
//! The clients all run in this process, so theirs is this process's own CPU
//! time over the run. A broker is either `mqd`, started per run as a child of
//! this process and reaped at its end (its time shows in this process's
//! children's time), or a server of the machine (`nats-server`, `mosquitto`,
//! `redis-server`), found by its process name: the time of every process of
//! that name over the run. Linux's `/proc`, in clock ticks of 1/100 s.

use std::fs;

use crate::workload::System;

/// Clock ticks per second of `/proc/*/stat` (`USER_HZ`, 100 on Linux).
const TICKS: f64 = 100.0;

/// Where a system's broker CPU is read.
#[derive(Debug, Clone, Copy)]
enum Broker {
    /// `mqd`, a child of this process.
    Child,
    /// Processes of the machine with this name.
    Named(&'static str),
    /// No broker (peer to peer, raw sockets).
    None,
    /// No broker, and the clients run in a child process (mq's peers in
    /// `mq-peer-load`): theirs is this process's and its children's time.
    NoneChildClients,
}

fn broker_of(s: System) -> Broker {
    match s {
        System::Mq | System::MqMqtt | System::MqNats | System::MqTls => Broker::Child,
        System::Nats => Broker::Named("nats-server"),
        System::Mosquitto => Broker::Named("mosquitto"),
        System::Redis => Broker::Named("redis-server"),
        System::ZeroMq | System::Liner | System::Tcp => Broker::None,
        System::MqPeer => Broker::NoneChildClients,
    }
}

/// `(own, reaped children's)` CPU ticks of a process from its `stat` line.
fn ticks(stat: &str) -> Option<(u64, u64)> {
    // The command name (field 2) may hold spaces: fields count from after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|v| v.parse().ok())
        .collect();
    match f[..] {
        [utime, stime, cutime, cstime] => Some((utime + stime, cutime + cstime)),
        _ => None,
    }
}

fn own_and_children() -> (u64, u64) {
    fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| ticks(&s))
        .unwrap_or((0, 0))
}

/// CPU ticks of every process named `name`.
fn named(name: &str) -> u64 {
    let Ok(dir) = fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == name))
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|s| ticks(&s).map(|(own, _)| own))
        .sum()
}

/// CPU used between [`Meter::start`] and [`Meter::stop`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cpu {
    /// The broker's CPU seconds; `None` for a system without one.
    pub broker: Option<f64>,
    /// The clients' CPU seconds (this process).
    pub clients: f64,
}

/// Reads a system's CPU counters at the start of a run.
pub struct Meter {
    broker: Broker,
    own: u64,
    children: u64,
    named: u64,
}

impl Meter {
    pub fn start(s: System) -> Meter {
        let broker = broker_of(s);
        let (own, children) = own_and_children();
        let named = match broker {
            Broker::Named(n) => named(n),
            _ => 0,
        };
        Meter {
            broker,
            own,
            children,
            named,
        }
    }

    /// The CPU the run took (call after the run's `mqd` was reaped).
    pub fn stop(&self) -> Cpu {
        let (own, children) = own_and_children();
        let secs = |t: u64| t as f64 / TICKS;
        let broker = match self.broker {
            Broker::Child => Some(secs(children.saturating_sub(self.children))),
            Broker::Named(n) => Some(secs(named(n).saturating_sub(self.named))),
            Broker::None | Broker::NoneChildClients => None,
        };
        let mut clients = own.saturating_sub(self.own);
        if let Broker::NoneChildClients = self.broker {
            clients += children.saturating_sub(self.children);
        }
        Cpu {
            broker,
            clients: secs(clients),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_times_from_a_stat_line_with_spaces_in_the_name() {
        let stat = "42 (my (odd) proc) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0";
        assert_eq!(ticks(stat), Some((300, 10)));
    }

    #[test]
    fn this_process_uses_cpu() {
        // Busy until a tick of CPU time shows (the counters move in 10 ms
        // steps), within a bound far above what that takes.
        let m = Meter::start(System::Tcp);
        let begun = std::time::Instant::now();
        let mut x = 0u64;
        loop {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            let cpu = m.stop();
            assert_eq!(cpu.broker, None);
            if cpu.clients > 0.0 {
                break;
            }
            assert!(
                begun.elapsed() < std::time::Duration::from_secs(20),
                "no CPU time counted after 20 s of work: {cpu:?}"
            );
        }
    }
}
