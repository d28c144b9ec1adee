//! `mq bench`: publishers and subscribers, each its own client connection,
//! against a running daemon. Publishers publish as fast as their window allows
//! for the duration, each payload starting with its send time (nanoseconds from
//! an origin shared by every client of the run, little-endian `u64`);
//! subscribers record the end-to-end latency of every delivery. At the end the
//! publishers wait for their last acks and the subscribers drain what is still
//! in flight, both for a bounded time, and the run prints what it measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use mq_client::client::{
    Client, Error, Message, PublishOptions, QoS, SubscribeOptions, Subscription,
};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::daemon::Server;
use crate::digits::group_digits;
use crate::fail::Fail;
use crate::histogram::Histogram;
use crate::output::outln;
use crate::qos::{parse_qos, qos_number};
use crate::window::Window;

/// The longest the publishers wait for their last acks.
const ACK_DRAIN: Duration = Duration::from_secs(10);
/// The longest the subscribers drain after the publishers are done.
const DELIVERY_DRAIN: Duration = Duration::from_secs(10);
/// Subscribers stop draining early when nothing arrives for this long.
const IDLE: Duration = Duration::from_secs(1);
/// Messages a subscriber takes without looking at the stop signal.
const BATCH: usize = 256;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Publishing clients.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    publishers: u32,
    /// Subscribing clients.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=1000))]
    subscribers: u32,
    /// Subscribe as one group (competing consumers) instead of fan-out.
    #[arg(long)]
    group: bool,
    /// Topics the publishers spread their messages over.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    topics: u32,
    /// Payload size (at least 8: the send time).
    #[arg(long, value_name = "BYTES", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(8..=(64 << 20)))]
    size: u32,
    /// QoS of publishes and subscriptions: 0 or 1.
    #[arg(long, default_value = "1", value_parser = parse_qos)]
    qos: QoS,
    /// How long the publishers publish, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_secs)]
    duration: f64,
    /// Publishes in flight per publisher.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_535))]
    window: u32,
    /// Credit of each subscription (deliveries outstanding).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65_535))]
    credit: u32,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err("a number of seconds, above 0 and at most 86400".to_string()),
    }
}

/// What one publisher did.
#[derive(Default)]
struct Published {
    ok: u64,
    failed: u64,
    first_error: Option<Error>,
    /// Publishes still unanswered when the drain ended.
    unanswered: u64,
    /// When its last publish was answered.
    done: Option<Instant>,
}

impl Published {
    fn take(&mut self, result: Result<(), Error>) {
        match result {
            Ok(()) => self.ok += 1,
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }
}

/// What one subscriber saw.
#[derive(Default)]
struct Delivered {
    latency: Histogram,
    last: Option<Instant>,
}

impl Delivered {
    /// Records the latency of `msg` (sent time in its first 8 bytes) and acks it.
    fn record(&mut self, msg: Message, origin: Instant) {
        let now = Instant::now();
        if let Some(sent) = msg.payload.get(..8) {
            let sent = u64::from_le_bytes(sent.try_into().expect("8 bytes"));
            let at = now.duration_since(origin).as_nanos() as u64;
            self.latency.record(at.saturating_sub(sent));
        }
        self.last = Some(now);
        let _ = msg.ack();
    }
}

pub async fn run(server: &Server, args: BenchArgs) -> Result<(), Fail> {
    let run_id = run_id();
    let prefix = format!("bench.{run_id}");
    let topics: Arc<Vec<String>> =
        Arc::new((0..args.topics).map(|i| format!("{prefix}.t{i}")).collect());
    let fanout = if args.group || args.subscribers == 0 {
        u64::from(args.subscribers.min(1))
    } else {
        u64::from(args.subscribers)
    };
    outln!(
        "mq bench {run_id}: {} publisher(s), {} subscriber(s) {}, {} topic(s), {} B payloads, QoS {}, window {}, {} s",
        args.publishers,
        args.subscribers,
        if args.group {
            "in one group"
        } else {
            "(fan-out)"
        },
        args.topics,
        args.size,
        qos_number(args.qos),
        args.window,
        args.duration,
    )?;

    // Every client connects (and every subscription is confirmed) first.
    let mut sub_opts = if args.group {
        SubscribeOptions::group(format!("bench-{run_id}"))
    } else {
        SubscribeOptions::default()
    };
    sub_opts.qos = args.qos;
    sub_opts.credit = args.credit;
    let mut subscribers = Vec::new();
    for _ in 0..args.subscribers {
        let client = server.connect().await?;
        let sub = client
            .subscribe(&format!("{prefix}.>"), &sub_opts)
            .await
            .map_err(|e| Fail(format!("cannot subscribe: {e}")))?;
        subscribers.push((client, sub));
    }
    let mut publishers = Vec::new();
    for _ in 0..args.publishers {
        publishers.push(server.connect().await?);
    }

    let origin = Instant::now();
    let end = origin + Duration::from_secs_f64(args.duration);
    let delivered = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);
    let mut clients = Vec::new();
    let mut receiving = JoinSet::new();
    for (client, sub) in subscribers {
        clients.push(client);
        receiving.spawn(receive(
            sub,
            origin,
            stopped.clone(),
            Arc::clone(&delivered),
        ));
    }
    let mut sending = JoinSet::new();
    for (p, client) in publishers.into_iter().enumerate() {
        clients.push(client.clone());
        let topics = Arc::clone(&topics);
        let size = args.size as usize;
        let (qos, window) = (args.qos, args.window as usize);
        sending.spawn(
            async move { publish(&client, &topics, p, size, qos, window, origin, end).await },
        );
    }

    let mut published = Published::default();
    while let Some(result) = sending.join_next().await {
        let p = result.map_err(|e| Fail(format!("a publisher failed: {e}")))?;
        published.ok += p.ok;
        published.failed += p.failed;
        published.unanswered += p.unanswered;
        if published.first_error.is_none() {
            published.first_error = p.first_error;
        }
        published.done = published.done.max(p.done);
    }

    // Drain: until every expected delivery arrived, nothing arrived for IDLE,
    // or DELIVERY_DRAIN passed.
    let expected = published.ok * fanout;
    let drain_until = Instant::now() + DELIVERY_DRAIN;
    let mut seen = delivered.load(Ordering::Relaxed);
    let mut progress = Instant::now();
    while args.subscribers > 0 && seen < expected {
        let now = Instant::now();
        if now >= drain_until || now.duration_since(progress) >= IDLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let n = delivered.load(Ordering::Relaxed);
        if n != seen {
            seen = n;
            progress = Instant::now();
        }
    }
    let _ = stop.send(true);
    let mut received = Delivered::default();
    while let Some(result) = receiving.join_next().await {
        let d = result.map_err(|e| Fail(format!("a subscriber failed: {e}")))?;
        received.latency.merge(&d.latency);
        received.last = received.last.max(d.last);
    }
    for client in &clients {
        let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
    }

    report(&args, origin, &published, &received, expected)
}

/// Publishes until `end`, then waits (bounded) for the answers still due.
#[allow(clippy::too_many_arguments)]
async fn publish(
    client: &Client,
    topics: &[String],
    first: usize,
    size: usize,
    qos: QoS,
    window: usize,
    origin: Instant,
    end: Instant,
) -> Published {
    let opts = PublishOptions::new(qos);
    let mut out = Published::default();
    let mut calls = Window::new(window);
    let mut k = first;
    let mut payload = vec![b'm'; size];
    loop {
        if calls.is_full()
            && let Some(result) = calls.next().await
        {
            out.take(result);
        }
        // The send time is read after waiting for room in the window.
        let now = Instant::now();
        if now >= end {
            break;
        }
        let topic = topics[k % topics.len()].as_str();
        k += 1;
        let sent = now.duration_since(origin).as_nanos() as u64;
        payload[..8].copy_from_slice(&sent.to_le_bytes());
        let body = bytes::Bytes::copy_from_slice(&payload);
        let opts = &opts;
        calls
            .push(async move { client.publish(topic, body, opts).await.map(|_| ()) })
            .await;
    }
    let drained = tokio::time::timeout(ACK_DRAIN, async {
        while let Some(result) = calls.next().await {
            out.take(result);
        }
    })
    .await;
    if drained.is_err() {
        out.unanswered = calls.len() as u64;
    }
    out.done = Some(Instant::now());
    out
}

/// Records the latency of every delivery until told to stop.
async fn receive(
    mut sub: Subscription,
    origin: Instant,
    mut stop: watch::Receiver<bool>,
    delivered: Arc<AtomicU64>,
) -> Delivered {
    let mut out = Delivered::default();
    loop {
        let msg = tokio::select! {
            biased;
            _ = stop.changed() => break,
            msg = sub.next() => msg,
        };
        let Some(msg) = msg else { break };
        out.record(msg, origin);
        let mut n = 1;
        while n < BATCH
            && let Some(msg) = sub.try_next()
        {
            out.record(msg, origin);
            n += 1;
        }
        delivered.fetch_add(n as u64, Ordering::Relaxed);
    }
    out
}

fn report(
    args: &BenchArgs,
    origin: Instant,
    published: &Published,
    received: &Delivered,
    expected: u64,
) -> Result<(), Fail> {
    let size = f64::from(args.size);
    let rate = |n: u64, until: Option<Instant>| {
        let secs = until.map_or(0.0, |t| t.duration_since(origin).as_secs_f64());
        if secs > 0.0 { n as f64 / secs } else { 0.0 }
    };
    let pub_secs = published
        .done
        .map_or(0.0, |t| t.duration_since(origin).as_secs_f64());
    let pub_rate = rate(published.ok, published.done);
    outln!(
        "published  {:>12} msgs in {pub_secs:>6.2} s: {:>12} msg/s {:>9.1} MB/s",
        group_digits(published.ok as f64),
        group_digits(pub_rate),
        pub_rate * size / 1e6,
    )?;
    if published.failed > 0 || published.unanswered > 0 {
        let why = published
            .first_error
            .as_ref()
            .map_or_else(String::new, |e| format!(" (first: {e})"));
        outln!(
            "failed     {:>12} publishes{why}; {} unanswered at the end",
            published.failed,
            published.unanswered
        )?;
    }
    if args.subscribers == 0 {
        return Ok(());
    }
    let count = received.latency.count();
    let del_secs = received
        .last
        .map_or(0.0, |t| t.duration_since(origin).as_secs_f64());
    let del_rate = rate(count, received.last);
    outln!(
        "delivered  {:>12} msgs in {del_secs:>6.2} s: {:>12} msg/s {:>9.1} MB/s (expected {}, missing {})",
        group_digits(count as f64),
        group_digits(del_rate),
        del_rate * size / 1e6,
        group_digits(expected as f64),
        group_digits(expected.saturating_sub(count) as f64),
    )?;
    let ms = |q: f64| {
        received.latency.quantile(q).map_or_else(
            || "-".to_string(),
            |ns| format!("{:.3} ms", ns as f64 / 1e6),
        )
    };
    outln!(
        "latency    p50 {}  p99 {}  p99.9 {}  max {:.3} ms",
        ms(0.5),
        ms(0.99),
        ms(0.999),
        received.latency.max() as f64 / 1e6,
    )
}

/// A run id unlikely to repeat: process id and the clock.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{:x}{:08x}", std::process::id(), nanos & 0xffff_ffff)
}
