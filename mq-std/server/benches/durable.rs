//! Durable publishing end to end: an in-process server (`mq_server::server`) on the
//! write-ahead log in a temporary directory, and one publisher over TCP keeping a
//! window of unacknowledged QoS 1 publishes. A publish's latency runs from its
//! frame being written to the socket to its `PubAck` being read (so it includes
//! waiting behind the window). Prints throughput and p50/p99 latency per fsync
//! policy and payload size.
//!
//! `cargo bench -p mq-server --bench durable [-- SECONDS_PER_RUN [WINDOW]]`
//!
//! There are no subscribers: every message is written once and retained (the
//! default retention keeps the last 1000 per topic); the log compacts when it
//! reaches the default 64 MiB.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mq_core::framing::stream::{self, Decoded, StreamDecoder};
use mq_core::wire::*;
use mq_server::server::{self, ServerOptions};
use mq_server::wal::{FsyncPolicy, Wal, WalOptions};

struct Figures {
    messages: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    syncs: u64,
    compactions: u64,
}

fn encode(frame: &Frame<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + stream::framed_len(frame), 0);
    let n = stream::encode_frame(frame, u32::MAX, &mut out[start..]).unwrap();
    out.truncate(start + n);
}

/// Reads until one frame is whole; hands it to `f`.
fn read_frames(s: &mut TcpStream, buf: &mut Vec<u8>, mut f: impl FnMut(Frame<'_>)) {
    let dec = StreamDecoder::new(u32::MAX);
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        let mut pos = 0;
        while let Ok(Decoded::Frame { frame, consumed }) = dec.decode(&buf[pos..]) {
            f(frame);
            pos += consumed;
        }
        buf.drain(..pos);
        if pos > 0 {
            return;
        }
    }
}

fn publish_run(addr: SocketAddr, payload: usize, window: usize, run: Duration) -> Figures {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut out = Vec::new();
    encode(
        &Frame::Hello(Hello {
            version: PROTOCOL_VERSION,
            client_id: "bench",
            session: SessionMode::Clean,
            token: None,
            limits: Limits {
                max_frame: 1 << 20,
                credit: 64,
                keepalive_ms: 0,
            },
        }),
        &mut out,
    );
    s.write_all(&out).unwrap();
    let mut buf = Vec::new();
    read_frames(&mut s, &mut buf, |f| {
        assert!(matches!(f, Frame::Welcome(_)))
    });

    let body = vec![0x5au8; payload];
    // Send time per publish id (ids cycle through the window's slots).
    let mut sent_at = vec![Instant::now(); window];
    let mut latencies = Vec::new();
    let mut next_id = 0u32;
    let mut outstanding = 0usize;
    let started = Instant::now();
    let mut stopping = false;
    loop {
        if !stopping && started.elapsed() >= run {
            stopping = true;
        }
        out.clear();
        while !stopping && outstanding < window {
            let slot = next_id as usize % window;
            encode(
                &Frame::Publish(Publish {
                    id: next_id,
                    topic: "bench.durable",
                    qos: QoS::AtLeastOnce,
                    dedup: None,
                    meta: Meta::default(),
                    fragment: None,
                    payload: &body,
                }),
                &mut out,
            );
            sent_at[slot] = Instant::now();
            next_id = next_id.wrapping_add(1);
            outstanding += 1;
        }
        if !out.is_empty() {
            s.write_all(&out).unwrap();
        }
        if outstanding == 0 {
            break;
        }
        read_frames(&mut s, &mut buf, |f| match f {
            Frame::PubAck(a) => {
                latencies.push(sent_at[a.id as usize % window].elapsed());
                outstanding -= 1;
            }
            other => panic!("unexpected {other:?}"),
        });
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures {
        messages: latencies.len() as u64,
        elapsed,
        p50: at(0.50),
        p99: at(0.99),
        syncs: 0,
        compactions: 0,
    }
}

fn one(fsync: FsyncPolicy, payload: usize, window: usize, run: Duration) -> Figures {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("mq-bench-durable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let wal = Wal::open(
        &dir,
        WalOptions {
            fsync,
            ..WalOptions::default()
        },
    )
    .unwrap();
    let handle = rt
        .block_on(server::spawn(ServerOptions {
            store: Box::new(wal),
            ..ServerOptions::default()
        }))
        .unwrap();
    let addr = handle.local_addr();
    let control = handle.control();
    let mut f = publish_run(addr, payload, window, run);
    let m = rt.block_on(control.store_metrics());
    f.syncs = m.syncs.load(std::sync::atomic::Ordering::Relaxed);
    f.compactions = m.compactions.load(std::sync::atomic::Ordering::Relaxed);
    rt.block_on(handle.shutdown()).unwrap();
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
    f
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let secs: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3.0);
    let window: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let run = Duration::from_secs_f64(secs);
    let policies = [
        ("always", FsyncPolicy::Always),
        ("every 1000", FsyncPolicy::EveryRecords(1000)),
        (
            "interval 10ms",
            FsyncPolicy::Interval(Duration::from_millis(10)),
        ),
        ("never", FsyncPolicy::Never),
    ];
    println!("window {window} QoS 1 publishes, {secs} s per run, one publisher over TCP");
    println!("| fsync | payload | msg/s | MB/s | p50 | p99 | fsyncs | msgs/fsync | compactions |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for payload in [100usize, 1024] {
        for (name, policy) in policies {
            let f = one(policy, payload, window, run);
            let rate = f.messages as f64 / f.elapsed.as_secs_f64();
            println!(
                "| {name} | {payload} B | {rate:.0} | {:.1} | {:.2} ms | {:.2} ms | {} | {} | {} |",
                rate * payload as f64 / 1e6,
                f.p50.as_secs_f64() * 1e3,
                f.p99.as_secs_f64() * 1e3,
                f.syncs,
                if f.syncs > 0 {
                    format!("{:.0}", f.messages as f64 / f.syncs as f64)
                } else {
                    "-".into()
                },
                f.compactions,
            );
        }
    }
}
