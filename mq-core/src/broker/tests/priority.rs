//! Priority: among the messages waiting in a queue, higher priority goes first,
//! first in first out within a priority.

use super::offline::restored;
use super::*;

fn publish_prio(h: &mut H, p: ConnId, id: u32, priority: u8, payload: &[u8]) {
    let meta = Meta {
        priority,
        ..Meta::default()
    };
    h.publish_with(p, id, "t", QoS::AtLeastOnce, None, meta, payload);
}

/// Acks one delivery at a time; the payloads in the order they came.
fn one_by_one(h: &mut H, s: ConnId, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while got.len() < n {
        let d = h.deliveries(s);
        assert_eq!(d.len(), 1, "credit 1: one at a time");
        got.push(d[0].payload.clone());
        h.ack(s, d[0].tag);
    }
    got
}

#[test]
fn higher_priority_waiting_messages_go_first_fifo_within_a_priority() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    // The first goes out at once; the rest wait behind the credit.
    for (i, (prio, name)) in [
        (0, "first"),
        (0, "a"),
        (5, "b"),
        (5, "c"),
        (9, "d"),
        (0, "e"),
    ]
    .into_iter()
    .enumerate()
    {
        publish_prio(&mut h, p, i as u32 + 1, prio, name.as_bytes());
    }
    let got = one_by_one(&mut h, s, 6);
    assert_eq!(got, [&b"first"[..], b"d", b"b", b"c", b"a", b"e"]);
    // Sequence numbers are the order of publishing, whatever the priority.
    let acks: Vec<u64> = h
        .take(p)
        .into_iter()
        .filter_map(|g| match g {
            Got::PubAck { seq, .. } => Some(seq),
            _ => None,
        })
        .collect();
    assert_eq!(acks, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn a_group_serves_higher_priority_first_and_a_redelivery_comes_back_first() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (w, _) = h.connect("worker", SessionMode::Resume);
    h.subscribe(w, 1, "t", Some("g"), 1);
    publish_prio(&mut h, p, 1, 7, b"urgent");
    publish_prio(&mut h, p, 2, 0, b"low");
    publish_prio(&mut h, p, 3, 3, b"mid");
    let d = h.deliveries(w);
    assert_eq!(d[0].payload, b"urgent");
    // The worker goes away with it: it comes back first, ahead of the others.
    h.b.handle_closed(w, h.now);
    let (w, _) = h.connect("worker", SessionMode::Resume);
    h.subscribe(w, 1, "t", Some("g"), 1);
    let got = one_by_one(&mut h, w, 3);
    assert_eq!(got, [&b"urgent"[..], b"mid", b"low"]);
}

#[test]
fn drop_oldest_gives_up_the_lowest_priority_first() {
    let mut h = H::new(small_queue(Overflow::DropOldest));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    publish_prio(&mut h, p, 1, 0, b"in flight");
    publish_prio(&mut h, p, 2, 0, b"low");
    // Full (two): the oldest of the lowest priority makes room.
    publish_prio(&mut h, p, 3, 4, b"high");
    assert_eq!(h.b.stats().dropped, 1);
    // Lower than everything waiting: the new one is the one to go.
    publish_prio(&mut h, p, 4, 2, b"new");
    assert_eq!(h.b.stats().dropped, 2);
    let got = one_by_one(&mut h, s, 2);
    assert_eq!(got, [&b"in flight"[..], b"high"]);
    assert!(h.deliveries(s).is_empty());
}

#[test]
fn a_delivery_that_comes_back_goes_ahead_of_every_priority() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "t", None, 1);
    publish_prio(&mut h, p, 1, 0, b"plain");
    assert_eq!(payloads(&h.deliveries(s)), [b"plain"]);
    // Urgent messages wait behind the credit while the plain one is out.
    for i in 0..3 {
        publish_prio(&mut h, p, 2 + i, 9, b"urgent");
    }
    // The connection ends with the plain one unacked (the client may have
    // acked it on the way): it goes out first again.
    h.b.handle_closed(s, h.now);
    let (s, present) = h.connect("dev", SessionMode::Resume);
    assert!(present);
    h.subscribe(s, 1, "t", None, 1);
    let got = one_by_one(&mut h, s, 4);
    assert_eq!(got, [&b"plain"[..], b"urgent", b"urgent", b"urgent"]);
}

#[test]
fn messages_restored_after_a_restart_go_ahead_of_later_ones_of_any_priority() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "t", None, 1);
    publish_prio(&mut h, p, 1, 0, b"delivered");
    publish_prio(&mut h, p, 2, 0, b"waiting");
    h.persist();
    // "delivered" went out and its ack may have been lost with the restart.
    assert_eq!(payloads(&h.deliveries(s)), [b"delivered"]);
    let mut r = restored(&h);
    let (p, _) = r.connect("pub", SessionMode::Clean);
    publish_prio(&mut r, p, 1, 9, b"urgent");
    let (s, present) = r.connect("dev", SessionMode::Resume);
    assert!(present);
    r.subscribe(s, 1, "t", None, 1);
    let got = one_by_one(&mut r, s, 3);
    assert_eq!(got, [&b"delivered"[..], b"waiting", b"urgent"]);
}

#[test]
fn drop_oldest_gives_up_restored_messages_first_and_keeps_the_new_ones() {
    let mut h = H::new(small_queue(Overflow::DropOldest));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "t", None, 1);
    h.b.handle_closed(s, h.now);
    publish_prio(&mut h, p, 1, 0, b"old 1");
    publish_prio(&mut h, p, 2, 0, b"old 2");
    h.persist();
    // After a restart both wait as restored messages, the queue full.
    let mut r = restored(&h);
    let (p, _) = r.connect("pub", SessionMode::Clean);
    publish_prio(&mut r, p, 1, 0, b"new 1");
    publish_prio(&mut r, p, 2, 0, b"new 2");
    assert_eq!(r.b.stats().dropped, 2);
    let (s, _) = r.connect("dev", SessionMode::Resume);
    r.subscribe(s, 1, "t", None, 1);
    let got = one_by_one(&mut r, s, 2);
    assert_eq!(got, [&b"new 1"[..], b"new 2"]);
}
