use super::{err, one, round_trip};
use crate::nats::{Limits, Message, Op, ParseError, Parsed};

#[test]
fn what_a_person_types() {
    assert_eq!(
        one(b"PUB orders 5\r\nhello\r\n"),
        Op::Pub(Message {
            subject: "orders",
            reply: None,
            headers: None,
            payload: b"hello"
        })
    );
    assert_eq!(
        one(b"sub orders 1\r\n"),
        Op::Sub {
            subject: "orders",
            queue: None,
            sid: "1"
        }
    );
    assert_eq!(one(b"ping\n"), Op::Ping);
    assert_eq!(one(b"PONG\r\n"), Op::Pong);
    // A bare LF after the payload, as `nc` without -C sends it.
    assert_eq!(
        one(b"pub a  2\nhi\n"),
        Op::Pub(Message {
            subject: "a",
            reply: None,
            headers: None,
            payload: b"hi"
        })
    );
}

#[test]
fn every_argument_form() {
    assert_eq!(
        one(b"PUB a _INBOX.x 0\r\n\r\n"),
        Op::Pub(Message {
            subject: "a",
            reply: Some("_INBOX.x"),
            headers: None,
            payload: b""
        })
    );
    assert_eq!(
        one(b"HPUB a r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
        Op::Pub(Message {
            subject: "a",
            reply: Some("r"),
            headers: Some(b"NATS/1.0\r\n\r\n"),
            payload: b"hi"
        })
    );
    assert_eq!(
        one(b"SUB q.* workers 7\r\n"),
        Op::Sub {
            subject: "q.*",
            queue: Some("workers"),
            sid: "7"
        }
    );
    assert_eq!(
        one(b"UNSUB 7 3\r\n"),
        Op::Unsub {
            sid: "7",
            max: Some(3)
        }
    );
    assert_eq!(
        one(b"UNSUB 7\r\n"),
        Op::Unsub {
            sid: "7",
            max: None
        }
    );
    assert_eq!(
        one(b"CONNECT {\"verbose\":false}\r\n"),
        Op::Connect("{\"verbose\":false}")
    );
    assert_eq!(
        one(b"-ERR 'Stale Connection'\r\n"),
        Op::Err("Stale Connection")
    );
    assert_eq!(one(b"+OK\r\n"), Op::Ok);
}

#[test]
fn round_trips() {
    let m = Message {
        subject: "a.b",
        reply: Some("_INBOX.1"),
        headers: Some(b"NATS/1.0\r\nK: v\r\n\r\n"),
        payload: b"x\r\ny",
    };
    round_trip(Op::Pub(m));
    round_trip(Op::Pub(Message {
        headers: None,
        reply: None,
        ..m
    }));
    round_trip(Op::Msg { sid: "9", msg: m });
    round_trip(Op::Msg {
        sid: "9",
        msg: Message { headers: None, ..m },
    });
    round_trip(Op::Sub {
        subject: "a.>",
        queue: Some("g"),
        sid: "1",
    });
    round_trip(Op::Unsub {
        sid: "1",
        max: Some(u64::from(u32::MAX)),
    });
    round_trip(Op::Info("{\"server_id\":\"x\"}"));
    round_trip(Op::Err("Unknown Protocol Operation"));
    for op in [Op::Ping, Op::Pong, Op::Ok] {
        round_trip(op);
    }
}

#[test]
fn partial_input_asks_for_more() {
    let whole = b"PUB orders 5\r\nhello\r\n";
    for cut in 0..whole.len() {
        match Op::parse(&whole[..cut], Limits::default()) {
            Ok(Parsed::Incomplete(need)) => assert!(need > cut && need <= whole.len()),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn bad_input_is_named() {
    assert_eq!(err(b"FOO bar\r\n"), ParseError::UnknownOperation);
    assert_eq!(err(b"PINGX\r\n"), ParseError::UnknownOperation);
    assert_eq!(err(b"PING extra\r\n"), ParseError::UnknownOperation);
    assert!(matches!(
        err(b"PUB a b c d\r\n"),
        ParseError::BadArguments(_)
    ));
    assert!(matches!(err(b"PUB a x\r\n"), ParseError::BadArguments(_)));
    assert!(matches!(err(b"PUB a -1\r\n"), ParseError::BadArguments(_)));
    assert!(matches!(err(b"SUB a\r\n"), ParseError::BadArguments(_)));
    assert!(matches!(err(b"UNSUB\r\n"), ParseError::BadArguments(_)));
    assert!(matches!(err(b"UNSUB 1 x\r\n"), ParseError::BadArguments(_)));
    assert!(matches!(
        err(b"HPUB a 5 3\r\n"),
        ParseError::BadArguments(_)
    ));
    assert!(matches!(err(b"CONNECT\r\n"), ParseError::BadArguments(_)));
    assert!(matches!(
        err(b"PUB \xff 1\r\nx\r\n"),
        ParseError::BadArguments(_)
    ));
    // The size was wrong: what follows the payload is not CRLF.
    assert_eq!(
        err(b"PUB a 3\r\nhelloo\r\n"),
        ParseError::PayloadNotTerminated
    );
    assert_eq!(
        ParseError::PayloadNotTerminated.server_text(),
        "Unknown Protocol Operation"
    );
}

#[test]
fn limits_are_enforced_before_the_bytes_arrive() {
    let limits = Limits {
        max_control_line: 16,
        max_payload: 4,
    };
    assert_eq!(
        Op::parse(b"PUB a 5\r\n", limits),
        Err(ParseError::PayloadTooLarge)
    );
    assert_eq!(
        ParseError::PayloadTooLarge.server_text(),
        "Maximum Payload Violation"
    );
    assert_eq!(
        Op::parse(b"SUB aaaaaaaaaaaaaaaaaaaa", limits),
        Err(ParseError::ControlLineTooLong)
    );
    assert_eq!(Op::parse(b"SUB aaaa", limits), Ok(Parsed::Incomplete(9)));
}

#[test]
fn encode_says_how_much_room_it_needs() {
    let op = Op::Pub(Message {
        subject: "orders",
        reply: None,
        headers: None,
        payload: b"hello",
    });
    let mut small = [0u8; 4];
    let e = op.encode(&mut small).unwrap_err();
    assert_eq!(e.needed, b"PUB orders 5\r\nhello\r\n".len());
    assert_eq!(small, [0; 4]);
}
