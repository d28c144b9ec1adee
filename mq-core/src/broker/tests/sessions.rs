//! Sessions across disconnects, restarts, snapshots and shutdown.

use super::offline::restored;
use super::*;
use crate::wire::{AckMessage, topic_hash};

#[test]
fn persistent_session_queues_while_away_and_resumes_in_order() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, present) = h.connect("dev", SessionMode::Resume);
    assert!(!present);
    h.subscribe(s, 1, "cmd.>", None, 3);
    h.publish(p, 1, "cmd.a", QoS::AtLeastOnce, b"1");
    let first = h.deliveries(s);
    assert_eq!(first.len(), 1);
    // Goes away without acking.
    h.b.handle_closed(s, h.now);
    for i in 2..=5u8 {
        h.publish(p, u32::from(i), "cmd.a", QoS::AtLeastOnce, &[b'0' + i]);
    }
    let (s2, present) = h.connect("dev", SessionMode::Resume);
    assert!(present);
    assert!(
        h.deliveries(s2).is_empty(),
        "nothing until the subscription is re-asserted"
    );
    h.subscribe(s2, 1, "cmd.>", None, 3);
    let d = h.deliveries(s2);
    assert_eq!(
        payloads(&d),
        [b"1", b"2", b"3"],
        "unacked first, then queued, within credit"
    );
    assert_eq!(d[0].attempt, 2);
    for x in &d {
        h.ack(s2, x.tag);
    }
    assert_eq!(payloads(&h.deliveries(s2)), [b"4", b"5"]);
}

#[test]
fn clean_session_discards_stored_one() {
    let mut h = H::new(Config::default());
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "x", None, 3);
    h.b.handle_closed(s, h.now);
    assert!(h.b.has_session("dev"));
    let (_, present) = h.connect("dev", SessionMode::Clean);
    assert!(!present);
    assert_eq!(h.b.stats().current_subscriptions, 0);
}

#[test]
fn restore_rebuilds_sessions_and_pending_messages() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "t.>", None, 10);
    let (g, _) = h.connect("w", SessionMode::Resume);
    h.subscribe(g, 1, "jobs", Some("workers"), 10);
    h.publish(p, 1, "t.a", QoS::AtLeastOnce, b"acked");
    let d = h.deliveries(s);
    h.ack(s, d[0].tag);
    h.b.handle_closed(s, h.now);
    h.b.handle_closed(g, h.now);
    h.publish(p, 2, "t.a", QoS::AtLeastOnce, b"pending");
    h.publish(p, 3, "jobs", QoS::AtLeastOnce, b"job");
    h.publish(p, 0, "t.a", QoS::AtMostOnce, b"qos0 is not durable");
    let records = h.records.clone();

    let mut r = H::restored_from(Config::default(), &records);
    let (s, present) = r.connect("dev", SessionMode::Resume);
    assert!(present);
    r.subscribe(s, 1, "t.>", None, 10);
    assert_eq!(payloads(&r.deliveries(s)), [b"pending"]);
    let (g, present) = r.connect("w", SessionMode::Resume);
    assert!(present);
    r.subscribe(g, 1, "jobs", Some("workers"), 10);
    assert_eq!(payloads(&r.deliveries(g)), [b"job"]);
    // Sequence numbers continue after the restored ones.
    let (p, _) = r.connect("pub", SessionMode::Clean);
    r.publish(p, 1, "t.a", QoS::AtLeastOnce, b"next");
    // The QoS 0 message's sequence number (3) is never handed out again.
    match r.take(p)[..] {
        [
            Got::PubAck {
                id: 1,
                seq,
                dup: false,
            },
        ] => assert!(seq > 3, "seq {seq} reused"),
        ref other => panic!("{other:?}"),
    }
    assert!(r.b.restore(r.now, &[0xff, 0xff]).is_err());
}

#[test]
fn graceful_shutdown_refuses_new_work_and_drains_deliveries() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"2");
    h.take(p);
    h.b.begin_shutdown();
    h.publish(p, 3, "t", QoS::AtLeastOnce, b"3");
    assert_eq!(
        h.take(p),
        vec![Got::PubReject {
            id: 3,
            reason: Reason::ShuttingDown
        }]
    );
    assert_eq!(
        h.b.accept(h.now, Framing::Stream),
        Err(AcceptError::ShuttingDown)
    );
    assert!(!h.b.is_drained(), "message 2 is still owed");
    let d = h.deliveries(s);
    h.ack(s, d[0].tag);
    let d = h.deliveries(s);
    assert_eq!(payloads(&d), [b"2"]);
    assert!(!h.b.is_drained(), "message 2 is in flight");
    h.ack(s, d[0].tag);
    assert!(h.b.is_drained());
    h.b.shutdown(h.now);
    h.drain();
    assert!(h.closed.contains(&s) && h.closed.contains(&p));
}

#[test]
fn snapshot_plus_later_records_rebuilds_the_same_broker() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "t.>", None, 2);
    let (g, _) = h.connect("w", SessionMode::Resume);
    h.subscribe(g, 1, "jobs", Some("workers"), 10);
    let dd = |seq| Some(Dedup { producer: 7, seq });
    for i in 1..=4u8 {
        h.publish_with(
            p,
            u32::from(i),
            "t.a",
            QoS::AtLeastOnce,
            dd(u64::from(i)),
            Meta::default(),
            &[i],
        );
    }
    let d = h.deliveries(s);
    h.ack(s, d[0].tag); // 1 acked, 2 in flight, 3 and 4 waiting
    h.publish(p, 9, "jobs", QoS::AtLeastOnce, b"job");
    h.b.handle_closed(s, h.now);
    h.b.handle_closed(g, h.now);
    let snap = h.b.snapshot().expect("store drained");
    let before = h.records.len();
    // After the snapshot: one more message, and a new subscriber's record.
    h.publish_with(p, 5, "t.a", QoS::AtLeastOnce, dd(5), Meta::default(), &[5]);
    let later = h.records[before..].to_vec();

    let records = snap.records.iter().map(|r| r.to_vec()).chain(later);
    let mut r = H::restored_from(Config::default(), records);
    let (s, present) = r.connect("dev", SessionMode::Resume);
    assert!(present);
    r.subscribe(s, 1, "t.>", None, 2);
    let d = r.deliveries(s);
    assert_eq!(
        payloads(&d),
        [[2u8], [3]],
        "in-flight 2 and waiting 3 come back first"
    );
    for x in &d {
        r.ack(s, x.tag);
    }
    assert_eq!(payloads(&r.deliveries(s)), [[4u8], [5]]);
    let (g, _) = r.connect("w", SessionMode::Resume);
    r.subscribe(g, 1, "jobs", Some("workers"), 10);
    assert_eq!(payloads(&r.deliveries(g)), [b"job"]);
    // The dedup window and the sequences survived.
    let (p, _) = r.connect("pub", SessionMode::Clean);
    r.publish_with(p, 1, "t.a", QoS::AtLeastOnce, dd(2), Meta::default(), &[2]);
    assert_eq!(
        r.take(p),
        vec![Got::PubAck {
            id: 1,
            seq: 2,
            dup: true
        }]
    );
    r.publish(p, 2, "t.a", QoS::AtLeastOnce, b"new");
    match r.take(p)[..] {
        [
            Got::PubAck {
                id: 2,
                seq,
                dup: false,
            },
        ] => assert!(seq > 5),
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn snapshot_waits_for_the_store_to_be_drained_and_restore_skips_repeats() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "t", None, 10);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    let d = h.deliveries(s);
    h.ack(s, d[0].tag);
    // A record emitted and not yet handed out: no snapshot now.
    let frame = Frame::Publish(Publish {
        id: 2,
        topic: "t",
        qos: QoS::AtLeastOnce,
        dedup: None,
        meta: Meta::default(),
        fragment: None,
        payload: b"y",
    });
    let mut buf = vec![0u8; 64];
    let n = encode_frame(&frame, 1024, &mut buf).unwrap();
    h.b.handle_input(p, h.now, &buf[..n]);
    assert!(h.b.snapshot().is_none());
    h.drain();
    let snap = h.b.snapshot().unwrap();
    // A store that wrote the whole log after the snapshot too: nothing doubles.
    let records = snap
        .records
        .iter()
        .map(|r| r.to_vec())
        .chain(h.records.clone());
    let mut r = H::restored_from(Config::default(), records);
    let (s, _) = r.connect("dev", SessionMode::Resume);
    r.subscribe(s, 1, "t", None, 10);
    assert_eq!(payloads(&r.deliveries(s)), [b"y"]);
}

#[test]
fn qos0_sequence_numbers_are_not_handed_out_again_after_a_restart() {
    // QoS 0 messages are not stored; a record reserving a block of sequence
    // numbers is, once per block.
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 100);
    for _ in 0..3 {
        h.publish(p, 0, "t", QoS::AtMostOnce, b"x");
    }
    let seqs: Vec<u64> = h.deliveries(s).iter().map(|d| d.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    let reservations = h
        .records
        .iter()
        .filter(|r| matches!(Record::decode(r), Ok(Record::SeqReserve { topic: "t", .. })))
        .count();
    assert_eq!(reservations, 1);

    let mut r = H::restored_from(Config::default(), &h.records);
    let (p, _) = r.connect("pub", SessionMode::Clean);
    let (s, _) = r.connect("sub", SessionMode::Clean);
    r.subscribe(s, 1, "t", None, 100);
    r.publish(p, 0, "t", QoS::AtMostOnce, b"y");
    let d = r.deliveries(s);
    assert_eq!(d.len(), 1);
    assert!(d[0].seq > 3, "seq {} handed out again", d[0].seq);
}

#[test]
fn a_resumed_client_acks_by_message_what_it_acked_while_away() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "cmd.>", None, 2);
    h.publish(p, 1, "cmd.a", QoS::AtLeastOnce, b"1");
    h.publish(p, 2, "cmd.b", QoS::AtLeastOnce, b"2");
    let d = h.deliveries(s);
    assert_eq!(payloads(&d), [b"1", b"2"]);
    // The connection ends before the broker has the acks.
    h.b.handle_closed(s, h.now);
    let (s, present) = h.connect("dev", SessionMode::Resume);
    assert!(present);
    let ack = |seq: u64, topic: &str| {
        Frame::AckMessage(AckMessage {
            sub: 1,
            topic_hash: topic_hash(topic),
            seq,
        })
    };
    // One right, one of another topic, one of an unknown subscription.
    h.send_all(
        s,
        [
            ack(d[0].seq, "cmd.a"),
            ack(d[1].seq, "cmd.a"),
            Frame::AckMessage(AckMessage {
                sub: 9,
                topic_hash: topic_hash("cmd.b"),
                seq: d[1].seq,
            }),
        ],
    );
    assert_eq!(h.b.stats().acked, 1);
    h.subscribe(s, 1, "cmd.>", None, 2);
    assert_eq!(payloads(&h.deliveries(s)), [b"2"]);
}

#[test]
fn a_client_acks_by_message_what_a_broker_restart_brought_back() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(s, 1, "cmd.>", None, 1);
    h.publish(p, 1, "cmd.a", QoS::AtLeastOnce, b"1");
    h.publish(p, 2, "cmd.a", QoS::AtLeastOnce, b"2");
    h.persist();
    let d = h.deliveries(s);
    assert_eq!(payloads(&d), [b"1"]);
    // The broker restarts before it has the ack (or before its record is
    // durable): both messages are restored.
    let mut r = restored(&h);
    let queued = r.b.stats().current_queued;
    let (s, present) = r.connect("dev", SessionMode::Resume);
    assert!(present);
    r.send(
        s,
        Frame::AckMessage(AckMessage {
            sub: 1,
            topic_hash: topic_hash("cmd.a"),
            seq: d[0].seq,
        }),
    );
    assert_eq!(r.b.stats().acked, 1);
    assert_eq!(r.b.stats().current_queued, queued - 1);
    r.subscribe(s, 1, "cmd.>", None, 1);
    assert_eq!(payloads(&r.deliveries(s)), [b"2"]);
}
