//! `mqd` on its write-ahead log: killed at random moments under QoS 1 load it loses
//! nothing it acknowledged, and at its disk limit it refuses QoS 1 publishes with
//! `StorageFull` while everything else goes on.

mod support;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use mq_core::wire::*;
use support::{Got, Mqd, Next, Raw};

/// Small xorshift; the seed is printed so a failing run can be repeated with
/// `MQ_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const PRODUCERS: u64 = 2;
const WINDOW: usize = 32;
const SUBSCRIBER: &str = "crash-sub";
/// During the crash rounds, a daemon under load that answers nothing for this
/// long is gone, whether or not its connection closed: under Wine a killed
/// mqd.exe's connections may stay open (wineserver keeps the sockets).
/// Giving up early costs only load: the outbox and the session carry over.
const SILENT_DAEMON: Duration = Duration::from_secs(2);

fn topic(seq: u64) -> &'static str {
    if seq.is_multiple_of(2) {
        "crash.even"
    } else {
        "crash.odd"
    }
}

fn payload(producer: u64, seq: u64) -> [u8; 100] {
    let mut p = [0x5a; 100];
    p[..8].copy_from_slice(&producer.to_le_bytes());
    p[8..16].copy_from_slice(&seq.to_le_bytes());
    p
}

/// A publisher that survives restarts: it numbers its messages (dedup producer
/// id + sequence) and keeps every unacknowledged one to send again.
struct Producer {
    id: u64,
    next: u64,
    outbox: BTreeSet<u64>,
    acked: BTreeSet<u64>,
}

impl Producer {
    fn publish(&self, raw: &mut Raw, seq: u64) -> bool {
        raw.try_send(Frame::Publish(Publish {
            id: seq as u32,
            topic: topic(seq),
            qos: QoS::AtLeastOnce,
            dedup: Some(Dedup {
                producer: self.id,
                seq,
            }),
            meta: Meta::default(),
            fragment: None,
            payload: &payload(self.id, seq),
        }))
    }

    /// One connection's worth: resend the outbox, then keep `WINDOW` publishes
    /// outstanding (or, when `draining`, only wait for the outbox to empty) until
    /// the daemon goes away.
    fn run(mut self, addr: std::net::SocketAddr, draining: bool) -> Producer {
        let Some(mut raw) = Raw::try_connect(addr) else {
            return self;
        };
        if raw.hello_as(&format!("producer-{}", self.id), SessionMode::Clean) != Some(Got::Welcome)
        {
            return self;
        }
        for &seq in &self.outbox {
            if !self.publish(&mut raw, seq) {
                return self;
            }
        }
        loop {
            while !draining && self.outbox.len() < WINDOW {
                let seq = self.next;
                self.next += 1;
                self.outbox.insert(seq);
                if !self.publish(&mut raw, seq) {
                    return self;
                }
            }
            if draining && self.outbox.is_empty() {
                return self;
            }
            let silent = if draining {
                Duration::from_secs(10)
            } else {
                SILENT_DAEMON
            };
            match raw.next(silent) {
                Next::Frame(Got::PubAck(id)) => {
                    let seq = u64::from(id);
                    if self.outbox.remove(&seq) {
                        self.acked.insert(seq);
                    }
                }
                Next::Frame(Got::PubReject(id, reason)) => {
                    panic!("producer {}: publish {id} refused: {reason:?}", self.id)
                }
                Next::Frame(_) => {}
                Next::Idle | Next::Closed => return self,
            }
        }
    }
}

/// A persistent subscriber that acks everything and checks what it gets.
///
/// It cannot know when the broker has stored an ack, except this way: it
/// publishes a QoS 1 "checkpoint" after a run of acks on the same connection; the
/// broker handles frames in order and writes records in order, so the
/// checkpoint's `PubAck` means those acks are durable. A message whose ack is
/// durable must never come again.
#[derive(Default)]
struct Subscriber {
    seen: HashSet<(u64, u64)>,
    /// Highest sequence delivered per (producer, topic), for the order check.
    last: HashMap<(u64, &'static str), u64>,
    unconfirmed: Vec<(u64, u64)>,
    durable: HashSet<(u64, u64)>,
    next_checkpoint: u32,
    deliveries: u64,
    duplicates: u64,
    violations: Vec<String>,
}

impl Subscriber {
    fn checkpoint(&mut self, raw: &mut Raw, pending: &mut HashMap<u32, Vec<(u64, u64)>>) -> bool {
        if self.unconfirmed.is_empty() {
            return true;
        }
        self.next_checkpoint += 1;
        let id = self.next_checkpoint;
        pending.insert(id, std::mem::take(&mut self.unconfirmed));
        raw.try_send(Frame::Publish(Publish {
            id,
            topic: "checkpoint",
            qos: QoS::AtLeastOnce,
            dedup: None,
            meta: Meta::default(),
            fragment: None,
            payload: b"",
        }))
    }

    /// Until the daemon goes away, or (with `want`) until all of it has arrived
    /// or `deadline` passes.
    fn run(
        mut self,
        addr: std::net::SocketAddr,
        want: Option<&HashSet<(u64, u64)>>,
        deadline: Instant,
    ) -> Subscriber {
        let Some(mut raw) = Raw::try_connect(addr) else {
            return self;
        };
        if raw.hello_as(SUBSCRIBER, SessionMode::Resume) != Some(Got::Welcome) {
            return self;
        }
        if raw.session_present != Some(true) {
            self.violations
                .push("the persistent session was lost".to_string());
            return self;
        }
        // Re-assert the stored subscription: the broker delivers for it after that.
        if !raw.try_send(Frame::Subscribe(Subscribe {
            sub: 1,
            filter: "crash.*",
            group: None,
            start: Start::New,
            qos: QoS::AtLeastOnce,
            credit: 128,
        })) {
            return self;
        }
        // Acks sent on the last connection and not confirmed by a checkpoint
        // there are not known to be stored: they went to a daemon that is
        // gone. A checkpoint on this connection says nothing about them (it
        // would mark them stored while their messages may still come back),
        // so they are forgotten: their messages may arrive again.
        self.unconfirmed.clear();
        let mut pending: HashMap<u32, Vec<(u64, u64)>> = HashMap::new();
        let mut heard = Instant::now();
        loop {
            if let Some(want) = want
                && (want.is_subset(&self.seen) || Instant::now() > deadline)
            {
                return self;
            }
            let next = raw.next(Duration::from_millis(50));
            if let Next::Frame(_) = next {
                heard = Instant::now();
            }
            match next {
                Next::Frame(Got::Deliver {
                    tag,
                    topic,
                    payload,
                }) => {
                    self.deliveries += 1;
                    let producer = u64::from_le_bytes(payload[..8].try_into().unwrap());
                    let seq = u64::from_le_bytes(payload[8..16].try_into().unwrap());
                    let key = (producer, seq);
                    if topic != self::topic(seq) || payload[..] != self::payload(producer, seq) {
                        self.violations
                            .push(format!("{key:?} arrived damaged on {topic}"));
                    }
                    if !self.seen.insert(key) {
                        self.duplicates += 1;
                        if self.durable.contains(&key) {
                            self.violations
                                .push(format!("{key:?} redelivered after its ack was stored"));
                        }
                    } else {
                        let last = self.last.entry((producer, self::topic(seq))).or_insert(0);
                        if seq <= *last && *last > 0 {
                            self.violations
                                .push(format!("{key:?} after {} on {topic}: out of order", *last));
                        }
                        *last = (*last).max(seq);
                    }
                    if !raw.try_send(Frame::Ack(Ack { tag })) {
                        return self;
                    }
                    self.unconfirmed.push(key);
                    if self.unconfirmed.len() >= 16 && !self.checkpoint(&mut raw, &mut pending) {
                        return self;
                    }
                }
                Next::Frame(Got::PubAck(id)) => {
                    if let Some(keys) = pending.remove(&id) {
                        self.durable.extend(keys);
                    }
                }
                Next::Frame(Got::SubAck(1)) => {}
                Next::Frame(other) => {
                    self.violations.push(format!("subscriber got {other:?}"));
                }
                Next::Idle => {
                    if want.is_none() && heard.elapsed() > SILENT_DAEMON {
                        return self;
                    }
                    if !self.checkpoint(&mut raw, &mut pending) {
                        return self;
                    }
                }
                Next::Closed => return self,
            }
        }
    }
}

fn config(fsync: &str) -> String {
    format!(
        r#"
        [queue]
        max_messages = 1000000
        max_bytes = 1073741824
        [store]
        fsync = "{fsync}"
        fsync_interval_ms = 5
        fsync_every = 64
        segment_bytes = 65536
        compact_min_bytes = 262144
        "#
    )
}

#[test]
fn sigkill_under_qos1_load_loses_nothing_acknowledged() {
    let seed = std::env::var("MQ_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("MQ_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let rounds = 15;
    let policies = ["always", "every", "interval", "never"];

    // The persistent subscription exists before anything is published.
    let mqd = Mqd::start(&config("always"));
    let mut raw = Raw::connect(mqd.addr);
    assert_eq!(
        raw.hello_as(SUBSCRIBER, SessionMode::Resume),
        Some(Got::Welcome)
    );
    raw.subscribe(1, "crash.*", QoS::AtLeastOnce, 128);
    drop(raw);
    let mut dir = mqd.crash();

    let mut producers: Vec<Producer> = (1..=PRODUCERS)
        .map(|id| Producer {
            id,
            next: 1,
            outbox: BTreeSet::new(),
            acked: BTreeSet::new(),
        })
        .collect();
    let mut subscriber = Subscriber::default();
    let mut restart_ms = Vec::new();
    for round in 0..rounds {
        let t = Instant::now();
        let mqd = Mqd::start_in(dir, &config(policies[round % policies.len()]));
        restart_ms.push(t.elapsed().as_millis());
        let addr = mqd.addr;
        let far = Instant::now() + Duration::from_secs(3600);
        let sub = std::thread::spawn(move || subscriber.run(addr, None, far));
        let pubs: Vec<_> = producers
            .drain(..)
            .map(|p| std::thread::spawn(move || p.run(addr, false)))
            .collect();
        std::thread::sleep(Duration::from_millis(100 + rng.below(900)));
        let log = mqd.log();
        assert!(
            log.contains("recovered the log") && !log.contains("with losses"),
            "a crash may tear the tail, nothing else: {log}"
        );
        std::fs::write(mqd.dir.join(format!("mqd-{round}.log")), &log).unwrap();
        dir = mqd.crash();
        producers = pubs.into_iter().map(|h| h.join().unwrap()).collect();
        subscriber = sub.join().unwrap();
        assert!(
            subscriber.violations.is_empty(),
            "round {round}: {:?}",
            subscriber.violations
        );
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "taking too long"
        );
    }

    // Last start: publishers resend what is still unacknowledged, the subscriber
    // takes everything that was ever acknowledged.
    let mqd = Mqd::start_in(dir, &config("always"));
    let addr = mqd.addr;
    producers = producers
        .into_iter()
        .map(|p| std::thread::spawn(move || p.run(addr, true)))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let mut want = HashSet::new();
    for p in &producers {
        assert!(p.outbox.is_empty(), "producer {} never got its acks", p.id);
        want.extend(p.acked.iter().map(|&s| (p.id, s)));
    }
    let subscriber = subscriber.run(addr, Some(&want), Instant::now() + Duration::from_secs(20));
    let missing: Vec<_> = want.difference(&subscriber.seen).take(20).collect();
    let acked = want.len();
    println!(
        "{rounds} kills in {:?}: {acked} publishes acknowledged, {} deliveries, {} duplicates \
         (acks not yet stored), {} acks confirmed stored; restarts took {restart_ms:?} ms",
        started.elapsed(),
        subscriber.deliveries,
        subscriber.duplicates,
        subscriber.durable.len(),
    );
    assert!(
        subscriber.violations.is_empty(),
        "{:?}",
        subscriber.violations
    );
    assert!(
        missing.is_empty(),
        "acknowledged but never delivered (of {acked}): {missing:?}\n{}",
        mqd.log()
    );
    assert!(acked > 1000, "the load never got going: {acked} acked");
    let compacted = (0..rounds)
        .filter_map(|r| std::fs::read_to_string(mqd.dir.join(format!("mqd-{r}.log"))).ok())
        .any(|log| log.contains("compacted the log"));
    assert!(compacted, "compaction never ran");
}

#[test]
fn disk_limit_refuses_qos1_with_storage_full_and_keeps_serving() {
    let mqd = Mqd::start(
        r#"
        [queue]
        max_messages = 100000
        max_bytes = 1073741824
        [retention]
        max_messages = 0
        [store]
        max_bytes = 262144
        segment_bytes = 16384
        "#,
    );
    // A persistent subscriber that holds everything for now.
    let mut holder = Raw::connect(mqd.addr);
    assert_eq!(
        holder.hello_as("holder", SessionMode::Resume),
        Some(Got::Welcome)
    );
    holder.subscribe(1, "fill", QoS::AtLeastOnce, 1000);
    let mut publisher = Raw::connect(mqd.addr);
    assert_eq!(publisher.hello("filler", None), Got::Welcome);

    let body = [0x42u8; 1024];
    let mut id = 0;
    let mut accepted = loop {
        id += 1;
        publisher.publish(id, "fill", QoS::AtLeastOnce, &body);
        match publisher.recv(Duration::from_secs(5)) {
            Some(Got::PubAck(_)) => {}
            Some(Got::PubReject(_, Reason::StorageFull)) => break id - 1,
            other => panic!("publish {id}: {other:?}"),
        }
        assert!(id < 1000, "never full");
    };
    println!("{accepted} messages of 1 KiB filled 256 KiB");
    assert!(accepted >= 100, "{accepted}");
    // The disk use was at the limit (the compaction the full store asks for
    // may already have brought it down a little: it is not read here).
    assert!(mqd.log().contains("store full"), "{}", mqd.log());

    // Still serving: QoS 1 is refused, QoS 0 flows, subscriptions are taken.
    // (A compaction that the full store asked for may free a little room
    // first: a publish or two more can be stored before the next refusal.)
    loop {
        id += 1;
        publisher.publish(id, "fill", QoS::AtLeastOnce, &body);
        match publisher.recv(Duration::from_secs(5)) {
            Some(Got::PubReject(_, Reason::StorageFull)) => break,
            Some(Got::PubAck(_)) if id < accepted + 20 => accepted += 1,
            other => panic!("publish {id} while full: {other:?}"),
        }
    }
    let mut watcher = Raw::connect(mqd.addr);
    assert_eq!(watcher.hello("watcher", None), Got::Welcome);
    watcher.subscribe(1, "news", QoS::AtMostOnce, 10);
    publisher.publish(0, "news", QoS::AtMostOnce, b"still here");
    assert!(matches!(
        watcher.recv(Duration::from_secs(5)),
        Some(Got::Deliver { payload, .. }) if payload == b"still here"
    ));

    // Acks go through; once they are compacted away there is room again.
    let mut taken = 0;
    while taken < accepted {
        match holder.recv(Duration::from_secs(5)) {
            Some(Got::Deliver { tag, .. }) => {
                holder.send(Frame::Ack(Ack { tag }));
                taken += 1;
            }
            other => panic!("after {taken} deliveries: {other:?}"),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        id += 1;
        publisher.publish(id, "fill", QoS::AtLeastOnce, &body);
        match publisher.recv(Duration::from_secs(5)) {
            Some(Got::PubAck(_)) => break,
            Some(Got::PubReject(_, Reason::StorageFull)) => {
                assert!(
                    Instant::now() < deadline,
                    "still full after every message was acked: {}",
                    mqd.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            other => panic!("publish {id}: {other:?}"),
        }
    }
    // Room may come back before the acks are compacted away (when the
    // snapshot of the held messages fits under the limit); they are soon.
    while mqd.metric("mq_store_disk_bytes") >= 262144 {
        assert!(
            Instant::now() < deadline,
            "the acked messages were never compacted away: {}",
            mqd.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(mqd.metric("mq_store_compactions_total") >= 1);
    assert!(mqd.log().contains("store has room again"));
}
