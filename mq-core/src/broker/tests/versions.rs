//! Protocol versions: a version-2 client is served in version 2 (its
//! `Welcome` without the epoch, everything else as to any client); a
//! version-2 node link and versions the broker does not serve are refused.

use super::*;
use crate::framing::serial::CRC32C;
use crate::framing::stream::Split;
use crate::wire::v2::serde_v2;

fn hello(version: u16, client_id: &str) -> Frame<'_> {
    Frame::Hello(Hello {
        version,
        client_id,
        session: SessionMode::Clean,
        token: None,
        limits: Limits {
            max_frame: 4096,
            credit: 8,
            keepalive_ms: 0,
        },
    })
}

/// Sends `hello` on `conn` and takes the broker's answer as the bytes it
/// wrote: the harness would decode them as this version's frames.
fn raw_answer(h: &mut H, conn: ConnId, hello: Frame<'_>) -> Vec<u8> {
    h.mqtt.insert(conn, Vec::new());
    h.send(conn, hello);
    h.mqtt.remove(&conn).unwrap()
}

/// The one frame in `raw` (stream framing), as its body.
fn stream_body(raw: &[u8]) -> &[u8] {
    match StreamDecoder::new(u32::MAX).split(raw).unwrap() {
        Split::Whole { body, consumed } if consumed == raw.len() => body,
        other => panic!("not one frame: {other:?} of {raw:?}"),
    }
}

/// What a version-2 client decodes from a frame's body: all of it, or it
/// refuses the frame.
fn decode_v2(body: &[u8]) -> serde_v2::Welcome {
    match postcard::take_from_bytes::<serde_v2::Frame<'_>>(body) {
        Ok((serde_v2::Frame::Welcome(w), [])) => w,
        other => panic!("not version 2's Welcome: {other:?}"),
    }
}

fn welcome_v2(present: bool) -> serde_v2::Welcome {
    serde_v2::Welcome {
        version: 2,
        session_present: present,
        limits: Config::default().limits,
    }
}

/// The text of the error frame that is all of `raw`.
fn error_text(raw: &[u8]) -> (Reason, String) {
    match Frame::decode(stream_body(raw)).unwrap() {
        Frame::Error(e) => (e.code, e.text.to_string()),
        other => panic!("not an error: {other:?}"),
    }
}

#[test]
fn a_version_2_client_gets_a_version_2_welcome_and_is_served() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let c = h.b.accept(h.now, Framing::Stream).unwrap();
    let raw = raw_answer(&mut h, c, hello(2, "old-device"));
    let body = stream_body(&raw);
    assert_eq!(decode_v2(body), welcome_v2(false));
    // This version's decoder takes the epoch for missing.
    assert!(Frame::decode(body).is_err());

    // Everything else as to any client.
    h.subscribe(c, 1, "cmd.>", None, 8);
    h.publish(c, 7, "telemetry.t", QoS::AtLeastOnce, b"21.5");
    assert_eq!(
        h.take(c),
        [Got::PubAck {
            id: 7,
            seq: 1,
            dup: false
        }]
    );
    h.publish(p, 1, "cmd.reboot", QoS::AtLeastOnce, b"now");
    let d = h.deliveries(c);
    assert_eq!(payloads(&d), [b"now"]);
    h.ack(c, d[0].tag);
    assert_eq!(h.b.stats().current_connections, 2);
    assert!(h.take(c).is_empty());

    // A client of this version on the next connection gets this version's.
    let (_new, _) = h.connect("new-device", SessionMode::Clean);
}

#[test]
fn a_version_2_device_on_a_serial_line_gets_a_version_2_welcome() {
    let mut h = H::new(Config::default());
    let line = h.accept_line();
    let mut raw = raw_answer(&mut h, line, hello(2, "old-device"));
    // A lone delimiter, then the frame: COBS of its body and CRC, then a
    // delimiter.
    assert_eq!(
        (raw[0], raw.last()),
        (serial::DELIMITER, Some(&serial::DELIMITER))
    );
    let end = raw.len() - 1;
    let n = cobs::decode_in_place(&mut raw[1..end]).unwrap();
    let decoded = &raw[1..1 + n];
    let (w, rest) =
        postcard::take_from_bytes_crc32::<serde_v2::Frame<'_>>(decoded, CRC32C.digest()).unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(w, serde_v2::Frame::Welcome(welcome_v2(false)));
    h.subscribe(line, 1, "cmd", None, 8);

    // The next connection on the line speaks its own version.
    h.send(line, hello(PROTOCOL_VERSION, "new-device"));
    assert_eq!(h.take(line), [Got::Welcome { present: false }]);
}

#[test]
fn a_version_2_node_link_is_refused() {
    let mut h = H::new(Config::default());
    for client in ["$node.east", "$link.east"] {
        let c = h.b.accept(h.now, Framing::Stream).unwrap();
        let (code, text) = error_text(&raw_answer(&mut h, c, hello(2, client)));
        assert_eq!(code, Reason::UnsupportedVersion, "{client}");
        assert!(text.contains("links need protocol version 3"), "{text}");
        assert!(h.closed.contains(&c), "{client}");
    }
    // Version 3 links as before.
    let c = h.b.accept(h.now, Framing::Stream).unwrap();
    h.send(c, hello(PROTOCOL_VERSION, "$node.east"));
    assert_eq!(h.take(c), [Got::Welcome { present: false }]);
}

#[test]
fn versions_the_broker_does_not_serve_are_refused() {
    let mut h = H::new(Config::default());
    for version in [0, 1, 4, u16::MAX] {
        let c = h.b.accept(h.now, Framing::Stream).unwrap();
        h.send(c, hello(version, "dev"));
        assert_eq!(
            h.take(c),
            [Got::Error(Reason::UnsupportedVersion)],
            "version {version}"
        );
        assert!(h.closed.contains(&c), "version {version}");
    }
    assert_eq!(h.b.stats().current_connections, 0);
}
