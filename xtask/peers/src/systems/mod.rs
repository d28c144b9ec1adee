//! One module per system; each runs every workload it can, driven the same
//! way: windowed publishes of stamped payloads, one connection per client,
//! arrivals recorded into a [`Tally`](crate::measure::Tally).

mod liner;
mod liner_peer;
mod mq;
mod mq_peer;
mod mqtt;
mod nats;
mod redis;
mod tcp;
mod zeromq;

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::measure::{Measured, Timer};
use crate::window::Window;
use crate::workload::{System, Workload};
use crate::{Ctx, mqd};

/// Publishes (or requests) outstanding at once: the same as `mq bench`.
pub const WINDOW: usize = 256;
/// Publishes a stream workload keeps in flight: [`WINDOW`], or one for a plain
/// loop (each publish awaited before the next).
pub fn window(w: &Workload) -> usize {
    if w.plain { 1 } else { WINDOW }
}

/// Why a system with a broker does not run the peer-to-peer workloads.
pub const NOT_PEER: &str = "peer to peer, no broker: mq-peer and liner only";

/// Round trips before the measured ones (connections warm, routes known).
pub const WARMUP: u64 = 100;

/// The servers' own versions, checking they answer.
pub async fn probe(ctx: &Ctx, s: System) -> Result<Vec<(String, String)>, String> {
    let found = match s {
        System::Mq => {
            let path = ctx
                .mqd
                .as_ref()
                .ok_or("no --mqd binary given".to_string())?;
            vec![("mqd".to_string(), mqd::version(path)?)]
        }
        System::Nats => nats::version(ctx).await?,
        System::Mosquitto => mqtt::version(ctx).await?,
        System::MqMqtt | System::MqNats | System::MqTls => Vec::new(),
        System::Redis => redis::version(ctx).await?,
        System::ZeroMq => zeromq::version(),
        System::Liner => {
            ctx.redis.addr()?;
            vec![(
                "liner_broker (catalog in the Redis above)".to_string(),
                ::liner_broker::Liner::version().to_string(),
            )]
        }
        System::Tcp => Vec::new(),
        System::MqPeer => mq_peer::version(ctx)?,
    };
    Ok(found)
}

/// Runs `w` against `s`, bounded in time.
pub async fn run(ctx: &Ctx, s: System, w: &Workload) -> Result<Measured, String> {
    let bound = ctx.limit * 2 + Duration::from_secs(60);
    let run = async {
        match s {
            System::Mq => mq::run(ctx, w, false).await,
            System::MqTls => mq::run(ctx, w, true).await,
            System::Nats => nats::run(ctx, w).await,
            System::Mosquitto => mqtt::run(ctx, w).await.map(|m| match w.kind {
                crate::workload::Kind::Acked => m.with_note(
                    "QoS 1: stored in memory; Mosquitto writes its persistence file \
                     only periodically, if at all (not per acknowledgement)",
                ),
                _ => m,
            }),
            System::MqMqtt => mqtt::run_mqd(ctx, w).await,
            System::MqNats => nats::run_mqd(ctx, w).await,
            System::Redis => redis::run(ctx, w).await,
            System::ZeroMq => zeromq::run(ctx, w).await,
            System::Liner => liner::run(ctx, w).await,
            System::Tcp => tcp::run(ctx, w).await,
            System::MqPeer => mq_peer::run(ctx, w).await,
        }
    };
    match tokio::time::timeout(bound, run).await {
        Ok(result) => result,
        Err(_) => Err(format!("did not finish within {} s", bound.as_secs())),
    }
}

/// Issues `count` calls made by `call`, keeping `window` of them outstanding,
/// oldest answered first; stops early at `limit`. With a `timer`, each answer
/// is timed from its call. Returns how many calls were made; fails at the first
/// call that failed.
pub async fn windowed<'a, F, Fut>(
    count: u64,
    window: usize,
    limit: Duration,
    mut timer: Option<&mut Timer>,
    mut call: F,
) -> Result<u64, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'a,
{
    let mut sent_at = VecDeque::with_capacity(window);
    let mut window = Window::new(window);
    let end = Instant::now() + limit;
    let mut sent = 0;
    while sent < count && Instant::now() < end {
        if window.is_full()
            && let Some(result) = window.next().await
        {
            result?;
            if let (Some(t), Some(at)) = (timer.as_deref_mut(), sent_at.pop_front()) {
                t.answered(at);
            }
        }
        if let Some(t) = timer.as_deref_mut() {
            sent_at.push_back(t.now());
        }
        window.push(call()).await;
        sent += 1;
    }
    while let Some(result) = window.next().await {
        result?;
        if let (Some(t), Some(at)) = (timer.as_deref_mut(), sent_at.pop_front()) {
            t.answered(at);
        }
    }
    Ok(sent)
}

/// The note for a run that stopped at the time limit.
pub fn limit_note(w: &Workload, sent: u64) -> Option<String> {
    (sent < w.count).then(|| {
        format!(
            "stopped at the time limit after {} of {} messages",
            sent, w.count
        )
    })
}

/// `m` with the time-limit note when `sent` fell short.
pub fn noted(w: &Workload, sent: u64, m: Measured) -> Measured {
    match limit_note(w, sent) {
        Some(n) => m.with_note(n),
        None => m,
    }
}

/// Maps any displayable error to a string with context.
pub fn ctx_err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e}")
}

/// Ends receiver tasks (their recorders drop and join the tally).
pub async fn stop(receivers: Vec<tokio::task::JoinHandle<()>>) {
    for r in &receivers {
        r.abort();
    }
    for r in receivers {
        let _ = r.await;
    }
}

/// Ends receiver threads (they watch a stop flag or their socket's end).
pub async fn join(threads: Vec<std::thread::JoinHandle<()>>) {
    let _ = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await;
}

/// Round trips one at a time: [`WARMUP`] unmeasured ones, then `w.count`
/// timed ones, each a stamped request of `w.size` bytes whose reply must be
/// as long.
struct Trips {
    size: usize,
    count: u64,
    done: u64,
    stamp: crate::measure::Stamp,
    timer: Timer,
    sent: u64,
}

impl Trips {
    fn new(w: &Workload) -> Trips {
        Trips {
            size: w.size,
            count: w.count,
            done: 0,
            stamp: crate::measure::Tally::new().stamp(w.size),
            timer: Timer::new(),
            sent: 0,
        }
    }

    /// The next request, or `None` when all are done.
    fn request(&mut self) -> Option<&[u8]> {
        if self.done == WARMUP + self.count {
            return None;
        }
        if self.done == WARMUP {
            self.timer = Timer::new();
        }
        self.sent = self.timer.now();
        Some(self.stamp.next())
    }

    /// The reply to the last request, `len` bytes long.
    fn reply(&mut self, len: usize) -> Result<(), String> {
        if len != self.size {
            return Err(format!(
                "a reply of {len} bytes to a request of {}",
                self.size
            ));
        }
        self.timer.answered(self.sent);
        self.done += 1;
        Ok(())
    }

    fn measured(self) -> Measured {
        self.timer.measured(self.count, self.size)
    }
}

/// [`Trips`] through `call`, which sends a request and returns its reply's length.
pub async fn round_trips(
    w: &Workload,
    mut call: impl AsyncFnMut(bytes::Bytes) -> Result<usize, String>,
) -> Result<Measured, String> {
    let mut trips = Trips::new(w);
    while let Some(body) = trips.request() {
        let len = call(bytes::Bytes::copy_from_slice(body)).await?;
        trips.reply(len)?;
    }
    Ok(trips.measured())
}

/// [`round_trips`] for blocking clients (call from a thread of their own).
pub fn round_trips_blocking(
    w: &Workload,
    mut call: impl FnMut(&[u8]) -> Result<usize, String>,
) -> Result<Measured, String> {
    let mut trips = Trips::new(w);
    while let Some(body) = trips.request() {
        let len = call(body)?;
        trips.reply(len)?;
    }
    Ok(trips.measured())
}
