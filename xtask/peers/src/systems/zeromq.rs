//! ZeroMQ with the zmq crate (libzmq built from source by zmq-sys): no broker,
//! sockets straight from publisher to receivers over loopback TCP, each
//! socket in a thread of its own. PUB/SUB drops at its high-water mark; PUSH
//! waits. Before the measured messages the publisher sends 1-byte probes until
//! every receiver has seen one (a SUB joining late misses messages, a PULL
//! that is not connected yet gets none), and the receivers ignore them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{ctx_err, join, noted, round_trips_blocking};
use crate::Ctx;
use crate::measure::{Measured, Tally};
use crate::workload::{Kind, Shape, Workload};

/// How often blocked receivers look at the stop flag, in milliseconds.
const POLL_MS: i32 = 100;

pub fn version() -> Vec<(String, String)> {
    let (major, minor, patch) = zmq::version();
    vec![(
        "libzmq (built by zmq-sys)".to_string(),
        format!("{major}.{minor}.{patch}"),
    )]
}

pub async fn run(ctx: &Ctx, w: &Workload) -> Result<Measured, String> {
    match w.kind {
        Kind::Stream(shape) => stream(ctx, w, shape).await,
        Kind::Acked => Err("ZeroMQ has no acknowledged publish".to_string()),
        Kind::RoundTrip => round_trip(w).await,
        Kind::Peer(_) | Kind::Cycles(_) => Err(super::NOT_PEER.to_string()),
    }
}

fn bound(zmq: &zmq::Context, kind: zmq::SocketType) -> Result<(zmq::Socket, String), String> {
    let socket = zmq.socket(kind).map_err(ctx_err("zmq socket"))?;
    socket.set_linger(0).map_err(ctx_err("zmq linger"))?;
    socket
        .bind("tcp://127.0.0.1:*")
        .map_err(ctx_err("zmq bind"))?;
    let endpoint = socket
        .get_last_endpoint()
        .map_err(ctx_err("zmq endpoint"))?
        .map_err(|_| "zmq endpoint is not UTF-8".to_string())?;
    Ok((socket, endpoint))
}

fn connected(
    zmq: &zmq::Context,
    kind: zmq::SocketType,
    endpoint: &str,
) -> Result<zmq::Socket, String> {
    let socket = zmq.socket(kind).map_err(ctx_err("zmq socket"))?;
    socket.set_linger(0).map_err(ctx_err("zmq linger"))?;
    socket
        .set_rcvtimeo(POLL_MS)
        .map_err(ctx_err("zmq rcvtimeo"))?;
    if kind == zmq::SUB {
        socket
            .set_subscribe(b"")
            .map_err(ctx_err("zmq subscribe"))?;
    }
    socket.connect(endpoint).map_err(ctx_err("zmq connect"))?;
    Ok(socket)
}

async fn stream(ctx: &Ctx, w: &Workload, shape: Shape) -> Result<Measured, String> {
    let zmq = zmq::Context::new();
    let (sending, receiving) = match shape {
        Shape::Group(_) => (zmq::PUSH, zmq::PULL),
        Shape::One | Shape::FanOut(_) => (zmq::PUB, zmq::SUB),
    };
    let (publisher, endpoint) = bound(&zmq, sending)?;
    let tally = Tally::new();
    let stop = Arc::new(AtomicBool::new(false));
    let probed = Arc::new(AtomicUsize::new(0));
    let mut receivers = Vec::new();
    for _ in 0..shape.receivers() {
        let socket = connected(&zmq, receiving, &endpoint)?;
        let mut rec = tally.recorder();
        let (stop, probed) = (Arc::clone(&stop), Arc::clone(&probed));
        receivers.push(thread::spawn(move || {
            let mut buf = vec![0u8; w_max()];
            let mut seen_probe = false;
            while !stop.load(Ordering::Relaxed) {
                match socket.recv_into(&mut buf, 0) {
                    Ok(n) if n < 8 => {
                        if !seen_probe {
                            seen_probe = true;
                            probed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(n) => rec.record(&buf[..n.min(buf.len())]),
                    Err(_) => {}
                }
            }
        }));
    }
    let count = w.count;
    let limit = ctx.limit;
    let size = w.size;
    let want = shape.receivers();
    let mut stamp = tally.stamp(size);
    let begin = Arc::clone(&tally);
    // The publisher comes back with its count: dropping it (linger 0) would
    // discard what it still queues.
    let publishing = tokio::task::spawn_blocking(move || -> Result<(u64, zmq::Socket), String> {
        let give_up = Instant::now() + Duration::from_secs(10);
        while probed.load(Ordering::Relaxed) < want {
            if Instant::now() > give_up {
                return Err("receivers did not connect within 10 s".to_string());
            }
            publisher.send(&[0u8][..], 0).map_err(ctx_err("zmq send"))?;
            thread::sleep(Duration::from_millis(1));
        }
        // Probes still queued reach the receivers before the first message.
        thread::sleep(Duration::from_millis(50));
        begin.begin();
        let end = Instant::now() + limit;
        let mut sent = 0;
        while sent < count && Instant::now() < end {
            publisher
                .send(stamp.next(), 0)
                .map_err(ctx_err("zmq send"))?;
            sent += 1;
        }
        Ok((sent, publisher))
    });
    let sent = publishing.await.map_err(ctx_err("publisher thread"));
    let sent = sent.and_then(|r| r);
    let expected = w.expected(sent.as_ref().map_or(0, |s| s.0));
    if sent.is_ok() {
        tally.settle(expected, ctx.limit).await;
    }
    stop.store(true, Ordering::Relaxed);
    join(receivers).await;
    let (sent, publisher) = sent?;
    drop(publisher);
    Ok(noted(w, sent, tally.measured(expected, w.size)))
}

/// Receive buffer: the largest payload of any workload.
fn w_max() -> usize {
    64 * 1024 + 64
}

async fn round_trip(w: &Workload) -> Result<Measured, String> {
    let zmq = zmq::Context::new();
    let (responder, endpoint) = bound(&zmq, zmq::REP)?;
    responder
        .set_rcvtimeo(POLL_MS)
        .map_err(ctx_err("zmq rcvtimeo"))?;
    let requester = connected(&zmq, zmq::REQ, &endpoint)?;
    requester
        .set_rcvtimeo(10_000)
        .map_err(ctx_err("zmq rcvtimeo"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let answering = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut buf = vec![0u8; w_max()];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = responder.recv_into(&mut buf, 0)
                    && responder.send(&buf[..n.min(buf.len())], 0).is_err()
                {
                    break;
                }
            }
        })
    };
    let w2 = w.clone();
    let measured = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; w_max()];
        round_trips_blocking(&w2, |body| {
            requester.send(body, 0).map_err(ctx_err("zmq send"))?;
            requester
                .recv_into(&mut buf, 0)
                .map_err(ctx_err("zmq reply"))
        })
    })
    .await
    .map_err(ctx_err("requester thread"))?;
    stop.store(true, Ordering::Relaxed);
    join(vec![answering]).await;
    measured
}
