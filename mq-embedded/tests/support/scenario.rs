//! The scenarios the drivers run against `mqd`: QoS 1 both ways, then a crash
//! of `mqd` with messages in flight both ways, messages published on both
//! sides while the board is away, a restart, and a resumed session in which
//! everything arrives; and request-reply both ways between the board and an
//! mq-std client.

use std::collections::BTreeSet;
use std::time::Duration;

use mq_embedded::{
    AckError, Client, Config, DeliveryId, Event, Instant, PublishOptions, QoS, ReplyAddress,
    RequestFailure, RequestId, RequestOptions, SessionMode, State, SubscribeOptions,
};

use super::{Clock, Mqd, host_client};

/// The board's client id and its topics.
pub const BOARD: &str = "board-1";
const COMMANDS: &str = "cmd.board-1";
const TELEMETRY: &str = "telemetry.board-1";

/// A board under test: its client and whatever carries its bytes.
pub trait Board {
    /// The client's transport.
    type Transport: mq_embedded::Transport;
    /// The client.
    fn client(&mut self) -> &mut Client<'static, Self::Transport>;
    /// Runs the client (and the network between it and `mqd`) until it is
    /// idle, handing every event to `seen` and acking what it says.
    fn step(&mut self, now: Instant, seen: &mut Seen);
}

/// The board's configuration: a persistent session, a quick keepalive and
/// quick reconnects.
pub fn board_config() -> Config {
    let mut config = Config::new(BOARD).unwrap();
    config.mode = SessionMode::Resume;
    config.limits.keepalive_ms = 1_000;
    config.reconnect_min = Duration::from_millis(20);
    config.reconnect_max = Duration::from_millis(300);
    config.connect_timeout = Duration::from_secs(1);
    config.producer = Some(0x000B_0A2D_0000 + u64::from(std::process::id()));
    config.seed = 42;
    config
}

/// What the board saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub commands: BTreeSet<String>,
    pub published: u32,
    pub connected: Vec<bool>,
    pub disconnected: u32,
    pub subscribed: u32,
    /// Requests the board received: where to reply, and the payload.
    pub requests: Vec<(ReplyAddress, Vec<u8>)>,
    /// Replies to the board's requests.
    pub replies: Vec<(RequestId, Vec<u8>)>,
    /// The board's requests that failed.
    pub failed: Vec<(RequestId, RequestFailure)>,
}

impl Seen {
    /// Records an event; returns the delivery to ack.
    pub fn event(&mut self, event: Event<'_>) -> Option<DeliveryId> {
        match event {
            Event::Message(m) if m.meta.reply_to.is_some() => {
                let to = ReplyAddress::of(&m.meta).expect("a reply address that fits");
                self.requests.push((to, m.payload.to_vec()));
                return Some(m.id);
            }
            Event::Message(m) => {
                assert_eq!(m.topic, COMMANDS);
                self.commands
                    .insert(String::from_utf8(m.payload.to_vec()).unwrap());
                return Some(m.id);
            }
            Event::Published { .. } => self.published += 1,
            Event::Connected { session_present } => self.connected.push(session_present),
            Event::Disconnected { .. } => self.disconnected += 1,
            Event::Subscribed { .. } => self.subscribed += 1,
            Event::Reply { id, delivery } => self.replies.push((id, delivery.payload.to_vec())),
            Event::RequestFailed { id, reason } => self.failed.push((id, reason)),
            Event::PublishRejected { id, reason } => panic!("publish {id:?} rejected: {reason}"),
            Event::SubscribeRejected { reason, .. } => panic!("subscribe rejected: {reason}"),
            _ => {}
        }
        None
    }
}

/// Acks a command. `Stale`: it arrived on a connection that has ended since;
/// the ack is remembered and sent when the broker redelivers it.
pub fn ack<T: mq_embedded::Transport>(client: &mut Client<'static, T>, id: DeliveryId) {
    match client.ack(id) {
        Ok(()) | Err(AckError::Stale) => {}
        Err(e) => panic!("ack failed: {e}"),
    }
}

/// Reading number `n`; number 7 is larger than the board's 600-byte transmit
/// buffer, so it travels as fragments.
fn reading(n: u32) -> Vec<u8> {
    if n == 7 {
        (0..3000u32).map(|i| (i % 251) as u8).collect()
    } else {
        format!("t{n}").into_bytes()
    }
}

struct Run<'b, B: Board> {
    board: &'b mut B,
    clock: Clock,
    seen: Seen,
    host_sub: mq_std::blocking::Subscription,
    telemetry: BTreeSet<Vec<u8>>,
}

impl<B: Board> Run<'_, B> {
    fn client(&mut self) -> &mut Client<'static, B::Transport> {
        self.board.client()
    }

    fn step(&mut self) {
        self.board.step(self.clock.now(), &mut self.seen);
        while let Ok(m) = self.host_sub.try_recv() {
            self.telemetry.insert(m.payload.to_vec());
            m.ack().unwrap();
        }
        std::thread::sleep(Duration::from_micros(500));
    }

    /// Steps until `done` holds; panics with `what` and the broker's log after
    /// `limit`.
    fn until(&mut self, mqd: &Mqd, what: &str, limit: Duration, done: impl Fn(&mut Self) -> bool) {
        let deadline = std::time::Instant::now() + limit;
        while !done(self) {
            if std::time::Instant::now() >= deadline {
                let (state, stats) = (self.client().state(), self.client().stats());
                panic!(
                    "timed out waiting for {what}; state {state:?}, stats {stats:?}, seen {:?}, \
                     telemetry {}\n{}",
                    self.seen,
                    self.telemetry.len(),
                    mqd.log()
                );
            }
            self.step();
        }
    }

    fn publish(&mut self, n: u32) {
        let now = self.clock.now();
        let opts = PublishOptions {
            qos: QoS::AtLeastOnce,
            ..PublishOptions::default()
        };
        self.client()
            .publish(now, TELEMETRY, &reading(n), &opts)
            .unwrap();
    }
}

/// Runs the scenario; returns what the board saw.
pub fn qos1_both_ways_across_a_restart<B: Board>(mqd: &mut Mqd, board: &mut B) -> Seen {
    let host = host_client(mqd.addr, "host");
    let host_sub = host
        .subscribe("telemetry.>", &mq_std::client::SubscribeOptions::default())
        .unwrap();
    let mut run = Run {
        board,
        clock: Clock::new(),
        seen: Seen::default(),
        host_sub,
        telemetry: BTreeSet::new(),
    };
    let long = Duration::from_secs(20);

    // Connect, subscribe.
    let now = run.clock.now();
    run.client().connect(now);
    run.client()
        .subscribe(now, COMMANDS, &SubscribeOptions::default())
        .unwrap();
    run.until(mqd, "connected", long, |r| r.client().is_connected());
    assert_eq!(run.seen.connected, [false]);

    // Board -> broker -> host, QoS 1 (one reading fragmented).
    for n in 0..20 {
        run.publish(n);
    }
    run.until(mqd, "20 readings stored and seen", long, |r| {
        r.seen.published == 20 && r.telemetry.len() == 20
    });
    assert!(run.telemetry.contains(&reading(7)));
    assert_eq!(run.client().session().outbox_len(), 0);

    // Host -> broker -> board, QoS 1, acked by the board.
    let qos1 = mq_std::client::PublishOptions::new(QoS::AtLeastOnce);
    for n in 0..10 {
        host.publish(COMMANDS, format!("c{n}"), &qos1).unwrap();
    }
    run.until(mqd, "10 commands", long, |r| r.seen.commands.len() == 10);

    // Commands stored but not yet delivered (or not yet acked), and readings
    // not yet acknowledged, when mqd crashes; more readings while it is away.
    for n in 10..15 {
        host.publish(COMMANDS, format!("c{n}"), &qos1).unwrap();
    }
    for n in 20..30 {
        run.publish(n);
    }
    run.step();
    let unacked = run.client().session().outbox_len();
    assert!(unacked > 0, "readings in flight at the crash");
    let undelivered = 15 - run.seen.commands.len();
    mqd.kill();
    run.until(mqd, "the loss noticed", long, |r| r.seen.disconnected >= 1);
    for n in 30..40 {
        run.publish(n);
    }
    for _ in 0..20 {
        run.step();
    }
    assert!(!run.client().is_connected());
    mqd.restart();
    // Commands published while the board is away (it is not stepped here):
    // they wait in its persistent session.
    for n in 15..20 {
        host.publish(COMMANDS, format!("c{n}"), &qos1).unwrap();
    }
    run.until(mqd, "everything, both ways", Duration::from_secs(30), |r| {
        r.seen.commands.len() == 20
            && r.telemetry.len() == 40
            && r.client().session().outbox_len() == 0
    });

    let expected: BTreeSet<String> = (0..20).map(|n| format!("c{n}")).collect();
    assert_eq!(run.seen.commands, expected);
    let expected: BTreeSet<Vec<u8>> = (0..40).map(reading).collect();
    assert_eq!(run.telemetry, expected);
    assert_eq!(run.seen.connected.last(), Some(&true), "session resumed");
    assert!(run.client().stats().reconnects >= 1);
    assert_eq!(run.client().state(), State::Connected);
    eprintln!(
        "at the crash: {unacked} readings unacknowledged, {undelivered} commands undelivered; \
         board stats after: {:?}",
        run.client().stats()
    );
    host.close();
    run.seen
}

/// Steps `board` until `done` holds; panics with `what` and the broker's log
/// after `limit`. `between` runs after every step (the host side's work).
fn step_until<B: Board>(
    board: &mut B,
    seen: &mut Seen,
    clock: &Clock,
    mqd: &Mqd,
    what: &str,
    mut between: impl FnMut(&mut B, &mut Seen),
    done: impl Fn(&Seen) -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done(seen) {
        if std::time::Instant::now() >= deadline {
            let stats = board.client().stats();
            panic!(
                "timed out waiting for {what}; stats {stats:?}, seen {seen:?}\n{}",
                mqd.log()
            );
        }
        board.step(clock.now(), seen);
        between(board, seen);
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Request-reply between the board and mq-std clients, both ways: the board's
/// requests answered by a host responder (mq-std's `reply`), a host request
/// (mq-std's `request`, with its own reply topic) answered by the board, and a
/// request of the board's that nobody answers, timing out.
pub fn request_reply_both_ways<B: Board>(mqd: &Mqd, board: &mut B) -> Seen {
    const TO_HOST: &str = "svc.host";
    const TO_BOARD: &str = "svc.board-1";
    let clock = Clock::new();
    let mut seen = Seen::default();
    let responder = host_client(mqd.addr, "responder");
    let questions = responder
        .subscribe(TO_HOST, &mq_std::client::SubscribeOptions::default())
        .unwrap();
    let now = clock.now();
    board.client().connect(now);
    board
        .client()
        .subscribe(now, TO_BOARD, &SubscribeOptions::default())
        .unwrap();
    let idle = |_: &mut B, _: &mut Seen| {};
    step_until(board, &mut seen, &clock, mqd, "subscribed", idle, |s| {
        s.subscribed == 1
    });

    // The board asks; the host answers each with the question's payload.
    let opts = RequestOptions {
        qos: QoS::AtLeastOnce,
        timeout: Some(Duration::from_secs(15)),
        ..RequestOptions::default()
    };
    let asked: Vec<RequestId> = (0..3)
        .map(|n| {
            let question = format!("q{n}");
            let client = board.client();
            client
                .request(clock.now(), TO_HOST, question.as_bytes(), &opts)
                .unwrap()
        })
        .collect();
    let answer = |_: &mut B, _: &mut Seen| {
        while let Ok(m) = questions.try_recv() {
            let reply = [&b"re:"[..], &m.payload].concat();
            responder.reply(&m, reply).unwrap();
            m.ack().unwrap();
        }
    };
    step_until(board, &mut seen, &clock, mqd, "3 replies", answer, |s| {
        s.replies.len() == 3
    });
    for (id, payload) in &seen.replies {
        let n = asked
            .iter()
            .position(|a| a == id)
            .expect("a reply to a request");
        assert_eq!(payload, format!("re:q{n}").as_bytes());
    }

    // The host asks; the board answers.
    let asker = host_client(mqd.addr, "asker");
    let host_request = std::thread::spawn(move || {
        let reply = asker.request(TO_BOARD, "hello", Duration::from_secs(15));
        asker.close();
        reply.map(|m| m.payload.to_vec())
    });
    let reply = |board: &mut B, seen: &mut Seen| {
        for (to, payload) in seen.requests.drain(..) {
            assert_eq!(payload, b"hello");
            let now = Instant::ZERO;
            board
                .client()
                .reply(now, &to, b"hi from the board", &PublishOptions::default())
                .unwrap();
        }
    };
    let mut answered = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !host_request.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "{seen:?}\n{}",
            mqd.log()
        );
        board.step(clock.now(), &mut seen);
        answered |= !seen.requests.is_empty();
        reply(board, &mut seen);
        std::thread::sleep(Duration::from_micros(500));
    }
    assert!(answered);
    let got = host_request
        .join()
        .unwrap()
        .expect("the host's request answered");
    assert_eq!(got, b"hi from the board");

    // Nobody answers.
    let lonely = RequestOptions {
        timeout: Some(Duration::from_millis(300)),
        ..RequestOptions::default()
    };
    let id = board
        .client()
        .request(clock.now(), "svc.nobody", b"?", &lonely)
        .unwrap();
    step_until(board, &mut seen, &clock, mqd, "the timeout", idle, |s| {
        !s.failed.is_empty()
    });
    assert_eq!(seen.failed, [(id, RequestFailure::Timeout)]);
    assert_eq!(board.client().stats().replies_dropped, 0);
    responder.close();
    seen
}
