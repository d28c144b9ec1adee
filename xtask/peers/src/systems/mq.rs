//! mq through a fresh `mqd`, with the async client as `mq bench` drives it:
//! publishes in a window of 256, subscriptions with a credit of 1,024; plain,
//! or over TLS (`mq-tls`: `mqd`'s `listen_tls`, certificates made for the run).

use std::sync::Arc;

use mq_std::client::{Client, ClientOptions, PublishOptions, QoS, SubscribeOptions, TlsOptions};

use super::{WINDOW, ctx_err, noted, round_trips, stop, window, windowed};
use crate::Ctx;
use crate::measure::{Measured, Tally, Timer};
use crate::mqd;
use crate::workload::{Kind, Shape, Workload};

const CREDIT: u32 = 1024;

pub async fn run(ctx: &Ctx, w: &Workload, tls: bool) -> Result<Measured, String> {
    let binary = ctx.mqd.as_ref().ok_or("no --mqd binary given")?;
    let (mqd, addr) = if tls {
        let (mqd, port, ca) = mqd::start_tls(binary)?;
        let mut opts = ClientOptions::new(format!("localhost:{port}"));
        opts.tls = Some(TlsOptions::new(ca));
        (mqd, opts)
    } else {
        let mqd = mqd::start(binary)?;
        let opts = ClientOptions::new(mqd.addr.to_string());
        (mqd, opts)
    };
    let addr = &addr;
    let result = match w.kind {
        Kind::Stream(shape) => stream(ctx, w, addr, shape).await,
        Kind::Acked => acked(ctx, w, addr).await,
        Kind::RoundTrip => round_trip(w, addr).await,
        Kind::Peer(_) | Kind::Cycles(_) => Err(super::NOT_PEER.to_string()),
    };
    drop(mqd);
    result
}

async fn connect(addr: &ClientOptions) -> Result<Client, String> {
    let mut opts = addr.clone();
    opts.client_id = ClientOptions::default().client_id;
    Client::connect(opts)
        .await
        .map_err(ctx_err("connect to mqd"))
}

async fn stream(
    ctx: &Ctx,
    w: &Workload,
    addr: &ClientOptions,
    shape: Shape,
) -> Result<Measured, String> {
    const TOPIC: &str = "bench.stream";
    let tally = Tally::new();
    let mut opts = match shape {
        Shape::Group(_) => SubscribeOptions::group("bench"),
        Shape::One | Shape::FanOut(_) => SubscribeOptions::default(),
    };
    opts.qos = QoS::AtMostOnce;
    opts.credit = CREDIT;
    let mut clients = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..shape.receivers() {
        let client = connect(addr).await?;
        let mut sub = client
            .subscribe(TOPIC, &opts)
            .await
            .map_err(ctx_err("subscribe"))?;
        let mut rec = tally.recorder();
        receivers.push(tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                rec.record(&msg.payload);
            }
        }));
        clients.push(client);
    }
    let publisher = connect(addr).await?;
    let popts = PublishOptions::new(QoS::AtMostOnce);
    let mut stamp = tally.stamp(w.size);
    tally.begin();
    let sent = windowed(w.count, window(w), ctx.limit, None, || {
        let body = stamp.bytes();
        let (client, opts) = (&publisher, &popts);
        async move {
            client
                .publish(TOPIC, body, opts)
                .await
                .map(|_| ())
                .map_err(ctx_err("publish"))
        }
    })
    .await?;
    let expected = w.expected(sent);
    tally.settle(expected, ctx.limit).await;
    stop(receivers).await;
    clients.push(publisher);
    close(clients).await;
    Ok(noted(w, sent, tally.measured(expected, w.size)))
}

async fn acked(ctx: &Ctx, w: &Workload, addr: &ClientOptions) -> Result<Measured, String> {
    let publisher = connect(addr).await?;
    let popts = PublishOptions::new(QoS::AtLeastOnce);
    let tally = Tally::new();
    let mut stamp = tally.stamp(w.size);
    let mut timer = Timer::new();
    let sent = windowed(w.count, WINDOW, ctx.limit, Some(&mut timer), || {
        let body = stamp.bytes();
        let (client, opts) = (&publisher, &popts);
        async move {
            client
                .publish("bench.acked", body, opts)
                .await
                .map(|_| ())
                .map_err(ctx_err("publish"))
        }
    })
    .await?;
    close(vec![publisher]).await;
    Ok(noted(w, sent, timer.measured(w.count, w.size)))
}

async fn round_trip(w: &Workload, addr: &ClientOptions) -> Result<Measured, String> {
    let qos0 = Arc::new(PublishOptions::new(QoS::AtMostOnce));
    let mut sub_opts = SubscribeOptions::default();
    sub_opts.qos = QoS::AtMostOnce;
    let responder = connect(addr).await?;
    let mut requests = responder
        .subscribe("bench.req", &sub_opts)
        .await
        .map_err(ctx_err("subscribe"))?;
    let answering = {
        let (responder, qos0) = (responder.clone(), Arc::clone(&qos0));
        tokio::spawn(async move {
            while let Some(msg) = requests.next().await {
                if responder
                    .publish("bench.rep", msg.payload.clone(), &qos0)
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    let requester = connect(addr).await?;
    let mut replies = requester
        .subscribe("bench.rep", &sub_opts)
        .await
        .map_err(ctx_err("subscribe"))?;
    let measured = round_trips(w, async |body| {
        requester
            .publish("bench.req", body, &qos0)
            .await
            .map_err(ctx_err("publish"))?;
        let reply = replies.next().await.ok_or("the reply subscription ended")?;
        Ok(reply.payload.len())
    })
    .await;
    answering.abort();
    close(vec![requester, responder]).await;
    measured
}

async fn close(clients: Vec<Client>) {
    for c in clients {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), c.close()).await;
    }
}
