//! Deterministic simulation of NATS clients through the broker's NATS codec:
//! four clients on a virtual clock SUB (with and without queue groups),
//! UNSUB (now, or after N messages), PUB (with reply subjects, header blocks,
//! to subjects some filters match and some do not), a client that asked for
//! no echo among them, their bytes handed to the broker in random pieces.
//!
//! Asserted for every seed, against a model of the subscriptions: every
//! message reaches every matching plain subscription once, in order, with
//! its reply subject and headers; each queue group gets it exactly once; an
//! `UNSUB sid max` subscription gets at most `max` in all and then nothing;
//! a no-echo client never gets its own; nothing else arrives; the broker's
//! invariants hold after every step. Topics are forgotten and made again
//! along the way (mqd's reply-subject rule, and an age limit with which the
//! other topics keep nothing for long): none of that shows in what arrives.
//!
//! `MQ_SIM_SEEDS=N` sets how many seeds run (default 100), `MQ_SIM_SEED=S`
//! runs one.

#[path = "support/rng.rs"]
mod rng;
#[path = "support/seeds.rs"]
mod seeds;

use std::collections::BTreeMap;
use std::time::Duration;

use mq_core::Instant;
use mq_core::broker::{Broker, Config, ConnId, Event, Protocol, Retention, Rule};
use mq_core::nats::{HeaderBlock, Limits, Op, Parsed};
use mq_core::topic::{Filter, Topic};
use rng::Rng;
use seeds::for_each_seed;

const CLIENTS: usize = 4;
const STEPS: usize = 300;
const SUBJECTS: [&str; 5] = ["a.b", "a.c", "a.b.c", "x.y", "_INBOX.r.1"];
const FILTERS: [&str; 7] = ["a.b", "a.*", "a.>", ">", "x.*", "*.y", "_INBOX.r.*"];
const GROUPS: [&str; 2] = ["g1", "g2"];

/// One subscription as the model keeps it.
#[derive(Debug, Clone)]
struct Sub {
    filter: &'static str,
    group: Option<&'static str>,
    max: Option<u64>,
    got: u64,
    /// Plain subscriptions: message numbers still owed, in order.
    owed: Vec<u32>,
}

/// A message the broker wrote to a client.
#[derive(Debug)]
struct Got {
    sid: String,
    subject: String,
    reply: Option<String>,
    trace: Option<String>,
    payload: String,
}

struct Client {
    conn: ConnId,
    echo: bool,
    rx: Vec<u8>,
    pending: Vec<u8>,
    subs: BTreeMap<String, Sub>,
    next_sid: u32,
}

/// What the broker wrote to `rx`, as messages; fails on anything else
/// but PONG.
fn read(rx: &mut Vec<u8>) -> Vec<Got> {
    let limits = Limits {
        max_control_line: 4096,
        max_payload: usize::MAX / 2,
    };
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        match Op::parse(&rx[at..], limits) {
            Ok(Parsed::Op(op, n)) => {
                at += n;
                match op {
                    Op::Msg { sid, msg } => {
                        let trace = msg.headers.map(|h| {
                            let block = HeaderBlock::parse(h).expect("a valid header block");
                            let v = block.iter().find(|(k, _)| *k == "Trace").map(|(_, v)| v);
                            String::from_utf8(v.unwrap_or_default().to_vec()).unwrap()
                        });
                        out.push(Got {
                            sid: sid.to_string(),
                            subject: msg.subject.to_string(),
                            reply: msg.reply.map(str::to_string),
                            trace,
                            payload: String::from_utf8(msg.payload.to_vec()).unwrap(),
                        });
                    }
                    Op::Pong | Op::Info(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            Ok(Parsed::Incomplete(_)) => break,
            Err(e) => panic!("the broker wrote bad bytes: {e}"),
        }
    }
    rx.drain(..at);
    out
}

struct Sim {
    b: Broker,
    now: Instant,
    rng: Rng,
    clients: Vec<Client>,
    buf: Vec<u8>,
}

impl Sim {
    /// Hands every client's pending bytes to the broker in random pieces,
    /// and drains everything the broker does.
    fn settle(&mut self) {
        for i in 0..self.clients.len() {
            while !self.clients[i].pending.is_empty() {
                let c = &mut self.clients[i];
                let cut = 1 + self.rng.below(c.pending.len() as u64 + 8) as usize;
                let offer = cut.min(c.pending.len());
                let used = self.b.handle_input(c.conn, self.now, &c.pending[..offer]);
                c.pending.drain(..used);
                self.drain();
            }
        }
        self.now += Duration::from_millis(self.rng.below(50));
        self.b.handle_timeout(self.now);
        self.drain();
    }

    fn drain(&mut self) {
        loop {
            let mut progress = false;
            while let Some(op) = self.b.poll_store() {
                self.b.handle_persisted(op.token, self.now);
                progress = true;
            }
            while let Some(t) = self.b.poll_transmit(self.now, &mut self.buf) {
                let c = self.clients.iter_mut().find(|c| c.conn == t.conn).unwrap();
                c.rx.extend_from_slice(&self.buf[..t.len]);
                progress = true;
            }
            while let Some(e) = self.b.poll_event() {
                match e {
                    Event::Close(c) => panic!("connection {c:?} closed"),
                    _ => progress = true,
                }
            }
            if !progress {
                break;
            }
        }
        self.b.check_invariants().expect("broker invariants");
    }
}

fn run_seed(seed: u64) -> (usize, u64) {
    let rng = Rng::new(seed);
    let mut cfg = Config::default();
    cfg.limits.keepalive_ms = 0;
    // The clock moves 0 to 50 ms a step.
    cfg.default_retention.max_age = Some(Duration::from_millis(150));
    cfg.default_retention.forget_after = Some(Duration::from_millis(200));
    cfg.retention.push(Rule {
        pattern: "_INBOX.>".to_string(),
        value: Retention {
            max_messages: 0,
            forget_after: Some(Duration::from_millis(100)),
            ..Retention::default()
        },
    });
    let mut b = Broker::new(cfg);
    let now = Instant::from_millis(1_000);
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let conn = b.accept(now, Protocol::Nats).unwrap();
        let echo = i != 0;
        let connect = format!("CONNECT {{\"verbose\":false,\"headers\":true,\"echo\":{echo}}}\r\n");
        clients.push(Client {
            conn,
            echo,
            rx: Vec::new(),
            pending: connect.into_bytes(),
            subs: BTreeMap::new(),
            next_sid: 1,
        });
    }
    let mut sim = Sim {
        b,
        now,
        rng,
        clients,
        buf: vec![0u8; 4096],
    };
    sim.settle();
    let mut delivered = 0;
    for step in 0..STEPS {
        let who = sim.rng.below(CLIENTS as u64) as usize;
        let roll = sim.rng.below(10);
        let c = &mut sim.clients[who];
        if roll < 3 {
            let filter = FILTERS[sim.rng.below(FILTERS.len() as u64) as usize];
            let group = sim
                .rng
                .chance(300_000)
                .then(|| GROUPS[sim.rng.below(2) as usize]);
            let sid = c.next_sid.to_string();
            c.next_sid += 1;
            let line = match group {
                Some(g) => format!("SUB {filter} {g} {sid}\r\n"),
                None => format!("SUB {filter} {sid}\r\n"),
            };
            c.pending.extend_from_slice(line.as_bytes());
            c.subs.insert(
                sid,
                Sub {
                    filter,
                    group,
                    max: None,
                    got: 0,
                    owed: Vec::new(),
                },
            );
        } else if roll < 4 && !c.subs.is_empty() {
            let n = sim.rng.below(c.subs.len() as u64) as usize;
            let sid = c.subs.keys().nth(n).unwrap().clone();
            let max = sim.rng.chance(500_000).then(|| sim.rng.below(4));
            let line = match max {
                Some(m) => format!("UNSUB {sid} {m}\r\n"),
                None => format!("UNSUB {sid}\r\n"),
            };
            c.pending.extend_from_slice(line.as_bytes());
            let sub = c.subs.get_mut(&sid).unwrap();
            match max {
                Some(m) if sub.got < m => sub.max = Some(m),
                _ => {
                    c.subs.remove(&sid);
                }
            }
        } else {
            let subject = SUBJECTS[sim.rng.below(SUBJECTS.len() as u64) as usize];
            let payload = format!("m{step}");
            let reply = sim.rng.chance(300_000).then_some("replies.x");
            let headers = sim.rng.chance(300_000);
            let mut line = format!("PUB {subject}");
            if headers {
                line = format!("HPUB {subject}");
            }
            if let Some(r) = reply {
                line.push_str(&format!(" {r}"));
            }
            let block = format!("NATS/1.0\r\nTrace: t{step}\r\n\r\n");
            if headers {
                line.push_str(&format!(
                    " {} {}\r\n{block}",
                    block.len(),
                    block.len() + payload.len()
                ));
            } else {
                line.push_str(&format!(" {}\r\n", payload.len()));
            }
            line.push_str(&format!("{payload}\r\n"));
            c.pending.extend_from_slice(line.as_bytes());
            let publisher = who;
            let topic = Topic::new(subject).unwrap();
            // Plain subscriptions that match are owed it.
            for (i, c) in sim.clients.iter_mut().enumerate() {
                if i == publisher && !c.echo {
                    continue;
                }
                for sub in c.subs.values_mut() {
                    if sub.group.is_none() && Filter::new(sub.filter).unwrap().matches(topic) {
                        sub.owed.push(step as u32);
                    }
                }
            }
            sim.settle();
            // Check what arrived against the model.
            let mut group_hits: BTreeMap<(&str, &str), u32> = BTreeMap::new();
            for (i, c) in sim.clients.iter_mut().enumerate() {
                for got in read(&mut c.rx) {
                    delivered += 1;
                    assert_eq!(got.subject, subject, "seed {seed} step {step}");
                    assert_eq!(got.payload, payload, "seed {seed} step {step}");
                    assert_eq!(got.reply.as_deref(), reply, "seed {seed} step {step}");
                    let want_trace = headers.then(|| format!("t{step}"));
                    assert_eq!(got.trace, want_trace, "seed {seed} step {step}");
                    let Some(sub) = c.subs.get_mut(&got.sid) else {
                        panic!("seed {seed} step {step}: client {i} got {got:?} on an ended sid");
                    };
                    assert!(
                        Filter::new(sub.filter).unwrap().matches(topic),
                        "seed {seed} step {step}: {got:?} does not match {}",
                        sub.filter
                    );
                    if i == publisher {
                        assert!(c.echo, "seed {seed} step {step}: echo to a no-echo client");
                    }
                    match sub.group {
                        Some(g) => *group_hits.entry((g, sub.filter)).or_default() += 1,
                        None => {
                            assert_eq!(
                                sub.owed.first(),
                                Some(&(step as u32)),
                                "seed {seed} step {step}: client {i} sid {} out of order",
                                got.sid
                            );
                            sub.owed.remove(0);
                        }
                    }
                    sub.got += 1;
                    if sub.max.is_some_and(|m| sub.got >= m) {
                        let sid = got.sid.clone();
                        c.subs.remove(&sid);
                    }
                }
                for (sid, sub) in &c.subs {
                    assert!(
                        sub.owed.is_empty(),
                        "seed {seed} step {step}: client {i} sid {sid} ({}) missed {:?}",
                        sub.filter,
                        sub.owed
                    );
                }
            }
            // Every queue group with a matching member got it exactly once.
            let mut groups: BTreeMap<(&str, &str), bool> = BTreeMap::new();
            for (i, c) in sim.clients.iter().enumerate() {
                for sub in c.subs.values() {
                    if let Some(g) = sub.group
                        && Filter::new(sub.filter).unwrap().matches(topic)
                        && (i != publisher || c.echo)
                    {
                        groups.insert((g, sub.filter), true);
                    }
                }
            }
            for (key, hits) in &group_hits {
                assert_eq!(
                    *hits, 1,
                    "seed {seed} step {step}: group {key:?} got it {hits} times"
                );
            }
            for key in groups.keys() {
                assert!(
                    group_hits.contains_key(key),
                    "seed {seed} step {step}: group {key:?} missed it"
                );
            }
            continue;
        }
        sim.settle();
        for (i, c) in sim.clients.iter_mut().enumerate() {
            let got = read(&mut c.rx);
            assert!(
                got.is_empty(),
                "seed {seed} step {step}: client {i} got {got:?} unasked"
            );
        }
    }
    (delivered, sim.b.stats().topics_forgotten)
}

#[test]
fn nats_clients_get_what_their_subscriptions_say() {
    let (mut delivered, mut forgotten) = (0, 0);
    let run = |seed, _trace| run_seed(seed);
    let Some(seeds) = for_each_seed("sim_nats", run, |(n, f)| {
        delivered += n;
        forgotten += f;
    }) else {
        return;
    };
    println!("{seeds} seeds, {delivered} deliveries, {forgotten} topics forgotten");
    assert!(
        forgotten > 0,
        "no topic was forgotten: the runs did not try it"
    );
}
