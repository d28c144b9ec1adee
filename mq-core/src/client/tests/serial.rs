//! A session on a serial line: the line carries one connection after another,
//! so each `Hello` follows a lone delimiter and frames of an earlier connection
//! arriving before `Welcome` are dropped.

use super::*;
use crate::framing::serial::DELIMITER;

#[test]
fn serial_framing_round_trip() {
    let mut s: Session<[u8; 2048]> = Session::new(config(), Framing::Serial, [0; 2048], [0; 2048]);
    let now = Instant::from_millis(5);
    s.connect(now);
    s.handle_connected(now);
    let mut line = [0u8; 4096];
    let n = s.poll_transmit(now, &mut line).unwrap();
    let mut dec = SerialDecoder::new([0u8; 4096]);
    // The lone delimiter before the Hello.
    assert!(matches!(dec.feed(&line[..n]), (1, None)));
    let (used, out) = dec.feed(&line[1..n]);
    assert_eq!(used, n - 1);
    assert!(matches!(out, Some(Ok(Frame::Hello(_)))));
    // The serial driver decodes the broker's frames itself.
    s.handle_frame(now, T::welcome(true, limits(512, 0)))
        .unwrap();
    assert_eq!(s.poll_event(), Some(Event::Connect));
    assert_eq!(
        s.poll_event(),
        Some(Event::Connected {
            session_present: true
        })
    );
    s.publish(now, "uart.x", &[0; 50], &PublishOptions::default())
        .unwrap();
    let n = s.poll_transmit(now, &mut line).unwrap();
    let (_, out) = dec.feed(&line[..n]);
    let Some(Ok(Frame::Publish(p))) = out else {
        panic!("expected a publish")
    };
    assert_eq!((p.topic, p.payload.len()), ("uart.x", 50));
}

#[test]
fn every_hello_on_a_serial_line_follows_a_lone_delimiter() {
    let mut t = T::serial();
    t.handshake(false, limits(4096, 1_000));
    assert_eq!(t.delimiters, 1);
    t.s.publish(t.now, "a.b", b"x", &PublishOptions::default())
        .unwrap();
    assert_eq!(kinds(&t.tx()), ["publish"]);
    assert_eq!(t.delimiters, 1, "only before a Hello");
    // A new connection on the same line: the delimiter again.
    t.reconnect(true, limits(4096, 1_000));
    assert_eq!(t.delimiters, 2);
    // Delimiter and Hello go together or not at all.
    t.s.handle_disconnected(t.now);
    t.now = t.s.poll_timeout().unwrap();
    t.s.handle_timeout(t.now);
    t.s.handle_connected(t.now);
    let mut buf = [0xAA; 200];
    let mut fitted = None;
    for len in 1..buf.len() {
        if let Some(n) = t.s.poll_transmit(t.now, &mut buf[..len]) {
            fitted = Some((len, n));
            break;
        }
        assert!(
            buf.iter().all(|&b| b == 0xAA),
            "untouched when it does not fit"
        );
    }
    let (len, n) = fitted.expect("the hello fits 200 bytes");
    assert_eq!(buf[0], DELIMITER);
    let mut dec = SerialDecoder::new(vec![0u8; 256]);
    let (_, hello) = dec.feed(&buf[1..n]);
    let Some(Ok(hello @ Frame::Hello(_))) = hello else {
        panic!("expected the hello")
    };
    assert_eq!(len, 1 + Framing::Serial.max_framed_len(hello.encoded_len()));
    // A stream session writes no delimiter.
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    assert_eq!(t.delimiters, 0);
}

#[test]
fn stale_frames_before_welcome_are_dropped_on_a_serial_line() {
    let mut t = T::serial();
    t.s.connect(t.now);
    t.s.handle_connected(t.now);
    assert_eq!(kinds(&t.tx()), ["hello"]);
    t.ev();
    // What the broker sent the last connection is still on the line.
    let stale = [
        Frame::Deliver(deliver(1, "a.b", 1, 9, QoS::AtLeastOnce, b"old")),
        Frame::PubAck(PubAck {
            id: 1,
            seq: 1,
            duplicate: false,
        }),
        Frame::PubReject(PubReject {
            id: 2,
            reason: Reason::QueueFull,
        }),
        Frame::SubAck(SubAck { sub: 1 }),
        Frame::SubReject(SubReject {
            sub: 2,
            reason: Reason::NotAuthorized,
        }),
        Frame::UnsubAck(UnsubAck { sub: 3 }),
    ];
    for frame in stale {
        assert!(t.feed(frame));
    }
    assert!(t.ev().is_empty());
    assert!(t.tx().is_empty(), "no error frame: nothing is wrong");
    assert_eq!(t.s.state(), State::Handshaking);
    assert_eq!((t.s.stats().stale_frames, t.s.stats().frames_in), (6, 0));
    assert!(t.feed(T::welcome(true, limits(4096, 0))));
    assert_eq!(t.ev(), [Ev::Connected(true)]);
    assert_eq!(t.s.stats().protocol_errors, 0);
    // Once connected they are frames like any other: an answer to nothing is
    // ignored, a delivery for no subscription is a violation.
    assert!(t.feed(Frame::PubAck(PubAck {
        id: 1,
        seq: 1,
        duplicate: false
    })));
    assert!(t.ev().is_empty());
    assert!(t.feed(Frame::Deliver(deliver(
        1,
        "a.b",
        1,
        9,
        QoS::AtLeastOnce,
        b"x"
    ))));
    assert_eq!(t.ev(), [Ev::Disconnected(Reason::ProtocolViolation)]);
    assert_eq!(t.s.stats().stale_frames, 6);
}

/// A serial session whose `Hello` is out, waiting for `Welcome`.
fn handshaking() -> T {
    let mut t = T::serial();
    t.s.connect(t.now);
    t.s.handle_connected(t.now);
    t.tx();
    t.ev();
    t
}

#[test]
fn a_damaged_frame_ends_an_open_serial_connection_but_not_a_handshake() {
    let mut t = handshaking();
    // During the handshake it may be the tail of an earlier connection's frame.
    t.s.handle_damaged_frame(t.now);
    assert_eq!(t.s.state(), State::Handshaking);
    assert!(t.ev().is_empty());
    assert!(t.feed(T::welcome(true, limits(4096, 0))));
    assert_eq!(t.ev(), [Ev::Connected(true)]);
    // Once open, a lost frame would let the next ones overtake it: the
    // connection ends, with an error frame to the broker.
    t.s.handle_damaged_frame(t.now);
    assert_eq!(t.ev(), [Ev::Disconnected(Reason::Malformed)]);
    assert_eq!(kinds(&t.tx()), ["error"]);
}

#[test]
fn a_frame_only_clients_send_is_refused_unread_and_ends_the_connection() {
    use crate::framing::serial::{self, SerialError};
    use crate::wire::{Ack, DecodeError};
    // A client's decoder refuses it by its tag; any other decoder reads it.
    let ack = Frame::Ack(Ack { tag: 1 });
    let mut line = [0u8; 64];
    let n = serial::encode_frame(&ack, &mut line).unwrap();
    let mut client = SerialDecoder::for_client([0u8; 64]);
    let (_, out) = client.feed(&line[..n]);
    assert_eq!(out, Some(Err(SerialError::Frame(DecodeError::Unexpected))));
    let mut any = SerialDecoder::new([0u8; 64]);
    assert_eq!(any.feed(&line[..n]).1, Some(Ok(ack)));
    // The session ends the connection for it, during the handshake too (a
    // damaged frame would be ignored there).
    let mut t = handshaking();
    t.s.handle_unexpected_frame(t.now);
    assert_eq!(t.ev(), [Ev::Disconnected(Reason::ProtocolViolation)]);
    assert_eq!(kinds(&t.tx()), ["error"]);
}
