//! Publishing: persistence before acks, order, dedup, overflow policies, fragments.

use super::*;

#[test]
fn qos1_acked_and_delivered_only_after_persisted() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t.*", None, 8);
    h.auto_persist = false;
    h.publish(p, 7, "t.a", QoS::AtLeastOnce, b"one");
    assert!(h.take(p).is_empty(), "acked before persisted");
    assert!(h.deliveries(s).is_empty(), "delivered before persisted");
    h.persist();
    assert_eq!(
        h.take(p),
        vec![Got::PubAck {
            id: 7,
            seq: 1,
            dup: false
        }]
    );
    let d = h.deliveries(s);
    assert_eq!(payloads(&d), [b"one"]);
    assert_eq!((d[0].sub, d[0].seq, d[0].attempt), (1, 1, 1));
}

#[test]
fn qos0_waits_behind_unpersisted_qos1_to_keep_order() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 8);
    h.auto_persist = false;
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    h.publish(p, 0, "t", QoS::AtMostOnce, b"2");
    assert!(h.deliveries(s).is_empty());
    h.persist();
    assert_eq!(payloads(&h.deliveries(s)), [b"1", b"2"]);
}

#[test]
fn duplicate_publishes_are_stored_once() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 10);
    let dd = Some(Dedup {
        producer: 9,
        seq: 1,
    });
    h.publish_with(p, 1, "t", QoS::AtLeastOnce, dd, Meta::default(), b"x");
    h.publish_with(p, 2, "t", QoS::AtLeastOnce, dd, Meta::default(), b"x");
    assert_eq!(
        h.take(p),
        vec![
            Got::PubAck {
                id: 1,
                seq: 1,
                dup: false
            },
            Got::PubAck {
                id: 2,
                seq: 1,
                dup: true
            }
        ]
    );
    assert_eq!(h.deliveries(s).len(), 1);
    assert_eq!(h.b.stats().duplicates, 1);
}

#[test]
fn duplicate_of_unpersisted_publish_is_acked_when_original_is() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.auto_persist = false;
    let dd = Some(Dedup {
        producer: 9,
        seq: 1,
    });
    h.publish_with(p, 1, "t", QoS::AtLeastOnce, dd, Meta::default(), b"x");
    h.publish_with(p, 2, "t", QoS::AtLeastOnce, dd, Meta::default(), b"x");
    assert!(h.take(p).is_empty());
    h.persist();
    assert_eq!(h.take(p).len(), 2);
}

#[test]
fn reject_new_refuses_qos1_when_full() {
    let mut h = H::new(small_queue(Overflow::RejectNew));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    for i in 1..=3 {
        h.publish(p, i, "t", QoS::AtLeastOnce, b"x");
    }
    let got = h.take(p);
    assert_eq!(
        got[2],
        Got::PubReject {
            id: 3,
            reason: Reason::QueueFull
        }
    );
    assert!(h.b.queues().iter().all(|q| q.occupancy <= q.max_messages));
}

#[test]
fn drop_oldest_keeps_the_newest() {
    let mut h = H::new(small_queue(Overflow::DropOldest));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    for i in 1..=4u8 {
        h.publish(p, u32::from(i), "t", QoS::AtLeastOnce, &[i]);
    }
    let d = h.deliveries(s);
    assert_eq!(payloads(&d), [[1u8]]);
    assert_eq!(h.b.stats().dropped, 2);
    h.ack(s, d[0].tag);
    assert_eq!(payloads(&h.deliveries(s)), [[4u8]]);
}

#[test]
fn queue_bounds_count_messages_still_waiting_for_the_store() {
    let mut h = H::new(small_queue(Overflow::RejectNew));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    // A slow store: four publishes are admitted or refused before any is durable.
    h.auto_persist = false;
    for i in 1..=4u8 {
        h.publish(p, u32::from(i), "t", QoS::AtLeastOnce, &[i]);
    }
    h.persist();
    let answers = h.take(p);
    let acked: Vec<u32> = answers
        .iter()
        .filter_map(|g| match g {
            Got::PubAck { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    let refused: Vec<u32> = answers
        .iter()
        .filter_map(|g| match g {
            Got::PubReject {
                id,
                reason: Reason::QueueFull,
            } => Some(*id),
            _ => None,
        })
        .collect();
    // The queue holds two: the other two are refused, not acked and then dropped.
    assert_eq!(acked, [1, 2]);
    assert_eq!(refused, [3, 4]);
    assert_eq!(h.b.stats().dropped, 0);
    let d = h.deliveries(s);
    assert_eq!(payloads(&d), [[1u8]]);
    h.ack(s, d[0].tag);
    assert_eq!(payloads(&h.deliveries(s)), [[2u8]]);
}

#[test]
fn block_holds_publisher_until_room_or_deadline() {
    let mut h = H::new(small_queue(Overflow::Block {
        deadline: Duration::from_secs(2),
    }));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"2");
    h.publish(p, 3, "t", QoS::AtLeastOnce, b"3"); // held
    assert_eq!(h.take(p).len(), 2);
    // While held, further input from the publisher is not consumed.
    let frame = Frame::Ping(1);
    let mut buf = vec![0u8; 16];
    let n = encode_frame(&frame, 1024, &mut buf).unwrap();
    assert_eq!(h.b.handle_input(p, h.now, &buf[..n]), 0);
    // Room appears: the held publish is admitted.
    let d = h.deliveries(s);
    h.ack(s, d[0].tag);
    assert_eq!(
        h.take(p),
        vec![Got::PubAck {
            id: 3,
            seq: 3,
            dup: false
        }]
    );
    // Full again and nobody acks: refused at the deadline.
    h.publish(p, 4, "t", QoS::AtLeastOnce, b"4");
    h.advance(Duration::from_secs(3));
    assert_eq!(
        h.take(p),
        vec![Got::PubReject {
            id: 4,
            reason: Reason::Timeout
        }]
    );
}

#[test]
fn block_admits_a_held_qos0_publish_as_soon_as_deliveries_make_room() {
    let mut h = H::new(small_queue(Overflow::Block {
        deadline: Duration::from_secs(5),
    }));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    // 1 goes out on the only credit, 2 and 3 fill the queue, 4 is held.
    for i in 1..=4u8 {
        h.publish(p, u32::from(i), "t", QoS::AtMostOnce, &[i]);
    }
    assert_eq!(payloads(&h.deliveries(s)), [[1u8]]);
    assert!(h.b.input_blocked(p), "the fourth publish is held");
    // Credit takes 2 out of the queue: that is room, so 4 is admitted now,
    // long before its deadline, and nothing is lost.
    h.send(s, Frame::Credit(Credit { sub: 1, credit: 3 }));
    h.drain();
    assert!(!h.b.input_blocked(p), "held until the deadline");
    assert_eq!(payloads(&h.deliveries(s)), [[2u8], [3], [4]]);
    assert_eq!(h.b.stats().dropped, 0);
}

#[test]
fn fragmented_publish_and_fragmented_delivery() {
    let mut h = H::new(Config::default());
    h.max_frame = 1024;
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "big", None, 10);
    let payload: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    for (i, chunk) in payload.chunks(700).enumerate() {
        h.send(
            p,
            Frame::Publish(Publish {
                id: 3,
                topic: "big",
                qos: QoS::AtLeastOnce,
                dedup: None,
                meta: Meta::default(),
                fragment: Some(Fragment {
                    offset: (i * 700) as u64,
                    total: payload.len() as u64,
                }),
                payload: chunk,
            }),
        );
    }
    assert_eq!(
        h.take(p),
        vec![Got::PubAck {
            id: 3,
            seq: 1,
            dup: false
        }]
    );
    let parts = h.deliveries(s);
    assert!(parts.len() > 4, "client max_frame 1024 forces fragments");
    let mut joined = Vec::new();
    for d in &parts {
        let f = d.frag.expect("fragment marker");
        assert_eq!(f.offset as usize, joined.len());
        assert_eq!(f.total as usize, payload.len());
        assert_eq!(d.tag, parts[0].tag);
        joined.extend_from_slice(&d.payload);
    }
    assert_eq!(joined, payload);
}

#[test]
fn publishing_to_system_topics_is_refused() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.publish(p, 1, "$dlq.x", QoS::AtLeastOnce, b"x");
    assert_eq!(
        h.take(p),
        vec![Got::PubReject {
            id: 1,
            reason: Reason::NotAuthorized
        }]
    );
}

#[test]
fn a_held_publisher_is_told_when_it_may_be_read_again() {
    let mut h = H::new(small_queue(Overflow::Block {
        deadline: Duration::from_secs(5),
    }));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    for i in 1..=3u8 {
        h.publish(p, u32::from(i), "t", QoS::AtLeastOnce, &[i]);
    }
    // Held: the next frame is not consumed, and the adapter keeps it.
    let mut buf = vec![0u8; 16];
    let n = encode_frame(&Frame::Ping(7), 1024, &mut buf).unwrap();
    assert_eq!(h.b.handle_input(p, h.now, &buf[..n]), 0);
    h.drain();
    assert!(h.readable.is_empty());
    let d = h.deliveries(s);
    h.ack(s, d[0].tag);
    assert_eq!(h.readable, [p], "room appeared: read it again");
    assert_eq!(h.b.handle_input(p, h.now, &buf[..n]), n);
    h.drain();
    assert!(h.take(p).contains(&Got::Pong(7)));
}

#[test]
fn thousands_of_held_publishers_are_admitted_one_after_another_without_recursion() {
    let mut h = H::new(Config {
        default_queue: QueueLimits {
            max_messages: 1,
            max_bytes: 1 << 20,
            overflow: Overflow::Block {
                deadline: Duration::from_secs(60),
            },
        },
        ..Config::default()
    });
    let (s, _) = h.connect("sub", SessionMode::Resume);
    h.subscribe(s, 1, "t", None, 10_000);
    // The subscriber is away: one message waits for it, the publishers after
    // it are held.
    h.b.handle_closed(s, h.now);
    let mut held = Vec::new();
    for i in 0..3_000u32 {
        let (p, _) = h.connect(&std::format!("p{i}"), SessionMode::Clean);
        h.publish(p, i, "t", QoS::AtMostOnce, &i.to_be_bytes());
        held.push(p);
    }
    held.remove(0);
    assert!(held.iter().all(|&p| h.b.input_blocked(p)), "all held");
    // It comes back: each message leaves for it at once, which makes room for
    // the next held one, 3,000 times within one call.
    let (s, _) = h.connect("sub", SessionMode::Resume);
    h.subscribe(s, 1, "t", None, 10_000);
    assert_eq!(h.deliveries(s).len(), 3_000);
    assert!(held.iter().all(|&p| !h.b.input_blocked(p)));
    assert_eq!(h.b.stats().dropped, 0);
}

#[test]
fn pace_holds_publishers_then_sheds_a_consumer_that_stops() {
    let mut h = H::new(small_queue(Overflow::Pace {
        hold: Duration::from_secs(1),
    }));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (fast, _) = h.connect("fast", SessionMode::Clean);
    let (stuck, _) = h.connect("stuck", SessionMode::Clean);
    h.subscribe(fast, 1, "t", None, 100);
    h.subscribe(stuck, 1, "t", None, 1);
    // 1 goes out on stuck's only credit, 2 and 3 fill its queue, 4 is held.
    for i in 1..=4u8 {
        h.publish(p, u32::from(i), "t", QoS::AtMostOnce, &[i]);
    }
    assert!(h.b.input_blocked(p), "paced to the slowest consumer");
    assert_eq!(payloads(&h.deliveries(fast)), [[1u8], [2], [3]]);
    // Nobody makes room within the hold: stuck is shed, 4 goes on to fast.
    h.advance(Duration::from_secs(2));
    assert!(!h.b.input_blocked(p));
    assert_eq!(h.b.stats().shed, 1);
    h.publish(p, 5, "t", QoS::AtMostOnce, &[5]);
    assert_eq!(payloads(&h.deliveries(fast)), [[4u8], [5]]);
    assert!(!h.b.input_blocked(p), "a shed queue holds nobody back");
    assert_eq!(h.b.stats().dropped, 2, "4 and 5, for stuck only");
    // QoS 1 into the shed, full queue: refused, with the reason.
    h.publish(p, 6, "t", QoS::AtLeastOnce, &[6]);
    assert_eq!(
        h.take(p),
        vec![Got::PubReject {
            id: 6,
            reason: Reason::QueueFull
        }]
    );
    // stuck catches up: its queue drains below half, and it is paced again.
    assert_eq!(payloads(&h.deliveries(stuck)), [[1u8]]);
    h.send(stuck, Frame::Credit(Credit { sub: 1, credit: 10 }));
    h.drain();
    assert_eq!(payloads(&h.deliveries(stuck)), [[2u8], [3]]);
    h.publish(p, 7, "t", QoS::AtMostOnce, &[7]);
    assert_eq!(payloads(&h.deliveries(stuck)), [[7u8]]);
    assert_eq!(payloads(&h.deliveries(fast)), [[7u8]]);
    assert_eq!(h.b.stats().shed, 1);
}
