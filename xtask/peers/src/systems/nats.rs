//! NATS with async-nats: core pub/sub, queue groups and request-reply, and
//! JetStream (a file-storage stream made for the run and deleted after it) for
//! acknowledged publishes. The same client runs the core workloads against
//! `mqd --nats` too (`mq-nats`).

use async_nats::jetstream::{self, stream};
use futures::StreamExt;

use super::{WINDOW, ctx_err, noted, round_trips, stop, window, windowed};
use crate::Ctx;
use crate::measure::{Measured, Tally, Timer};
use crate::workload::{Kind, Shape, Workload};

async fn connect(addr: &str) -> Result<async_nats::Client, String> {
    async_nats::ConnectOptions::new()
        .connect(addr)
        .await
        .map_err(ctx_err("connect to NATS"))
}

pub async fn version(ctx: &Ctx) -> Result<Vec<(String, String)>, String> {
    let client = connect(ctx.nats.addr()?).await?;
    Ok(vec![(
        "nats-server".to_string(),
        client.server_info().version,
    )])
}

pub async fn run(ctx: &Ctx, w: &Workload) -> Result<Measured, String> {
    let addr = ctx.nats.addr()?;
    match w.kind {
        Kind::Stream(shape) => stream(ctx, addr, w, shape).await,
        Kind::Acked => acked(ctx, addr, w).await,
        Kind::RoundTrip => round_trip(ctx, addr, w).await,
        Kind::Peer(_) | Kind::Cycles(_) => Err(super::NOT_PEER.to_string()),
    }
}

/// The core workloads against a fresh `mqd` serving NATS (`--nats`).
pub async fn run_mqd(ctx: &Ctx, w: &Workload) -> Result<Measured, String> {
    let binary = ctx.mqd.as_ref().ok_or("no --mqd binary given")?;
    let mqd = crate::mqd::start_nats(binary)?;
    let addr = mqd.nats.ok_or("mqd serves no NATS")?.to_string();
    let result = match w.kind {
        Kind::Stream(shape) => stream(ctx, &addr, w, shape).await,
        Kind::RoundTrip => round_trip(ctx, &addr, w).await,
        Kind::Acked => Err("mq-nats has no acknowledged workload".into()),
        Kind::Peer(_) | Kind::Cycles(_) => Err(super::NOT_PEER.to_string()),
    };
    drop(mqd);
    result
}

async fn stream(ctx: &Ctx, addr: &str, w: &Workload, shape: Shape) -> Result<Measured, String> {
    let subject = ctx.name(".stream");
    let tally = Tally::new();
    let mut receivers = Vec::new();
    for _ in 0..shape.receivers() {
        let client = connect(addr).await?;
        let mut sub = match shape {
            Shape::Group(_) => {
                client
                    .queue_subscribe(subject.clone(), "bench".into())
                    .await
            }
            Shape::One | Shape::FanOut(_) => client.subscribe(subject.clone()).await,
        }
        .map_err(ctx_err("subscribe"))?;
        client.flush().await.map_err(ctx_err("flush"))?;
        let mut rec = tally.recorder();
        receivers.push(tokio::spawn(async move {
            let _client = client;
            while let Some(msg) = sub.next().await {
                rec.record(&msg.payload);
            }
        }));
    }
    let publisher = connect(addr).await?;
    let mut stamp = tally.stamp(w.size);
    tally.begin();
    let sent = windowed(w.count, window(w), ctx.limit, None, || {
        let body = stamp.bytes();
        let (client, subject) = (&publisher, &subject);
        async move {
            client
                .publish(subject.clone(), body)
                .await
                .map_err(ctx_err("publish"))
        }
    })
    .await?;
    publisher.flush().await.map_err(ctx_err("flush"))?;
    let expected = w.expected(sent);
    tally.settle(expected, ctx.limit).await;
    stop(receivers).await;
    Ok(noted(w, sent, tally.measured(expected, w.size)))
}

async fn acked(ctx: &Ctx, addr: &str, w: &Workload) -> Result<Measured, String> {
    let client = connect(addr).await?;
    let js = jetstream::new(client);
    let name = ctx.name("acked");
    let subject = format!("{name}.s");
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![subject.clone()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(ctx_err("create the stream"))?;
    let tally = Tally::new();
    let mut stamp = tally.stamp(w.size);
    let mut timer = Timer::new();
    let result = windowed(w.count, WINDOW, ctx.limit, Some(&mut timer), || {
        let body = stamp.bytes();
        let (js, subject) = (&js, &subject);
        async move {
            js.publish(subject.clone(), body)
                .await
                .map_err(ctx_err("publish"))?
                .await
                .map(|_| ())
                .map_err(ctx_err("publish ack"))
        }
    })
    .await;
    let _ = js.delete_stream(&name).await;
    let sent = result?;
    Ok(noted(w, sent, timer.measured(w.count, w.size)).with_note(
        "stream on file storage; NATS acknowledges once written, \
         before fsync (the server's default)",
    ))
}

async fn round_trip(ctx: &Ctx, addr: &str, w: &Workload) -> Result<Measured, String> {
    let subject = ctx.name(".req");
    let responder = connect(addr).await?;
    let mut requests = responder
        .subscribe(subject.clone())
        .await
        .map_err(ctx_err("subscribe"))?;
    responder.flush().await.map_err(ctx_err("flush"))?;
    let answering = tokio::spawn(async move {
        while let Some(msg) = requests.next().await {
            if let Some(reply) = msg.reply
                && responder.publish(reply, msg.payload).await.is_err()
            {
                break;
            }
        }
    });
    let requester = connect(addr).await?;
    let measured = round_trips(w, async |body| {
        let reply = requester
            .request(subject.clone(), body)
            .await
            .map_err(ctx_err("request"))?;
        Ok(reply.payload.len())
    })
    .await;
    answering.abort();
    measured
}
