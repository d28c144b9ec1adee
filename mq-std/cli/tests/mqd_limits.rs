//! `mqd` under pressure: memory stays bounded with a consumer that never reads, and
//! a graceful stop during a QoS 1 load (SIGTERM, Ctrl-C, on Windows the console
//! closing) exits 0 without losing an acknowledged message.

mod support;

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use mq_core::wire::*;
use support::{Got, Mqd, Raw};

#[test]
fn slow_consumer_does_not_grow_memory_past_the_bound() {
    // No keepalive: the silent subscriber must stay connected however long a
    // loaded machine takes to push 400 MB (a keepalive timeout would end its
    // subscription and with it the drops this test counts).
    let mqd = Mqd::start(
        r#"
        keepalive_ms = 0
        [queue]
        max_messages = 1000
        overflow = "drop-oldest"
        [retention]
        max_messages = 100
        "#,
    );
    // A subscriber with a small credit that never reads its socket.
    let mut slow = Raw::connect(mqd.addr);
    assert_eq!(slow.hello("slow", None), Got::Welcome);
    slow.subscribe(1, "load", QoS::AtMostOnce, 10);

    let mut publisher = Raw::connect(mqd.addr);
    assert_eq!(publisher.hello("fast", None), Got::Welcome);
    let payload = vec![0xabu8; 4096];
    // Warm up, then measure from there.
    for i in 0..2_000 {
        publisher.publish(i, "load", QoS::AtMostOnce, &payload);
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = mqd.rss_kib();
    let mut peak = before;
    // 100,000 messages of 4 KiB: 400 MB through a queue bounded at 1000.
    for i in 0..100_000u32 {
        publisher.publish(i, "load", QoS::AtMostOnce, &payload);
        if i % 10_000 == 0 {
            peak = peak.max(mqd.rss_kib());
        }
    }
    // Let the broker take in what is still in flight, via a round trip.
    publisher.publish(1, "load", QoS::AtLeastOnce, &payload);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match publisher.recv(Duration::from_secs(1)) {
            Some(Got::PubAck(1)) => break,
            _ => assert!(Instant::now() < deadline, "publisher never got its ack"),
        }
    }
    peak = peak.max(mqd.rss_kib());
    let dropped = mqd.metric("mq_dropped_total");
    println!("rss before {before} KiB, peak {peak} KiB, dropped {dropped}");
    // Bound: 1000 queued + 100 retained messages of 4 KiB, connection buffers
    // (4 MiB each by default), allocator slack.
    assert!(
        peak < before + 48 * 1024,
        "memory grew from {before} KiB to {peak} KiB"
    );
    assert!(dropped > 90_000, "drop-oldest dropped only {dropped}");
}

#[cfg(unix)]
#[test]
fn sigterm_under_load_exits_cleanly_and_loses_nothing_acknowledged() {
    stop_under_load(Mqd::terminate);
}

#[test]
fn ctrl_c_under_load_exits_cleanly_and_loses_nothing_acknowledged() {
    stop_under_load(Mqd::interrupt);
}

#[cfg(windows)]
#[test]
fn console_close_under_load_exits_cleanly_and_loses_nothing_acknowledged() {
    stop_under_load(Mqd::close_console);
}

/// Stops `mqd` with `stop` while a producer keeps 64 QoS 1 publishes in
/// flight: it must exit 0, and every publish it acknowledged must have reached
/// the subscriber.
fn stop_under_load(stop: fn(&mut Mqd) -> ExitStatus) {
    let mut mqd = Mqd::start("");
    let addr = mqd.addr;

    let mut sub = Raw::connect(addr);
    assert_eq!(sub.hello("sub", None), Got::Welcome);
    sub.subscribe(1, "orders", QoS::AtLeastOnce, 256);
    let subscriber = std::thread::spawn(move || {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(g) = sub.recv(Duration::from_secs(20)) {
            if let Got::Deliver { tag, payload, .. } = g {
                seen.insert(u32::from_le_bytes(payload[..4].try_into().unwrap()));
                sub.send(Frame::Ack(Ack { tag }));
            }
        }
        seen
    });

    let mut publisher = Raw::connect(addr);
    assert_eq!(publisher.hello("pub", None), Got::Welcome);
    let producer = std::thread::spawn(move || {
        let (mut acked, mut rejected) = (std::collections::BTreeSet::new(), 0u32);
        let (mut next, mut outstanding) = (1u32, 0u32);
        let mut stopped = false;
        loop {
            while !stopped && outstanding < 64 {
                publisher.publish(next, "orders", QoS::AtLeastOnce, &next.to_le_bytes());
                next += 1;
                outstanding += 1;
            }
            match publisher.recv(Duration::from_secs(20)) {
                Some(Got::PubAck(id)) => {
                    acked.insert(id);
                    outstanding -= 1;
                }
                Some(Got::PubReject(_, Reason::ShuttingDown)) => {
                    rejected += 1;
                    outstanding -= 1;
                    stopped = true;
                }
                Some(_) => {}
                None => return (acked, rejected),
            }
        }
    });

    std::thread::sleep(Duration::from_millis(800));
    let status = stop(&mut mqd);
    assert!(status.success(), "mqd exited with {status:?}");
    let (acked, rejected) = producer.join().unwrap();
    let seen = subscriber.join().unwrap();
    println!(
        "{} acked, {rejected} refused while shutting down, {} delivered",
        acked.len(),
        seen.len()
    );
    assert!(acked.len() > 100, "the load never got going");
    let lost: Vec<_> = acked.difference(&seen).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages never delivered: {lost:?}",
        lost.len()
    );
}
