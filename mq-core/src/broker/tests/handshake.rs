//! Connections: handshake, auth, takeover, keepalive, bad input, output pausing.

use super::*;

#[test]
fn handshake_and_frames_before_hello() {
    let mut h = H::new(Config::default());
    let (_c, present) = h.connect("a", SessionMode::Clean);
    assert!(!present);

    let bad = h.b.accept(h.now, Framing::Stream).unwrap();
    h.send(bad, Frame::Ping(1));
    assert_eq!(h.take(bad), vec![Got::Error(Reason::ProtocolViolation)]);
    assert!(h.closed.contains(&bad));
    assert_eq!(h.b.stats().protocol_errors, 1);
}

#[test]
fn takeover_closes_the_old_connection() {
    let mut h = H::new(Config::default());
    let (old, _) = h.connect("dev", SessionMode::Resume);
    let (_new, present) = h.connect("dev", SessionMode::Resume);
    assert!(present);
    assert_eq!(h.take(old), vec![Got::Error(Reason::SessionTakenOver)]);
    assert!(h.closed.contains(&old));
}

#[test]
fn auth_tokens_and_permissions() {
    let cfg = Config {
        auth: Auth {
            tokens: vec![(
                "dev-token".into(),
                Permissions {
                    publish: vec!["telemetry.>".into()],
                    subscribe: vec!["cmd.dev1".into()],
                    admin: false,
                },
            )],
            ..Auth::default()
        },
        ..Config::default()
    };
    let mut h = H::new(cfg);
    let bad = h.connect_with("x", SessionMode::Clean, Some("wrong"));
    assert_eq!(h.take(bad), vec![Got::Error(Reason::BadToken)]);
    let none = h.connect_with("y", SessionMode::Clean, None);
    assert_eq!(h.take(none), vec![Got::Error(Reason::BadToken)]);
    let c = h.connect_with("dev1", SessionMode::Clean, Some("dev-token"));
    assert!(matches!(h.take(c)[..], [Got::Welcome { .. }]));
    h.publish(c, 1, "telemetry.t", QoS::AtLeastOnce, b"ok");
    h.publish(c, 2, "cmd.dev2", QoS::AtLeastOnce, b"no");
    let got = h.take(c);
    assert_eq!(
        got[0],
        Got::PubAck {
            id: 1,
            seq: 1,
            dup: false
        }
    );
    assert_eq!(
        got[1],
        Got::PubReject {
            id: 2,
            reason: Reason::NotAuthorized
        }
    );
    h.send(
        c,
        Frame::Subscribe(Subscribe {
            sub: 1,
            filter: "cmd.>",
            group: None,
            start: Start::New,
            qos: QoS::AtLeastOnce,
            credit: 1,
        }),
    );
    assert_eq!(h.take(c), vec![Got::SubReject(1, Reason::NotAuthorized)]);
    assert_eq!(h.b.stats().auth_failures, 4);
}

#[test]
fn out_of_order_fragment_closes_the_connection() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.send(
        p,
        Frame::Publish(Publish {
            id: 1,
            topic: "t",
            qos: QoS::AtLeastOnce,
            dedup: None,
            meta: Meta::default(),
            fragment: Some(Fragment {
                offset: 10,
                total: 20,
            }),
            payload: b"0123456789",
        }),
    );
    assert_eq!(h.take(p), vec![Got::Error(Reason::ProtocolViolation)]);
}

#[test]
fn malformed_and_oversized_input_close_only_that_connection() {
    let cfg = Config {
        limits: Limits {
            max_frame: 4096,
            ..Config::default().limits
        },
        ..Config::default()
    };
    let mut h = H::new(cfg);
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 10);
    let (bad, _) = h.connect("bad", SessionMode::Clean);
    assert_eq!(h.b.handle_input(bad, h.now, &[3, 0xff, 0xff, 0xff]), 4);
    h.drain();
    assert_eq!(h.take(bad), vec![Got::Error(Reason::Malformed)]);
    let (big, _) = h.connect("big", SessionMode::Clean);
    // A length prefix of 1 MiB: refused before any of it arrives.
    assert_eq!(h.b.handle_input(big, h.now, &[0x80, 0x80, 0x40]), 3);
    h.drain();
    assert_eq!(h.take(big), vec![Got::Error(Reason::FrameTooLarge)]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"still works");
    assert_eq!(payloads(&h.deliveries(s)), [b"still works"]);
}

#[test]
fn keepalive_timeout_closes_silent_connection() {
    let mut h = H::new(Config {
        limits: Limits {
            keepalive_ms: 1000,
            ..Config::default().limits
        },
        ..Config::default()
    });
    let (c, _) = h.connect("c", SessionMode::Clean);
    h.advance(Duration::from_millis(600));
    assert_eq!(h.take(c), vec![Got::Ping]);
    h.advance(Duration::from_millis(1000));
    assert!(h.take(c).contains(&Got::Error(Reason::KeepaliveTimeout)));
    assert!(h.closed.contains(&c));
}

#[test]
fn paused_connection_gets_no_bytes_until_resumed() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 10);
    h.b.pause_transmit(s);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    assert!(h.deliveries(s).is_empty());
    assert_eq!(h.take(p).len(), 1, "other connections still flow");
    h.b.resume_transmit(s);
    h.drain();
    assert_eq!(payloads(&h.deliveries(s)), [b"x"]);
}

#[test]
fn reoffered_partial_frame_is_not_activity() {
    let mut h = H::new(Config {
        limits: Limits {
            keepalive_ms: 1000,
            ..Config::default().limits
        },
        ..Config::default()
    });
    let (c, _) = h.connect("c", SessionMode::Clean);
    let partial = [40u8, 2, 0];
    assert_eq!(h.b.handle_input(c, h.now, &partial), 0);
    for _ in 0..20 {
        h.now += Duration::from_millis(100);
        // An adapter retrying its leftover must not keep the connection alive.
        if !h.closed.contains(&c) {
            assert_eq!(h.b.handle_input(c, h.now, &partial), 0);
        }
        h.b.handle_timeout(h.now);
        h.drain();
    }
    assert!(
        h.closed.contains(&c),
        "half frame kept the connection alive"
    );
    assert!(h.take(c).contains(&Got::Error(Reason::KeepaliveTimeout)));
}

/// A device's `Hello` on a serial line.
fn device_hello(client: &str) -> Frame<'_> {
    Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        client_id: client,
        session: SessionMode::Resume,
        token: None,
        limits: Limits {
            max_frame: 4096,
            credit: 8,
            keepalive_ms: 0,
        },
    })
}

#[test]
fn a_serial_line_carries_one_connection_after_another() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let timers = h.b.timers();
    let line = h.accept_line();
    assert_eq!(
        h.b.timers(),
        timers,
        "an idle line holds no handshake timer"
    );
    h.send(line, device_hello("dev"));
    assert_eq!(h.take(line), [Got::Welcome { present: false }]);
    let raw = h.lines[&line].last().unwrap().clone();
    assert_eq!(
        raw[0],
        serial::DELIMITER,
        "a new connection's output starts with a delimiter"
    );
    h.subscribe(line, 1, "cmd", None, 8);
    h.publish(p, 1, "cmd", QoS::AtLeastOnce, b"reboot");
    assert_eq!(h.deliveries(line)[0].attempt, 1);
    // The device restarts without acking: a new Hello on the same line is a
    // new connection, not a takeover, and resumes the session.
    h.send(line, device_hello("dev"));
    assert_eq!(h.take(line), [Got::Welcome { present: true }]);
    assert_eq!(h.lines[&line].last().unwrap()[0], serial::DELIMITER);
    h.subscribe(line, 1, "cmd", None, 8);
    let d = h.deliveries(line);
    assert_eq!((d[0].payload.as_slice(), d[0].attempt), (&b"reboot"[..], 2));
    h.ack(line, d[0].tag);
    // The device leaves: the line goes idle instead of closing.
    h.send(
        line,
        Frame::Close(Close {
            reason: Reason::Normal,
            text: "",
        }),
    );
    assert!(!h.closed.contains(&line));
    assert_eq!(h.b.connections(), 1, "an idle line carries no connection");
    // Anything but a Hello on an idle line is answered with an error; the
    // line stays open for the next Hello.
    h.send(line, Frame::Ping(1));
    assert_eq!(h.take(line), [Got::Error(Reason::ProtocolViolation)]);
    assert!(!h.closed.contains(&line));
    h.send(line, device_hello("dev"));
    assert_eq!(h.take(line), [Got::Welcome { present: true }]);
    let stats = h.b.stats();
    // pub, and the line's four connections (the third ended by the Ping).
    assert_eq!((stats.current_connections, stats.connections_total), (2, 5));
    // A shutdown closes lines too.
    h.b.shutdown(h.now);
    h.drain();
    assert!(h.closed.contains(&line));
}

#[test]
fn answers_owed_to_an_ended_connection_never_reach_the_next_one_on_the_line() {
    let mut h = H::new(Config::default());
    let line = h.accept_line();
    h.send(line, device_hello("dev"));
    h.take(line);
    // A persistent subscribe is answered once its record is stored...
    h.auto_persist = false;
    h.send(
        line,
        Frame::Subscribe(Subscribe {
            sub: 1,
            filter: "cmd",
            group: None,
            start: Start::New,
            qos: QoS::AtLeastOnce,
            credit: 8,
        }),
    );
    // ...but the device starts over first.
    h.send(line, device_hello("dev"));
    h.persist();
    assert_eq!(h.take(line), [Got::Welcome { present: true }]);
}

#[test]
fn a_serial_frame_the_broker_cannot_take_yet_is_offered_again() {
    let mut h = H::new(Config {
        max_pending_frames: 1,
        ..Config::default()
    });
    let line = h.accept_line();
    let mut bytes = vec![0u8; 1024];
    let mut len = serial::encode_frame(&device_hello("dev-3"), &mut bytes).unwrap();
    for sub in [1, 2] {
        let frame = Frame::Subscribe(Subscribe {
            sub,
            filter: "a",
            group: None,
            start: Start::New,
            qos: QoS::AtLeastOnce,
            credit: 8,
        });
        len += serial::encode_frame(&frame, &mut bytes[len..]).unwrap();
    }
    // Hello is taken and its Welcome queued: the queue is full, so the
    // Subscribes wait, unconsumed.
    let used = h.b.handle_input(line, h.now, &bytes[..len]);
    assert!(used < len);
    assert_eq!(h.b.handle_input(line, h.now, &bytes[used..len]), 0);
    let mut rest = &bytes[used..len];
    while !rest.is_empty() {
        h.drain();
        assert_eq!(h.readable.pop(), Some(line), "told when it may read again");
        let n = h.b.handle_input(line, h.now, rest);
        rest = &rest[n..];
    }
    h.drain();
    // Nothing lost, nothing twice.
    assert_eq!(
        h.take(line),
        [
            Got::Welcome { present: false },
            Got::SubAck(1),
            Got::SubAck(2)
        ]
    );
}

#[test]
fn a_delivery_too_large_for_the_transmit_buffer_is_fragmented_on_a_serial_line_too() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let line = h.accept_line();
    let mut hello = device_hello("dev");
    if let Frame::Hello(x) = &mut hello {
        x.limits.max_frame = 8192;
    }
    h.send(line, hello);
    h.take(line);
    h.subscribe(line, 1, "big", None, 8);
    // A 4 KiB buffer: the peer takes the delivery whole (its frame is 13
    // bytes short of 4 KiB, which the old bound took to be enough), but
    // framed for the line (COBS, CRC, delimiter) it is larger than the
    // buffer. It must arrive in fragments, not be dropped.
    h.buf = vec![0; 4096];
    let payload = vec![7u8; 4062];
    h.publish(p, 1, "big", QoS::AtLeastOnce, &payload);
    let parts = h.deliveries(line);
    assert!(
        parts.len() > 1,
        "cut to fit the buffer: {} part(s)",
        parts.len()
    );
    let joined: Vec<u8> = parts.iter().flat_map(|d| d.payload.clone()).collect();
    assert_eq!(joined, payload);
    assert_eq!(h.b.stats().protocol_errors, 0);
}

#[test]
fn a_damaged_frame_ends_the_connection_on_a_serial_line_and_the_line_stays() {
    let mut h = H::new(Config::default());
    let line = h.accept_line();
    // Noise on an idle line: nothing to end.
    assert_eq!(h.b.handle_input(line, h.now, &[9, 9, 9, 0]), 4);
    h.drain();
    assert!(h.take(line).is_empty());
    h.send(line, device_hello("dev"));
    assert_eq!(h.take(line), [Got::Welcome { present: false }]);
    // A frame whose CRC fails: whatever it carried is gone, so the
    // connection ends rather than let the frames after it overtake it.
    let mut bytes = vec![0u8; 64];
    let n = serial::encode_frame(&Frame::Ping(3), &mut bytes).unwrap();
    bytes[1] ^= 0x40;
    assert_eq!(h.b.handle_input(line, h.now, &bytes[..n]), n);
    h.drain();
    assert_eq!(h.take(line), [Got::Error(Reason::Malformed)]);
    assert!(
        !h.closed.contains(&line),
        "the line stays for the next Hello"
    );
    h.send(line, device_hello("dev"));
    assert_eq!(h.take(line), [Got::Welcome { present: true }]);
}
