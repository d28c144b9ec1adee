//! Receiving: deliveries, acks, redeliveries, fragments, chunks, backpressure.

use super::*;

#[test]
fn delivery_event_then_ack_sends_tag() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("orders.>");
    let mut d = deliver(sub.0, "orders.eu", 17, 900, QoS::AtLeastOnce, b"payload");
    d.meta.reply_to = Some("replies.x");
    d.attempt = 2;
    assert!(t.feed(Frame::Deliver(d)));
    let events = t.ev();
    let m = msg(&events[0]);
    assert_eq!(
        (m.sub, m.topic.as_str(), m.seq, m.attempt, m.qos),
        (sub.0, "orders.eu", 17, 2, QoS::AtLeastOnce)
    );
    assert_eq!(m.reply_to.as_deref(), Some("replies.x"));
    assert_eq!(m.payload, b"payload");
    assert!(m.id.needs_ack());
    assert_eq!(t.s.held_len(), 1);
    assert!(t.tx().is_empty());
    t.s.ack(m.id).unwrap();
    let sent = t.tx();
    assert_eq!(frame(&sent[0]), Frame::Ack(crate::wire::Ack { tag: 900 }));
    assert_eq!(t.s.held_len(), 0);
    assert_eq!(t.s.ack(m.id), Err(AckError::Unknown));
    // Nack carries requeue.
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "orders.eu",
        18,
        901,
        QoS::AtLeastOnce,
        b"p"
    ))));
    let id = msg(&t.ev()[0]).id;
    t.s.nack(id, false).unwrap();
    assert_eq!(
        frame(&t.tx()[0]),
        Frame::Nack(crate::wire::Nack {
            tag: 901,
            requeue: false
        })
    );
    // QoS 0: nothing to ack.
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "orders.eu",
        19,
        902,
        QoS::AtMostOnce,
        b"p"
    ))));
    let id = msg(&t.ev()[0]).id;
    assert_eq!(id, DeliveryId::NONE);
    assert_eq!(t.s.ack(id), Ok(()));
    assert!(t.tx().is_empty());
    assert_eq!(t.s.stats().deliveries, 3);
}

#[test]
fn redelivery_of_acked_message_is_suppressed_and_reacked() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("a.>");
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.b",
        5,
        10,
        QoS::AtLeastOnce,
        b"x"
    ))));
    let id = msg(&t.ev()[0]).id;
    t.s.ack(id).unwrap();
    assert_eq!(kinds(&t.tx()), ["ack"]);
    let mut again = deliver(sub.0, "a.b", 5, 11, QoS::AtLeastOnce, b"x");
    again.attempt = 2;
    assert!(t.feed(Frame::Deliver(again)));
    assert!(t.ev().is_empty());
    assert_eq!(frame(&t.tx()[0]), Frame::Ack(crate::wire::Ack { tag: 11 }));
    assert_eq!(t.s.stats().duplicates_suppressed, 1);
    // Same sequence on another topic is a different message.
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.c",
        5,
        12,
        QoS::AtLeastOnce,
        b"y"
    ))));
    assert_eq!(t.ev().len(), 1);
}

#[test]
fn redelivery_of_held_message_updates_its_tag() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("a.>");
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.b",
        1,
        10,
        QoS::AtLeastOnce,
        b"x"
    ))));
    let first = msg(&t.ev()[0]).id;
    // Ack timeout on the broker: same message, new tag; not shown again.
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.b",
        1,
        11,
        QoS::AtLeastOnce,
        b"x"
    ))));
    assert!(t.ev().is_empty());
    t.s.ack(first).unwrap();
    assert_eq!(frame(&t.tx()[0]), Frame::Ack(crate::wire::Ack { tag: 11 }));
    // Across a reconnect the held entry waits for its redelivery's tag.
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.b",
        2,
        12,
        QoS::AtLeastOnce,
        b"y"
    ))));
    let second = msg(&t.ev()[0]).id;
    t.reconnect(true, limits(4096, 0));
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.b",
        2,
        30,
        QoS::AtLeastOnce,
        b"y"
    ))));
    assert!(t.ev().is_empty());
    t.s.ack(second).unwrap();
    assert_eq!(frame(&t.tx()[0]), Frame::Ack(crate::wire::Ack { tag: 30 }));
    assert_eq!(t.s.stats().redeliveries_absorbed, 2);
}

#[test]
fn ack_after_disconnect_is_stale_and_applied_on_redelivery() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("a.>");
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.b",
        5,
        10,
        QoS::AtLeastOnce,
        b"x"
    ))));
    let id = msg(&t.ev()[0]).id;
    t.s.handle_disconnected(t.now);
    assert_eq!(t.ev(), [Ev::Disconnected(Reason::Normal)]);
    assert_eq!(t.s.ack(id), Err(AckError::Stale));
    assert_eq!(t.s.ack(id), Err(AckError::Unknown));
    assert!(t.tx().is_empty());
    // Put the session back to Backoff expectations: reconnect from here.
    let at = t.s.poll_timeout().unwrap();
    t.now = at;
    t.s.handle_timeout(t.now);
    assert_eq!(t.ev(), [Ev::Connect]);
    t.handshake(true, limits(4096, 0));
    // The ack made while away is offered by message, then the resumed
    // subscription is re-asserted.
    let tx = t.tx();
    assert_eq!(kinds(&tx), ["ack-message", "subscribe"]);
    assert_eq!(
        frame(&tx[0]),
        Frame::AckMessage(crate::wire::AckMessage {
            sub: sub.0,
            topic_hash: crate::wire::topic_hash("a.b"),
            seq: 5,
        })
    );
    // Should the broker deliver it all the same, the copy is acked unseen.
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "a.b",
        5,
        20,
        QoS::AtLeastOnce,
        b"x"
    ))));
    assert!(t.ev().is_empty());
    assert_eq!(frame(&t.tx()[0]), Frame::Ack(crate::wire::Ack { tag: 20 }));
}

/// Feeds QoS 1 deliveries on `a.b`, one per (sequence, broker tag); the
/// application's ids for them.
fn held(t: &mut T, sub: SubId, deliveries: &[(u64, u64)]) -> Vec<DeliveryId> {
    for &(seq, tag) in deliveries {
        let d = deliver(sub.0, "a.b", seq, tag, QoS::AtLeastOnce, b"x");
        assert!(t.feed(Frame::Deliver(d)));
    }
    t.ev().iter().map(|e| msg(e).id).collect()
}

/// The connection drops; the next one is welcomed, with the session
/// present or not.
fn reconnect(t: &mut T, present: bool) {
    t.s.handle_disconnected(t.now);
    t.ev();
    t.now = t.s.poll_timeout().unwrap();
    t.s.handle_timeout(t.now);
    assert_eq!(t.ev(), [Ev::Connect]);
    t.handshake(present, limits(4096, 0));
}

#[test]
fn a_resumed_session_offers_its_remembered_acks_and_a_clean_one_none() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("a.>");
    let ids = held(&mut t, sub, &[(1, 11), (2, 12), (3, 13)]);
    t.s.ack(ids[0]).unwrap();
    t.s.nack(ids[1], true).unwrap();
    t.s.ack(ids[2]).unwrap();
    assert_eq!(kinds(&t.tx()), ["ack", "nack", "ack"]);
    let offered = |t: &mut T| -> Vec<u64> {
        t.tx()
            .iter()
            .filter_map(|b| match frame(b) {
                Frame::AckMessage(a) => Some(a.seq),
                _ => None,
            })
            .collect()
    };
    for present in [true, false] {
        reconnect(&mut t, present);
        // The acks, oldest first; not the nack (that message is to come again).
        let want: &[u64] = if present { &[1, 3] } else { &[] };
        assert_eq!(offered(&mut t), want, "session present: {present}");
    }
}

#[test]
fn a_stale_ack_made_after_the_resume_goes_out_by_message() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("a.>");
    let id = held(&mut t, sub, &[(7, 70)])[0];
    reconnect(&mut t, true);
    assert_eq!(kinds(&t.tx()), ["subscribe"]);
    // The application acks the delivery of the old connection only now.
    assert_eq!(t.s.ack(id), Err(AckError::Stale));
    let tx = t.tx();
    assert_eq!(kinds(&tx), ["ack-message"]);
    assert_eq!(
        frame(&tx[0]),
        Frame::AckMessage(crate::wire::AckMessage {
            sub: sub.0,
            topic_hash: crate::wire::topic_hash("a.b"),
            seq: 7,
        })
    );
}

#[test]
fn acks_offered_after_a_resume_all_go_out_when_one_is_added_midway() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("a.>");
    let ids = held(&mut t, sub, &[(1, 11), (2, 12), (3, 13), (4, 14)]);
    for id in &ids[..3] {
        t.s.ack(*id).unwrap();
    }
    t.tx();
    reconnect(&mut t, true);
    // The first offer goes out alone (room for one frame), then the
    // application acks the fourth delivery, from the old connection.
    let one = crate::framing::stream::framed_len(&Frame::AckMessage(crate::wire::AckMessage {
        sub: sub.0,
        topic_hash: crate::wire::topic_hash("a.b"),
        seq: 1,
    }));
    let mut buf = vec![0u8; one];
    assert_eq!(t.s.poll_transmit(t.now, &mut buf), Some(one));
    assert_eq!(t.s.ack(ids[3]), Err(AckError::Stale));
    let rest: Vec<u64> = t
        .tx()
        .iter()
        .filter_map(|b| match frame(b) {
            Frame::AckMessage(a) => Some(a.seq),
            _ => None,
        })
        .collect();
    assert_eq!(rest, [2, 3, 4]);
}

#[test]
fn fragmented_delivery_reassembled_when_it_fits() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("f.>");
    let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    for (i, part) in payload.chunks(300).enumerate() {
        let mut d = deliver(sub.0, "f.x", 3, 77, QoS::AtLeastOnce, part);
        d.fragment = Some(Fragment {
            offset: i as u64 * 300,
            total: 1000,
        });
        if i > 0 {
            // Headers come from the first fragment only.
            d.topic = "ignored";
        }
        assert!(t.feed(Frame::Deliver(d)));
        let events = t.ev();
        if i < 3 {
            assert!(events.is_empty());
        } else {
            let m = msg(&events[0]);
            assert_eq!((m.topic.as_str(), m.seq), ("f.x", 3));
            assert_eq!(m.payload, payload);
            t.s.ack(m.id).unwrap();
        }
    }
    assert_eq!(frame(&t.tx()[0]), Frame::Ack(crate::wire::Ack { tag: 77 }));
}

#[test]
fn delivery_larger_than_inbox_arrives_in_chunks() {
    let mut t = T::new(config(), 4096, 512);
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("f.>");
    let payload: Vec<u8> = (0..2000u32).map(|i| (i * 3) as u8).collect();
    let mut got = Vec::new();
    let mut id = None;
    for (i, part) in payload.chunks(300).enumerate() {
        let mut d = deliver(sub.0, "f.big", 9, 55, QoS::AtLeastOnce, part);
        d.meta.reply_to = Some("back");
        d.fragment = Some(Fragment {
            offset: i as u64 * 300,
            total: 2000,
        });
        assert!(t.feed(Frame::Deliver(d)));
        let events = t.ev();
        assert_eq!(events.len(), 1);
        let Ev::Chunk(c) = &events[0] else {
            panic!("expected a chunk")
        };
        assert_eq!(
            (c.offset, c.total, c.topic.as_str()),
            (i as u64 * 300, 2000, "f.big")
        );
        assert_eq!(c.last, c.offset + c.data.len() as u64 == 2000);
        assert_eq!(c.reply_to.is_some(), i == 0);
        assert_eq!(*id.get_or_insert(c.id), c.id);
        got.extend_from_slice(&c.data);
    }
    assert_eq!(got, payload);
    t.s.ack(id.unwrap()).unwrap();
    assert_eq!(frame(&t.tx()[0]), Frame::Ack(crate::wire::Ack { tag: 55 }));
    assert_eq!(t.s.stats().deliveries, 1);
}

#[test]
fn full_inbox_stops_input_until_events_are_drained() {
    // One 100-byte delivery on "a.b" takes 56 + 3 + 5 + 100 = 164 bytes.
    let mut t = T::new(config(), 4096, 200);
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("a.>");
    let mut input = Vec::new();
    for seq in 1..=3 {
        input.extend(T::wire(&Frame::Deliver(deliver(
            sub.0,
            "a.b",
            seq,
            seq,
            QoS::AtMostOnce,
            &[seq as u8; 100],
        ))));
    }
    let one = input.len() / 3;
    let mut seen = Vec::new();
    let mut rest = &input[..];
    let mut calls = 0;
    while !rest.is_empty() {
        let n = t.s.handle_input(t.now, rest);
        assert_eq!(n, one, "exactly one delivery fits at a time");
        rest = &rest[n..];
        for e in t.ev() {
            seen.push(msg(&e).seq);
        }
        calls += 1;
    }
    assert_eq!((seen, calls), (vec![1, 2, 3], 3));
    // Held table full also pushes back (HELD = 1 here).
    let mut s: Session<Vec<u8>, 8, 1> =
        Session::new(config(), Framing::Stream, vec![0; 1024], vec![0; 4096]);
    s.connect(t.now);
    s.handle_connected(t.now);
    let mut buf = vec![0u8; 4096];
    s.poll_transmit(t.now, &mut buf);
    assert!(
        s.handle_frame(t.now, T::welcome(false, limits(4096, 0)))
            .is_ok()
    );
    let sub = s
        .subscribe(t.now, "a", &SubscribeOptions::default())
        .unwrap();
    s.poll_transmit(t.now, &mut buf);
    assert!(
        s.handle_frame(
            t.now,
            Frame::Deliver(deliver(sub.0, "a", 1, 1, QoS::AtLeastOnce, b"1"))
        )
        .is_ok()
    );
    assert_eq!(
        s.handle_frame(
            t.now,
            Frame::Deliver(deliver(sub.0, "a", 2, 2, QoS::AtLeastOnce, b"2"))
        ),
        Err(Backpressure::Held)
    );
}

#[test]
fn events_keep_arrival_order_around_messages() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub =
        t.s.subscribe(t.now, "o.>", &SubscribeOptions::default())
            .unwrap();
    let id =
        t.s.publish(
            t.now,
            "o.p",
            b"x",
            &PublishOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        )
        .unwrap();
    t.tx();
    let mut input = T::wire(&Frame::SubAck(SubAck { sub: sub.0 }));
    input.extend(T::wire(&Frame::Deliver(deliver(
        sub.0,
        "o.a",
        1,
        1,
        QoS::AtMostOnce,
        b"1",
    ))));
    input.extend(T::wire(&Frame::PubAck(PubAck {
        id: id.0,
        seq: 4,
        duplicate: false,
    })));
    input.extend(T::wire(&Frame::Deliver(deliver(
        sub.0,
        "o.a",
        2,
        2,
        QoS::AtMostOnce,
        b"2",
    ))));
    assert_eq!(t.s.handle_input(t.now, &input), input.len());
    let events = t.ev();
    assert_eq!(events[0], Ev::Subscribed(sub.0));
    assert_eq!(msg(&events[1]).seq, 1);
    assert_eq!(events[2], Ev::Published(id.0, 4, false));
    assert_eq!(msg(&events[3]).seq, 2);
}

#[test]
fn chunked_delivery_cut_by_disconnect_is_shown_again() {
    let mut t = T::new(config(), 4096, 512);
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("f.>");
    let mut first = deliver(sub.0, "f.big", 1, 5, QoS::AtLeastOnce, &[1; 300]);
    first.fragment = Some(Fragment {
        offset: 0,
        total: 1000,
    });
    assert!(t.feed(Frame::Deliver(first)));
    let Ev::Chunk(c) = &t.ev()[0] else { panic!() };
    let old = c.id;
    t.reconnect(true, limits(4096, 0));
    assert_eq!(t.s.ack(old), Err(AckError::Unknown));
    first.tag = 6;
    first.attempt = 2;
    assert!(t.feed(Frame::Deliver(first)));
    let Ev::Chunk(c) = &t.ev()[0] else {
        panic!("the redelivery must be shown from offset 0")
    };
    assert_eq!(c.offset, 0);
    assert_ne!(c.id, old);
    // A reassembly cut short leaves nothing behind in the inbox either.
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("f.>");
    let mut d = deliver(sub.0, "f.x", 1, 5, QoS::AtLeastOnce, &[1; 300]);
    d.fragment = Some(Fragment {
        offset: 0,
        total: 600,
    });
    assert!(t.feed(Frame::Deliver(d)));
    assert!(t.s.inbox_bytes() > 0);
    t.reconnect(true, limits(4096, 0));
    assert_eq!((t.s.inbox_bytes(), t.s.held_len()), (0, 0));
}
