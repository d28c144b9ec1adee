//! Redis with the redis crate (tokio): pub/sub for streams and round trips,
//! streams (XADD, XREADGROUP) for acknowledged publishes and competing
//! consumers. Publishes go through a multiplexed connection, [`WINDOW`]
//! commands in flight (pipelined).

use std::time::Duration;

use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::io::tcp::TcpSettings;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, Value};

use super::{WINDOW, ctx_err, noted, round_trips, stop, windowed};
use crate::Ctx;
use crate::measure::{Measured, Tally, Timer};
use crate::workload::{Kind, Shape, Workload};

/// A client with `TCP_NODELAY` (as every other client here has; redis-rs
/// leaves Nagle's algorithm on by default, which holds pipelined commands
/// back for the peer's delayed acknowledgement).
fn client(addr: &str) -> Result<redis::Client, String> {
    let info = format!("redis://{addr}/")
        .into_connection_info()
        .map_err(ctx_err("Redis address"))?
        .set_tcp_settings(TcpSettings::default().set_nodelay(true));
    redis::Client::open(info).map_err(ctx_err("Redis address"))
}

/// A connection whose commands may block as long as they like.
async fn connection(addr: &str) -> Result<MultiplexedConnection, String> {
    let config = AsyncConnectionConfig::new().set_response_timeout(None);
    client(addr)?
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(ctx_err("connect to Redis"))
}

async fn info(addr: &str) -> Result<String, String> {
    let mut con = connection(addr).await?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut con)
        .await
        .map_err(ctx_err("INFO"))?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .trim()
        .to_string())
}

pub async fn version(ctx: &Ctx) -> Result<Vec<(String, String)>, String> {
    let mut out = vec![("Redis".to_string(), info(ctx.redis.addr()?).await?)];
    if let Some(durable) = &ctx.redis_durable {
        out.push((
            "Redis for workload 3 (appendonly yes, appendfsync always)".to_string(),
            info(durable).await?,
        ));
    }
    Ok(out)
}

/// Deletes every key this process's runs left in the Redis: those whose
/// names carry [`Ctx::name`]'s prefix, and liner's per-connection keys
/// (`lnr_connection:N:*`) whose sender is one of this process's peers. Best
/// effort.
pub async fn forget(ctx: &Ctx) {
    let Ok(addr) = ctx.redis.addr() else { return };
    let Ok(mut con) = connection(addr).await else {
        return;
    };
    let prefix = ctx.name("");
    let mut doomed = scan(&mut con, &format!("*{prefix}*")).await;
    for sender in scan(&mut con, "lnr_connection:*:sender").await {
        let name: Option<String> = redis::cmd("GET")
            .arg(&sender)
            .query_async(&mut con)
            .await
            .unwrap_or(None);
        if let (Some(name), Some(conn)) = (name, sender.strip_suffix(":sender"))
            && name.contains(&prefix)
        {
            doomed.extend(["sender", "mess_number", "messages"].map(|k| format!("{conn}:{k}")));
        }
    }
    for keys in doomed.chunks(512) {
        let _ = send(con.clone(), redis::Cmd::del(keys)).await;
    }
}

/// Every key matching `pattern` (SCAN, so the server is never blocked).
async fn scan(con: &mut MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut cursor = 0u64;
    loop {
        let Ok((next, keys)) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async::<(u64, Vec<String>)>(con)
            .await
        else {
            return found;
        };
        found.extend(keys);
        if next == 0 {
            return found;
        }
        cursor = next;
    }
}

pub async fn run(ctx: &Ctx, w: &Workload) -> Result<Measured, String> {
    match w.kind {
        Kind::Stream(Shape::Group(n)) => group(ctx, w, n).await,
        Kind::Stream(shape) => pubsub(ctx, w, shape).await,
        Kind::Acked => acked(ctx, w).await,
        Kind::RoundTrip => round_trip(ctx, w).await,
        Kind::Peer(_) | Kind::Cycles(_) => Err(super::NOT_PEER.to_string()),
    }
}

/// A subscriber to `channel` whose payloads go to `on_message`.
async fn subscriber(
    addr: &str,
    channel: &str,
    mut on_message: impl FnMut(&[u8]) + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let mut pubsub = client(addr)?
        .get_async_pubsub()
        .await
        .map_err(ctx_err("connect to Redis"))?;
    pubsub
        .subscribe(channel)
        .await
        .map_err(ctx_err("SUBSCRIBE"))?;
    Ok(tokio::spawn(async move {
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            on_message(msg.get_payload_bytes());
        }
    }))
}

/// `cmd` on a clone of `con`, its reply ignored.
async fn send(mut con: MultiplexedConnection, cmd: redis::Cmd) -> Result<(), String> {
    cmd.query_async::<Value>(&mut con)
        .await
        .map(|_| ())
        .map_err(ctx_err("Redis command"))
}

/// Publishes per pipeline: redis-rs writes and wakes per command, so single
/// commands in a window of 256 run in lockstep with the replies (about 10,000
/// a second here); pipelines are how Redis is driven for throughput.
const PIPELINE: u64 = 64;

/// `count` commands made by `cmd` from stamped payloads, in pipelines of
/// [`PIPELINE`], [`WINDOW`] commands in flight. With a `timer`, each pipeline's
/// reply is timed (one sample per pipeline: its commands share it). Returns
/// the commands sent.
async fn pipelined(
    con: &MultiplexedConnection,
    count: u64,
    limit: Duration,
    timer: Option<&mut Timer>,
    stamp: &mut crate::measure::Stamp,
    cmd: impl Fn(&[u8]) -> redis::Cmd,
) -> Result<u64, String> {
    let mut left = count;
    let pipelines = windowed(
        count.div_ceil(PIPELINE),
        WINDOW / PIPELINE as usize,
        limit,
        timer,
        || {
            let n = left.min(PIPELINE);
            left -= n;
            let mut pipe = redis::pipe();
            for _ in 0..n {
                pipe.add_command(cmd(stamp.next()));
            }
            let mut con = con.clone();
            async move {
                pipe.query_async::<Value>(&mut con)
                    .await
                    .map(|_| ())
                    .map_err(ctx_err("Redis pipeline"))
            }
        },
    )
    .await?;
    Ok((pipelines * PIPELINE).min(count))
}

fn publish(channel: &str, body: &[u8]) -> redis::Cmd {
    let mut cmd = redis::cmd("PUBLISH");
    cmd.arg(channel).arg(body);
    cmd
}

fn xadd(key: &str, body: &[u8]) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(key).arg("*").arg("d").arg(body);
    cmd
}

async fn pubsub(ctx: &Ctx, w: &Workload, shape: Shape) -> Result<Measured, String> {
    let addr = ctx.redis.addr()?;
    let channel = ctx.name(".stream");
    let tally = Tally::new();
    let mut receivers = Vec::new();
    for _ in 0..shape.receivers() {
        let mut rec = tally.recorder();
        receivers.push(subscriber(addr, &channel, move |p| rec.record(p)).await?);
    }
    let con = connection(addr).await?;
    let mut stamp = tally.stamp(w.size);
    tally.begin();
    let sent = if w.plain {
        windowed(w.count, 1, ctx.limit, None, || {
            let cmd = publish(&channel, stamp.next());
            let mut con = con.clone();
            async move {
                cmd.query_async::<Value>(&mut con)
                    .await
                    .map(|_| ())
                    .map_err(ctx_err("PUBLISH"))
            }
        })
        .await?
    } else {
        pipelined(&con, w.count, ctx.limit, None, &mut stamp, |body| {
            publish(&channel, body)
        })
        .await?
    };
    let expected = w.expected(sent);
    tally.settle(expected, ctx.limit).await;
    stop(receivers).await;
    Ok(noted(w, sent, tally.measured(expected, w.size)))
}

async fn group(ctx: &Ctx, w: &Workload, members: usize) -> Result<Measured, String> {
    let addr = ctx.redis.addr()?;
    let key = ctx.name(".group");
    let mut con = connection(addr).await?;
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("bench")
        .arg("$")
        .arg("MKSTREAM")
        .query_async::<Value>(&mut con)
        .await
        .map_err(ctx_err("XGROUP CREATE"))?;
    let tally = Tally::new();
    let mut receivers = Vec::new();
    for i in 0..members {
        let mut member = connection(addr).await?;
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg("bench")
            .arg(format!("member{i}"))
            .arg("COUNT")
            .arg(WINDOW * 4)
            .arg("BLOCK")
            .arg(100)
            .arg("NOACK")
            .arg("STREAMS")
            .arg(&key)
            .arg(">");
        let mut rec = tally.recorder();
        receivers.push(tokio::spawn(async move {
            while let Ok(reply) = read
                .query_async::<Option<redis::streams::StreamReadReply>>(&mut member)
                .await
            {
                for entry in reply.iter().flat_map(|r| &r.keys).flat_map(|k| &k.ids) {
                    if let Some(Value::BulkString(payload)) = entry.map.get("d") {
                        rec.record(payload);
                    }
                }
            }
        }));
    }
    let mut stamp = tally.stamp(w.size);
    tally.begin();
    let sent = pipelined(&con, w.count, ctx.limit, None, &mut stamp, |body| {
        xadd(&key, body)
    })
    .await;
    let expected = w.expected(*sent.as_ref().unwrap_or(&0));
    tally.settle(expected, ctx.limit).await;
    stop(receivers).await;
    let _ = send(con.clone(), redis::Cmd::del(&key)).await;
    let sent = sent?;
    Ok(noted(w, sent, tally.measured(expected, w.size)))
}

async fn acked(ctx: &Ctx, w: &Workload) -> Result<Measured, String> {
    let (addr, durable) = match &ctx.redis_durable {
        Some(a) => (a.as_str(), true),
        None => (ctx.redis.addr()?, false),
    };
    let key = ctx.name(".acked");
    let con = connection(addr).await?;
    let tally = Tally::new();
    let mut stamp = tally.stamp(w.size);
    let mut timer = Timer::new();
    let sent = pipelined(
        &con,
        w.count,
        ctx.limit,
        Some(&mut timer),
        &mut stamp,
        |body| xadd(&key, body),
    )
    .await;
    let _ = send(con.clone(), redis::Cmd::del(&key)).await;
    let sent = sent?;
    let mut m = timer.measured(w.count.div_ceil(PIPELINE), w.size);
    // The timer counted pipelines.
    (m.delivered, m.expected) = (sent, w.count);
    let m = noted(w, sent, m);
    Ok(if durable {
        m.with_note("a Redis of its own with appendonly yes, appendfsync always")
    } else {
        m.with_note("not durable: the machine's Redis keeps nothing on disk")
    })
}

async fn round_trip(ctx: &Ctx, w: &Workload) -> Result<Measured, String> {
    let addr = ctx.redis.addr()?;
    let (req, rep) = (ctx.name(".req"), ctx.name(".rep"));
    let responder = connection(addr).await?;
    let (tx, mut requests) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let listening = subscriber(addr, &req, move |p| {
        let _ = tx.send(p.to_vec());
    })
    .await?;
    let answering = {
        let rep = rep.clone();
        tokio::spawn(async move {
            while let Some(body) = requests.recv().await {
                if send(responder.clone(), publish(&rep, &body)).await.is_err() {
                    break;
                }
            }
        })
    };
    let (tx, mut replies) = tokio::sync::mpsc::unbounded_channel();
    let receiving = subscriber(addr, &rep, move |p| {
        let _ = tx.send(p.len());
    })
    .await?;
    let requester = connection(addr).await?;
    let measured = round_trips(w, async |body| {
        send(requester.clone(), publish(&req, &body)).await?;
        tokio::time::timeout(Duration::from_secs(10), replies.recv())
            .await
            .ok()
            .flatten()
            .ok_or_else(|| "no reply within 10 s".to_string())
    })
    .await;
    stop(vec![listening, answering, receiving]).await;
    measured
}
