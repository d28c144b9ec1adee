//! Publishing: the outbox, acknowledgements, resends, fragments, frame limits.

use super::*;

#[test]
fn qos0_and_qos1_publish_and_puback_frees_outbox() {
    let mut c = config();
    c.producer = Some(42);
    let mut t = T::new(c, 4096, 4096);
    t.handshake(false, limits(4096, 0));
    let q0 =
        t.s.publish(t.now, "s.t", b"zero", &PublishOptions::default())
            .unwrap();
    let opts = PublishOptions {
        qos: QoS::AtLeastOnce,
        meta: Meta {
            reply_to: Some("r.me"),
            ..Meta::default()
        },
    };
    let q1 = t.s.publish(t.now, "s.t", b"one", &opts).unwrap();
    let q1b = t.s.publish(t.now, "s.u", b"two", &opts).unwrap();
    assert_eq!((q0.0, q1.0, q1b.0), (1, 2, 3));
    assert_eq!(t.s.outbox_len(), 3);
    let sent = t.tx();
    let pubs: Vec<_> = sent
        .iter()
        .map(|b| match frame(b) {
            Frame::Publish(p) => (
                p.id,
                p.qos,
                p.dedup.map(|d| (d.producer, d.seq)),
                p.payload.to_vec(),
            ),
            f => panic!("unexpected {f:?}"),
        })
        .collect();
    assert_eq!(
        pubs,
        [
            (1, QoS::AtMostOnce, None, b"zero".to_vec()),
            (2, QoS::AtLeastOnce, Some((42, 1)), b"one".to_vec()),
            (3, QoS::AtLeastOnce, Some((42, 2)), b"two".to_vec()),
        ]
    );
    let Frame::Publish(p) = frame(&sent[1]) else {
        unreachable!()
    };
    assert_eq!(p.meta.reply_to, Some("r.me"));
    // QoS 0 left the outbox once written; QoS 1 waits for PubAck.
    assert_eq!(t.s.outbox_len(), 2);
    assert!(t.feed(Frame::PubAck(PubAck {
        id: 3,
        seq: 11,
        duplicate: false
    })));
    assert!(t.feed(Frame::PubAck(PubAck {
        id: 2,
        seq: 10,
        duplicate: true
    })));
    assert_eq!(
        t.ev(),
        [Ev::Published(3, 11, false), Ev::Published(2, 10, true)]
    );
    assert_eq!((t.s.outbox_len(), t.s.outbox_bytes()), (0, 0));
    let st = t.s.stats();
    assert_eq!((st.publishes, st.publish_acks), (3, 2));
    // An unknown PubAck is ignored.
    assert!(t.feed(Frame::PubAck(PubAck {
        id: 99,
        seq: 1,
        duplicate: false
    })));
    assert!(t.ev().is_empty());
    assert_eq!(
        t.s.publish(t.now, "a.*", b"", &PublishOptions::default()),
        Err(PublishError::InvalidTopic)
    );
}

#[test]
fn outbox_full_then_succeeds_after_ack() {
    // 32 + 3 + 5 + 100 = 140 bytes per record: three fit in 450.
    let mut t = T::new(config(), 450, 4096);
    t.handshake(false, limits(4096, 0));
    let opts = PublishOptions {
        qos: QoS::AtLeastOnce,
        ..Default::default()
    };
    for _ in 0..3 {
        t.s.publish(t.now, "a.b", &[1; 100], &opts).unwrap();
    }
    assert_eq!(
        t.s.publish(t.now, "a.b", &[1; 100], &opts),
        Err(PublishError::OutboxFull)
    );
    assert_eq!(
        t.s.publish(t.now, "a.b", &[1; 500], &opts),
        Err(PublishError::TooLarge)
    );
    assert_eq!(t.tx().len(), 3);
    assert!(t.feed(Frame::PubAck(PubAck {
        id: 2,
        seq: 1,
        duplicate: false
    })));
    // Freed in the middle: compaction makes the room usable.
    assert_eq!(
        t.s.publish(t.now, "a.b", &[1; 100], &opts),
        Ok(PublishId(4))
    );
    assert_eq!(t.s.outbox_len(), 3);
}

#[test]
fn unacked_publishes_resent_in_order_after_reconnect() {
    let mut c = config();
    c.producer = Some(7);
    let mut t = T::new(c, 8192, 4096);
    let broker = limits(128, 0);
    t.handshake(false, broker);
    let q1 = PublishOptions {
        qos: QoS::AtLeastOnce,
        ..Default::default()
    };
    t.s.publish(t.now, "a.one", b"A", &q1).unwrap();
    t.s.publish(t.now, "a.big", &[9; 300], &PublishOptions::default())
        .unwrap();
    t.s.publish(t.now, "a.two", b"C", &q1).unwrap();
    t.s.publish(t.now, "a.three", b"D", &q1).unwrap();
    // A transmit buffer that fits one fragment at a time: stop after the first
    // fragment of the QoS 0 message.
    let mut buf = [0u8; 140];
    let mut got = Vec::new();
    while !got.iter().any(|(id, _)| *id == 2) {
        let n = t.s.poll_transmit(t.now, &mut buf).unwrap();
        let mut rest = &buf[..n];
        while let Ok(Split::Whole { body, consumed }) = StreamDecoder::new(u32::MAX).split(rest) {
            let Frame::Publish(p) = frame(body) else {
                panic!()
            };
            got.push((p.id, p.fragment.map(|f| f.offset)));
            rest = &rest[consumed..];
        }
    }
    assert_eq!(got, [(1, None), (2, Some(0))]);
    // Lost before the QoS 0 message was complete and before any PubAck.
    let events = t.reconnect(true, broker);
    assert_eq!(
        events,
        [
            Ev::Disconnected(Reason::Normal),
            Ev::Connect,
            Ev::Connected(true)
        ]
    );
    let sent = t.tx();
    let order: Vec<_> = sent
        .iter()
        .map(|b| match frame(b) {
            Frame::Publish(p) => (p.id, p.dedup.map(|d| d.seq), p.fragment.map(|f| f.offset)),
            f => panic!("unexpected {f:?}"),
        })
        .collect();
    assert_eq!(order[0], (1, Some(1), None));
    assert_eq!(order[1], (2, None, Some(0)));
    assert!(order[2..order.len() - 2].iter().all(|o| o.0 == 2));
    assert_eq!(order[order.len() - 2], (3, Some(2), None));
    assert_eq!(order[order.len() - 1], (4, Some(3), None));
    // Acked ones are not resent again.
    for id in [1, 4] {
        assert!(t.feed(Frame::PubAck(PubAck {
            id,
            seq: 1,
            duplicate: true
        })));
    }
    t.ev();
    t.reconnect(true, broker);
    let again: Vec<_> = t
        .tx()
        .iter()
        .map(|b| match frame(b) {
            Frame::Publish(p) => p.id,
            _ => 0,
        })
        .collect();
    assert_eq!(again, [3]);
}

#[test]
fn large_publish_is_fragmented_without_interleaving() {
    let mut t = T::new(config(), 8192, 4096);
    t.handshake(false, limits(256, 0));
    let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let opts = PublishOptions {
        qos: QoS::AtLeastOnce,
        meta: Meta {
            correlation: Some(b"corr"),
            ..Meta::default()
        },
    };
    let big = t.s.publish(t.now, "big.data", &payload, &opts).unwrap();
    let small =
        t.s.publish(t.now, "small", b"x", &PublishOptions::default())
            .unwrap();
    let sent = t.tx();
    let mut whole = Vec::new();
    let mut frames = 0;
    for body in &sent[..sent.len() - 1] {
        assert!(body.len() <= 256, "fragment of {} bytes", body.len());
        let Frame::Publish(p) = frame(body) else {
            panic!()
        };
        assert_eq!(p.id, big.0);
        let f = p.fragment.unwrap();
        assert_eq!((f.offset, f.total), (whole.len() as u64, 1000));
        assert_eq!(p.meta.correlation, Some(&b"corr"[..]));
        whole.extend_from_slice(p.payload);
        frames += 1;
    }
    assert!(frames >= 4);
    assert_eq!(whole, payload);
    let Frame::Publish(last) = frame(sent.last().unwrap()) else {
        panic!()
    };
    assert_eq!((last.id, last.fragment), (small.0, None));
    assert_eq!(t.s.outbox_len(), 1);
    // Headers alone larger than the broker's frame: refused up front.
    let long_topic = "t".repeat(250);
    assert_eq!(
        t.s.publish(t.now, &long_topic, b"", &PublishOptions::default()),
        Err(PublishError::TooLarge)
    );
}

/// A session with a publish queued before `Welcome` that cannot fit the
/// broker's 100-byte frames (its topic alone is 200 bytes): its id.
fn unsendable_queued() -> (T, u32) {
    let mut t = T::new(config(), 8192, 4096);
    let long_topic = "t".repeat(200);
    let id =
        t.s.publish(t.now, &long_topic, b"x", &PublishOptions::default())
            .unwrap();
    t.handshake(false, limits(100, 0));
    (t, id.0)
}

#[test]
fn publish_that_cannot_fit_a_smaller_broker_is_rejected_locally() {
    let (mut t, id) = unsendable_queued();
    assert!(t.tx().is_empty());
    assert_eq!(t.ev(), [Ev::PublishRejected(id, Reason::MessageTooLarge)]);
    assert_eq!(t.s.outbox_len(), 0);
}

#[test]
fn close_is_sent_past_a_publish_that_cannot_fit_the_broker() {
    // Closed before the unsendable publish was rejected: it is rejected
    // then, and the Close goes (not held behind a publish that never starts).
    let (mut t, id) = unsendable_queued();
    t.s.close(t.now);
    assert_eq!(kinds(&t.tx()), ["close"]);
    let rejected = Ev::PublishRejected(id, Reason::MessageTooLarge);
    assert_eq!(t.ev(), [rejected, Ev::Closed]);
}

/// The frames of one QoS 1 publish with every meta field set, under a
/// broker limit of `max_frame` (the session's frame bodies).
fn one_publish_under(max_frame: u32) -> Vec<Vec<u8>> {
    let mut c = config();
    c.producer = Some(42);
    let mut t = T::new(c, 8192, 4096);
    t.handshake(false, limits(max_frame, 0));
    let mut buf = [0u8; 32];
    let mut headers = crate::wire::HeadersBuilder::new(&mut buf);
    headers.push("h", b"v").unwrap();
    let opts = PublishOptions {
        qos: QoS::AtLeastOnce,
        meta: Meta {
            reply_to: Some("r.me"),
            correlation: Some(b"c7"),
            ttl_ms: Some(9_000),
            priority: 3,
            headers: headers.finish(),
        },
    };
    let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    t.s.publish(t.now, "s.t", &payload, &opts).unwrap();
    t.tx()
}

#[test]
fn a_publish_goes_whole_exactly_up_to_the_limit_and_in_fragments_past_it() {
    // What the one whole frame is, under a limit it is far from.
    let whole = one_publish_under(1 << 20);
    assert_eq!(whole.len(), 1);
    let Frame::Publish(p) = frame(&whole[0]) else {
        panic!("a publish")
    };
    assert_eq!(p.fragment, None);
    // The same message at a limit of exactly its frame: the same bytes.
    let limit = whole[0].len() as u32;
    assert_eq!(one_publish_under(limit), whole);
    // A byte less: in fragments, their payloads the message's, in order.
    let parts = one_publish_under(limit - 1);
    assert!(parts.len() > 1);
    let mut payload = Vec::new();
    for part in &parts {
        let Frame::Publish(f) = frame(part) else {
            panic!("a fragment")
        };
        assert!(f.fragment.is_some());
        assert_eq!((f.topic, f.meta, f.dedup), (p.topic, p.meta, p.dedup));
        payload.extend_from_slice(f.payload);
    }
    assert_eq!(payload, p.payload);
}

#[test]
fn max_frame_out_caps_publish_fragments_below_the_broker_limit() {
    let mut c = config();
    c.max_frame_out = 300;
    let mut t = T::new(c, 8192, 4096);
    // The broker takes 1 MiB frames; the device sends at most 300-byte ones.
    t.handshake(false, limits(1 << 20, 0));
    let payload: Vec<u8> = (0..2000u32).map(|i| (i * 7) as u8).collect();
    let opts = PublishOptions {
        qos: QoS::AtLeastOnce,
        ..PublishOptions::default()
    };
    let id =
        t.s.publish(t.now, "dev.telemetry", &payload, &opts)
            .unwrap();
    // A transmit buffer that holds exactly one capped frame is enough.
    let mut buf = vec![0u8; Framing::Stream.max_framed_len(300)];
    let mut whole = Vec::new();
    let mut frames = 0;
    while let Some(n) = t.s.poll_transmit(t.now, &mut buf) {
        let Ok(Split::Whole { body, consumed }) = StreamDecoder::new(u32::MAX).split(&buf[..n])
        else {
            panic!("partial frame in poll_transmit output");
        };
        assert_eq!(consumed, n, "one frame per call with this buffer");
        assert!(body.len() <= 300, "frame of {} bytes", body.len());
        let Frame::Publish(p) = frame(body) else {
            panic!("expected a publish")
        };
        let f = p.fragment.expect("fragmented");
        assert_eq!((p.id, f.offset, f.total), (id.0, whole.len() as u64, 2000));
        whole.extend_from_slice(p.payload);
        frames += 1;
    }
    assert_eq!(whole, payload);
    assert!(frames >= 7, "{frames} fragments");
    // Headers alone above the cap: refused up front, although the broker would
    // take them.
    let long_topic = "t".repeat(250);
    let meta = Meta {
        correlation: Some(&[1; 100]),
        ..Meta::default()
    };
    assert_eq!(
        t.s.publish(
            t.now,
            &long_topic,
            b"x",
            &PublishOptions {
                meta,
                ..PublishOptions::default()
            }
        ),
        Err(PublishError::TooLarge)
    );
    // A broker limit below the cap wins.
    let mut c = config();
    c.max_frame_out = 4096;
    let mut t = T::new(c, 8192, 4096);
    t.handshake(false, limits(256, 0));
    t.s.publish(t.now, "a", &[1; 1000], &PublishOptions::default())
        .unwrap();
    let sent = t.tx();
    assert!(sent.len() >= 4);
    assert!(sent.iter().all(|b| b.len() <= 256));
}

#[test]
fn too_small_transmit_buffer_is_left_untouched() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    t.s.publish(t.now, "a.b", &[5; 100], &PublishOptions::default())
        .unwrap();
    let mut small = [0xAAu8; 64];
    assert_eq!(t.s.poll_transmit(t.now, &mut small), None);
    assert_eq!(small, [0xAA; 64]);
    assert_eq!(kinds(&t.tx()), ["publish"]);
}

#[test]
fn publish_checked_within_a_larger_limit_is_checked_again_after_reconnecting() {
    // Found sendable when queued (within 4096-byte frames), not written
    // before the connection dropped; the broker now takes 100-byte frames.
    let mut t = T::new(config(), 8192, 4096);
    t.handshake(false, limits(4096, 0));
    let long_topic = "t".repeat(200);
    let opts = PublishOptions {
        qos: QoS::AtLeastOnce,
        ..PublishOptions::default()
    };
    let id = t.s.publish(t.now, &long_topic, b"x", &opts).unwrap();
    t.reconnect(true, limits(100, 0));
    assert!(t.tx().is_empty());
    assert_eq!(t.ev(), [Ev::PublishRejected(id.0, Reason::MessageTooLarge)]);
    assert_eq!(t.s.outbox_len(), 0);
}

#[test]
fn publish_queued_before_welcome_that_would_stall_midway_is_rejected() {
    // Queued before the broker's limit is known. At that limit a fragment at
    // offset 0 carries one byte, but from offset 128 on (a two-byte offset) not
    // even one: it could never be sent whole, and must not block the outbox
    // half sent.
    let mut t = T::new(config(), 8192, 4096);
    let payload = [7u8; 300];
    let id =
        t.s.publish(t.now, "a.b", &payload, &PublishOptions::default())
            .unwrap();
    let probe = |offset: u64| {
        Frame::Publish(crate::wire::Publish {
            id: id.0,
            topic: "a.b",
            qos: QoS::AtMostOnce,
            dedup: None,
            meta: Meta::default(),
            fragment: Some(Fragment { offset, total: 300 }),
            payload: &[0],
        })
        .encoded_len()
    };
    let max = probe(0);
    assert!(probe(128) > max);
    t.handshake(false, limits(max as u32, 0));
    assert!(t.tx().is_empty(), "nothing of it goes out");
    assert_eq!(t.ev(), [Ev::PublishRejected(id.0, Reason::MessageTooLarge)]);
    assert_eq!(t.s.outbox_len(), 0);
}
