//! liner on the peer-to-peer workloads in its at-least-once mode:
//! `send_to` / `send_all` with `at_least_once_delivery` set (the sender keeps
//! each message until the receiver's last number, which the receiver writes
//! to the catalog about once a second, covers it). Peers are threads as in
//! [`super::liner`]; each receiver counts distinct messages ([`Seen`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use liner_broker::Liner;

use super::join;
use super::liner::{await_peers, peer};
use crate::Ctx;
use crate::measure::{Measured, Tally};
use crate::seen::{self, Extra, Seen};
use crate::workload::{CYCLE_PAUSE, Shape, Workload};

/// `w.count` messages sent in a loop (`send_to` 1-to-1, `send_all` fan-out).
pub async fn stream(
    ctx: &Ctx,
    w: &Workload,
    shape: Shape,
    redis: &str,
) -> Result<Measured, String> {
    run(ctx, w, shape, None, redis).await
}

/// liner's seed: cycles of `per` `send_to`, each timed from its first send
/// to its last arrival, [`CYCLE_PAUSE`] apart.
pub async fn cycles(ctx: &Ctx, w: &Workload, per: u64, redis: &str) -> Result<Measured, String> {
    run(ctx, w, Shape::One, Some(per), redis).await
}

/// Runs so far, for names of their own.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// What the publisher did.
struct Sent {
    sent: u64,
    refused: u64,
    cycles_ns: Vec<u64>,
}

async fn run(
    ctx: &Ctx,
    w: &Workload,
    shape: Shape,
    per_cycle: Option<u64>,
    redis: &str,
) -> Result<Measured, String> {
    let n = shape.receivers();
    // Names new to every run: a receiver of a name used before may still
    // hold (or write, up to a second late) the last number it confirmed, and
    // then drops the new sender's messages as seen (every round after the
    // first lost most of its messages before this).
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let name = |what: &str| ctx.name(&format!("{}n{run}{what}", w.id));
    let target = match shape {
        Shape::One => name("r0"),
        Shape::FanOut(_) => name("fan"),
        Shape::Group(_) => return Err("no group workload peer to peer".to_string()),
    };
    let tally = Tally::new();
    let extra = Arc::new(Extra::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready) = mpsc::channel::<Result<(), String>>();
    let mut threads = Vec::new();
    for i in 0..n {
        let (redis, name) = (redis.to_string(), name(&format!("r{i}")));
        let topic = (shape != Shape::One).then(|| target.clone());
        let seen = Seen::new(tally.recorder(), w.count, Arc::clone(&extra));
        let (stop, ready_tx) = (Arc::clone(&stop), ready_tx.clone());
        threads.push(thread::spawn(move || {
            let mut seen = seen;
            match peer(&redis, &name, &name, topic.as_deref(), move |p| {
                seen.record(p)
            }) {
                Ok(mut liner) => {
                    let _ = ready_tx.send(Ok(()));
                    while !stop.load(Ordering::Relaxed) {
                        thread::sleep(Duration::from_millis(10));
                    }
                    liner.stop();
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        }));
    }
    let mut failure = None;
    for _ in 0..n {
        match ready.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("a liner receiver did not start in 10 s".to_string()),
        }
    }
    let sent = match failure {
        Some(e) => Err(e),
        None => {
            // The publisher stays up until the receivers are done: it holds
            // what is not yet confirmed.
            let (redis, name) = (redis.to_string(), name("p"));
            let (count, limit, size) = (w.count, ctx.limit, w.size);
            let tally = Arc::clone(&tally);
            let (done_tx, done) = tokio::sync::oneshot::channel();
            let stop = Arc::clone(&stop);
            threads.push(thread::spawn(move || {
                let publish = || -> Result<(Box<Liner>, Sent), String> {
                    let mut liner = peer(&redis, &name, &name, None, |_| {})?;
                    await_peers(&mut liner, &target, n)?;
                    let mut stamp = tally.stamp(size);
                    let mut send = |liner: &mut Liner, seq: u64| match shape {
                        Shape::FanOut(_) => liner.send_all(&target, stamp.next_seq(seq), true),
                        _ => liner.send_to(&target, stamp.next_seq(seq), true),
                    };
                    let end = Instant::now() + limit;
                    let mut out = Sent {
                        sent: 0,
                        refused: 0,
                        cycles_ns: Vec::new(),
                    };
                    tally.begin();
                    let per = per_cycle.unwrap_or(count);
                    while out.sent < count && Instant::now() < end {
                        if !out.cycles_ns.is_empty() {
                            thread::sleep(CYCLE_PAUSE);
                        }
                        let start = tally.now();
                        let upto = (out.sent + per).min(count);
                        while out.sent < upto && Instant::now() < end {
                            out.refused += u64::from(!send(&mut liner, out.sent));
                            out.sent += 1;
                        }
                        tally.settle_blocking(w_expected(shape, out.sent), limit);
                        out.cycles_ns.push(tally.last().saturating_sub(start));
                    }
                    Ok((liner, out))
                };
                match publish() {
                    Ok((mut liner, out)) => {
                        let _ = done_tx.send(Ok(out));
                        while !stop.load(Ordering::Relaxed) {
                            thread::sleep(Duration::from_millis(10));
                        }
                        liner.stop();
                    }
                    Err(e) => {
                        let _ = done_tx.send(Err(e));
                    }
                }
            }));
            done.await
                .map_err(|_| "the liner publisher thread ended".to_string())
                .and_then(|r| r)
        }
    };
    stop.store(true, Ordering::Relaxed);
    join(threads).await;
    let mut sent = sent?;
    let expected = w.expected(sent.sent);
    let mut m = tally.measured(expected, w.size);
    if sent.sent < w.count {
        m = m.with_note(format!(
            "stopped at the time limit after {} of {} messages",
            sent.sent, w.count
        ));
    }
    if let Some(per) = per_cycle {
        m = crate::cycles::measured(m, &mut sent.cycles_ns, per);
    }
    if sent.refused > 0 {
        let note = m
            .note
            .clone()
            .map_or_else(String::new, |n| format!("{n}; "));
        m = m.with_note(format!("{note}{} sends refused", sent.refused));
    }
    Ok(seen::noted(m, &extra))
}

/// Deliveries expected once `sent` messages were sent.
fn w_expected(shape: Shape, sent: u64) -> u64 {
    sent * shape.fanout()
}
