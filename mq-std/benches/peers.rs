//! Two desktop peers (`mq_std::peer`) in one process over one SQLite
//! catalog: how long `MQ_BENCH_MESSAGES` (default 10,000) QoS 1 messages of
//! 100 bytes take from a publisher on peer a to a subscriber on peer b, which
//! acks each, with every publish acknowledged (stored at a) and every
//! message received once. Prints the figures; asserts nothing about time.
//!
//! `cargo bench -p mq-std --features peer --bench peers`

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mq_std::client::{PublishOptions, QoS, SubscribeOptions};
use mq_std::peer::{Peer, PeerOptions};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let n: u32 = std::env::var("MQ_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = std::env::temp_dir().join(format!("mq-bench-peers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let options = |id: &str| {
        let mut opts = PeerOptions::new(id);
        opts.node.catalog = format!("sqlite:{}", dir.join("mesh.db").display());
        opts.node.lease = Duration::from_secs(2);
        opts.node.heartbeat = Duration::from_millis(200);
        opts.data_dir = dir.join(id);
        opts
    };
    let a = Peer::start(options("a")).await.expect("a starts");
    let b = Peer::start(options("b")).await.expect("b starts");
    let publisher = a.connect("publisher").await.expect("publisher");
    let subscriber = b.connect("subscriber").await.expect("subscriber");
    let mut sub = subscriber
        .subscribe("bench.>", &SubscribeOptions::default())
        .await
        .expect("subscribe");
    // Linked once a probe gets through.
    loop {
        publisher
            .publish(
                "bench.probe",
                "probe",
                &PublishOptions::new(QoS::AtMostOnce),
            )
            .await
            .expect("probe");
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            if m.needs_ack() {
                let _ = m.ack();
            }
            break;
        }
    }
    let payload = vec![0x5a_u8; 100];
    let start = Instant::now();
    let receiving = tokio::spawn(async move {
        let mut seen = BTreeSet::new();
        while seen.len() < n as usize {
            let m = sub.next().await.expect("the subscription ends");
            if &m.payload[..] != b"probe" {
                seen.insert(u32::from_le_bytes(m.payload[..4].try_into().unwrap()));
            }
            if m.needs_ack() {
                m.ack().expect("ack");
            }
        }
        (start.elapsed(), seen.len())
    });
    let mut receipts = Vec::with_capacity(n as usize);
    for i in 0..n {
        let mut p = payload.clone();
        p[..4].copy_from_slice(&i.to_le_bytes());
        receipts.push(
            publisher
                .enqueue("bench.data", p, &PublishOptions::new(QoS::AtLeastOnce))
                .await
                .expect("queued"),
        );
    }
    for r in receipts {
        r.await.expect("acknowledged");
    }
    let acked = start.elapsed();
    let (received, distinct) = receiving.await.expect("the receiver");
    let rate = |d: Duration| f64::from(n) / d.as_secs_f64();
    println!("peers a -> b, {n} QoS 1 messages of 100 bytes (SQLite catalog, WAL fsync always)");
    println!(
        "  all acknowledged at a: {:>8.1} ms  {:>9.0} msg/s",
        acked.as_secs_f64() * 1e3,
        rate(acked)
    );
    println!(
        "  all received at b:     {:>8.1} ms  {:>9.0} msg/s  ({distinct} distinct)",
        received.as_secs_f64() * 1e3,
        rate(received)
    );
    drop((publisher, subscriber));
    let _ = a.stop().await;
    let _ = b.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
