//! Connecting, the handshake, keepalive, timeouts, reconnecting, closing, bad input.

use super::*;

#[test]
fn handshake_sends_hello_then_waits_for_welcome() {
    let mut t = T::new(config(), 4096, 1024);
    assert_eq!(t.s.state(), State::Idle);
    assert_eq!(t.s.poll_timeout(), None);
    // Queued before connecting: must wait for Welcome.
    t.s.publish(t.now, "a.b", b"early", &PublishOptions::default())
        .unwrap();
    t.s.connect(t.now);
    assert_eq!(t.ev(), [Ev::Connect]);
    assert_eq!(t.s.poll_timeout(), Some(t.now + Duration::from_secs(5)));
    t.s.handle_connected(t.now);
    let sent = t.tx();
    assert_eq!(kinds(&sent), ["hello"]);
    let Frame::Hello(h) = frame(&sent[0]) else {
        unreachable!()
    };
    assert_eq!(h.client_id, "client-1");
    assert_eq!(h.session, SessionMode::Resume);
    assert_eq!(h.version, crate::wire::PROTOCOL_VERSION);
    // The announced maximum frame is lowered to what the inbox holds.
    assert_eq!(h.limits.max_frame, (1024 - INBOX_RECORD_OVERHEAD) as u32);
    assert_eq!(t.s.receive_limits(), h.limits);
    assert!(t.tx().is_empty());
    assert!(t.feed(T::welcome(false, limits(2048, 0))));
    assert_eq!(t.ev(), [Ev::Connected(false)]);
    assert!(t.s.is_connected());
    assert_eq!(t.s.broker_limits(), Some(limits(2048, 0)));
    let sent = t.tx();
    assert_eq!(kinds(&sent), ["publish"]);
    assert_eq!(t.s.outbox_len(), 0);
    assert_eq!(t.s.stats().frames_in, 1);
}

#[test]
fn keepalive_pings_answers_and_detects_dead_broker() {
    let mut c = config();
    c.limits.keepalive_ms = 10_000;
    let mut t = T::new(c, 4096, 4096);
    let start = t.now;
    t.handshake(false, limits(4096, 4_000));
    // Effective interval 4 s: ping after 2 s of silence.
    assert_eq!(t.s.poll_timeout(), Some(start + Duration::from_secs(2)));
    t.now = t.s.poll_timeout().unwrap();
    t.s.handle_timeout(t.now);
    assert_eq!(frame(&t.tx()[0]), Frame::Ping(1));
    t.advance(Duration::from_millis(500));
    assert!(t.feed(Frame::Ping(77)));
    assert_eq!(frame(&t.tx()[0]), Frame::Pong(77));
    let last_rx = t.now;
    // Nothing more from the broker: pings every 2 s, dead 6 s after the last input.
    let mut pings = 0;
    loop {
        t.now = t.s.poll_timeout().unwrap();
        t.s.handle_timeout(t.now);
        pings += t.tx().len();
        let events = t.ev();
        if !events.is_empty() {
            assert_eq!(events, [Ev::Disconnected(Reason::KeepaliveTimeout)]);
            break;
        }
    }
    assert_eq!(t.now, last_rx + Duration::from_secs(6));
    assert_eq!(pings, 2);
    assert_eq!(t.s.state(), State::Disconnecting);
    assert_eq!(t.s.stats().timeouts, 1);
    // The adapter closes; no second Disconnected.
    t.s.handle_disconnected(t.now);
    assert!(t.ev().is_empty());
    assert_eq!(t.s.state(), State::Backoff);
}

#[test]
fn no_welcome_in_time_is_a_timeout() {
    let mut t = T::std();
    t.s.connect(t.now);
    t.ev();
    t.advance(Duration::from_secs(1));
    t.s.handle_connected(t.now);
    t.tx();
    t.now = t.s.poll_timeout().unwrap();
    assert_eq!(t.now, Instant::from_millis(1_000 + 5_000));
    t.s.handle_timeout(t.now);
    assert_eq!(t.ev(), [Ev::Disconnected(Reason::Timeout)]);
    assert!(t.tx().is_empty());
}

#[test]
fn reconnect_backoff_doubles_with_jitter_and_resets_after_welcome() {
    let mut t = T::std();
    t.s.connect(t.now);
    t.ev();
    let mut expect_ms = [100u64, 200, 400, 800, 1000, 1000].into_iter();
    for base in expect_ms.by_ref() {
        t.s.handle_connected(t.now);
        t.s.handle_disconnected(t.now);
        assert_eq!(t.ev(), [Ev::Disconnected(Reason::Normal)]);
        let at = t.s.poll_timeout().unwrap();
        let delay = (at - t.now).as_millis() as u64;
        assert!(
            delay >= base * 3 / 4 && delay <= base * 5 / 4,
            "delay {delay} ms for base {base} ms"
        );
        // Not before its time.
        t.s.handle_timeout(Instant::from_micros(at.as_micros() - 1));
        assert!(t.ev().is_empty());
        t.now = at;
        t.s.handle_timeout(t.now);
        assert_eq!(t.ev(), [Ev::Connect]);
    }
    assert_eq!(t.s.stats().reconnects, 6);
    t.handshake(false, limits(4096, 0));
    t.s.handle_disconnected(t.now);
    let delay = (t.s.poll_timeout().unwrap() - t.now).as_millis();
    assert!((75..=125).contains(&delay));
}

#[test]
fn malformed_or_unexpected_input_sends_error_and_disconnects() {
    let sub_deliver = T::wire(&Frame::Deliver(deliver(
        42,
        "a",
        1,
        1,
        QoS::AtMostOnce,
        b"",
    )));
    let welcome = T::wire(&T::welcome(false, limits(4096, 0)));
    let mut first = deliver(1, "a", 1, 1, QoS::AtMostOnce, &[0; 10]);
    first.fragment = Some(Fragment {
        offset: 0,
        total: 20,
    });
    let mut gap = first;
    gap.fragment = Some(Fragment {
        offset: 15,
        total: 20,
    });
    let mut out_of_order = T::wire(&Frame::Deliver(first));
    out_of_order.extend(T::wire(&Frame::Deliver(gap)));
    // A whole delivery and a byte more inside its length prefix.
    let mut trailing = T::wire(&Frame::Deliver(deliver(
        1,
        "a",
        1,
        1,
        QoS::AtMostOnce,
        b"x",
    )));
    assert!(trailing[0] < 0x7F, "a one-byte length prefix");
    trailing[0] += 1;
    trailing.push(0);
    let cases: [(&str, Vec<u8>, Reason); 9] = [
        ("garbage", vec![3, 0xFF, 0xFF, 0xFF], Reason::Malformed),
        // Frames only clients send are out of place, whatever they hold (the
        // client does not read them): an ack of tag 1, a hello cut short.
        ("an ack", vec![2, 11, 1], Reason::ProtocolViolation),
        (
            "a broken hello",
            vec![2, 0, 0xFF],
            Reason::ProtocolViolation,
        ),
        (
            "bad prefix",
            vec![0x80, 0x80, 0x80, 0x80, 0x80],
            Reason::Malformed,
        ),
        (
            "oversized",
            vec![0xFF, 0xFF, 0xFF, 0x7F],
            Reason::FrameTooLarge,
        ),
        ("unknown sub", sub_deliver, Reason::ProtocolViolation),
        ("welcome twice", welcome, Reason::ProtocolViolation),
        ("fragment gap", out_of_order, Reason::ProtocolViolation),
        ("trailing bytes", trailing, Reason::Malformed),
    ];
    for (name, input, reason) in cases {
        let mut t = T::std();
        t.handshake(false, limits(4096, 0));
        t.s.subscribe(t.now, "a", &SubscribeOptions::default())
            .unwrap();
        t.tx();
        assert_eq!(t.s.handle_input(t.now, &input), input.len(), "{name}");
        assert_eq!(t.ev(), [Ev::Disconnected(reason)], "{name}");
        let sent = t.tx();
        assert_eq!(sent.len(), 1, "{name}");
        let Frame::Error(ErrorFrame { code, .. }) = frame(&sent[0]) else {
            panic!("{name}: expected an error frame")
        };
        assert_eq!(code, reason, "{name}");
        assert_eq!(t.s.state(), State::Disconnecting);
        // Further input is ignored; the adapter closes and reconnects later.
        assert_eq!(t.s.handle_input(t.now, &[1, 2, 3]), 3);
        t.s.handle_disconnected(t.now);
        assert!(t.ev().is_empty(), "{name}");
        assert_eq!(t.s.state(), State::Backoff);
        assert_eq!(t.s.stats().protocol_errors, 1);
    }
    // Before Welcome, anything but Welcome / Error / Close / Ping is a violation.
    let mut t = T::std();
    t.s.connect(t.now);
    t.s.handle_connected(t.now);
    t.tx();
    t.ev();
    assert!(t.feed(Frame::PubAck(PubAck {
        id: 1,
        seq: 1,
        duplicate: false
    })));
    assert_eq!(t.ev(), [Ev::Disconnected(Reason::ProtocolViolation)]);
}

#[test]
fn broker_close_error_and_rejects() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let id =
        t.s.publish(
            t.now,
            "a",
            b"x",
            &PublishOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        )
        .unwrap();
    t.tx();
    assert!(t.feed(Frame::PubReject(PubReject {
        id: id.0,
        reason: Reason::QueueFull
    })));
    assert_eq!(t.ev(), [Ev::PublishRejected(id.0, Reason::QueueFull)]);
    assert_eq!(t.s.outbox_len(), 0);
    assert!(t.feed(Frame::Close(Close {
        reason: Reason::ShuttingDown,
        text: "bye"
    })));
    assert_eq!(t.ev(), [Ev::Disconnected(Reason::ShuttingDown)]);
    assert!(t.tx().is_empty());
    let events = t.reconnect(true, limits(4096, 0));
    assert_eq!(events, [Ev::Connect, Ev::Connected(true)]);
    // Taken over by another connection: closed for good.
    assert!(t.feed(Frame::Error(ErrorFrame {
        code: Reason::SessionTakenOver,
        text: ""
    })));
    assert_eq!(t.ev(), [Ev::Disconnected(Reason::SessionTakenOver)]);
    t.s.handle_disconnected(t.now);
    assert_eq!(t.ev(), [Ev::Closed]);
    assert_eq!((t.s.state(), t.s.poll_timeout()), (State::Closed, None));
}

#[test]
fn close_sends_close_then_closed_and_never_reconnects() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    t.s.close(t.now);
    assert!(t.ev().is_empty());
    let sent = t.tx();
    assert_eq!(
        frame(&sent[0]),
        Frame::Close(Close {
            reason: Reason::Normal,
            text: ""
        })
    );
    assert_eq!(t.ev(), [Ev::Closed]);
    t.s.handle_disconnected(t.now);
    t.s.handle_timeout(t.now + Duration::from_secs(3600));
    assert!(t.ev().is_empty());
    assert_eq!((t.s.state(), t.s.poll_timeout()), (State::Closed, None));
    // While waiting to reconnect, close is immediate.
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    t.s.handle_disconnected(t.now);
    t.ev();
    t.s.close(t.now);
    assert_eq!(t.ev(), [Ev::Closed]);
    assert_eq!(t.s.poll_timeout(), None);
}

#[test]
fn close_sends_queued_acks_and_publishes_before_close() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("jobs");
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "jobs",
        1,
        70,
        QoS::AtLeastOnce,
        b"a"
    ))));
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "jobs",
        2,
        71,
        QoS::AtLeastOnce,
        b"b"
    ))));
    let ids: Vec<DeliveryId> = t.ev().iter().map(|e| msg(e).id).collect();
    for id in ids {
        t.s.ack(id).unwrap();
    }
    t.s.publish(t.now, "log", b"bye", &PublishOptions::default())
        .unwrap();
    t.s.close(t.now);
    let sent = t.tx();
    assert_eq!(
        kinds(&sent),
        ["ack", "ack", "publish", "close"],
        "everything queued before close goes out before the Close"
    );
}

#[test]
fn size_of_session() {
    let size = core::mem::size_of::<Session<[u8; 4096]>>();
    println!("size_of::<Session<[u8; 4096]>>() = {size}");
    assert!(size < 20 * 1024);
}

/// Devices build the session on a zeroed slot and leave `stats` as the zeros
/// made it: that must be `Stats::default()`.
#[test]
fn zeroed_stats_are_the_default() {
    // SAFETY: `Stats` is all `u64`s, for which zero bytes are valid.
    let zeroed = unsafe { core::mem::MaybeUninit::<Stats>::zeroed().assume_init() };
    assert_eq!(zeroed, Stats::default());
}
