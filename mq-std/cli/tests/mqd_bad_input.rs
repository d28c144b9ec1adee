//! `mqd` against peers that misbehave: each gets an error frame or a close, and a
//! well-behaved publisher and subscriber on the same daemon carry on.

mod support;

use std::time::Duration;

use mq_core::wire::*;
use support::{Flow, Got, Mqd, Raw};

const CONFIG: &str = r#"
keepalive_ms = 1000
max_frame = 65536

[[tokens]]
token = "good"
publish = [">"]
subscribe = [">"]

[[tokens]]
token = "limited"
publish = ["allowed.>"]
subscribe = ["allowed.>"]
"#;

const WAIT: Duration = Duration::from_secs(10);

fn is_error(got: &[Got]) -> bool {
    got.iter().any(|g| matches!(g, Got::Error(_)))
}

#[test]
fn misbehaving_peers_are_cut_off_and_others_carry_on() {
    let mqd = Mqd::start(CONFIG);
    let mut flow = Flow::new(mqd.addr, Some("good"));
    flow.check();

    // Random bytes instead of a hello.
    let mut r = Raw::connect(mqd.addr);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    r.send_bytes(&noise);
    let got = r.until_closed(WAIT);
    assert!(is_error(&got), "random bytes: {got:?}");
    flow.check();

    // A truncated frame, then the peer closes.
    let mut r = Raw::connect(mqd.addr);
    assert_eq!(r.hello("trunc", Some("good")), Got::Welcome);
    r.send_bytes(&[40, 2, 0, 1]); // a 40-byte frame of which 3 bytes arrive
    r.close_write();
    r.until_closed(WAIT);
    flow.check();

    // A frame larger than max_frame: refused from its length prefix.
    let mut r = Raw::connect(mqd.addr);
    assert_eq!(r.hello("big", Some("good")), Got::Welcome);
    r.send_bytes(&[0x80, 0x80, 0x80, 0x32]); // 100 MiB announced
    let got = r.until_closed(WAIT);
    assert!(
        got.contains(&Got::Error(Reason::FrameTooLarge)),
        "oversized: {got:?}"
    );
    flow.check();

    // Half a frame that never completes: closed by the keepalive.
    let mut r = Raw::connect(mqd.addr);
    assert_eq!(r.hello("half", Some("good")), Got::Welcome);
    r.answer_pings = false;
    r.send_bytes(&[40, 2, 0]);
    let got = r.until_closed_while(WAIT, || flow.check());
    assert!(
        got.contains(&Got::Error(Reason::KeepaliveTimeout)),
        "half frame: {got:?}"
    );
    flow.check();

    // A wrong token, and none at all.
    let mut r = Raw::connect(mqd.addr);
    assert_eq!(
        r.hello("intruder", Some("wrong")),
        Got::Error(Reason::BadToken)
    );
    r.until_closed(WAIT);
    let mut r = Raw::connect(mqd.addr);
    assert_eq!(r.hello("anonymous", None), Got::Error(Reason::BadToken));
    r.until_closed(WAIT);
    flow.check();

    // A publish and a subscribe outside the token's permissions: refused, and
    // the connection stays usable.
    let mut r = Raw::connect(mqd.addr);
    assert_eq!(r.hello("limited", Some("limited")), Got::Welcome);
    r.publish(1, "flow", QoS::AtLeastOnce, b"sneaky");
    assert_eq!(r.recv(WAIT), Some(Got::PubReject(1, Reason::NotAuthorized)));
    r.send(Frame::Subscribe(Subscribe {
        sub: 1,
        filter: "flow",
        group: None,
        start: Start::New,
        qos: QoS::AtLeastOnce,
        credit: 1,
    }));
    assert_eq!(r.recv(WAIT), Some(Got::SubReject(1, Reason::NotAuthorized)));
    r.publish(2, "allowed.x", QoS::AtLeastOnce, b"fine");
    assert_eq!(r.recv(WAIT), Some(Got::PubAck(2)));
    flow.check();

    // A frame that is not allowed before the handshake.
    let mut r = Raw::connect(mqd.addr);
    r.send(Frame::Ping(1));
    let got = r.until_closed(WAIT);
    assert!(
        got.contains(&Got::Error(Reason::ProtocolViolation)),
        "no hello: {got:?}"
    );
    flow.check();

    assert!(mqd.metric("mq_protocol_errors_total") >= 3);
    assert!(mqd.metric("mq_auth_failures_total") >= 4);
}

/// A serial line on Windows (`COM3`) is refused at start with an error that
/// says so, instead of `mqd` serving without it.
#[cfg(windows)]
#[test]
fn a_serial_line_on_windows_is_refused_with_a_clear_error() {
    let err = Mqd::builder("[serial]\npath = \"COM3\"\n")
        .try_start()
        .unwrap_err();
    assert!(
        err.contains("cannot open serial line COM3") && err.contains("not supported on windows"),
        "{err}"
    );
}
