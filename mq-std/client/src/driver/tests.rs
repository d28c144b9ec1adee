//! The driver against the broker state machine, with no sockets: a tiny adapter
//! moves bytes between them on a virtual clock, like the real loops do.

use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mq_core::broker::{Broker, Config as BrokerConfig, ConnId};
use mq_core::wire::QoS;

use super::calls::PRUNE_FROM;
use super::command::made_room;
use super::*;

/// Commands the application side sent, fed to the driver by the harness.
#[derive(Clone, Default)]
struct Queue(Arc<Mutex<Vec<Command>>>);

impl CommandSender for Queue {
    fn send(&self, cmd: Command) -> bool {
        self.0.lock().unwrap().push(cmd);
        true
    }
}

/// A reply slot the test reads; `give_up` makes it look abandoned.
struct Slot<T>(Arc<Mutex<(Option<T>, bool)>>);

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Slot(Arc::clone(&self.0))
    }
}

impl<T> Slot<T> {
    fn new() -> Slot<T> {
        Slot(Arc::new(Mutex::new((None, false))))
    }
    fn take(&self) -> Option<T> {
        self.0.lock().unwrap().0.take()
    }
    fn give_up(&self) {
        self.0.lock().unwrap().1 = true;
    }
}

impl<T: Send> Reply<T> for Slot<T> {
    fn send(self: Box<Self>, value: T) {
        self.0.lock().unwrap().0 = Some(value);
    }
    fn is_closed(&self) -> bool {
        self.0.lock().unwrap().1
    }
}

/// A driver and a broker joined by byte buffers.
struct Pair {
    broker: Broker,
    conn: Option<ConnId>,
    driver: Driver,
    commands: Arc<Commands>,
    queue: Queue,
    now: Instant,
    /// Bytes the broker sent that the driver has not read yet.
    to_client: Vec<u8>,
    /// Bytes the driver wrote that the broker has not consumed yet.
    to_broker: Vec<u8>,
    welcome: Slot<Result<(), Error>>,
    stopped: bool,
    /// The broker closed the connection: end of stream once `to_client` is read.
    closing: bool,
}

impl Pair {
    fn new(broker: BrokerConfig, opts: ClientOptions) -> Pair {
        let queue = Queue::default();
        let commands = Commands::new(Box::new(queue.clone()), 8 << 20);
        let mut driver = Driver::new(&opts, Arc::clone(&commands)).unwrap();
        let welcome = Slot::new();
        let now = Instant::from_millis(1_000_000);
        driver.start(now, Box::new(welcome.clone()));
        let mut pair = Pair {
            broker: Broker::new(broker),
            conn: None,
            driver,
            commands,
            queue,
            now,
            to_client: Vec::new(),
            to_broker: Vec::new(),
            welcome,
            stopped: false,
            closing: false,
        };
        pair.run();
        pair
    }

    fn connected(broker: BrokerConfig, opts: ClientOptions) -> Pair {
        let pair = Pair::new(broker, opts);
        assert!(matches!(pair.welcome.take(), Some(Ok(()))));
        pair
    }

    fn command(&mut self, cmd: Command) {
        self.driver.handle_command(self.now, cmd);
        self.run();
    }

    /// Moves everything until nothing moves.
    fn run(&mut self) {
        for _ in 0..10_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the pair never settled");
    }

    fn step(&mut self) -> bool {
        let mut moved = false;
        let cmds = std::mem::take(&mut *self.queue.0.lock().unwrap());
        for cmd in cmds {
            moved = true;
            self.driver.handle_command(self.now, cmd);
        }
        if self.stopped {
            return moved;
        }
        let wants = self.driver.poll(self.now);
        if wants.stop {
            self.driver.finish();
            self.stopped = true;
            return true;
        }
        if wants.disconnect && self.conn.is_some() {
            self.drop_connection();
            return true;
        }
        if wants.connect {
            self.conn = Some(self.broker.accept(self.now, Framing::Stream).unwrap());
            self.driver.handle_connected(self.now);
            return true;
        }
        let Some(conn) = self.conn else {
            return moved;
        };
        let out = self.driver.output().to_vec();
        if !out.is_empty() {
            self.driver.handle_written(out.len());
            self.to_broker.extend_from_slice(&out);
            moved = true;
        }
        if !self.to_broker.is_empty() {
            let n = self.broker.handle_input(conn, self.now, &self.to_broker);
            self.to_broker.drain(..n);
            moved |= n > 0;
        }
        while let Some(op) = self.broker.poll_store() {
            self.broker.handle_persisted(op.token, self.now);
            moved = true;
        }
        let mut buf = vec![0u8; 64 * 1024];
        while let Some(t) = self.broker.poll_transmit(self.now, &mut buf) {
            self.to_client.extend_from_slice(&buf[..t.len]);
            moved = true;
        }
        let room = self.driver.read_buf();
        let n = room.len().min(self.to_client.len());
        if n > 0 {
            room[..n].copy_from_slice(&self.to_client[..n]);
            self.driver.handle_read(n);
            self.to_client.drain(..n);
            moved = true;
        }
        while let Some(mq_core::broker::Event::Close(c)) = self.broker.poll_event() {
            if Some(c) == self.conn {
                self.closing = true;
            } else {
                self.broker.handle_closed(c, self.now);
            }
            moved = true;
        }
        if self.closing && self.to_client.is_empty() {
            self.drop_connection();
            moved = true;
        }
        moved
    }

    fn drop_connection(&mut self) {
        self.closing = false;
        if let Some(conn) = self.conn.take() {
            self.broker.handle_closed(conn, self.now);
        }
        self.to_client.clear();
        self.to_broker.clear();
        self.driver.handle_disconnected(self.now, None);
    }

    fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS) -> Slot<Result<PubAck, Error>> {
        let reply = Slot::new();
        let msg = PublishOptions::new(qos)
            .outgoing(topic, Bytes::copy_from_slice(payload))
            .unwrap();
        self.command(Command::Publish {
            msg,
            reply: Some(Box::new(reply.clone())),
        });
        reply
    }

    fn subscribe(
        &mut self,
        filter: &str,
        credit: u32,
    ) -> (SubId, std_mpsc::Receiver<Message>, Arc<AtomicBool>) {
        let (tx, rx) =
            std_mpsc::sync_channel(window(credit, self.driver.default_credit).unwrap() as usize);
        let waiting = Arc::new(AtomicBool::new(false));
        let reply = Slot::new();
        let opts = SubscribeOptions {
            credit,
            ..SubscribeOptions::default()
        };
        self.command(Command::Subscribe {
            filter: filter.to_string(),
            opts: Box::new(opts),
            sink: Box::new(tx),
            waiting: Arc::clone(&waiting),
            reply: Box::new(reply.clone()),
        });
        let sub = reply.take().expect("subscribe answered").unwrap();
        (sub, rx, waiting)
    }
}

fn client_options() -> ClientOptions {
    ClientOptions {
        keepalive: Duration::ZERO,
        ..ClientOptions::default()
    }
}

#[test]
fn qos1_publish_is_answered_at_puback() {
    let mut p = Pair::connected(BrokerConfig::default(), client_options());
    let (_, rx, _) = p.subscribe("a.b", 0);
    let ack = p.publish("a.b", b"hello", QoS::AtLeastOnce);
    let ack = ack.take().expect("answered").unwrap();
    assert!(ack.seq.is_some());
    let m = rx.try_recv().unwrap();
    assert_eq!(&m.payload[..], b"hello");
    m.ack().unwrap();
    p.run();
    assert_eq!(p.driver.session.held_len(), 0);
}

#[test]
fn a_full_sink_holds_back_input_without_losing_anything() {
    let opts = ClientOptions {
        inbox_bytes: 4 * 1024,
        ..client_options()
    };
    let mut p = Pair::connected(BrokerConfig::default(), opts);
    let (_, rx, waiting) = p.subscribe("t", 4);
    const N: usize = 300;
    for i in 0..N {
        let payload = format!("{i:0>100}");
        p.publish("t", payload.as_bytes(), QoS::AtMostOnce);
    }
    // Nothing read yet: the sink holds its window, one message is parked, the
    // session's inbox and the read buffer fill, and the rest stays with the broker.
    assert!(p.driver.parked.is_some());
    assert!(waiting.load(Ordering::SeqCst));
    assert!(p.driver.session.inbox_bytes() > 0);
    let queued: usize = p.broker.queues().iter().map(|q| q.waiting).sum();
    assert!(
        queued > N / 2,
        "the broker sent beyond the credit: {queued} queued"
    );
    let mut got = Vec::new();
    while got.len() < N {
        let m = rx.try_recv().expect("a message is ready");
        got.push(String::from_utf8(m.payload.to_vec()).unwrap());
        made_room(&waiting, &p.commands);
        p.run();
    }
    let want: Vec<String> = (0..N).map(|i| format!("{i:0>100}")).collect();
    assert_eq!(got, want);
    assert!(p.driver.parked.is_none());
}

#[test]
fn a_backlog_moves_to_the_front_only_once_as_much_was_consumed() {
    let mut p = Pair::connected(BrokerConfig::default(), client_options());
    let d = &mut p.driver;
    let len = d.rx.len();
    // Whole frames of one byte each (prefix 1) the session has not taken,
    // a little of the start consumed, the end short of room: not moved,
    // the read takes the room left at the end.
    d.rx.fill(1);
    d.rx_start = 1000;
    d.rx_len = len - 1000;
    assert_eq!(d.read_buf().len(), 1000);
    assert_eq!(d.rx_start, 1000, "moved for a little room");
    // As much consumed as is left: moved.
    d.rx_start = len / 2;
    let left = d.rx_len - d.rx_start;
    assert_eq!(d.read_buf().len(), len - left);
    assert_eq!((d.rx_start, d.rx_len), (0, left));
    // Little consumed, but what is left starts with a frame not whole yet
    // (as long as the largest): moved, so that the rest of it fits.
    let max = d.session.receive_limits().max_frame;
    d.rx_start = 2 * READ_CHUNK;
    d.rx_len = len - 10;
    mq_core::framing::stream::write_prefix(max, &mut d.rx[2 * READ_CHUNK..]);
    let left = d.rx_len - d.rx_start;
    assert_eq!(d.read_buf().len(), len - left);
    assert_eq!(d.rx_start, 0);
}

#[test]
fn closing_with_a_full_sink_completes() {
    let mut p = Pair::connected(BrokerConfig::default(), client_options());
    let (_, rx, _) = p.subscribe("t", 4);
    for i in 0..50 {
        p.publish("t", format!("{i}").as_bytes(), QoS::AtMostOnce);
    }
    assert!(p.driver.parked.is_some());
    let closed = Slot::new();
    p.command(Command::Close(Some(Box::new(closed.clone()))));
    assert!(p.stopped);
    assert!(closed.take().is_some());
    // What the sink held is still readable; then the subscription ends.
    assert_eq!(rx.try_iter().count(), 4);
    assert!(matches!(
        rx.try_recv(),
        Err(std_mpsc::TryRecvError::Disconnected)
    ));
}

#[test]
fn waiting_publishers_go_in_order_and_give_up_cleanly() {
    let opts = ClientOptions {
        outbox_bytes: 4 * 1024,
        ..client_options()
    };
    let mut p = Pair::connected(BrokerConfig::default(), opts);
    let (_, rx, _) = p.subscribe("t", 64);
    // Queue publishes without letting the broker answer in between.
    let mut replies = Vec::new();
    for i in 0..8u8 {
        let reply = Slot::new();
        let msg = PublishOptions::new(QoS::AtLeastOnce)
            .outgoing("t", Bytes::from(vec![i; 1024]))
            .unwrap();
        p.driver.handle_command(
            p.now,
            Command::Publish {
                msg,
                reply: Some(Box::new(reply.clone())),
            },
        );
        replies.push(reply);
    }
    assert!(!p.driver.waiting.is_empty());
    // One waiting caller gives up (a timeout): it must never be published, and
    // in a short line it is forgotten as soon as another caller joins it.
    replies[6].give_up();
    let before = p.driver.waiting.len();
    let last = Slot::new();
    let msg = PublishOptions::new(QoS::AtLeastOnce)
        .outgoing("t", Bytes::from(vec![8u8; 1024]))
        .unwrap();
    p.driver.handle_command(
        p.now,
        Command::Publish {
            msg,
            reply: Some(Box::new(last.clone())),
        },
    );
    assert_eq!(p.driver.waiting.len(), before);
    replies.push(last);
    p.run();
    assert!(p.driver.waiting.is_empty());
    for (i, r) in replies.iter().enumerate() {
        let answered = r.take();
        if i == 6 {
            assert!(answered.is_none());
        } else {
            assert!(answered.expect("answered").is_ok());
        }
    }
    let firsts: Vec<u8> = rx.try_iter().map(|m| m.payload[0]).collect();
    assert_eq!(firsts, [0, 1, 2, 3, 4, 5, 7, 8]);
}

#[test]
fn callers_that_gave_up_do_not_pile_up_in_the_line() {
    let opts = ClientOptions {
        outbox_bytes: 4 * 1024,
        ..client_options()
    };
    let mut p = Pair::connected(BrokerConfig::default(), opts);
    // Publishes into a full outbox (the broker does not answer meanwhile);
    // the longest the line got.
    let queue = |p: &mut Pair, callers: u32, give_up: bool| {
        let mut longest = 0;
        let mut live = Vec::new();
        for i in 0..callers {
            let reply = Slot::new();
            let msg = PublishOptions::new(QoS::AtLeastOnce)
                .outgoing("t", Bytes::from(i.to_le_bytes().repeat(64)))
                .unwrap();
            let cmd = Command::Publish {
                msg,
                reply: Some(Box::new(reply.clone())),
            };
            p.driver.handle_command(p.now, cmd);
            if give_up {
                reply.give_up();
            } else {
                live.push(reply);
            }
            longest = longest.max(p.driver.waiting.len());
        }
        (longest, live)
    };
    // A short line is pruned at every publish.
    let (longest, _) = queue(&mut p, 1_000, true);
    assert!(longest <= PRUNE_FROM + 1, "{longest}");
    // A long one each time it doubled: never more than twice its live callers.
    let (_, live) = queue(&mut p, 100, false);
    let (longest, _) = queue(&mut p, 1_000, true);
    assert!(longest <= 2 * 100 + 1, "{longest}");
    // Once it has drained, its bound follows its new live callers.
    p.run();
    assert!(p.driver.waiting.is_empty());
    let (_, fewer) = queue(&mut p, 20, false);
    let (longest, _) = queue(&mut p, 1_000, true);
    assert!(longest <= 2 * 20 + 1, "{longest}");
    p.run();
    assert!(p.driver.waiting.is_empty());
    // Every live caller was published and answered.
    let answered = |r: &Slot<_>| r.take().is_some_and(|a: Result<PubAck, Error>| a.is_ok());
    assert!(live.iter().chain(&fewer).all(answered));
}

#[test]
fn the_first_failure_is_reported_and_stops_the_driver() {
    let queue = Queue::default();
    let commands = Commands::new(Box::new(queue), 8 << 20);
    let mut driver = Driver::new(&client_options(), Arc::clone(&commands)).unwrap();
    let welcome = Slot::new();
    let now = Instant::from_millis(1);
    driver.start(now, Box::new(welcome.clone()));
    assert!(driver.poll(now).connect);
    let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
    driver.handle_disconnected(now, Some(refused));
    let wants = driver.poll(now);
    assert!(wants.stop);
    assert!(!wants.connect);
    driver.finish();
    assert!(
        matches!(welcome.take(), Some(Err(Error::Io(e))) if e.kind() == io::ErrorKind::ConnectionRefused)
    );
    assert!(matches!(
        commands.closed_error(),
        Error::Closed(Reason::Normal)
    ));
}

#[test]
fn a_lost_connection_reconnects_and_resends() {
    let opts = ClientOptions {
        reconnect_min: Duration::from_millis(10),
        ..client_options()
    };
    let mut p = Pair::connected(BrokerConfig::default(), opts);
    let (_, rx, _) = p.subscribe("t", 0);
    p.drop_connection();
    p.run();
    assert!(p.conn.is_none());
    // Waits in the outbox while disconnected.
    let ack = p.publish("t", b"later", QoS::AtLeastOnce);
    assert!(ack.take().is_none());
    // The session decides when: after its backoff.
    p.now += Duration::from_millis(50);
    p.driver.handle_timeout(p.now);
    p.run();
    assert!(p.conn.is_some());
    assert!(ack.take().expect("answered after reconnecting").is_ok());
    // The clean session resubscribed on its own.
    p.publish("t", b"again", QoS::AtLeastOnce);
    let got: Vec<_> = rx.try_iter().map(|m| m.payload.clone()).collect();
    assert_eq!(
        got,
        [Bytes::from_static(b"later"), Bytes::from_static(b"again")]
    );
}

/// Connects a second client with `client_id` straight into the broker, which
/// takes the session over from the pair's client.
fn take_over(p: &mut Pair, client_id: &str) {
    let other = p.broker.accept(p.now, Framing::Stream).unwrap();
    let hello = mq_core::wire::Frame::Hello(mq_core::wire::Hello {
        version: mq_core::wire::PROTOCOL_VERSION,
        client_id,
        session: mq_core::wire::SessionMode::Clean,
        token: None,
        limits: Limits {
            max_frame: 64 * 1024,
            credit: 8,
            keepalive_ms: 0,
        },
    });
    let mut buf = vec![0u8; 1024];
    let n = mq_core::framing::stream::encode_frame(&hello, u32::MAX, &mut buf).unwrap();
    assert_eq!(p.broker.handle_input(other, p.now, &buf[..n]), n);
}

#[test]
fn takeover_ends_the_session_for_good() {
    let opts = ClientOptions {
        client_id: "dup".to_string(),
        ..client_options()
    };
    let mut p = Pair::connected(BrokerConfig::default(), opts);
    take_over(&mut p, "dup");
    let pending = p.publish("t", b"x", QoS::AtLeastOnce);
    p.run();
    assert!(p.stopped);
    assert!(matches!(
        pending.take(),
        Some(Err(Error::Closed(Reason::SessionTakenOver)))
    ));
    assert!(matches!(
        p.commands.closed_error(),
        Error::Closed(Reason::SessionTakenOver)
    ));
}

/// The broker's `Close` sits behind deliveries the session cannot take yet when
/// the connection ends: it must still be read, or the client would reconnect and
/// take the session back.
#[test]
fn takeover_while_backpressured_is_not_lost_at_end_of_stream() {
    let opts = ClientOptions {
        client_id: "dup".to_string(),
        inbox_bytes: 4 * 1024,
        ..client_options()
    };
    let mut p = Pair::connected(BrokerConfig::default(), opts);
    // A window larger than the 4 KiB inbox holds: deliveries the session refuses
    // wait in the read buffer, ahead of the `Close`.
    let (_, rx, waiting) = p.subscribe("t", 16);
    for i in 0..50 {
        p.publish("t", format!("{i:0>1200}").as_bytes(), QoS::AtMostOnce);
    }
    assert!(p.driver.parked.is_some());
    take_over(&mut p, "dup");
    p.run();
    // The stream ended with input the session has not taken.
    assert!(p.conn.is_none());
    assert!(p.driver.rx_len > 0);
    assert!(!p.stopped);
    let mut n = 0;
    while !p.stopped {
        let m = rx.try_recv().expect("a message while draining");
        assert_eq!(m.payload, Bytes::from(format!("{n:0>1200}")));
        n += 1;
        made_room(&waiting, &p.commands);
        p.run();
    }
    assert!(matches!(
        p.commands.closed_error(),
        Error::Closed(Reason::SessionTakenOver)
    ));
    assert_eq!(p.driver.session.stats().reconnects, 0);
}

#[test]
fn requests_are_matched_to_replies() {
    let mut p = Pair::connected(BrokerConfig::default(), client_options());
    let (_, service, _) = p.subscribe("svc", 0);
    let reply = Slot::new();
    let msg = PublishOptions::default()
        .outgoing("svc", Bytes::from_static(b"ping"))
        .unwrap();
    p.command(Command::Request {
        msg: Box::new(msg),
        timeout: std::time::Duration::from_secs(5),
        reply: Box::new(reply.clone()),
    });
    let req = service.try_recv().expect("the request arrived");
    assert!(req.reply_to.as_deref().unwrap().starts_with("_reply."));
    let answer = reply_options(&req)
        .unwrap()
        .outgoing(
            req.reply_to.as_deref().unwrap(),
            Bytes::from_static(b"pong"),
        )
        .unwrap();
    req.ack().unwrap();
    p.command(Command::Publish {
        msg: answer,
        reply: Some(Box::new(Slot::new())),
    });
    let got = reply.take().expect("replied").unwrap();
    assert_eq!(&got.payload[..], b"pong");
    assert!(!got.needs_ack());
    p.run();
    assert_eq!(p.driver.session.held_len(), 0);
}

#[test]
fn a_request_nobody_answers_fails_with_timeout_and_frees_its_slot() {
    let mut p = Pair::connected(BrokerConfig::default(), client_options());
    let reply = Slot::new();
    let msg = PublishOptions::default()
        .outgoing("svc.nobody", Bytes::from_static(b"ping"))
        .unwrap();
    p.command(Command::Request {
        msg: Box::new(msg),
        timeout: std::time::Duration::from_millis(200),
        reply: Box::new(reply.clone()),
    });
    assert!(reply.take().is_none(), "no answer yet");
    assert_eq!(p.driver.requests.len(), 1);
    p.now += std::time::Duration::from_millis(250);
    p.driver.handle_timeout(p.now);
    p.run();
    assert!(matches!(reply.take(), Some(Err(Error::Timeout))));
    assert!(p.driver.requests.is_empty());
}

/// A fire-and-forget publish of 1 KiB of `i` to "t" holding its share of
/// `room`, as `Client::enqueue` sends it.
fn holding_room(room: &Arc<room::Room>, i: u8) -> Outgoing {
    let mut msg = PublishOptions::new(QoS::AtMostOnce)
        .outgoing("t", Bytes::from(vec![i; 1024]))
        .unwrap();
    msg.reserved = Some(room.try_take(msg.size()).expect("room"));
    msg
}

#[test]
fn fire_and_forget_publishes_hold_their_room_until_the_session_takes_them() {
    let opts = ClientOptions {
        outbox_bytes: 4 * 1024,
        ..client_options()
    };
    let mut p = Pair::connected(BrokerConfig::default(), opts);
    let (_, rx, _) = p.subscribe("t", 64);
    let room = Arc::clone(p.commands.room());
    // Handed in without an answer and without letting the broker read: the
    // outbox fills, the rest wait in line, still holding their room.
    for i in 0..8u8 {
        let msg = holding_room(&room, i);
        p.driver
            .handle_command(p.now, Command::Publish { msg, reply: None });
    }
    assert!(!p.driver.waiting.is_empty());
    let waiting = p.driver.waiting.len();
    assert!(room.used() >= waiting * 1024, "waiting publishes hold room");
    p.run();
    assert!(p.driver.waiting.is_empty());
    assert_eq!(room.used(), 0, "every publish gave its room back");
    let firsts: Vec<u8> = rx.try_iter().map(|m| m.payload[0]).collect();
    assert_eq!(firsts, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(p.commands.stats().unsent_qos0, 0);
}

#[test]
fn a_waiting_publisher_wakes_once_for_the_publishes_of_a_pass() {
    let opts = ClientOptions {
        outbox_bytes: 64 * 1024,
        ..client_options()
    };
    let mut p = Pair::connected(BrokerConfig::default(), opts);
    let room = Arc::clone(p.commands.room());
    let msgs: Vec<Outgoing> = (0..8u8).map(|i| holding_room(&room, i)).collect();
    // A publisher that wants the whole room waits for all eight.
    let r = Arc::clone(&room);
    let waiter = std::thread::spawn(move || {
        r.take_blocking(
            r.capacity(),
            Some(std::time::Instant::now() + Duration::from_secs(10)),
        )
        .map(|_| ())
    });
    while room.waiters_and_wakes().0 == 0 {
        assert!(!waiter.is_finished(), "the waiter found room");
        std::thread::yield_now();
    }
    for msg in msgs {
        p.driver
            .handle_command(p.now, Command::Publish { msg, reply: None });
    }
    assert!(p.driver.waiting.is_empty(), "the session took all eight");
    assert_eq!(
        room.waiters_and_wakes().1,
        0,
        "room given back at the pass's end"
    );
    p.run();
    assert_eq!(waiter.join().unwrap(), Ok(()));
    // Given back one by one, the eight woke the waiter eight times.
    assert_eq!(room.waiters_and_wakes(), (0, 1));
}

#[test]
fn fire_and_forget_publishes_that_cannot_be_sent_are_counted() {
    let mut p = Pair::connected(BrokerConfig::default(), client_options());
    // Past the session's end nothing is sent; nobody waits, so it is counted.
    p.command(Command::Close(None));
    let msg = PublishOptions::new(QoS::AtMostOnce)
        .outgoing("t", Bytes::from_static(b"late"))
        .unwrap();
    p.driver
        .handle_command(p.now, Command::Publish { msg, reply: None });
    p.driver.finish();
    assert!(p.driver.stopping);
    assert_eq!(p.driver.unsent_qos0, 1);
    assert!(
        p.commands.room().try_take(1).is_some(),
        "a closed room still frees what it held"
    );
}

#[test]
fn output_waiting_for_the_socket_survives_the_buffer_growing() {
    let mut p = Pair::connected(BrokerConfig::default(), client_options());
    let room = p.driver.frame_room;
    // As before the broker's limits were known: a small buffer, with output
    // not yet written that does not start at its front.
    p.driver.frame_room = 16;
    p.driver.tx = (0..=255).collect();
    p.driver.tx_start = 10;
    p.driver.tx_end = 40;
    p.driver.size_output();
    assert_eq!(p.driver.frame_room, room);
    assert!(p.driver.tx.len() >= WRITE_HIGH_WATER + room);
    assert_eq!(p.driver.output(), (10..40).collect::<Vec<u8>>());
}

#[test]
fn a_publishs_properties_reach_the_subscriber() {
    let mut p = Pair::connected(BrokerConfig::default(), client_options());
    let (_, rx, _) = p.subscribe("a.b", 0);
    let opts = PublishOptions {
        ttl: Some(Duration::from_secs(60)),
        priority: 3,
        reply_to: Some("r".to_string()),
        correlation: Some(Bytes::from_static(b"c")),
        headers: vec![("k".to_string(), Bytes::from_static(b"v"))],
        ..PublishOptions::default()
    };
    let msg = opts.outgoing("a.b", Bytes::from_static(b"x")).unwrap();
    p.command(Command::Publish { msg, reply: None });
    let m = rx.try_recv().unwrap();
    assert_eq!(m.ttl, Some(Duration::from_secs(60)));
    assert_eq!(m.priority, 3);
    assert_eq!(m.reply_to.as_deref(), Some("r"));
    assert_eq!(m.correlation.as_deref(), Some(&b"c"[..]));
    assert_eq!(m.headers, opts.headers);
}
