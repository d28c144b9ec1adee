//! Subscribing: (re)subscriptions, the table, credit, unsubscribing.

use super::*;
use std::format;

#[test]
fn subscriptions_sent_after_welcome_and_again_when_session_lost() {
    let mut t = T::std();
    let opts = SubscribeOptions {
        start: Start::Last(5),
        credit: 3,
        ..Default::default()
    };
    let a = t.s.subscribe(t.now, "sensors.>", &opts).unwrap();
    let b =
        t.s.subscribe(
            t.now,
            "jobs.*",
            &SubscribeOptions {
                group: Some("workers"),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((a.0, b.0), (1, 2));
    t.handshake(false, limits(4096, 0));
    let sent = t.tx();
    let subs: Vec<_> = sent
        .iter()
        .map(|b| match frame(b) {
            Frame::Subscribe(s) => (
                s.sub,
                s.filter.to_string(),
                s.group.map(|g| g.to_string()),
                s.start,
                s.credit,
            ),
            f => panic!("unexpected {f:?}"),
        })
        .collect();
    assert_eq!(
        subs,
        [
            (1, "sensors.>".to_string(), None, Start::Last(5), 3),
            (
                2,
                "jobs.*".to_string(),
                Some("workers".to_string()),
                Start::New,
                8
            ),
        ]
    );
    assert!(t.feed(Frame::SubAck(SubAck { sub: 1 })));
    assert!(t.feed(Frame::SubAck(SubAck { sub: 2 })));
    assert_eq!(t.ev(), [Ev::Subscribed(1), Ev::Subscribed(2)]);
    // Resumed session: every subscription is re-asserted with its id, filter
    // and group (the broker delivers for it only after that).
    t.reconnect(true, limits(4096, 0));
    let reasserted: Vec<_> = t
        .tx()
        .iter()
        .map(|b| match frame(b) {
            Frame::Subscribe(s) => (s.sub, s.filter.to_string(), s.group.map(str::to_string)),
            f => panic!("unexpected {f:?}"),
        })
        .collect();
    assert_eq!(
        reasserted,
        [
            (1, "sensors.>".to_string(), None),
            (2, "jobs.*".to_string(), Some("workers".to_string()))
        ]
    );
    // Lost session: every subscription again, from the stored cursor.
    t.reconnect(false, limits(4096, 0));
    let sent = t.tx();
    let again: Vec<_> = sent
        .iter()
        .map(|b| match frame(b) {
            Frame::Subscribe(s) => (s.sub, s.start),
            f => panic!("unexpected {f:?}"),
        })
        .collect();
    assert_eq!(again, [(1, Start::Cursor), (2, Start::Cursor)]);
    // Acks of the resubscription do not repeat Subscribed.
    assert!(t.feed(Frame::SubAck(SubAck { sub: 1 })));
    assert!(t.ev().is_empty());
    assert_eq!(
        t.s.subscribe(t.now, "a..b", &SubscribeOptions::default()),
        Err(SubscribeError::InvalidFilter)
    );
    assert_eq!(
        t.s.subscribe(
            t.now,
            "a",
            &SubscribeOptions {
                group: Some(""),
                ..Default::default()
            }
        ),
        Err(SubscribeError::InvalidGroup)
    );
}

#[test]
fn subscribe_table_full_reject_and_unsubscribe() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let a = t.subscribe("a");
    for i in 1..8 {
        t.s.subscribe(t.now, &std::format!("x{i}"), &SubscribeOptions::default())
            .unwrap();
    }
    assert_eq!(
        t.s.subscribe(t.now, "full", &SubscribeOptions::default()),
        Err(SubscribeError::TableFull)
    );
    // Never sent: removed at once, nothing on the wire.
    t.s.unsubscribe(t.now, SubId(8)).unwrap();
    assert_eq!(t.s.subscriptions(), 7);
    assert_eq!(t.tx().len(), 6);
    assert!(t.feed(Frame::SubReject(SubReject {
        sub: 2,
        reason: Reason::NotAuthorized
    })));
    assert_eq!(t.ev(), [Ev::SubscribeRejected(2, Reason::NotAuthorized)]);
    assert_eq!(t.s.subscriptions(), 6);
    t.s.unsubscribe(t.now, a).unwrap();
    let sent = t.tx();
    assert_eq!(kinds(&sent), ["unsubscribe"]);
    assert!(t.feed(Frame::UnsubAck(UnsubAck { sub: a.0 })));
    assert_eq!(t.ev(), [Ev::Unsubscribed(a.0)]);
    assert_eq!(t.s.unsubscribe(t.now, a), Err(UnsubscribeError::UnknownSub));
    assert_eq!(t.s.grant_credit(a, 1), Err(CreditError::UnknownSub));
}

#[test]
fn qos0_credit_returned_in_batches_and_grants_sent() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub =
        t.s.subscribe(
            t.now,
            "c.>",
            &SubscribeOptions {
                credit: 4,
                qos: QoS::AtMostOnce,
                ..Default::default()
            },
        )
        .unwrap();
    t.tx();
    assert!(t.feed(Frame::SubAck(SubAck { sub: sub.0 })));
    t.ev();
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "c.x",
        1,
        1,
        QoS::AtMostOnce,
        b"1"
    ))));
    t.ev();
    assert!(t.tx().is_empty(), "one owed is below half the window");
    for seq in 2..=3 {
        assert!(t.feed(Frame::Deliver(deliver(
            sub.0,
            "c.x",
            seq,
            seq,
            QoS::AtMostOnce,
            b"n"
        ))));
    }
    assert_eq!(t.ev().len(), 2);
    assert_eq!(
        frame(&t.tx()[0]),
        Frame::Credit(crate::wire::Credit {
            sub: sub.0,
            credit: 3
        })
    );
    assert!(t.tx().is_empty());
    // QoS 1 deliveries return credit through the ack only.
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "c.x",
        4,
        4,
        QoS::AtLeastOnce,
        b"n"
    ))));
    let id = msg(&t.ev()[0]).id;
    t.s.ack(id).unwrap();
    assert_eq!(kinds(&t.tx()), ["ack"]);
    t.s.grant_credit(sub, 10).unwrap();
    assert_eq!(
        frame(&t.tx()[0]),
        Frame::Credit(crate::wire::Credit {
            sub: sub.0,
            credit: 10
        })
    );
}

#[test]
fn unsubscribe_while_away_completes_when_the_session_is_lost() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("a");
    t.s.handle_disconnected(t.now);
    t.s.unsubscribe(t.now, sub).unwrap();
    let at = t.s.poll_timeout().unwrap();
    t.now = at;
    t.s.handle_timeout(t.now);
    t.ev();
    assert_eq!(
        t.handshake(false, limits(4096, 0)),
        [Ev::Connected(false), Ev::Unsubscribed(sub.0)]
    );
    assert!(t.tx().is_empty());
    assert_eq!(t.s.subscriptions(), 0);
    // With the session resumed, the Unsubscribe goes out instead.
    let sub = t.subscribe("b");
    t.s.handle_disconnected(t.now);
    t.s.unsubscribe(t.now, sub).unwrap();
    let events = t.reconnect(true, limits(4096, 0));
    assert_eq!(events.last(), Some(&Ev::Connected(true)));
    assert_eq!(kinds(&t.tx()), ["unsubscribe"]);
}

#[test]
fn acks_go_out_before_an_unsubscribe_issued_after_them() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("jobs");
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "jobs",
        1,
        80,
        QoS::AtLeastOnce,
        b"a"
    ))));
    let id = msg(&t.ev()[0]).id;
    t.s.ack(id).unwrap();
    t.s.unsubscribe(t.now, sub).unwrap();
    assert_eq!(kinds(&t.tx()), ["ack", "unsubscribe"]);
}

#[test]
fn names_at_their_limits_are_sent_whole_and_one_byte_more_is_refused() {
    let mut t = T::std();
    let filter = "f".repeat(MAX_FILTER_LEN);
    let group = "g".repeat(MAX_GROUP_LEN);
    let long = SubscribeOptions {
        group: Some(&group),
        ..Default::default()
    };
    assert_eq!(
        t.s.subscribe(t.now, &format!("{filter}f"), &long),
        Err(SubscribeError::FilterTooLong)
    );
    let too_long = format!("{group}g");
    let refused = SubscribeOptions {
        group: Some(&too_long),
        ..Default::default()
    };
    assert_eq!(
        t.s.subscribe(t.now, &filter, &refused),
        Err(SubscribeError::InvalidGroup)
    );
    let sub = t.s.subscribe(t.now, &filter, &long).unwrap();
    t.handshake(false, limits(4096, 0));
    let sent: Vec<_> = t
        .tx()
        .iter()
        .map(|b| match frame(b) {
            Frame::Subscribe(s) => (s.sub, s.filter.to_string(), s.group.map(str::to_string)),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    // The refusals took no slot: the one subscription is the first.
    assert_eq!(sent, vec![(sub.0, filter, Some(group))]);
    assert_eq!(sub.0, 1);
}
