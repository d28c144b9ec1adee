//! Delivery: fan-out, groups, credit, redelivery, dead letters, expiry, timers.

use super::*;

#[test]
fn fan_out_and_group_competition() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (a, _) = h.connect("a", SessionMode::Clean);
    let (b, _) = h.connect("b", SessionMode::Clean);
    let (w1, _) = h.connect("w1", SessionMode::Clean);
    let (w2, _) = h.connect("w2", SessionMode::Clean);
    h.subscribe(a, 1, "jobs.>", None, 100);
    h.subscribe(b, 1, "jobs.*", None, 100);
    h.subscribe(w1, 1, "jobs.>", Some("workers"), 100);
    h.subscribe(w2, 1, "jobs.>", Some("workers"), 100);
    for i in 0..10u8 {
        h.publish(p, u32::from(i) + 1, "jobs.x", QoS::AtLeastOnce, &[i]);
    }
    assert_eq!(h.deliveries(a).len(), 10);
    assert_eq!(h.deliveries(b).len(), 10);
    let d1 = h.deliveries(w1);
    let d2 = h.deliveries(w2);
    assert_eq!(d1.len() + d2.len(), 10);
    assert!(!d1.is_empty() && !d2.is_empty(), "round robin uses both");
    let mut all: Vec<u8> = d1.iter().chain(&d2).map(|d| d.payload[0]).collect();
    all.sort_unstable();
    assert_eq!(all, (0..10).collect::<Vec<u8>>());
}

#[test]
fn a_known_topic_follows_subscribers_that_come_and_go() {
    // Each topic remembers its queues; every change of subscriptions must
    // reach the next publish to it.
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (a, _) = h.connect("a", SessionMode::Clean);
    let (b, _) = h.connect("b", SessionMode::Clean);
    h.publish(p, 0, "room.1", QoS::AtMostOnce, b"nobody");
    h.subscribe(a, 1, "room.*", None, 100);
    h.publish(p, 0, "room.1", QoS::AtMostOnce, b"one");
    h.subscribe(b, 1, "room.1", Some("g"), 100);
    h.publish(p, 0, "room.1", QoS::AtMostOnce, b"two");
    assert_eq!(payloads(&h.deliveries(a)), [b"one", b"two"]);
    assert_eq!(payloads(&h.deliveries(b)), [b"two"]);
    h.send(a, Frame::Unsubscribe(Unsubscribe { sub: 1 }));
    h.publish(p, 0, "room.1", QoS::AtMostOnce, b"three");
    assert!(h.deliveries(a).is_empty());
    assert_eq!(payloads(&h.deliveries(b)), [b"three"]);
    h.send(b, Frame::Unsubscribe(Unsubscribe { sub: 1 }));
    h.subscribe(a, 2, ">", None, 100);
    h.publish(p, 0, "room.1", QoS::AtMostOnce, b"four");
    assert_eq!(payloads(&h.deliveries(a)), [b"four"]);
    assert!(h.deliveries(b).is_empty());
}

#[test]
fn nacked_group_message_goes_to_another_member() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (w1, _) = h.connect("w1", SessionMode::Clean);
    h.subscribe(w1, 1, "q", Some("g"), 10);
    h.publish(p, 1, "q", QoS::AtLeastOnce, b"job");
    let d = h.deliveries(w1);
    assert_eq!(d.len(), 1);
    let (w2, _) = h.connect("w2", SessionMode::Clean);
    h.subscribe(w2, 1, "q", Some("g"), 10);
    h.send(
        w1,
        Frame::Nack(Nack {
            tag: d[0].tag,
            requeue: true,
        }),
    );
    assert!(
        h.deliveries(w2).is_empty(),
        "redelivery waits for its backoff"
    );
    h.advance(Duration::from_secs(1));
    let again = h.deliveries(w2);
    assert_eq!(payloads(&again), [b"job"]);
    assert_eq!(again[0].attempt, 2);
    assert!(h.deliveries(w1).is_empty());
}

#[test]
fn credit_limits_outstanding_deliveries() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 2);
    for i in 0..5u8 {
        h.publish(p, u32::from(i) + 1, "t", QoS::AtLeastOnce, &[i]);
    }
    let d = h.deliveries(s);
    assert_eq!(d.len(), 2);
    h.ack(s, d[0].tag);
    let more = h.deliveries(s);
    assert_eq!(payloads(&more), [[2u8]]);
    h.send(s, Frame::Credit(Credit { sub: 1, credit: 10 }));
    assert_eq!(h.deliveries(s).len(), 2);
}

#[test]
fn a_missed_ack_deadline_keeps_the_delivery_and_its_credit() {
    let mut h = H::new(ack_within(2));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"a");
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"b");
    let d = h.deliveries(s);
    assert_eq!(payloads(&d), [[b'a']]);
    // The application is slow: nothing is sent again on this connection
    // (the client holds the message, or has acked it already), and the
    // credit stays taken.
    for _ in 0..5 {
        h.advance(Duration::from_secs(2));
        assert!(h.deliveries(s).is_empty());
    }
    assert_eq!(h.b.stats().ack_timeouts, 5);
    assert_eq!(h.b.stats().redelivered, 0);
    // Its late ack settles it, and the next message flows.
    h.ack(s, d[0].tag);
    assert_eq!(h.b.stats().acked, 1);
    assert_eq!(payloads(&h.deliveries(s)), [[b'b']]);
}

#[test]
fn a_delivery_kept_past_its_deadline_comes_again_after_a_reconnect() {
    let mut h = H::new(ack_within(2));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "t", None, 1);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"a");
    assert_eq!(h.deliveries(s)[0].attempt, 1);
    h.advance(Duration::from_secs(3));
    assert!(h.deliveries(s).is_empty());
    h.b.handle_closed(s, h.now);
    let (s2, present) = h.connect("dev", SessionMode::Resume);
    assert!(present);
    h.subscribe(s2, 1, "t", None, 1);
    let again = h.deliveries(s2);
    assert_eq!(payloads(&again), [[b'a']]);
    // The missed deadline counted an attempt.
    assert_eq!(again[0].attempt, 3);
}

#[test]
fn missed_ack_deadlines_dead_letter_at_max_attempts() {
    let cfg = Config {
        max_attempts: 2,
        ..ack_within(5)
    };
    let mut h = H::new(cfg);
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    let (dl, _) = h.connect("dl", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 10);
    h.subscribe(dl, 1, "$dlq.>", None, 10);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"m");
    let first = h.deliveries(s);
    assert_eq!(first[0].attempt, 1);
    h.advance(Duration::from_secs(6));
    assert!(h.deliveries(s).is_empty());
    assert!(h.deliveries(dl).is_empty());
    h.advance(Duration::from_secs(6));
    assert!(h.deliveries(s).is_empty());
    let dead = h.deliveries(dl);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].topic, "$dlq.t");
    assert_eq!(dead[0].payload, b"m");
    assert_eq!(h.b.stats().dead_lettered, 1);
    // An ack after that settles nothing.
    h.ack(s, first[0].tag);
    assert_eq!(h.b.stats().acked, 0);
    // A plain '>' subscriber does not see dead letters.
    let (all, _) = h.connect("all", SessionMode::Clean);
    h.subscribe_at(all, 1, ">", None, 10, Start::Seq(0));
    assert!(h.deliveries(all).iter().all(|d| !d.topic.starts_with('$')));
}

#[test]
fn a_group_message_past_its_deadline_goes_to_another_member() {
    let mut h = H::new(ack_within(5));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (a, _) = h.connect("a", SessionMode::Clean);
    h.subscribe(a, 1, "t", Some("g"), 10);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"m");
    assert_eq!(h.deliveries(a).len(), 1);
    let (b, _) = h.connect("b", SessionMode::Clean);
    h.subscribe(b, 1, "t", Some("g"), 10);
    h.advance(Duration::from_secs(6));
    let moved = h.deliveries(b);
    assert_eq!(payloads(&moved), [[b'm']]);
    assert_eq!(moved[0].attempt, 2);
    assert!(h.deliveries(a).is_empty());
}

#[test]
fn nack_without_requeue_dead_letters() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 10);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"poison");
    let tag = h.deliveries(s)[0].tag;
    h.send(
        s,
        Frame::Nack(Nack {
            tag,
            requeue: false,
        }),
    );
    assert_eq!(h.b.stats().dead_lettered, 1);
    h.advance(Duration::from_secs(60));
    assert!(h.deliveries(s).is_empty());
}

#[test]
fn expired_messages_are_dropped_and_counted() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    let meta = Meta {
        ttl_ms: Some(1000),
        ..Meta::default()
    };
    h.publish_with(p, 1, "t", QoS::AtLeastOnce, None, meta, b"a");
    h.publish_with(p, 2, "t", QoS::AtLeastOnce, None, meta, b"b");
    let d = h.deliveries(s);
    assert_eq!(d.len(), 1);
    h.advance(Duration::from_secs(3));
    h.ack(s, d[0].tag);
    assert!(h.deliveries(s).is_empty(), "expired message delivered");
    assert_eq!(h.b.stats().expired, 1);
}

#[test]
fn request_reply_carries_reply_to() {
    let mut h = H::new(Config::default());
    let (req, _) = h.connect("req", SessionMode::Clean);
    let (srv, _) = h.connect("srv", SessionMode::Clean);
    h.subscribe(srv, 1, "svc.echo", Some("svc"), 10);
    h.subscribe(req, 1, "reply.req", None, 10);
    let meta = Meta {
        reply_to: Some("reply.req"),
        correlation: Some(b"c1"),
        ..Meta::default()
    };
    h.publish_with(req, 1, "svc.echo", QoS::AtLeastOnce, None, meta, b"ping");
    let d = h.deliveries(srv);
    assert_eq!(d[0].reply_to.as_deref(), Some("reply.req"));
    h.publish(
        srv,
        1,
        d[0].reply_to.as_deref().unwrap(),
        QoS::AtMostOnce,
        b"pong",
    );
    assert_eq!(payloads(&h.deliveries(req)), [b"pong"]);
}

#[test]
fn settled_deliveries_leave_no_timers_behind() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 100);
    // Each connection has one timer (keepalive).
    assert_eq!(h.b.timers(), 2);
    for round in 0..50u32 {
        let frames: Vec<Frame<'_>> = (0..100)
            .map(|i| {
                Frame::Publish(Publish {
                    id: round * 100 + i + 1,
                    topic: "t",
                    qos: QoS::AtLeastOnce,
                    dedup: None,
                    meta: Meta::default(),
                    fragment: None,
                    payload: b"x",
                })
            })
            .collect();
        h.send_all(p, frames);
        h.take(p);
        let d = h.deliveries(s);
        assert_eq!(d.len(), 100);
        // 100 deliveries in flight: one ack-deadline timer for the session.
        assert_eq!(h.b.timers(), 3);
        h.send_all(
            s,
            d.iter()
                .map(|x| Frame::Ack(Ack { tag: x.tag }))
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            h.b.timers(),
            3,
            "round {round}: acked deliveries left timers"
        );
    }
    assert_eq!(h.b.stats().acked, 5_000);
    // The session's timer fires once, finds nothing in flight, and is gone.
    h.advance(Duration::from_secs(31));
    assert_eq!(h.b.timers(), 2);
}

#[test]
fn a_group_message_past_its_deadline_stays_when_no_other_member_is_connected() {
    let mut h = H::new(ack_within(5));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (b, _) = h.connect("b", SessionMode::Resume);
    h.subscribe(b, 1, "t", Some("g"), 10);
    h.b.handle_closed(b, h.now);
    let (a, _) = h.connect("a", SessionMode::Clean);
    h.subscribe(a, 1, "t", Some("g"), 10);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"m");
    let d = h.deliveries(a);
    assert_eq!(payloads(&d), [b"m"]);
    // The other member is away: the message stays with the late one, not
    // sent to it again.
    h.advance(Duration::from_secs(6));
    assert!(h.deliveries(a).is_empty());
    assert_eq!(h.b.stats().ack_timeouts, 1);
    h.ack(a, d[0].tag);
    assert_eq!(h.b.stats().acked, 1);
}
