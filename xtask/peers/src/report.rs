//! The table: one row per workload and system, in Markdown (which also reads
//! well in a terminal), and the versions of everything measured.

use std::collections::BTreeMap;

use crate::digits::group_digits;
use crate::measure::Measured;
use crate::workload::{Kind, System, Workload};

/// How a run ended.
pub enum Outcome {
    Done(Measured),
    /// The system has no such feature.
    NotApplicable(String),
    /// Its server could not be reached nor started.
    Unavailable(String),
    Failed(String),
}

pub struct Row {
    pub workload: Workload,
    pub system: System,
    /// What the system ran the workload as.
    pub mode: String,
    pub outcome: Outcome,
}

const HEADER: &str = "| workload | system | as | msgs/s | MB/s | p50 | p99 | p99.9 | delivered / expected | mq ÷ peer | CPU s: broker / clients | broker CPU µs per message | notes |\n\
| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |";

/// The whole table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    for row in rows {
        let mq = rows
            .iter()
            .find(|r| r.workload.id == row.workload.id && r.system == mq_of(&row.workload))
            .and_then(|r| match &r.outcome {
                Outcome::Done(m) => Some(m.rate()),
                _ => None,
            });
        out += &cells(row, mq);
        out.push('\n');
    }
    out
}

/// The mq system the others are compared with on `w`: mq's peers on the
/// peer-to-peer workloads, `mqd` on the others.
fn mq_of(w: &Workload) -> System {
    match w.kind {
        Kind::Peer(_) | Kind::Cycles(_) => System::MqPeer,
        _ => System::Mq,
    }
}

/// One row as it completes (no ratio yet).
pub fn line(row: &Row) -> String {
    cells(row, None)
}

fn cells(row: &Row, mq_rate: Option<f64>) -> String {
    let w = &row.workload;
    let lead = format!("| {} {} | {} | {} |", w.id, w.title, row.system, row.mode);
    match &row.outcome {
        Outcome::Done(m) => {
            let ratio = match mq_rate {
                Some(mq) if row.system != mq_of(w) && m.rate() > 0.0 => {
                    format!("{:.2}", mq / m.rate())
                }
                _ => "-".to_string(),
            };
            let q = |p: f64| {
                m.latency
                    .quantile(p)
                    .map_or_else(|| "-".to_string(), duration)
            };
            let broker = m.cpu.broker.map_or("-".to_string(), |b| format!("{b:.2}"));
            let per_msg = m
                .broker_us_per_msg()
                .map_or("-".to_string(), |us| format!("{us:.2}"));
            format!(
                "{lead} {} | {:.1} | {} | {} | {} | {} / {} | {ratio} | {broker} / {:.2} | {per_msg} | {} |",
                group_digits(m.rate()),
                m.mb_per_sec(),
                q(0.5),
                q(0.99),
                q(0.999),
                group_digits(m.delivered as f64),
                group_digits(m.expected as f64),
                m.cpu.clients,
                m.note.as_deref().unwrap_or(""),
            )
        }
        Outcome::NotApplicable(why) => {
            format!("{lead} n/a | | | | | | | | | {why} |")
        }
        Outcome::Unavailable(why) => {
            format!("{lead} unavailable | | | | | | | | | {why} |")
        }
        Outcome::Failed(why) => {
            format!(
                "{lead} failed | | | | | | | | | {} |",
                why.replace('|', "/")
            )
        }
    }
}

/// Nanoseconds as µs or ms with three significant digits.
fn duration(ns: u64) -> String {
    let us = ns as f64 / 1e3;
    if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.1} ms", us / 1e3)
    }
}

/// The versions of the client crates, from this package's lockfile.
pub fn crate_versions() -> BTreeMap<String, String> {
    const CRATES: &[&str] = &[
        "async-nats",
        "rumqttc",
        "redis",
        "zmq",
        "liner_broker",
        "tokio",
    ];
    let lock = include_str!("../Cargo.lock");
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"'));
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take())
            && CRATES.contains(&n)
        {
            found
                .entry(format!("crate {n}"))
                .or_default()
                .push(v.trim_matches('"').to_string());
        }
    }
    found
        .into_iter()
        .map(|(k, v)| (k, v.join(" and ")))
        .collect()
}

/// The versions as a Markdown list.
pub fn versions(versions: &BTreeMap<String, String>) -> String {
    let mut out = String::from("Versions:\n\n");
    for (what, version) in versions {
        out += &format!("- {what}: {version}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_three_digits() {
        assert_eq!(duration(1_234), "1.23 µs");
        assert_eq!(duration(56_700), "57 µs");
        assert_eq!(duration(1_234_000), "1.23 ms");
        assert_eq!(duration(65_500_000), "65.5 ms");
    }

    #[test]
    fn lockfile_names_the_client_crates() {
        let v = crate_versions();
        for c in ["async-nats", "rumqttc", "redis", "zmq", "liner_broker"] {
            assert!(v.contains_key(&format!("crate {c}")), "{c} missing: {v:?}");
        }
    }
}
