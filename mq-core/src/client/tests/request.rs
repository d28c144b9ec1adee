//! Request-reply: the reply subscription, correlation, the table of pending
//! requests, timeouts and failures, and replying.

use super::*;
use crate::wire::{Publish, Subscribe};

/// The publish frame in `body`.
fn publish(body: &[u8]) -> Publish<'_> {
    match frame(body) {
        Frame::Publish(p) => p,
        f => panic!("expected a publish, got {f:?}"),
    }
}

/// The subscribe frame in `body`.
fn subscribe(body: &[u8]) -> Subscribe<'_> {
    match frame(body) {
        Frame::Subscribe(s) => s,
        f => panic!("expected a subscribe, got {f:?}"),
    }
}

/// A reply for the request `id` on the reply subscription `sub`.
fn reply<'a>(
    sub: u32,
    tag: u64,
    qos: QoS,
    correlation: &'a [u8],
    payload: &'a [u8],
) -> Deliver<'a> {
    let mut d = deliver(sub, "_reply.client-1", tag, tag, qos, payload);
    d.meta.correlation = Some(correlation);
    d
}

/// Connected, with one request made and sent; its id and the reply
/// subscription's id.
fn requested(t: &mut T, opts: &RequestOptions<'_>) -> (RequestId, u32) {
    t.handshake(false, limits(4096, 0));
    let id = t.s.request(t.now, "svc.echo", b"ping", opts).unwrap();
    let sent = t.tx();
    assert_eq!(kinds(&sent), ["subscribe", "publish"]);
    let sub = subscribe(&sent[0]).sub;
    assert!(t.feed(Frame::SubAck(SubAck { sub })));
    (id, sub)
}

#[test]
fn requests_carry_the_reply_topic_and_replies_come_back_by_correlation() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let first =
        t.s.request(t.now, "svc.echo", b"ping", &RequestOptions::default());
    let first = first.unwrap();
    let sent = t.tx();
    // The reply subscription goes out before the request, in a slot of its own.
    assert_eq!(kinds(&sent), ["subscribe", "publish"]);
    let s = subscribe(&sent[0]);
    assert_eq!(
        (s.filter, s.group, s.qos),
        ("_reply.client-1", None, QoS::AtLeastOnce)
    );
    let p = publish(&sent[1]);
    assert_eq!((p.topic, p.payload), ("svc.echo", &b"ping"[..]));
    assert_eq!(p.meta.reply_to, Some("_reply.client-1"));
    assert_eq!(p.meta.correlation, Some(&first.0.to_be_bytes()[..]));
    let sub = s.sub;
    assert_eq!(t.s.subscriptions(), 0, "the application does not see it");
    assert!(t.feed(Frame::SubAck(SubAck { sub })));
    assert!(
        t.ev().is_empty(),
        "no Subscribed for the reply subscription"
    );
    // The second request reuses the subscription.
    let second =
        t.s.request(t.now, "svc.echo", b"pong", &RequestOptions::default());
    let second = second.unwrap();
    assert_ne!(first, second);
    assert_eq!(kinds(&t.tx()), ["publish"]);
    // Replies in any order, each to its request; the session acks them.
    let c2 = second.0.to_be_bytes();
    assert!(t.feed(Frame::Deliver(reply(
        sub,
        40,
        QoS::AtLeastOnce,
        &c2,
        b"two"
    ))));
    let events = t.ev();
    let [Ev::Reply(id, m)] = &events[..] else {
        panic!("expected a reply, got {events:?}")
    };
    assert_eq!(
        (*id, m.payload.as_slice(), m.id),
        (second, &b"two"[..], DeliveryId::NONE)
    );
    assert_eq!(frame(&t.tx()[0]), Frame::Ack(crate::wire::Ack { tag: 40 }));
    let c1 = first.0.to_be_bytes();
    assert!(t.feed(Frame::Deliver(reply(sub, 41, QoS::AtMostOnce, &c1, b"one"))));
    assert!(matches!(&t.ev()[..], [Ev::Reply(id, m)] if *id == first && m.payload == b"one"));
    assert_eq!(t.s.held_len(), 0);
    // Answered already, or never asked: acked, dropped, counted.
    assert!(t.feed(Frame::Deliver(reply(
        sub,
        42,
        QoS::AtLeastOnce,
        &c2,
        b"again"
    ))));
    assert!(t.feed(Frame::Deliver(reply(
        sub,
        43,
        QoS::AtLeastOnce,
        b"??",
        b"who"
    ))));
    assert!(t.ev().is_empty());
    assert_eq!(kinds(&t.tx()), ["ack", "ack"]);
    assert_eq!(t.s.stats().replies_dropped, 2);
    // The application cannot end it.
    assert_eq!(
        t.s.unsubscribe(t.now, SubId(sub)),
        Err(UnsubscribeError::UnknownSub)
    );
    assert_eq!(
        t.s.grant_credit(SubId(sub), 1),
        Err(CreditError::UnknownSub)
    );
}

#[test]
fn the_table_is_fixed_and_timeouts_free_it() {
    let mut t = T::std();
    let timeout = RequestOptions {
        timeout: Some(Duration::from_secs(2)),
        ..RequestOptions::default()
    };
    let (first, sub) = requested(&mut t, &timeout);
    let start = t.now;
    let mut ids = vec![first];
    for _ in 1..4 {
        ids.push(
            t.s.request(t.now, "svc.echo", b"x", &RequestOptions::default())
                .unwrap(),
        );
    }
    assert_eq!(
        t.s.request(t.now, "svc.echo", b"x", &RequestOptions::default()),
        Err(RequestError::TableFull)
    );
    t.tx();
    // The first times out; its slot is free once the failure is polled.
    assert_eq!(t.s.poll_timeout(), Some(start + Duration::from_secs(2)));
    t.now = start + Duration::from_secs(2);
    t.s.handle_timeout(t.now);
    assert_eq!(t.s.poll_timeout(), None);
    assert_eq!(
        t.s.request(t.now, "svc.echo", b"x", &RequestOptions::default()),
        Err(RequestError::TableFull),
        "the failure is not reported yet"
    );
    assert_eq!(t.ev(), [Ev::RequestFailed(first, RequestFailure::Timeout)]);
    assert!(
        t.s.request(t.now, "svc.echo", b"x", &RequestOptions::default())
            .is_ok()
    );
    // Its reply comes too late.
    let c = first.0.to_be_bytes();
    assert!(t.feed(Frame::Deliver(reply(sub, 7, QoS::AtMostOnce, &c, b"late"))));
    assert!(t.ev().is_empty());
    assert_eq!(t.s.stats().replies_dropped, 1);
    // The other options travel with the request.
    t.ev();
    let opts = RequestOptions {
        qos: QoS::AtLeastOnce,
        ttl_ms: Some(500),
        priority: 3,
        ..RequestOptions::default()
    };
    assert_eq!(
        t.s.request(t.now, "svc.echo", b"x", &opts),
        Err(RequestError::TableFull)
    );
    assert_eq!(ids.len(), 4);
    let mut t = T::std();
    let (_, _) = requested(&mut t, &RequestOptions::default());
    t.s.request(t.now, "svc.echo", b"x", &opts).unwrap();
    let sent = t.tx();
    let p = publish(&sent[0]);
    assert_eq!(
        (p.qos, p.meta.ttl_ms, p.meta.priority),
        (QoS::AtLeastOnce, Some(500), 3)
    );
}

#[test]
fn a_request_timing_out_before_it_was_sent_is_never_sent() {
    let mut t = T::std();
    let id = t.s.request(
        t.now,
        "svc.echo",
        b"ping",
        &RequestOptions {
            timeout: Some(Duration::from_secs(1)),
            ..RequestOptions::default()
        },
    );
    let id = id.unwrap();
    t.s.connect(t.now);
    assert_eq!(t.ev(), [Ev::Connect]);
    t.now = t.s.poll_timeout().unwrap();
    assert_eq!(t.now, Instant::from_millis(2_000));
    t.s.handle_timeout(t.now);
    assert_eq!(t.ev(), [Ev::RequestFailed(id, RequestFailure::Timeout)]);
    assert_eq!(t.s.outbox_len(), 0);
    t.handshake(false, limits(4096, 0));
    assert_eq!(kinds(&t.tx()), ["subscribe"]);
}

#[test]
fn a_refused_request_fails_and_an_acked_one_waits_for_its_reply() {
    let mut t = T::std();
    let qos1 = RequestOptions {
        qos: QoS::AtLeastOnce,
        ..RequestOptions::default()
    };
    let (id, _) = requested(&mut t, &qos1);
    assert!(t.feed(Frame::PubAck(PubAck {
        id: 1,
        seq: 5,
        duplicate: false
    })));
    assert!(t.ev().is_empty(), "no Published for a request");
    assert_eq!((t.s.outbox_len(), t.s.stats().publish_acks), (0, 1));
    let refused = t.s.request(t.now, "svc.echo", b"x", &qos1).unwrap();
    assert_ne!(id, refused);
    let sent = t.tx();
    let p = publish(&sent[0]);
    assert!(t.feed(Frame::PubReject(PubReject {
        id: p.id,
        reason: Reason::NotAuthorized
    })));
    assert_eq!(
        t.ev(),
        [Ev::RequestFailed(
            refused,
            RequestFailure::Rejected(Reason::NotAuthorized)
        )]
    );
    assert_eq!(
        t.s.request(t.now, "svc.*", b"", &RequestOptions::default()),
        Err(RequestError::InvalidTopic)
    );
}

#[test]
fn requests_sent_on_a_lost_session_fail() {
    // A clean session: nothing survives the connection.
    let mut c = config();
    c.mode = SessionMode::Clean;
    let mut t = T::new(c, 8192, 8192);
    let (sent, _) = requested(&mut t, &RequestOptions::default());
    t.s.handle_disconnected(t.now);
    assert_eq!(
        t.ev(),
        [
            Ev::Disconnected(Reason::Normal),
            Ev::RequestFailed(sent, RequestFailure::SessionLost)
        ]
    );
    // One made while away has not gone out: it goes out on the next connection.
    t.s.request(t.now, "svc.echo", b"later", &RequestOptions::default())
        .unwrap();
    let events = t.reconnect(false, limits(4096, 0));
    assert_eq!(events, [Ev::Connect, Ev::Connected(false)]);
    assert_eq!(kinds(&t.tx()), ["subscribe", "publish"]);
    // A resumed session keeps waiting across a reconnect; a broker that lost
    // the session loses the replies.
    let mut t = T::std();
    let (id, _) = requested(&mut t, &RequestOptions::default());
    let events = t.reconnect(true, limits(4096, 0));
    assert_eq!(
        events,
        [
            Ev::Disconnected(Reason::Normal),
            Ev::Connect,
            Ev::Connected(true)
        ]
    );
    let events = t.reconnect(false, limits(4096, 0));
    assert_eq!(
        events,
        [
            Ev::Disconnected(Reason::Normal),
            Ev::Connect,
            Ev::Connected(false),
            Ev::RequestFailed(id, RequestFailure::SessionLost)
        ]
    );
}

#[test]
fn a_refused_reply_subscription_fails_the_requests_and_is_made_again() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let a =
        t.s.request(t.now, "svc.a", b"1", &RequestOptions::default())
            .unwrap();
    let b =
        t.s.request(t.now, "svc.b", b"2", &RequestOptions::default())
            .unwrap();
    let sent = t.tx();
    let sub = subscribe(&sent[0]).sub;
    assert!(t.feed(Frame::SubReject(SubReject {
        sub,
        reason: Reason::NotAuthorized
    })));
    let failed = RequestFailure::ReplySubscriptionRejected(Reason::NotAuthorized);
    assert_eq!(
        t.ev(),
        [Ev::RequestFailed(a, failed), Ev::RequestFailed(b, failed)]
    );
    t.s.request(t.now, "svc.c", b"3", &RequestOptions::default())
        .unwrap();
    assert_eq!(kinds(&t.tx()), ["subscribe", "publish"]);
}

#[test]
fn a_fragmented_reply_is_reassembled_and_one_cut_short_comes_again() {
    let mut t = T::std();
    let (id, sub) = requested(&mut t, &RequestOptions::default());
    let c = id.0.to_be_bytes();
    let payload: Vec<u8> = (0..900u32).map(|i| i as u8).collect();
    let part = |tag: u64, offset: usize, len: usize| {
        let mut d = reply(
            sub,
            tag,
            QoS::AtLeastOnce,
            &c,
            &payload[offset..offset + len],
        );
        d.fragment = Some(Fragment {
            offset: offset as u64,
            total: 900,
        });
        d
    };
    assert!(t.feed(Frame::Deliver(part(1, 0, 400))));
    // Cut short: the broker delivers it again on the resumed session.
    t.reconnect(true, limits(4096, 0));
    t.tx();
    assert!(t.feed(Frame::Deliver(part(2, 0, 400))));
    assert!(t.ev().is_empty());
    assert!(t.feed(Frame::Deliver(part(2, 400, 500))));
    let events = t.ev();
    assert!(matches!(&events[..], [Ev::Reply(r, m)] if *r == id && m.payload == payload));
    assert_eq!(kinds(&t.tx()), ["ack"]);
    // A reply larger than the inbox fails its request; it is acked and dropped.
    let mut t = T::new(config(), 8192, 700);
    let (id, sub) = requested(&mut t, &RequestOptions::default());
    let c = id.0.to_be_bytes();
    let mut d = reply(sub, 9, QoS::AtLeastOnce, &c, &[1; 500]);
    d.fragment = Some(Fragment {
        offset: 0,
        total: 5000,
    });
    assert!(t.feed(Frame::Deliver(d)));
    assert_eq!(
        t.ev(),
        [Ev::RequestFailed(id, RequestFailure::ReplyTooLarge)]
    );
    assert_eq!(kinds(&t.tx()), ["ack"]);
    d.fragment = Some(Fragment {
        offset: 500,
        total: 5000,
    });
    assert!(
        t.feed(Frame::Deliver(d)),
        "its other fragments are swallowed"
    );
    assert!(t.ev().is_empty());
}

#[test]
fn reply_answers_to_the_reply_topic_with_the_correlation() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let sub = t.subscribe("svc.>");
    let mut d = deliver(sub.0, "svc.echo", 1, 1, QoS::AtLeastOnce, b"ping");
    d.meta.reply_to = Some("_reply.other");
    d.meta.correlation = Some(b"c-17");
    assert!(t.feed(Frame::Deliver(d)));
    let mut to = None;
    while let Some(e) = t.s.poll_event() {
        if let Event::Message(m) = e {
            to = ReplyAddress::of(&m.meta);
        }
    }
    let to = to.expect("the request names where to reply");
    assert_eq!(
        (to.topic(), to.correlation()),
        ("_reply.other", Some(&b"c-17"[..]))
    );
    let opts = PublishOptions {
        meta: Meta {
            correlation: Some(b"ignored"),
            reply_to: Some("ignored"),
            ..Meta::default()
        },
        ..PublishOptions::default()
    };
    t.s.reply(t.now, &to, b"pong", &opts).unwrap();
    let sent = t.tx();
    let p = publish(&sent[0]);
    assert_eq!((p.topic, p.payload), ("_reply.other", &b"pong"[..]));
    assert_eq!(
        (p.meta.correlation, p.meta.reply_to),
        (Some(&b"c-17"[..]), None)
    );
    // Nothing to reply to.
    assert_eq!(ReplyAddress::of(&Meta::default()), None);
}

#[test]
fn a_client_id_that_makes_no_topic_gets_a_hashed_reply_topic() {
    let mut c = Config::new("dev*1").unwrap();
    c.limits = limits(4096, 0);
    let mut t = T::new(c, 8192, 8192);
    t.handshake(false, limits(4096, 0));
    t.s.request(t.now, "svc.echo", b"ping", &RequestOptions::default())
        .unwrap();
    let sent = t.tx();
    let filter = subscribe(&sent[0]).filter;
    let hex = filter.strip_prefix("_reply.").unwrap();
    assert_eq!(hex.len(), 16);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(publish(&sent[1]).meta.reply_to, Some(filter));
}

#[test]
fn a_session_without_requests_refuses_them_and_queues_nothing() {
    // `REQS == 0`: the table never has room, so no correlation id is made
    // (the session does not even derive their nonce).
    let mut s: Session<Vec<u8>, 1, 8, 0> =
        Session::new(config(), Framing::Stream, vec![0; 4096], vec![0; 4096]);
    let now = Instant::from_micros(0);
    s.connect(now);
    assert_eq!(
        s.request(now, "svc.echo", b"x", &RequestOptions::default()),
        Err(RequestError::TableFull)
    );
    assert_eq!(s.outbox_len(), 0);
}
