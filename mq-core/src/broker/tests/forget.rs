//! Idle topics forgotten (`Retention::forget_after`): a topic that keeps
//! nothing and took no message for that long is freed, and no topic made
//! afterwards gives one of its sequence numbers again.

use super::*;

const AFTER: Duration = Duration::from_secs(10);

/// Keeps `max_messages` (and at most `max_age`), forgets after `AFTER`.
fn forgetting(max_messages: usize, max_age: Option<Duration>) -> Config {
    Config {
        default_retention: Retention {
            max_messages,
            max_age,
            forget_after: Some(AFTER),
            ..Retention::default()
        },
        ..Config::default()
    }
}

fn topics(h: &H) -> u64 {
    h.b.stats().current_topics
}

/// A subscriber to `t.>` and a publisher.
fn pair(h: &mut H) -> (ConnId, ConnId) {
    let (s, _) = h.connect("s", SessionMode::Clean);
    h.subscribe(s, 1, "t.>", None, 64);
    h.take(s);
    let (p, _) = h.connect("p", SessionMode::Clean);
    (s, p)
}

/// Publishes to `topic` at QoS 0; the sequence number `s` got.
fn seq_of(h: &mut H, s: ConnId, p: ConnId, topic: &str) -> u64 {
    h.publish(p, 0, topic, QoS::AtMostOnce, b"x");
    let got = h.deliveries(s);
    assert_eq!(got.len(), 1, "{got:?}");
    got[0].seq
}

#[test]
fn a_topic_that_keeps_nothing_is_forgotten_and_its_numbers_are_not_given_again() {
    let mut h = H::new(forgetting(0, None));
    let (s, p) = pair(&mut h);
    assert_eq!(seq_of(&mut h, s, p, "t.a"), 1);
    let last = seq_of(&mut h, s, p, "t.a");
    h.advance(AFTER - Duration::from_secs(1));
    assert_eq!(topics(&h), 1, "idle, but not long enough yet");
    h.advance(Duration::from_secs(2));
    assert_eq!(topics(&h), 0);
    assert_eq!(h.b.stats().topics_forgotten, 1);
    let again = seq_of(&mut h, s, p, "t.a");
    assert!(again > last, "{again} after {last}");
    // A topic made afterwards, of any name, starts above them too.
    assert!(seq_of(&mut h, s, p, "t.b") > last);
    assert_eq!(topics(&h), 2);
}

#[test]
fn a_topic_is_forgotten_only_once_its_retention_is_empty() {
    let age = Duration::from_secs(5);
    let mut h = H::new(forgetting(100, Some(age)));
    let (s, p) = pair(&mut h);
    seq_of(&mut h, s, p, "t.a");
    // The message ages out after 5 s; the topic took it 6 s ago.
    h.advance(age + Duration::from_secs(1));
    assert_eq!(topics(&h), 1);
    h.advance(AFTER);
    assert_eq!(topics(&h), 0);

    // Without an age limit the message stays, and so does its topic.
    let mut h = H::new(forgetting(100, None));
    let (s, p) = pair(&mut h);
    seq_of(&mut h, s, p, "t.a");
    h.advance(AFTER * 10);
    assert_eq!(topics(&h), 1);
}

#[test]
fn a_message_waiting_for_the_store_keeps_its_topic() {
    let mut h = H::new(forgetting(0, None));
    let (s, p) = pair(&mut h);
    seq_of(&mut h, s, p, "t.a");
    // The store stalls for longer than the topic may be idle.
    h.auto_persist = false;
    h.publish(p, 1, "t.a", QoS::AtLeastOnce, b"x");
    h.advance(AFTER * 2);
    assert_eq!(topics(&h), 1, "its message is not released yet");
    h.persist();
    assert_eq!(h.deliveries(s).len(), 1);
    h.advance(AFTER * 2);
    assert_eq!(topics(&h), 0);
}

#[test]
fn the_floor_survives_a_restart_and_a_compaction() {
    let mut h = H::new(forgetting(0, None));
    let (s, p) = pair(&mut h);
    let mut last = 0;
    for _ in 0..3 {
        last = seq_of(&mut h, s, p, "t.a");
    }
    h.advance(AFTER * 2);
    assert_eq!(topics(&h), 0);
    assert!(h.records.iter().any(|r| matches!(
        Record::decode(r),
        Ok(Record::SeqFloor { until }) if until > last
    )));
    // A compaction keeps no record of the topic, only the floor.
    let snap = h.b.snapshot().expect("drained").records;
    let logs: [Vec<Vec<u8>>; 2] = [h.records.clone(), snap.iter().map(|r| r.to_vec()).collect()];
    for records in logs {
        let mut again = H::restored_from(forgetting(0, None), &records);
        let (s, p) = pair(&mut again);
        // A new name too: the full log also holds t.a's own reservation.
        for topic in ["t.a", "t.b"] {
            let seq = seq_of(&mut again, s, p, topic);
            assert!(seq > last, "{topic}: {seq} after {last}");
        }
    }
}

#[test]
fn a_topic_restored_from_its_reservation_alone_is_forgotten_too() {
    let mut h = H::new(forgetting(0, None));
    let (s, p) = pair(&mut h);
    seq_of(&mut h, s, p, "t.a");
    // QoS 0: the topic's only record is its numbers' reservation.
    let mut again = H::restored_from(forgetting(0, None), &h.records);
    assert_eq!(topics(&again), 1);
    again.advance(AFTER + Duration::from_secs(2));
    assert_eq!(topics(&again), 0);
}
