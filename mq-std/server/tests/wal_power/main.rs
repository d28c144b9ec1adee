//! The write-ahead log through power cuts, on a simulated disk that forgets
//! what was not synced (`mq_server::wal::fs::SimDisk`: torn writes, reordered
//! writes, lost directory entries).
//!
//! Per seed: a real `Broker` and the log, two publishers (QoS 1 and QoS 0),
//! persistent fan-out subscribers, a group of two and an auditor on `>` (it
//! connects only after power cuts, so it holds every message), acks,
//! disconnections, compactions when the log asks and at random. The power
//! goes at random points: between steps, after a number of disk operations
//! (in the middle of a write, a sync, a compaction), and in the middle of the
//! recovery after a power cut. After each, the log is opened again and a fresh
//! broker rebuilt from it, and every subscriber comes back.
//!
//! Asserted for every seed, under every fsync policy:
//! - the log opens after every power cut, with no error and nothing for an
//!   operator to do, and every record it recovers restores;
//! - every QoS 1 message whose record was durable (synced, with its file's
//!   name) is delivered again to every durable queue that was owed it, unless
//!   the queue had acked it;
//! - nothing is delivered again to a queue whose ack of it was durable, and a
//!   session whose subscription was durable is found again;
//! - (but under `never`) no message id in a record the log took is handed
//!   out again after a power cut, even when the record was lost: a mesh
//!   node's peers would drop the new message as a duplicate.
//!
//! And per policy, what an acknowledged publish may lose at a power cut:
//! - `always`: nothing (acknowledged means durable);
//! - `every N records`: fewer than N acknowledged publishes;
//! - `interval D`: only what was acknowledged in the last D;
//! - `never`: whatever came after the last compaction (no bound to check
//!   beyond the durable records above).
//!
//! `MQ_WAL_CRASH_SEEDS=N` sets how many seeds each policy runs (default 100;
//! `cargo xtask ci` runs more, in release); `MQ_WAL_CRASH_SEED=S` runs one seed
//! with a trace of what happened (with the test's name to pick the policy). A
//! failing seed prints the command that replays it.

#[path = "../support/mod.rs"]
mod support;

mod cut;
mod figures;
mod model;
mod regressions;
mod world;

use std::time::{Duration, Instant};

use figures::{Figures, report};
use mq_server::wal::FsyncPolicy;
use world::World;

/// Steps per seed.
const STEPS: u64 = 400;

fn run_seed(seed: u64, fsync: FsyncPolicy, trace: bool) -> Figures {
    let mut world = World::new(seed, fsync, trace);
    world.run(STEPS);
    world.figures
}

/// Runs the seeds for `fsync` (or replays one), printing the figures.
fn run_seeds(test: &str, fsync: FsyncPolicy, regressions: &[u64]) {
    if let Ok(seed) = std::env::var("MQ_WAL_CRASH_SEED") {
        let seed: u64 = seed.parse().expect("MQ_WAL_CRASH_SEED is a number");
        let f = run_seed(seed, fsync, true);
        println!("seed {seed} ({fsync}): {f:?}");
        return;
    }
    let seeds: u64 = std::env::var("MQ_WAL_CRASH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let started = Instant::now();
    let mut total = Figures::default();
    for seed in regressions.iter().copied().chain(0..seeds) {
        match std::panic::catch_unwind(|| run_seed(seed, fsync, false)) {
            Ok(f) => total.add(&f),
            Err(e) => {
                eprintln!(
                    "power-cut seed {seed} ({fsync}) failed; replay it with:\n  \
                     MQ_WAL_CRASH_SEED={seed} cargo test -p mq-server --test wal_power -- \
                     --exact {test} --nocapture"
                );
                std::panic::resume_unwind(e);
            }
        }
    }
    report(fsync, &total, started.elapsed());
    assert!(
        total.power_cuts > total.seeds
            && total.cuts_in_compaction > 0
            && total.cuts_in_recovery > 0
            && total.owed_checked > 0,
        "the power cuts never happened: {total:?}"
    );
}

#[test]
fn power_cuts_under_fsync_always_lose_nothing_acknowledged() {
    run_seeds(
        "power_cuts_under_fsync_always_lose_nothing_acknowledged",
        FsyncPolicy::Always,
        // The seeds that found bugs (see regressions.rs), run whatever the count.
        &[0, 4],
    );
}

#[test]
fn power_cuts_under_fsync_every_lose_fewer_than_n() {
    run_seeds(
        "power_cuts_under_fsync_every_lose_fewer_than_n",
        FsyncPolicy::EveryRecords(8),
        &[3],
    );
}

#[test]
fn power_cuts_under_fsync_interval_lose_only_the_last_interval() {
    run_seeds(
        "power_cuts_under_fsync_interval_lose_only_the_last_interval",
        FsyncPolicy::Interval(Duration::from_millis(20)),
        &[7],
    );
}

#[test]
fn power_cuts_under_fsync_never_keep_what_compaction_wrote() {
    run_seeds(
        "power_cuts_under_fsync_never_keep_what_compaction_wrote",
        FsyncPolicy::Never,
        &[],
    );
}
