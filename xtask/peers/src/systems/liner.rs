//! liner (`liner_broker`): peers over TCP with their catalog in the Redis of
//! the run. A `Liner` stays on the thread that made it (it is not `Send`), so
//! every peer is a thread: receivers record in their callback, the publisher
//! calls `send_to` / `send_all` (no at-least-once persistence: the
//! fire-and-forget mode) as fast as they return.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use liner_broker::Liner;

use super::{ctx_err, join, noted, round_trips_blocking};
use crate::Ctx;
use crate::measure::{Measured, Recorder, Tally};
use crate::workload::{Kind, Shape, Workload};

const BIND: &str = "127.0.0.1:0";

pub async fn run(ctx: &Ctx, w: &Workload) -> Result<Measured, String> {
    let redis = format!("redis://{}/", ctx.redis.addr()?);
    let result = match w.kind {
        Kind::Stream(shape) => stream(ctx, w, shape, &redis).await,
        Kind::Acked => Err("liner has no acknowledged publish".to_string()),
        Kind::RoundTrip => round_trip(ctx, w, &redis).await,
        Kind::Peer(shape) => super::liner_peer::stream(ctx, w, shape, &redis).await,
        Kind::Cycles(per) => super::liner_peer::cycles(ctx, w, per, &redis).await,
    };
    // liner leaves its peers' catalog entries behind; the Redis is shared.
    super::redis::forget(ctx).await;
    result
}

/// A running peer named `name` with source topic `own`, also subscribed to
/// `topic` when given; `on_message` gets every payload. Boxed: liner's
/// callback keeps the address of the `Liner` that `run` was called on.
pub(super) fn peer(
    redis: &str,
    name: &str,
    own: &str,
    topic: Option<&str>,
    mut on_message: impl FnMut(&[u8]) + 'static,
) -> Result<Box<Liner>, String> {
    let mut liner = Box::new(Liner::new(name, own, BIND, redis));
    liner.clear_stored_messages();
    if !liner.run(Box::new(move |_to: &str, _from: &str, data: &[u8]| {
        on_message(data)
    })) {
        return Err(format!("liner run: {}", liner.last_error_message()));
    }
    // After `run`: a subscription registers the bound address, which an
    // ephemeral port only has from then on.
    if let Some(t) = topic
        && !liner.subscribe(t)
    {
        return Err(format!("liner subscribe: {}", liner.last_error_message()));
    }
    Ok(liner)
}

/// Waits until `liner` knows `want` addresses for `topic`.
pub(super) fn await_peers(liner: &mut Liner, topic: &str, want: usize) -> Result<(), String> {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        liner.refresh_address_topic(topic);
        let have = liner.list_addresses(topic).map_or(0, |a| a.len());
        if have >= want {
            return Ok(());
        }
        if Instant::now() > give_up {
            return Err(format!(
                "{have} of {want} liner peers registered for {topic}"
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

async fn stream(ctx: &Ctx, w: &Workload, shape: Shape, redis: &str) -> Result<Measured, String> {
    let n = shape.receivers();
    let target = match shape {
        Shape::One => ctx.name(&format!("{}r0", w.id)),
        Shape::FanOut(_) => ctx.name(&format!("{}fan", w.id)),
        Shape::Group(_) => ctx.name(&format!("{}work", w.id)),
    };
    let tally = Tally::new();
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready) = mpsc::channel::<Result<(), String>>();
    let mut receivers = Vec::new();
    for i in 0..n {
        let (redis, name) = (redis.to_string(), ctx.name(&format!("{}r{i}", w.id)));
        let topic = (shape != Shape::One).then(|| target.clone());
        let rec: Recorder = tally.recorder();
        let (stop, ready_tx) = (Arc::clone(&stop), ready_tx.clone());
        receivers.push(thread::spawn(move || {
            let mut rec = rec;
            match peer(&redis, &name, &name, topic.as_deref(), move |p| {
                rec.record(p)
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
            // The publisher stays up until the receivers are done: stopping it
            // would drop what its sender threads still queue.
            let (redis, name) = (redis.to_string(), ctx.name(&format!("{}p", w.id)));
            let (count, limit) = (w.count, ctx.limit);
            let mut stamp = tally.stamp(w.size);
            let begin = Arc::clone(&tally);
            let (done_tx, done) = tokio::sync::oneshot::channel();
            let stop = Arc::clone(&stop);
            receivers.push(thread::spawn(move || {
                let mut publish = || -> Result<(Box<Liner>, u64, u64), String> {
                    let mut liner = peer(&redis, &name, &name, None, |_| {})?;
                    await_peers(&mut liner, &target, n)?;
                    begin.begin();
                    let end = Instant::now() + limit;
                    let (mut sent, mut refused) = (0, 0);
                    while sent < count && Instant::now() < end {
                        let ok = match shape {
                            Shape::FanOut(_) => liner.send_all(&target, stamp.next(), false),
                            Shape::One | Shape::Group(_) => {
                                liner.send_to(&target, stamp.next(), false)
                            }
                        };
                        sent += 1;
                        refused += u64::from(!ok);
                    }
                    Ok((liner, sent, refused))
                };
                match publish() {
                    Ok((mut liner, sent, refused)) => {
                        let _ = done_tx.send(Ok((sent, refused)));
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
    let expected = w.expected(sent.as_ref().map_or(0, |s| s.0));
    if sent.is_ok() {
        tally.settle(expected, ctx.limit).await;
    }
    stop.store(true, Ordering::Relaxed);
    join(receivers).await;
    let (sent, refused) = sent?;
    let m = noted(w, sent, tally.measured(expected, w.size));
    Ok(if refused > 0 {
        let note = m
            .note
            .clone()
            .map_or_else(String::new, |n| format!("{n}; "));
        m.with_note(format!("{note}{refused} sends refused"))
    } else {
        m
    })
}

async fn round_trip(ctx: &Ctx, w: &Workload, redis: &str) -> Result<Measured, String> {
    let (req, rep) = (ctx.name("req"), ctx.name("rep"));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let answering = {
        let (redis, req, rep) = (redis.to_string(), req.clone(), rep.clone());
        let (stop, started) = (Arc::clone(&stop), Arc::clone(&started));
        thread::spawn(move || -> Result<(), String> {
            let (tx, requests) = mpsc::channel::<Vec<u8>>();
            let mut liner = peer(&redis, &req, &req, None, move |p| {
                let _ = tx.send(p.to_vec());
            })?;
            await_peers(&mut liner, &rep, 1)?;
            started.fetch_add(1, Ordering::Relaxed);
            while !stop.load(Ordering::Relaxed) {
                if let Ok(body) = requests.recv_timeout(Duration::from_millis(50)) {
                    liner.send_to(&rep, &body, false);
                }
            }
            liner.stop();
            Ok(())
        })
    };
    let (redis, w2) = (redis.to_string(), w.clone());
    let (stop2, started2) = (Arc::clone(&stop), Arc::clone(&started));
    let measured = tokio::task::spawn_blocking(move || {
        let (tx, replies) = mpsc::channel::<usize>();
        let mut liner = peer(&redis, &rep, &rep, None, move |p| {
            let _ = tx.send(p.len());
        })?;
        await_peers(&mut liner, &req, 1)?;
        let give_up = Instant::now() + Duration::from_secs(10);
        while started2.load(Ordering::Relaxed) == 0 && !stop2.load(Ordering::Relaxed) {
            if Instant::now() > give_up {
                return Err("the liner responder did not start in 10 s".to_string());
            }
            thread::sleep(Duration::from_millis(10));
        }
        let result = round_trips_blocking(&w2, |body| {
            if !liner.send_to(&req, body, false) {
                return Err(format!("liner send_to: {}", liner.last_error_message()));
            }
            replies
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| "no reply within 10 s".to_string())
        });
        liner.stop();
        result
    })
    .await
    .map_err(ctx_err("requester thread"))
    .and_then(|r| r);
    stop.store(true, Ordering::Relaxed);
    let answered = tokio::task::spawn_blocking(move || answering.join()).await;
    if let Ok(Ok(Err(e))) = answered
        && measured.is_err()
    {
        return Err(e);
    }
    measured
}
