//! MQTT brokers with rumqttc (MQTT 3.1.1): Mosquitto, and `mqd` serving MQTT
//! (`--mqtt`, a fresh one per run like mq's). QoS 0 streams, `$share`
//! subscriptions for competing consumers, QoS 1 for acknowledged publishes.
//! Each client's event loop runs in its own task.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};

use super::{WINDOW, ctx_err, noted, round_trips, stop, window, windowed};
use crate::Ctx;
use crate::measure::{Measured, Tally, Timer};
use crate::workload::{Kind, Shape, Workload};

/// Requests queued between a client handle and its event loop.
const CHANNEL: usize = 1024;

fn options(ctx: &Ctx, addr: &str, id: &str) -> Result<MqttOptions, String> {
    let (host, port) = addr
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("not HOST:PORT: {addr}"))?;
    let mut opts = MqttOptions::new(ctx.name(id), host, port);
    opts.set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(1 << 20, 1 << 20)
        .set_inflight(WINDOW as u16)
        .set_clean_session(true);
    Ok(opts)
}

/// A connected client whose subscription to `filter` (if any) is confirmed.
async fn connect(
    ctx: &Ctx,
    addr: &str,
    id: &str,
    filter: Option<&str>,
) -> Result<(AsyncClient, EventLoop), String> {
    let (client, mut events) = AsyncClient::new(options(ctx, addr, id)?, CHANNEL);
    // As every other client here (rumqttc leaves Nagle's algorithm on).
    events.network_options.set_tcp_nodelay(true);
    if let Some(filter) = filter {
        client
            .subscribe(filter, QoS::AtMostOnce)
            .await
            .map_err(ctx_err("subscribe"))?;
    }
    loop {
        match events.poll().await.map_err(ctx_err("MQTT connection"))? {
            Event::Incoming(Packet::ConnAck(_)) if filter.is_none() => break,
            Event::Incoming(Packet::SubAck(_)) => break,
            _ => {}
        }
    }
    Ok((client, events))
}

pub async fn version(ctx: &Ctx) -> Result<Vec<(String, String)>, String> {
    let addr = ctx.mqtt.addr()?;
    let (client, mut events) = connect(ctx, addr, "-version", Some("$SYS/broker/version")).await?;
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = events.poll().await? {
                return Ok::<_, rumqttc::ConnectionError>(
                    String::from_utf8_lossy(&p.payload).to_string(),
                );
            }
        }
    })
    .await;
    let _ = client.try_disconnect();
    let version = found
        .map_err(|_| "no answer on $SYS/broker/version".to_string())?
        .map_err(ctx_err("MQTT connection"))?;
    Ok(vec![("Mosquitto".to_string(), version)])
}

/// Runs `w` against Mosquitto.
pub async fn run(ctx: &Ctx, w: &Workload) -> Result<Measured, String> {
    let addr = ctx.mqtt.addr()?.to_string();
    run_at(ctx, w, &addr).await
}

/// Runs `w` against a fresh `mqd` serving MQTT.
pub async fn run_mqd(ctx: &Ctx, w: &Workload) -> Result<Measured, String> {
    let binary = ctx.mqd.as_ref().ok_or("no --mqd binary given")?;
    let mqd = crate::mqd::start_mqtt(binary)?;
    let addr = mqd.mqtt.ok_or("mqd serves no MQTT")?.to_string();
    let result = run_at(ctx, w, &addr).await;
    drop(mqd);
    match (result, w.kind) {
        (Ok(m), Kind::Acked) => Ok(m.with_note(
            "QoS 1: acknowledged once in mqd's write-ahead log (fsync always, group commit)",
        )),
        (result, _) => result,
    }
}

async fn run_at(ctx: &Ctx, w: &Workload, addr: &str) -> Result<Measured, String> {
    match w.kind {
        Kind::Stream(shape) => stream(ctx, addr, w, shape).await,
        Kind::Acked => acked(ctx, addr, w).await,
        Kind::RoundTrip => round_trip(ctx, addr, w).await,
        Kind::Peer(_) | Kind::Cycles(_) => Err(super::NOT_PEER.to_string()),
    }
}

/// Drives `events` in a task, handing every incoming publish to `on_publish`.
fn drive(
    mut events: EventLoop,
    mut on_publish: impl FnMut(rumqttc::Publish) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = event {
                on_publish(p);
            }
        }
    })
}

async fn stream(ctx: &Ctx, addr: &str, w: &Workload, shape: Shape) -> Result<Measured, String> {
    let topic = ctx.name("/stream");
    let filter = match shape {
        Shape::Group(_) => format!("$share/bench/{topic}"),
        Shape::One | Shape::FanOut(_) => topic.clone(),
    };
    let tally = Tally::new();
    let mut tasks = Vec::new();
    let mut clients = Vec::new();
    for i in 0..shape.receivers() {
        let (client, events) = connect(ctx, addr, &format!("-r{i}"), Some(&filter)).await?;
        let mut rec = tally.recorder();
        tasks.push(drive(events, move |p| rec.record(&p.payload)));
        clients.push(client);
    }
    let (publisher, events) = connect(ctx, addr, "-p", None).await?;
    tasks.push(drive(events, |_| {}));
    let mut stamp = tally.stamp(w.size);
    tally.begin();
    let sent = windowed(w.count, window(w), ctx.limit, None, || {
        let body = stamp.bytes();
        let (client, topic) = (&publisher, &topic);
        async move {
            client
                .publish_bytes(topic.as_str(), QoS::AtMostOnce, false, body)
                .await
                .map_err(ctx_err("publish"))
        }
    })
    .await?;
    let expected = w.expected(sent);
    tally.settle(expected, ctx.limit).await;
    clients.push(publisher);
    for c in &clients {
        let _ = c.try_disconnect();
    }
    stop(tasks).await;
    Ok(noted(w, sent, tally.measured(expected, w.size)))
}

/// QoS 1: the event loop counts the broker's `PubAck`s (in order on one
/// connection) and times each from its publish call; the client keeps
/// [`WINDOW`] publishes in flight.
async fn acked(ctx: &Ctx, addr: &str, w: &Workload) -> Result<Measured, String> {
    let topic = ctx.name("/acked");
    let (publisher, mut events) = connect(ctx, addr, "-p", None).await?;
    let timer = Arc::new(Mutex::new(Timer::new()));
    let sent_at: Arc<Mutex<VecDeque<u64>>> = Arc::default();
    let acked = Arc::new(AtomicU64::new(0));
    let task = {
        let (timer, sent_at, acked) =
            (Arc::clone(&timer), Arc::clone(&sent_at), Arc::clone(&acked));
        tokio::spawn(async move {
            while let Ok(event) = events.poll().await {
                if let Event::Incoming(Packet::PubAck(_)) = event {
                    let at = sent_at.lock().expect("lock").pop_front().unwrap_or(0);
                    timer.lock().expect("lock").answered(at);
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let tally = Tally::new();
    let mut stamp = tally.stamp(w.size);
    let end = Instant::now() + ctx.limit;
    let mut sent = 0;
    while sent < w.count && Instant::now() < end {
        let at = timer.lock().expect("lock").now();
        sent_at.lock().expect("lock").push_back(at);
        publisher
            .publish_bytes(topic.as_str(), QoS::AtLeastOnce, false, stamp.bytes())
            .await
            .map_err(ctx_err("publish"))?;
        sent += 1;
    }
    let give_up = Instant::now() + ctx.limit;
    while acked.load(Ordering::Relaxed) < sent && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let _ = publisher.try_disconnect();
    stop(vec![task]).await;
    let timer = std::mem::replace(&mut *timer.lock().expect("lock"), Timer::new());
    Ok(noted(w, sent, timer.measured(w.count, w.size)))
}

async fn round_trip(ctx: &Ctx, addr: &str, w: &Workload) -> Result<Measured, String> {
    let req = ctx.name("/req");
    let rep = ctx.name("/rep");
    let (responder, events) = connect(ctx, addr, "-responder", Some(&req)).await?;
    let answering = {
        let (responder, rep) = (responder.clone(), rep.clone());
        drive(events, move |p| {
            let _ = responder.try_publish(rep.as_str(), QoS::AtMostOnce, false, p.payload);
        })
    };
    let (requester, events) = connect(ctx, addr, "-requester", Some(&rep)).await?;
    let (tx, mut replies) = tokio::sync::mpsc::unbounded_channel();
    let receiving = drive(events, move |p| {
        let _ = tx.send(p.payload.len());
    });
    let measured = round_trips(w, async |body| {
        requester
            .publish_bytes(req.as_str(), QoS::AtMostOnce, false, body)
            .await
            .map_err(ctx_err("publish"))?;
        replies
            .recv()
            .await
            .ok_or_else(|| "the requester's connection ended".to_string())
    })
    .await;
    let _ = requester.try_disconnect();
    let _ = responder.try_disconnect();
    stop(vec![answering, receiving]).await;
    measured
}
