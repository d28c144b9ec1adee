//! Replay from retention: sequence numbers, last N, cursors, paging.

use super::*;

#[test]
fn replay_from_sequence_and_last_n() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    for i in 1..=5u8 {
        h.publish(p, u32::from(i), "log", QoS::AtLeastOnce, &[i]);
    }
    let (a, _) = h.connect("a", SessionMode::Clean);
    h.subscribe_at(a, 1, "log", None, 100, Start::Seq(3));
    assert_eq!(payloads(&h.deliveries(a)), [[3u8], [4], [5]]);
    let (b, _) = h.connect("b", SessionMode::Clean);
    h.subscribe_at(b, 1, "log", None, 100, Start::Last(2));
    assert_eq!(payloads(&h.deliveries(b)), [[4u8], [5]]);
    h.publish(p, 9, "log", QoS::AtLeastOnce, &[6]);
    assert_eq!(payloads(&h.deliveries(b)), [[6u8]]);
}

#[test]
fn retained_in_its_topic_when_topics_were_made_while_it_waited_for_the_store() {
    // A publish finds its topic once and retains its message there when it is
    // released; new topics made meanwhile move the table's entries.
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.auto_persist = false;
    h.publish(p, 1, "log", QoS::AtLeastOnce, b"kept");
    for i in 0..200u32 {
        h.publish(p, 0, &alloc::format!("other.{i}"), QoS::AtMostOnce, b"x");
    }
    h.persist();
    let (a, _) = h.connect("a", SessionMode::Clean);
    h.subscribe_at(a, 1, "log", None, 100, Start::Last(5));
    assert_eq!(payloads(&h.deliveries(a)), [b"kept"]);
    let (b, _) = h.connect("b", SessionMode::Clean);
    h.subscribe_at(b, 1, "other.*", None, 1000, Start::Last(5));
    assert_eq!(h.deliveries(b).len(), 200);
}

#[test]
fn cursor_resumes_after_last_ack() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "log", None, 100);
    for i in 1..=3u8 {
        h.publish(p, u32::from(i), "log", QoS::AtLeastOnce, &[i]);
    }
    let d = h.deliveries(s);
    h.ack(s, d[0].tag);
    h.ack(s, d[1].tag);
    h.send(s, Frame::Unsubscribe(Unsubscribe { sub: 1 }));
    assert_eq!(h.take(s), vec![Got::UnsubAck(1)]);
    h.subscribe_at(s, 2, "log", None, 100, Start::Cursor);
    assert_eq!(payloads(&h.deliveries(s)), [[3u8]]);
}

#[test]
fn the_first_message_of_a_topic_moves_the_cursor() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe_at(s, 1, "fresh", None, 100, Start::Cursor);
    h.publish(p, 1, "fresh", QoS::AtLeastOnce, b"k1");
    let d = h.deliveries(s);
    h.ack(s, d[0].tag);
    h.send(s, Frame::Unsubscribe(Unsubscribe { sub: 1 }));
    assert_eq!(h.take(s), vec![Got::UnsubAck(1)]);
    h.publish(p, 2, "fresh", QoS::AtLeastOnce, b"k2");
    h.subscribe_at(s, 2, "fresh", None, 100, Start::Cursor);
    assert_eq!(payloads(&h.deliveries(s)), [b"k2"]);
}

/// Retention large enough for the paging tests.
fn retaining(max_messages: usize) -> Config {
    Config {
        default_retention: Retention {
            max_messages,
            max_bytes: 1 << 30,
            max_age: None,
            forget_after: None,
        },
        ..Config::default()
    }
}

/// Publishes `n` QoS 1 messages numbered from `first` (payload: the number).
fn publish_numbered(h: &mut H, p: ConnId, topic: &str, first: u32, n: u32) {
    let payloads: Vec<[u8; 4]> = (first..first + n).map(u32::to_be_bytes).collect();
    for chunk in payloads.chunks(1000) {
        let frames = chunk.iter().enumerate().map(|(i, pl)| {
            Frame::Publish(Publish {
                id: i as u32 + 1,
                topic,
                qos: QoS::AtLeastOnce,
                dedup: None,
                meta: Meta::default(),
                fragment: None,
                payload: pl,
            })
        });
        h.send_all(p, frames.collect::<Vec<_>>());
        h.take(p);
    }
}

/// Takes the subscriber's deliveries, acking each, until `n` arrived.
fn receive_numbered(h: &mut H, s: ConnId, n: usize) -> Vec<u32> {
    let mut got = Vec::new();
    while got.len() < n {
        let d = h.deliveries(s);
        assert!(!d.is_empty(), "stopped after {} of {n}", got.len());
        let acks: Vec<Frame<'_>> = d.iter().map(|x| Frame::Ack(Ack { tag: x.tag })).collect();
        got.extend(
            d.iter()
                .map(|x| u32::from_be_bytes(x.payload[..4].try_into().unwrap())),
        );
        h.send_all(s, acks);
    }
    got
}

#[test]
fn replay_pages_through_more_than_the_queue_bound_then_goes_live() {
    let mut h = H::new(retaining(60_000));
    assert_eq!(h.b.config().default_queue.max_messages, 10_000);
    let (p, _) = h.connect("pub", SessionMode::Clean);
    publish_numbered(&mut h, p, "log", 1, 50_000);
    let (s, _) = h.connect("reader", SessionMode::Clean);
    h.subscribe_at(s, 1, "log", None, 1000, Start::Seq(0));
    let got = receive_numbered(&mut h, s, 50_000);
    assert!(got.iter().copied().eq(1..=50_000), "all 50,000 in order");
    publish_numbered(&mut h, p, "log", 50_001, 1);
    assert_eq!(receive_numbered(&mut h, s, 1), [50_001], "then a live one");
    assert!(h.deliveries(s).is_empty());
}

#[test]
fn live_messages_wait_for_the_replay_and_follow_it() {
    let mut h = H::new(retaining(100));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (a, _) = h.connect("a", SessionMode::Clean);
    h.subscribe(a, 1, "t.*", None, 100);
    publish_numbered(&mut h, p, "t.x", 1, 3);
    publish_numbered(&mut h, p, "t.y", 4, 3);
    h.deliveries(a);
    // A group replaying two topics, two at a time, while live messages arrive.
    let (s, _) = h.connect("s", SessionMode::Clean);
    h.subscribe_at(s, 1, "t.*", Some("g"), 2, Start::Seq(0));
    let first = h.deliveries(s);
    let numbers: Vec<u32> = first
        .iter()
        .map(|d| u32::from_be_bytes(d.payload[..4].try_into().unwrap()))
        .collect();
    assert_eq!(numbers, [1, 2], "credit 2");
    publish_numbered(&mut h, p, "t.x", 7, 2);
    assert!(h.deliveries(s).is_empty(), "no credit left");
    // Ack the first two; everything else follows in acceptance order.
    h.send_all(
        s,
        first
            .iter()
            .map(|d| Frame::Ack(Ack { tag: d.tag }))
            .collect::<Vec<_>>(),
    );
    assert_eq!(receive_numbered(&mut h, s, 6), [3, 4, 5, 6, 7, 8]);
}

#[test]
fn replay_skips_what_retention_dropped_meanwhile() {
    let mut h = H::new(retaining(10));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    publish_numbered(&mut h, p, "t", 1, 10);
    let (s, _) = h.connect("s", SessionMode::Clean);
    h.subscribe_at(s, 1, "t", None, 2, Start::Seq(0));
    let d = h.deliveries(s);
    assert_eq!(d.len(), 2);
    // Five more push 1..=5 out of retention; they queue live meanwhile.
    publish_numbered(&mut h, p, "t", 11, 5);
    h.send_all(
        s,
        d.iter()
            .map(|x| Frame::Ack(Ack { tag: x.tag }))
            .collect::<Vec<_>>(),
    );
    let got = receive_numbered(&mut h, s, 10);
    assert_eq!(got, [6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
}

#[test]
fn a_snapshot_keeps_what_a_durable_replay_still_owes() {
    let mut h = H::new(retaining(100));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    publish_numbered(&mut h, p, "t", 1, 5);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe_at(s, 1, "t", None, 1, Start::Seq(0));
    assert_eq!(h.deliveries(s).len(), 1);
    h.b.handle_closed(s, h.now);
    let snap = h.b.snapshot().expect("store drained");
    let mut r = H::restored_from(retaining(100), &snap.records);
    let (s, present) = r.connect("dev", SessionMode::Resume);
    assert!(present);
    r.subscribe(s, 1, "t", None, 1);
    assert_eq!(receive_numbered(&mut r, s, 5), [1, 2, 3, 4, 5]);
}
