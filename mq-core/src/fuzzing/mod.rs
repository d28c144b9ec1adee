//! Fuzz harness bodies, shared by the `cargo fuzz` targets in `mq-core/fuzz` and by
//! the test that replays their checked-in corpus. Each function panics when an
//! invariant breaks; every other outcome (including a decode error) is fine.

use core::ops::ControlFlow;

mod nats;
#[cfg(feature = "alloc")]
pub use nats::nats_broker;
pub use nats::nats_parse;

use crate::framing::{serial, stream};
use crate::mqtt;
use crate::wire::Frame;

/// Encodes `frame` and checks that decoding gives it back.
fn assert_reencodes(frame: &Frame<'_>, scratch: &mut [u8]) {
    let n = frame
        .encode(scratch)
        .expect("a decoded frame must re-encode into the buffer it came from");
    let again = Frame::decode(&scratch[..n]).expect("re-encoded frame must decode");
    assert_eq!(&again, frame, "frame changed through a round trip");
}

/// `Frame::decode` on arbitrary bytes; accepted frames must round-trip.
pub fn frame_decode(data: &[u8]) {
    if let Ok(frame) = Frame::decode(data) {
        let mut scratch = [0u8; 4096];
        if frame.encoded_len() <= scratch.len() {
            assert_reencodes(&frame, &mut scratch);
        }
    }
}

/// The stream decoder over arbitrary bytes fed in arbitrary chunks. The first two
/// bytes choose the maximum frame, the third the chunk size.
pub fn stream_decoder(data: &[u8]) {
    let [a, b, c, rest @ ..] = data else { return };
    let max_frame = u32::from(u16::from_le_bytes([*a, *b])) % 2048 + 1;
    let chunk = usize::from(*c) + 1;
    let decoder = stream::StreamDecoder::new(max_frame);
    let cap = max_frame as usize + stream::MAX_PREFIX;
    let mut storage = [0u8; 2048 + stream::MAX_PREFIX];
    let mut rb = stream::RecvBuffer::new(&mut storage[..cap]);
    let mut scratch = [0u8; 4096];
    feed(rest, chunk, &mut rb, |rb| {
        loop {
            match decoder.decode(rb.data()) {
                Ok(stream::Decoded::Frame { frame, consumed }) => {
                    assert!(consumed <= cap);
                    assert_reencodes(&frame, &mut scratch);
                    rb.consume(consumed);
                }
                Ok(stream::Decoded::Incomplete { needed }) => {
                    assert!(needed <= cap, "decoder asks to buffer past the maximum");
                    return ControlFlow::Continue(());
                }
                // A real connection closes here.
                Err(_) => return ControlFlow::Break(()),
            }
        }
    });
}

/// Feeds `data` into `rb` in pieces of `chunk` bytes, calling `drain` after each
/// until it breaks (the connection closes).
fn feed(
    data: &[u8],
    chunk: usize,
    rb: &mut stream::RecvBuffer<&mut [u8]>,
    mut drain: impl FnMut(&mut stream::RecvBuffer<&mut [u8]>) -> ControlFlow<()>,
) {
    for mut piece in data.chunks(chunk) {
        while !piece.is_empty() {
            let n = rb.extend_from(piece);
            piece = &piece[n..];
            if drain(rb).is_break() {
                return;
            }
        }
    }
}

/// The serial decoder over arbitrary bytes; the first byte chooses the chunk size.
pub fn serial_decoder(data: &[u8]) {
    let [c, rest @ ..] = data else { return };
    let chunk = usize::from(*c) + 1;
    let mut dec = serial::SerialDecoder::new([0u8; 512]);
    let mut scratch = [0u8; 4096];
    let (mut ok, mut bad) = (0u32, 0u32);
    for mut piece in rest.chunks(chunk) {
        while !piece.is_empty() {
            let (n, out) = dec.feed(piece);
            assert!(n > 0 && n <= piece.len());
            match out {
                Some(Ok(frame)) => {
                    assert_reencodes(&frame, &mut scratch);
                    ok += 1;
                }
                Some(Err(_)) => bad += 1,
                None => {}
            }
            piece = &piece[n..];
            assert!(dec.buffered() <= 512);
        }
    }
    let s = dec.stats();
    assert_eq!(s.frames, ok);
    assert_eq!(
        s.overflows + s.cobs_errors + s.crc_errors + s.malformed,
        bad
    );
}

/// The MQTT version a fuzz input's byte picks.
fn mqtt_version(b: u8) -> mqtt::Version {
    match b % 3 {
        0 => mqtt::Version::V3_1,
        1 => mqtt::Version::V3_1_1,
        _ => mqtt::Version::V5,
    }
}

/// Encodes a decoded MQTT packet and checks that decoding gives it back.
fn assert_mqtt_reencodes(packet: &mqtt::Packet<'_>, version: mqtt::Version) {
    let mut scratch = [0u8; 8192];
    if packet.encoded_len(version) > scratch.len() {
        return;
    }
    let n = packet
        .encode(version, &mut scratch)
        .expect("a decoded packet must re-encode");
    assert_eq!(n, packet.encoded_len(version), "encoded_len is exact");
    let again =
        mqtt::Packet::decode(&scratch[..n], version).expect("re-encoded packet must decode");
    assert_eq!(&again, packet, "packet changed through a round trip");
}

/// `mqtt::Packet::decode` on arbitrary bytes, in the version the first byte
/// picks; accepted packets must round-trip.
pub fn mqtt_decode(data: &[u8]) {
    let [v, rest @ ..] = data else { return };
    let version = mqtt_version(*v);
    if let Ok(packet) = mqtt::Packet::decode(rest, version) {
        assert_mqtt_reencodes(&packet, version);
    }
}

/// The MQTT stream decoder over arbitrary bytes fed in arbitrary chunks. The
/// first two bytes choose the maximum packet size, the third the chunk size,
/// the fourth the version before CONNECT (a CONNECT sets it, as a connection
/// does). The decoder must never ask to buffer past its maximum.
pub fn mqtt_stream(data: &[u8]) {
    let [a, b, c, v, rest @ ..] = data else {
        return;
    };
    let max = u32::from(u16::from_le_bytes([*a, *b])) % 4096 + 2;
    let chunk = usize::from(*c) + 1;
    let mut decoder = mqtt::stream::PacketDecoder::new(mqtt_version(*v), max);
    let mut storage = [0u8; 4098];
    let mut rb = stream::RecvBuffer::new(&mut storage[..max as usize]);
    feed(rest, chunk, &mut rb, |rb| {
        loop {
            match decoder.decode(rb.data()) {
                Ok(mqtt::stream::Decoded::Packet { packet, consumed }) => {
                    assert!(consumed <= max as usize);
                    assert_mqtt_reencodes(&packet, decoder.version());
                    if let mqtt::Packet::Connect(c) = packet {
                        decoder.set_version(c.version);
                    }
                    rb.consume(consumed);
                }
                Ok(mqtt::stream::Decoded::Incomplete { needed }) => {
                    assert!(
                        needed <= max as usize,
                        "decoder asks to buffer past the maximum"
                    );
                    return ControlFlow::Continue(());
                }
                // A real connection closes here.
                Err(_) => return ControlFlow::Break(()),
            }
        }
    });
}

/// The MQTT ↔ mq topic mapping over arbitrary text: an MQTT topic maps to an mq
/// topic and back to itself (or is too long for mq), an mq topic with an MQTT
/// name maps back to itself, and filters map both ways.
pub fn mqtt_topic(data: &[u8]) {
    use crate::topic::{Filter, Topic};
    use mqtt::topic::{self as t, TopicMapError};
    let Ok(s) = core::str::from_utf8(data) else {
        return;
    };
    let (mut mq_buf, mut mqtt_buf) = ([0u8; t::MQ_BUF_LEN], [0u8; t::MQTT_BUF_LEN]);
    match t::to_mq_topic(s, &mut mq_buf) {
        Ok(mq) => {
            let back = t::to_mqtt_topic(mq, &mut mqtt_buf).expect("an MQTT topic maps back");
            assert_eq!(back, s, "MQTT -> mq -> MQTT changed the topic");
        }
        Err(TopicMapError::TooLong | TopicMapError::TooManyLevels) => {}
        Err(_) => assert!(s.is_empty() || s.contains(['+', '#', '\0'])),
    }
    if let Ok(f) = t::MqttFilter::parse(s)
        && let Ok(mq) = t::to_mq_filter(f.filter, &mut mq_buf)
    {
        assert!(t::to_mqtt_filter(mq.filter, &mut mqtt_buf).is_ok());
    }
    if let Ok(topic) = Topic::new(s)
        && let Ok(name) = t::to_mqtt_topic(topic, &mut mqtt_buf)
    {
        let again = t::to_mq_topic(name, &mut mq_buf).expect("an MQTT name maps back");
        assert_eq!(again.as_str(), s, "mq -> MQTT -> mq changed the topic");
    }
    if let Ok(filter) = Filter::new(s) {
        let _ = t::to_mqtt_filter(filter, &mut mqtt_buf);
    }
}

/// The broker's MQTT connection codec over arbitrary bytes fed in arbitrary
/// chunks (the first byte chooses the chunk size, the second how far time
/// moves between them), beside a well-behaved MQTT subscriber: nothing
/// panics, the broker's invariants hold, everything it writes to the
/// subscriber is a valid MQTT 5 packet, and every store record restores.
#[cfg(feature = "alloc")]
pub fn mqtt_broker(data: &[u8]) {
    use crate::broker::{Broker, Config, Protocol};
    use crate::time::Instant;
    use alloc::vec::Vec;

    /// CONNECT (MQTT 5, client id `w`, clean start), then SUBSCRIBE `#` at QoS 1.
    const WATCHER: &[u8] = &[
        0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 0, 0, 0, 1, b'w', 0x82, 7, 0, 1, 0, 0, 1,
        b'#', 1,
    ];
    let [c, t, rest @ ..] = data else { return };
    let chunk = usize::from(*c) + 1;
    let step = core::time::Duration::from_millis(u64::from(*t) * 50);
    let mut cfg = Config::default();
    cfg.limits.max_frame = 4096;
    let mut b = Broker::new(cfg);
    let mut now = Instant::from_millis(1_000);
    let (Ok(fuzzed), Ok(watcher)) = (b.accept(now, Protocol::Mqtt), b.accept(now, Protocol::Mqtt))
    else {
        panic!("the broker refused a connection");
    };
    assert_eq!(b.handle_input(watcher, now, WATCHER), WATCHER.len());
    let mut pending: Vec<u8> = Vec::new();
    let mut watched: Vec<u8> = Vec::new();
    let mut records: Vec<Vec<u8>> = Vec::new();
    let mut buf = alloc::vec![0u8; 2048];
    let mut open = true;
    for piece in rest.chunks(chunk).chain(core::iter::once(&[][..])) {
        if open {
            pending.extend_from_slice(piece);
            let used = b.handle_input(fuzzed, now, &pending);
            assert!(used <= pending.len());
            pending.drain(..used);
        }
        now += step;
        b.handle_timeout(now);
        let closed = run_until_idle(&mut b, now, &mut buf, watcher, &mut watched, &mut records);
        open &= !closed.contains(&fuzzed);
        b.check_invariants().expect("broker invariants");
    }
    let dec = mqtt::stream::PacketDecoder::new(mqtt::Version::V5, mqtt::MAX_PACKET_SIZE);
    let mut at = 0;
    while let Ok(mqtt::stream::Split::Whole(p)) = dec.split(&watched[at..]) {
        mqtt::Packet::decode(p, mqtt::Version::V5).expect("the broker wrote a valid packet");
        at += p.len();
    }
    assert_eq!(at, watched.len(), "the broker wrote part of a packet");
    let mut again = Broker::new(Config::default());
    for r in &records {
        again.restore(now, r).expect("every record restores");
    }
}

/// Drains a broker until it has nothing more to do: store records are
/// persisted at once (and kept in `records`), bytes for `watcher` appended to
/// `watched`, closed connections reported closed. Returns those.
#[cfg(feature = "alloc")]
fn run_until_idle(
    b: &mut crate::broker::Broker,
    now: crate::time::Instant,
    buf: &mut [u8],
    watcher: crate::broker::ConnId,
    watched: &mut alloc::vec::Vec<u8>,
    records: &mut alloc::vec::Vec<alloc::vec::Vec<u8>>,
) -> alloc::vec::Vec<crate::broker::ConnId> {
    use crate::broker::Event;
    let mut closed = alloc::vec::Vec::new();
    loop {
        let mut progress = false;
        while let Some(op) = b.poll_store() {
            records.push(op.bytes().to_vec());
            b.handle_persisted(op.token, now);
            progress = true;
        }
        while let Some(tx) = b.poll_transmit(now, buf) {
            if tx.conn == watcher {
                watched.extend_from_slice(&buf[..tx.len]);
            }
            progress = true;
        }
        while let Some(e) = b.poll_event() {
            if let Event::Close(conn) = e {
                closed.push(conn);
                b.handle_closed(conn, now);
            }
            progress = true;
        }
        if !progress {
            return closed;
        }
    }
}
