//! liner's patterns between desktop peers, with no daemon: each peer is a
//! mesh node in its program's process (`mq_std::peer`), and the programs'
//! ordinary clients talk to their own peer, which talks directly to the
//! others. All peers of an example share one directory (the SQLite catalog
//! and their logs).
//!
//! - `peers patterns [DIR]`: three peers (a, b, c) in this process, with a
//!   client each (alice, bob, carol): one-to-one (send to bob), one-to-one-
//!   of-many (a group), one-to-many (fan-out), many-to-many, a topic
//!   subscription with a wildcard, producer-consumer (acks, a retry).
//! - `peers inbox [DIR]` and, in another process, `peers send [DIR]`: two
//!   programs, each with its own peer, one-to-one: `send` sends three
//!   messages to bob's inbox, `inbox` prints them and confirms.
//!
//! `cargo run -p mq-examples --bin peers -- patterns`

use std::collections::BTreeMap;
use std::time::Duration;

use mq_examples::peers::{PROBE, client, directory, next, next_within, start, until_linked};
use mq_examples::text;
use mq_std::blocking::{Client, PublishOptions, QoS, SubscribeOptions, Subscription};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let dir = directory();
    std::fs::create_dir_all(&dir)?;
    let runtime = tokio::runtime::Runtime::new()?;
    match mode.as_str() {
        "patterns" => {
            let peers = [
                start(&runtime, &dir, "a")?,
                start(&runtime, &dir, "b")?,
                start(&runtime, &dir, "c")?,
            ];
            let alice = client(&peers[0], "alice")?;
            let bob = client(&peers[1], "bob")?;
            let carol = client(&peers[2], "carol")?;
            patterns(&alice, &bob, &carol)?;
            for peer in peers {
                runtime.block_on(peer.stop())?;
            }
        }
        "inbox" => {
            let peer = start(&runtime, &dir, "desk-bob")?;
            inbox(&client(&peer, "bob")?)?;
            runtime.block_on(peer.stop())?;
        }
        "send" => {
            let peer = start(&runtime, &dir, "desk-alice")?;
            send(&client(&peer, "alice")?)?;
            runtime.block_on(peer.stop())?;
        }
        _ => return Err("usage: peers patterns|inbox|send [DIR]".into()),
    }
    Ok(())
}

fn subscribe(c: &Client, filter: &str, group: Option<&str>, credit: u32) -> Result<Subscription> {
    let mut opts = SubscribeOptions::default();
    opts.group = group.map(str::to_owned);
    if credit > 0 {
        opts.credit = credit;
    }
    Ok(c.subscribe(filter, &opts)?)
}

fn publish(c: &Client, topic: &str, payload: &str) -> Result<()> {
    c.publish(topic, payload.to_owned(), &PublishOptions::default())?;
    Ok(())
}

fn patterns(alice: &Client, bob: &Client, carol: &Client) -> Result<()> {
    // One-to-one (liner's send_to): to bob's inbox, on peer b.
    let inbox = subscribe(bob, "inbox.bob", None, 0)?;
    until_linked(alice, "inbox.bob", &[&inbox], false)?;
    for i in 1..=3 {
        publish(alice, "inbox.bob", &format!("hello {i}"))?;
    }
    for _ in 1..=3 {
        let m = next(&inbox)?;
        println!("one-to-one: bob got {}", text(&m));
        m.ack()?;
    }

    // One-to-one-of-many: workers on b and c share alice's tasks.
    let workers = [
        subscribe(bob, "tasks", Some("workers"), 0)?,
        subscribe(carol, "tasks", Some("workers"), 0)?,
    ];
    until_linked(alice, "tasks", &[&workers[0], &workers[1]], true)?;
    for i in 1..=6 {
        publish(alice, "tasks", &format!("task {i}"))?;
    }
    let mut done = BTreeMap::new();
    while done.len() < 6 {
        let Some(m) = workers
            .iter()
            .find_map(|w| next_within(w, Duration::from_millis(50)))
        else {
            continue;
        };
        *done.entry(text(&m)).or_insert(0) += 1;
        m.ack()?;
    }
    let once = done.values().all(|n| *n == 1);
    println!(
        "one-to-one-of-many: {} tasks, each to one worker: {once}",
        done.len()
    );

    // One-to-many: carol's headlines to every subscriber, on every peer.
    let readers = [
        ("alice", subscribe(alice, "news", None, 0)?),
        ("bob", subscribe(bob, "news", None, 0)?),
        ("carol", subscribe(carol, "news", None, 0)?),
    ];
    until_linked(carol, "news", &[&readers[0].1, &readers[1].1], false)?;
    publish(carol, "news", "headline 1")?;
    publish(carol, "news", "headline 2")?;
    for (name, sub) in &readers {
        for _ in 0..2 {
            let m = next(sub)?;
            println!("one-to-many: {name} got {}", text(&m));
            m.ack()?;
        }
    }

    // Many-to-many: each peer publishes a reading; alice and bob read all.
    let all = [
        ("alice", subscribe(alice, "sensors.>", None, 0)?),
        ("bob", subscribe(bob, "sensors.>", None, 0)?),
    ];
    until_linked(alice, "sensors.probe", &[&all[1].1], false)?;
    until_linked(bob, "sensors.probe", &[&all[0].1], false)?;
    until_linked(carol, "sensors.probe", &[&all[0].1, &all[1].1], false)?;
    for (c, name, value) in [(alice, "a", "20"), (bob, "b", "21"), (carol, "c", "22")] {
        publish(c, &format!("sensors.{name}.temp"), value)?;
    }
    for (name, sub) in &all {
        let mut got = Vec::new();
        for _ in 0..3 {
            let m = next(sub)?;
            got.push(format!("{}={}", m.topic, text(&m)));
            m.ack()?;
        }
        got.sort();
        println!("many-to-many: {name} got {}", got.join(" "));
    }

    // A topic subscription with a wildcard: bob wants created orders only.
    let created = subscribe(bob, "orders.*.created", None, 0)?;
    until_linked(alice, "orders.probe.created", &[&created], false)?;
    publish(alice, "orders.eu.created", "o1")?;
    publish(alice, "orders.eu.cancelled", "o2")?;
    publish(alice, "orders.us.created", "o3")?;
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = next(&created)?;
        got.push(format!("{} {}", m.topic, text(&m)));
        m.ack()?;
    }
    got.sort();
    for line in got {
        println!("topic: bob got {line}");
    }

    // Producer-consumer: bob and carol take one job at a time (credit 1)
    // and ack it when done; job 2 fails once, is nacked and done again.
    let consumers = [
        subscribe(bob, "jobs", Some("consumers"), 1)?,
        subscribe(carol, "jobs", Some("consumers"), 1)?,
    ];
    until_linked(alice, "jobs", &[&consumers[0], &consumers[1]], true)?;
    for job in 1..=4 {
        publish(alice, "jobs", &format!("{job}"))?;
    }
    let mut attempts = BTreeMap::new();
    let mut retried = 0;
    while attempts.len() < 4 {
        let Some(m) = consumers
            .iter()
            .find_map(|w| next_within(w, Duration::from_millis(50)))
        else {
            continue;
        };
        let job: u32 = text(&m).parse()?;
        if job == 2 && retried == 0 {
            retried += 1;
            m.nack(true)?;
        } else {
            attempts.insert(job, m.attempt);
            m.ack()?;
        }
    }
    for (job, attempt) in &attempts {
        println!("producer-consumer: job {job} done on attempt {attempt}");
    }
    println!(
        "producer-consumer: {} jobs done, {retried} retried",
        attempts.len()
    );
    Ok(())
}

/// Bob's side of the two-process example: answers alice's hellos (so that
/// she knows his interest reached her peer), prints her three messages and
/// confirms them.
fn inbox(bob: &Client) -> Result<()> {
    let hello = subscribe(bob, "hello.bob", None, 0)?;
    let inbox = subscribe(bob, "inbox.bob", None, 0)?;
    let mut got = 0;
    while got < 3 {
        while let Ok(m) = hello.try_recv() {
            let reply = PublishOptions::new(QoS::AtMostOnce);
            bob.publish("hello.alice", "ready", &reply)?;
            drop(m);
        }
        if let Some(m) = next_within(&inbox, Duration::from_millis(100)) {
            println!("received: {}", text(&m));
            m.ack()?;
            got += 1;
        }
    }
    publish(bob, "hello.alice", "done")?;
    Ok(())
}

/// Alice's side: says hello until bob's peer answers, sends three messages
/// to bob's inbox, waits for his confirmation.
fn send(alice: &Client) -> Result<()> {
    let replies = subscribe(alice, "hello.alice", None, 0)?;
    let mut ready = false;
    for _ in 0..300 {
        let probe = PublishOptions::new(QoS::AtMostOnce);
        alice.publish("hello.bob", PROBE, &probe)?;
        if replies.recv_timeout(Duration::from_millis(200)).is_ok() {
            ready = true;
            break;
        }
    }
    if !ready {
        return Err("bob's peer did not answer".into());
    }
    for i in 1..=3 {
        let message = format!("message {i}");
        publish(alice, "inbox.bob", &message)?;
        println!("sent: {message}");
    }
    loop {
        let m = next(&replies)?;
        if text(&m) == "done" {
            m.ack()?;
            println!("bob confirmed");
            return Ok(());
        }
    }
}
