//! MQTT sessions: persistent sessions and their offline messages, retained
//! messages, wills, restarts from the records, and bad input.

use alloc::vec;
use alloc::vec::Vec;

use super::mqtt::{MGot, connect_packet, payloads_of, pid};
use super::*;
use crate::mqtt::{
    self as m, Ack as MAck, Packet, Properties, ReasonCode, Subscription, SubscriptionOptions,
    Version, Will,
};

const V5: Version = Version::V5;
const V3: Version = Version::V3_1_1;

/// A broker restored from `records` (what a restart on the same store sees).
fn restored<R: AsRef<[u8]>>(records: &[R]) -> H {
    H::restored_from(Config::default(), records)
}

#[test]
fn a_persistent_session_gets_what_was_published_while_away() {
    let mut h = H::new(Config::default());
    let (s, present) = h.mconnect("dev", V3, false);
    assert!(!present);
    h.msubscribe(s, V3, "cmd/#", m::QoS::AtLeastOnce);
    h.b.handle_closed(s, h.now);
    h.drain();
    let (p, _) = h.mconnect("p", V5, true);
    h.mpublish(p, V5, "cmd/1", m::QoS::AtLeastOnce, b"while away");
    h.mpublish(p, V5, "cmd/2", m::QoS::AtMostOnce, b"qos 0 too");
    let (s, present) = h.mconnect("dev", V3, false);
    assert!(present);
    let got = h.mpublishes(s, V3);
    assert_eq!(payloads_of(&got), [&b"while away"[..], b"qos 0 too"]);
    // A clean start drops it.
    h.msend(s, V3, Packet::PubAck(MAck::new(pid(got[0].pid.unwrap()))));
    h.b.handle_closed(s, h.now);
    h.drain();
    let (_, present) = h.mconnect("dev", V3, true);
    assert!(!present);
    assert!(h.b.has_session("dev"));
}

#[test]
fn mqtt5_session_expiry_ends_a_session_away() {
    let mut h = H::new(Config::default());
    let c = m::Connect {
        properties: Properties {
            session_expiry: Some(10),
            ..Properties::EMPTY
        },
        ..connect_packet("dev5", V5, false)
    };
    let (s, _) = h.mconnect_with(c);
    h.b.handle_closed(s, h.now);
    h.drain();
    h.advance(Duration::from_secs(9));
    assert!(h.b.has_session("dev5"));
    h.advance(Duration::from_secs(2));
    assert!(!h.b.has_session("dev5"));
}

#[test]
fn retained_messages_one_per_topic_not_to_groups() {
    let mut h = H::new(Config::default());
    let (p, _) = h.mconnect("p", V3, true);
    h.mpublish_with(
        p,
        V3,
        "st/a",
        m::QoS::AtMostOnce,
        true,
        Properties::EMPTY,
        b"a1",
    );
    h.mpublish_with(
        p,
        V3,
        "st/a",
        m::QoS::AtLeastOnce,
        true,
        Properties::EMPTY,
        b"a2",
    );
    h.mpublish_with(
        p,
        V3,
        "st/b",
        m::QoS::AtMostOnce,
        true,
        Properties::EMPTY,
        b"b1",
    );
    h.mpublish_with(
        p,
        V3,
        "st/b",
        m::QoS::AtMostOnce,
        true,
        Properties::EMPTY,
        b"",
    );
    let (s, _) = h.mconnect("s", V5, true);
    h.msubscribe(s, V5, "st/+", m::QoS::AtLeastOnce);
    let got = h.mpublishes(s, V5);
    assert_eq!(payloads_of(&got), [&b"a2"[..]]);
    assert!(got[0].retain);
    // Live messages are not marked retained; a shared subscription gets none.
    h.mpublish_with(
        p,
        V3,
        "st/a",
        m::QoS::AtMostOnce,
        true,
        Properties::EMPTY,
        b"a3",
    );
    let got = h.mpublishes(s, V5);
    assert_eq!(
        (got[0].payload.as_slice(), got[0].retain),
        (&b"a3"[..], false)
    );
    let (g, _) = h.mconnect("g", V3, true);
    h.msubscribe(g, V3, "$share/grp/st/+", m::QoS::AtMostOnce);
    assert_eq!(h.mpublishes(g, V3), []);
    // The slot survives a restart.
    let records = h.records.clone();
    let mut h2 = restored(&records);
    let (s, _) = h2.mconnect("s2", V3, true);
    h2.msubscribe(s, V3, "st/#", m::QoS::AtMostOnce);
    assert_eq!(payloads_of(&h2.mpublishes(s, V3)), [&b"a3"[..]]);
}

fn with_will<'a>(client: &'a str, v: Version, delay: Option<u32>) -> m::Connect<'a> {
    let mut c = connect_packet(client, v, true);
    c.will = Some(Will {
        qos: m::QoS::AtLeastOnce,
        retain: false,
        properties: Properties {
            will_delay: delay,
            ..Properties::EMPTY
        },
        topic: "wills/x",
        payload: b"gone",
    });
    if delay.is_some() {
        c.clean_start = false;
        c.properties.session_expiry = Some(60);
    }
    c
}

#[test]
fn wills_on_abnormal_close_only() {
    let mut h = H::new(Config::default());
    let (s, _) = h.mconnect("watch", V3, true);
    h.msubscribe(s, V3, "wills/#", m::QoS::AtMostOnce);
    // Dropped connection: published.
    let (d, _) = h.mconnect_with(with_will("d1", V3, None));
    h.b.handle_closed(d, h.now);
    h.drain();
    assert_eq!(payloads_of(&h.mpublishes(s, V3)), [&b"gone"[..]]);
    // Normal DISCONNECT: not published.
    let (d, _) = h.mconnect_with(with_will("d2", V3, None));
    h.msend(d, V3, Packet::Disconnect(m::Disconnect::NORMAL));
    h.b.handle_closed(d, h.now);
    h.drain();
    assert_eq!(h.mpublishes(s, V3), []);
    // MQTT 5 "disconnect with will message": published.
    let (d, _) = h.mconnect_with(with_will("d3", V5, None));
    let dis = m::Disconnect {
        reason: ReasonCode::DisconnectWithWillMessage,
        properties: Properties::EMPTY,
    };
    h.msend(d, V5, Packet::Disconnect(dis));
    assert_eq!(payloads_of(&h.mpublishes(s, V3)), [&b"gone"[..]]);
    // A protocol error closes abnormally: published.
    let (d, _) = h.mconnect_with(with_will("d4", V3, None));
    h.send_raw(d, &[0x20, 0x02, 0, 0]);
    assert_eq!(payloads_of(&h.mpublishes(s, V3)), [&b"gone"[..]]);
    assert_eq!(h.b.stats().wills_published, 3);
}

#[test]
fn a_will_delay_lets_the_client_come_back() {
    let mut h = H::new(Config::default());
    let (s, _) = h.mconnect("watch", V3, true);
    h.msubscribe(s, V3, "wills/#", m::QoS::AtMostOnce);
    let (d, _) = h.mconnect_with(with_will("d5", V5, Some(5)));
    h.b.handle_closed(d, h.now);
    h.drain();
    h.advance(Duration::from_secs(3));
    let (d, present) = h.mconnect_with(with_will("d5", V5, Some(5)));
    assert!(present);
    h.advance(Duration::from_secs(10));
    assert_eq!(h.mpublishes(s, V3), []);
    // Away past the delay: published.
    h.b.handle_closed(d, h.now);
    h.drain();
    h.advance(Duration::from_secs(4));
    assert_eq!(h.mpublishes(s, V3), []);
    h.advance(Duration::from_secs(2));
    assert_eq!(payloads_of(&h.mpublishes(s, V3)), [&b"gone"[..]]);
}

#[test]
fn bad_input_is_answered_and_others_keep_flowing() {
    let mut cfg = Config::default();
    cfg.limits.max_frame = 4096;
    let mut h = H::new(cfg);
    let (s, _) = h.mconnect("s", V3, true);
    h.msubscribe(s, V3, "ok", m::QoS::AtMostOnce);
    // A packet before CONNECT: closed without a word.
    let c = h.maccept();
    h.send_raw(c, &[0xC0, 0x00]);
    assert!(h.closed.contains(&c) && h.mtake(c, V3).is_empty());
    // No CONNECT in time: closed.
    let c = h.maccept();
    h.advance(Duration::from_secs(11));
    assert!(h.closed.contains(&c));
    // Malformed after CONNECT (MQTT 5): DISCONNECT 0x81.
    let (c, _) = h.mconnect("m5", V5, true);
    h.send_raw(c, &[0x82, 0x02, 0, 1]);
    assert_eq!(
        h.mtake(c, V5),
        [MGot::Disconnect(ReasonCode::MalformedPacket)]
    );
    // Oversized: DISCONNECT 0x95, from the fixed header alone.
    let (c, _) = h.mconnect("big", V5, true);
    h.send_raw(c, &[0x30, 0xFF, 0xFF, 0x03]);
    assert_eq!(
        h.mtake(c, V5),
        [MGot::Disconnect(ReasonCode::PacketTooLarge)]
    );
    // A second CONNECT: protocol error.
    let (c, _) = h.mconnect("twice", V5, true);
    h.msend(c, V5, Packet::Connect(connect_packet("twice", V5, true)));
    assert_eq!(
        h.mtake(c, V5),
        [MGot::Disconnect(ReasonCode::ProtocolError)]
    );
    // A 3.1.1 client's violation: closed without a word.
    let (c, _) = h.mconnect("v3bad", V3, true);
    h.send_raw(c, &[0x62, 0x02, 0, 0]);
    assert!(h.closed.contains(&c) && h.mtake(c, V3).is_empty());
    // An unknown protocol level: CONNACK 0x01 (3.1.1's answer).
    let c = h.maccept();
    h.send_raw(
        c,
        &[
            0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 9, 2, 0, 0, 0, 1, b'x',
        ],
    );
    assert_eq!(
        h.mtake(c, V3),
        [MGot::ConnAck {
            present: false,
            code: ReasonCode::UnsupportedProtocolVersion
        }]
    );
    // Meanwhile the first client still gets its messages.
    let (p, _) = h.mconnect("p", V3, true);
    h.mpublish(p, V3, "ok", m::QoS::AtMostOnce, b"still");
    assert_eq!(payloads_of(&h.mpublishes(s, V3)), [&b"still"[..]]);
}

#[test]
fn tokens_as_passwords_and_their_permissions() {
    let mut cfg = Config::default();
    cfg.auth.tokens = vec![(
        "s3cret".into(),
        Permissions {
            publish: vec!["sensors.>".into()],
            subscribe: vec!["cmd.>".into()],
            admin: false,
        },
    )];
    let mut h = H::new(cfg);
    for (v, code) in [
        (V5, ReasonCode::BadUserNameOrPassword),
        (V3, ReasonCode::BadUserNameOrPassword),
    ] {
        let c = h.maccept();
        let mut p = connect_packet("x", v, true);
        p.username = Some("u");
        p.password = Some(b"wrong");
        h.msend(c, v, Packet::Connect(p));
        assert_eq!(
            h.mtake(c, v),
            [MGot::ConnAck {
                present: false,
                code
            }]
        );
    }
    let mut p = connect_packet("dev", V5, true);
    p.username = Some("any");
    p.password = Some(b"s3cret");
    let (c, _) = h.mconnect_with(p);
    let subs = [
        Subscription {
            filter: "cmd/#",
            options: SubscriptionOptions::qos(m::QoS::AtLeastOnce),
        },
        Subscription {
            filter: "other/#",
            options: SubscriptionOptions::qos(m::QoS::AtLeastOnce),
        },
    ];
    h.msend(
        c,
        V5,
        Packet::Subscribe(m::Subscribe {
            packet_id: pid(9),
            properties: Properties::EMPTY,
            subscriptions: m::List::new(&subs),
        }),
    );
    assert_eq!(
        h.mtake(c, V5),
        [MGot::SubAck(
            9,
            vec![ReasonCode::GrantedQoS1, ReasonCode::NotAuthorized]
        )]
    );
    h.mpublish(c, V5, "other/x", m::QoS::AtLeastOnce, b"no");
    assert_eq!(h.mtake(c, V5), [MGot::PubAck(1, ReasonCode::NotAuthorized)]);
    h.mpublish(c, V5, "sensors/x", m::QoS::AtLeastOnce, b"yes");
    assert_eq!(h.mtake(c, V5), [MGot::PubAck(1, ReasonCode::Success)]);
}

#[test]
fn unsubscribe_and_resubscribe_with_another_qos() {
    let mut h = H::new(Config::default());
    let (s, _) = h.mconnect("s", V5, false);
    h.msubscribe(s, V5, "a/#", m::QoS::AtMostOnce);
    h.msubscribe(s, V5, "a/#", m::QoS::AtLeastOnce);
    let (p, _) = h.mconnect("p", V3, true);
    h.mpublish(p, V3, "a/b", m::QoS::AtLeastOnce, b"1");
    let got = h.mpublishes(s, V5);
    assert_eq!(got.iter().map(|g| g.qos).collect::<Vec<_>>(), [1]);
    let filters = ["a/#"];
    h.msend(
        s,
        V5,
        Packet::Unsubscribe(m::Unsubscribe {
            packet_id: pid(3),
            properties: Properties::EMPTY,
            filters: m::List::new(&filters),
        }),
    );
    assert_eq!(h.mtake(s, V5), [MGot::UnsubAck(3)]);
    h.mpublish(p, V3, "a", m::QoS::AtMostOnce, b"2");
    assert_eq!(h.mpublishes(s, V5), []);
}

#[test]
fn a_qos_2_delivery_is_released_again_after_a_reconnect_and_a_restart() {
    let mut h = H::new(Config::default());
    let (s, _) = h.mconnect("dev", V3, false);
    h.msubscribe(s, V3, "q2", m::QoS::ExactlyOnce);
    let (p, _) = h.mconnect("p", V3, true);
    h.mpublish(p, V3, "q2", m::QoS::ExactlyOnce, b"x");
    h.msend(p, V3, Packet::PubRel(MAck::new(pid(1))));
    let got = h.mpublishes(s, V3);
    let out = got[0].pid.unwrap();
    h.msend(s, V3, Packet::PubRec(MAck::new(pid(out))));
    assert_eq!(h.mtake(s, V3), [MGot::PubRel(out)]);
    // Gone before PUBCOMP: the resumed session is released again, once.
    h.b.handle_closed(s, h.now);
    h.drain();
    let (s, present) = h.mconnect("dev", V3, false);
    assert!(present);
    assert_eq!(h.mtake(s, V3), [MGot::PubRel(out)]);
    // Across a restart too.
    let records = h.records.clone();
    let mut h2 = restored(&records);
    let (s2, present) = h2.mconnect("dev", V3, false);
    assert!(present);
    assert_eq!(h2.mtake(s2, V3), [MGot::PubRel(out)]);
    h2.msend(s2, V3, Packet::PubComp(MAck::new(pid(out))));
    h2.b.handle_closed(s2, h2.now);
    h2.drain();
    let (s2, _) = h2.mconnect("dev", V3, false);
    assert_eq!(h2.mtake(s2, V3), []);
}

#[test]
fn a_snapshot_keeps_retained_slots_and_exactly_once_ids() {
    let mut h = H::new(Config::default());
    let (p, _) = h.mconnect("p", V3, false);
    h.mpublish_with(
        p,
        V3,
        "st",
        m::QoS::AtMostOnce,
        true,
        Properties::EMPTY,
        b"kept",
    );
    h.mpublish(p, V3, "other", m::QoS::ExactlyOnce, b"once");
    assert_eq!(h.mtake(p, V3), [MGot::PubRec(1, ReasonCode::Success)]);
    let snap = h.b.snapshot().expect("store drained");
    let mut h2 = restored(&snap.records);
    let (s, _) = h2.mconnect("s", V3, true);
    h2.msubscribe(s, V3, "#", m::QoS::AtMostOnce);
    assert_eq!(payloads_of(&h2.mpublishes(s, V3)), [&b"kept"[..]]);
    // The resend of the publish not yet released is not published again.
    let (p, present) = h2.mconnect("p", V3, false);
    assert!(present);
    h2.mpublish(p, V3, "other", m::QoS::ExactlyOnce, b"once");
    assert_eq!(h2.mtake(p, V3), [MGot::PubRec(1, ReasonCode::Success)]);
    assert_eq!(h2.mpublishes(s, V3), []);
}

#[test]
fn a_repeated_subscribe_is_acknowledged_only_once_stored() {
    let mut h = H::new(Config::default());
    let (s, _) = h.mconnect("dev", V3, false);
    h.auto_persist = false;
    let subs = [Subscription {
        filter: "t",
        options: SubscriptionOptions::qos(m::QoS::AtLeastOnce),
    }];
    let subscribe = Packet::Subscribe(m::Subscribe {
        packet_id: pid(5),
        properties: Properties::EMPTY,
        subscriptions: m::List::new(&subs),
    });
    h.msend(s, V3, subscribe);
    assert_eq!(h.mtake(s, V3), []);
    // The connection drops before the record is stored; the client
    // subscribes again on a new one: not acknowledged before it is stored.
    h.b.handle_closed(s, h.now);
    h.drain();
    let (s, present) = h.mconnect("dev", V3, false);
    assert!(present);
    h.msend(s, V3, subscribe);
    assert_eq!(h.mtake(s, V3), []);
    h.persist();
    assert_eq!(
        h.mtake(s, V3),
        [MGot::SubAck(5, vec![ReasonCode::GrantedQoS1])]
    );
}
