//! MQTT connections: the harness's MQTT side (packets in, packets read back
//! from what the broker wrote), and the tests of connecting, publishing at
//! each QoS, subscribing and the exchange with mq clients.

use alloc::borrow::ToOwned;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::mqtt::stream::{PacketDecoder, Split};
use crate::mqtt::{
    self as m, Ack as MAck, Connect as MConnect, Packet, PacketId, Properties, Publish as MPublish,
    QosPid, ReasonCode, Subscribe as MSubscribe, Subscription, SubscriptionOptions, Version,
};

/// What an MQTT client read, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MGot {
    ConnAck { present: bool, code: ReasonCode },
    Publish(MPub),
    PubAck(u16, ReasonCode),
    PubRec(u16, ReasonCode),
    PubRel(u16),
    PubComp(u16),
    SubAck(u16, Vec<ReasonCode>),
    UnsubAck(u16),
    PingResp,
    Disconnect(ReasonCode),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct MPub {
    pub topic: String,
    pub qos: u8,
    pub pid: Option<u16>,
    pub retain: bool,
    pub dup: bool,
    pub payload: Vec<u8>,
    pub expiry: Option<u32>,
    pub response_topic: Option<String>,
    pub correlation: Option<Vec<u8>>,
    pub user: Vec<(String, String)>,
    pub content_type: Option<String>,
}

fn own_packet(p: Packet<'_>) -> MGot {
    match p {
        Packet::ConnAck(c) => MGot::ConnAck {
            present: c.session_present,
            code: c.reason,
        },
        Packet::Publish(p) => MGot::Publish(MPub {
            topic: p.topic.to_string(),
            qos: p.qos.qos() as u8,
            pid: p.qos.packet_id().map(|p| p.get()),
            retain: p.retain,
            dup: p.dup,
            payload: p.payload.to_vec(),
            expiry: p.properties.message_expiry,
            response_topic: p.properties.response_topic.map(ToOwned::to_owned),
            correlation: p.properties.correlation_data.map(<[u8]>::to_vec),
            user: p
                .properties
                .user
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            content_type: p.properties.content_type.map(ToOwned::to_owned),
        }),
        Packet::PubAck(a) => MGot::PubAck(a.packet_id.get(), a.reason),
        Packet::PubRec(a) => MGot::PubRec(a.packet_id.get(), a.reason),
        Packet::PubRel(a) => MGot::PubRel(a.packet_id.get()),
        Packet::PubComp(a) => MGot::PubComp(a.packet_id.get()),
        Packet::SubAck(a) => MGot::SubAck(a.packet_id.get(), a.reasons.iter().collect()),
        Packet::UnsubAck(a) => MGot::UnsubAck(a.packet_id.get()),
        Packet::PingResp => MGot::PingResp,
        Packet::Disconnect(d) => MGot::Disconnect(d.reason),
        other => panic!("broker sent a client packet: {other:?}"),
    }
}

pub(super) fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// A CONNECT for `client` in `version`.
pub(super) fn connect_packet(client: &str, version: Version, clean: bool) -> MConnect<'_> {
    MConnect {
        version,
        clean_start: clean,
        keep_alive: 0,
        properties: Properties::EMPTY,
        client_id: client,
        will: None,
        username: None,
        password: None,
    }
}

impl H {
    /// Sends raw bytes on a connection (all must be consumed).
    pub(super) fn send_raw(&mut self, c: ConnId, bytes: &[u8]) {
        assert_eq!(self.b.handle_input(c, self.now, bytes), bytes.len());
        self.drain();
    }

    /// Sends one MQTT packet.
    pub(super) fn msend(&mut self, c: ConnId, v: Version, p: Packet<'_>) {
        let mut buf = vec![0u8; p.encoded_len(v)];
        p.encode(v, &mut buf).unwrap();
        self.send_raw(c, &buf);
    }

    /// An MQTT connection, accepted and not yet connected.
    pub(super) fn maccept(&mut self) -> ConnId {
        let c = self.b.accept(self.now, Protocol::Mqtt).unwrap();
        self.mqtt.insert(c, Vec::new());
        c
    }

    /// The packets the broker wrote to `c` since the last call.
    pub(super) fn mtake(&mut self, c: ConnId, v: Version) -> Vec<MGot> {
        let raw = self.mqtt.get_mut(&c).expect("an MQTT connection");
        let dec = PacketDecoder::new(v, m::MAX_PACKET_SIZE);
        let mut out = self.mgot.remove(&c).unwrap_or_default();
        let mut used = 0;
        while let Ok(Split::Whole(bytes)) = dec.split(&raw[used..]) {
            out.push(own_packet(
                Packet::decode(bytes, v).expect("a valid packet"),
            ));
            used += bytes.len();
        }
        raw.drain(..used);
        out
    }

    /// Connects an MQTT client; returns the connection and session present.
    pub(super) fn mconnect_with(&mut self, c: MConnect<'_>) -> (ConnId, bool) {
        let v = c.version;
        let conn = self.maccept();
        self.msend(conn, v, Packet::Connect(c));
        // Only the CONNACK is read: a resumed session's deliveries may follow.
        let raw = self.mqtt.get_mut(&conn).expect("an MQTT connection");
        let dec = PacketDecoder::new(v, m::MAX_PACKET_SIZE);
        let Ok(Split::Whole(bytes)) = dec.split(raw) else {
            panic!("no CONNACK")
        };
        let got = own_packet(Packet::decode(bytes, v).expect("a valid packet"));
        let n = bytes.len();
        raw.drain(..n);
        match got {
            MGot::ConnAck {
                present,
                code: ReasonCode::Success,
            } => (conn, present),
            other => panic!("no CONNACK: {other:?}"),
        }
    }

    pub(super) fn mconnect(&mut self, client: &str, v: Version, clean: bool) -> (ConnId, bool) {
        self.mconnect_with(connect_packet(client, v, clean))
    }

    /// Subscribes to `filter` at `qos`; returns the SUBACK's codes.
    pub(super) fn msubscribe(
        &mut self,
        c: ConnId,
        v: Version,
        filter: &str,
        qos: m::QoS,
    ) -> Vec<ReasonCode> {
        let subs = [Subscription {
            filter,
            options: SubscriptionOptions::qos(qos),
        }];
        self.msend(
            c,
            v,
            Packet::Subscribe(MSubscribe {
                packet_id: pid(77),
                properties: Properties::EMPTY,
                subscriptions: m::List::new(&subs),
            }),
        );
        let mut got = self.mtake(c, v);
        let Some(i) = got.iter().position(|g| matches!(g, MGot::SubAck(77, _))) else {
            panic!("no SUBACK: {got:?}")
        };
        let MGot::SubAck(_, codes) = got.remove(i) else {
            unreachable!()
        };
        // Retained messages may come with it: keep them.
        if !got.is_empty() {
            self.mgot.insert(c, got);
        }
        codes
    }

    /// Publishes with `qos` (packet id 1 for QoS 1 and 2).
    pub(super) fn mpublish(
        &mut self,
        c: ConnId,
        v: Version,
        topic: &str,
        qos: m::QoS,
        payload: &[u8],
    ) {
        self.mpublish_with(c, v, topic, qos, false, Properties::EMPTY, payload);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn mpublish_with(
        &mut self,
        c: ConnId,
        v: Version,
        topic: &str,
        qos: m::QoS,
        retain: bool,
        properties: Properties<'_>,
        payload: &[u8],
    ) {
        let qos = match qos {
            m::QoS::AtMostOnce => QosPid::AtMostOnce,
            m::QoS::AtLeastOnce => QosPid::AtLeastOnce(pid(1)),
            m::QoS::ExactlyOnce => QosPid::ExactlyOnce(pid(1)),
        };
        self.msend(
            c,
            v,
            Packet::Publish(MPublish {
                dup: false,
                qos,
                retain,
                topic,
                properties,
                payload,
            }),
        );
    }

    /// The PUBLISHes among what `c` read; the rest is dropped.
    pub(super) fn mpublishes(&mut self, c: ConnId, v: Version) -> Vec<MPub> {
        self.mtake(c, v)
            .into_iter()
            .filter_map(|g| match g {
                MGot::Publish(p) => Some(p),
                _ => None,
            })
            .collect()
    }
}

pub(super) fn payloads_of(ps: &[MPub]) -> Vec<&[u8]> {
    ps.iter().map(|p| p.payload.as_slice()).collect()
}

const V5: Version = Version::V5;
const V3: Version = Version::V3_1_1;

#[test]
fn connect_in_both_versions() {
    let mut h = H::new(Config::default());
    let (_, present) = h.mconnect("dev1", V3, true);
    assert!(!present);
    let c = h.maccept();
    h.msend(c, V5, Packet::Connect(connect_packet("dev2", V5, true)));
    assert_eq!(
        h.mtake(c, V5),
        [MGot::ConnAck {
            present: false,
            code: ReasonCode::Success
        }]
    );
    assert_eq!(h.b.stats().current_mqtt_connections, 2);
    // An empty client id gets one assigned.
    let c = h.maccept();
    h.msend(c, V5, Packet::Connect(connect_packet("", V5, true)));
    let raw = h.mqtt[&c].clone();
    let Ok(Packet::ConnAck(ack)) = Packet::decode(&raw, V5) else {
        panic!("no CONNACK")
    };
    assert!(
        ack.properties
            .assigned_client_id
            .is_some_and(|id| id.starts_with("mq-auto-"))
    );
}

#[test]
fn qos_0_1_2_to_subscribers_of_each_qos() {
    let mut h = H::new(Config::default());
    let (s0, _) = h.mconnect("s0", V3, true);
    let (s2, _) = h.mconnect("s2", V5, true);
    let (p, _) = h.mconnect("p", V5, true);
    h.msubscribe(s0, V3, "t/q", m::QoS::AtMostOnce);
    assert_eq!(
        h.msubscribe(s2, V5, "t/q", m::QoS::ExactlyOnce),
        [ReasonCode::GrantedQoS2]
    );

    h.mpublish(p, V5, "t/q", m::QoS::AtMostOnce, b"zero");
    h.mpublish(p, V5, "t/q", m::QoS::AtLeastOnce, b"one");
    assert_eq!(h.mtake(p, V5), [MGot::PubAck(1, ReasonCode::Success)]);
    assert_eq!(payloads_of(&h.mpublishes(s0, V3)), [&b"zero"[..], b"one"]);
    let got = h.mpublishes(s2, V5);
    assert_eq!(got.iter().map(|p| p.qos).collect::<Vec<_>>(), [0, 1]);
    h.msend(s2, V5, Packet::PubAck(MAck::new(pid(got[1].pid.unwrap()))));
    assert_eq!(h.b.stats().current_inflight, 0);

    // QoS 2 in: PUBREC, PUBREL, PUBCOMP; out at QoS 2 to the QoS 2 subscriber.
    h.mpublish(p, V5, "t/q", m::QoS::ExactlyOnce, b"two");
    assert_eq!(h.mtake(p, V5), [MGot::PubRec(1, ReasonCode::Success)]);
    h.msend(p, V5, Packet::PubRel(MAck::new(pid(1))));
    assert_eq!(h.mtake(p, V5), [MGot::PubComp(1)]);
    let got = h.mpublishes(s2, V5);
    assert_eq!((got[0].qos, got[0].payload.as_slice()), (2, &b"two"[..]));
    let out = pid(got[0].pid.unwrap());
    h.msend(s2, V5, Packet::PubRec(MAck::new(out)));
    assert_eq!(h.mtake(s2, V5), [MGot::PubRel(out.get())]);
    assert_eq!(h.b.stats().current_inflight, 0);
    h.msend(s2, V5, Packet::PubComp(MAck::new(out)));
    // The QoS 0 subscriber got it at QoS 0.
    let got = h.mpublishes(s0, V3);
    assert_eq!((got[0].qos, got[0].payload.as_slice()), (0, &b"two"[..]));
}

#[test]
fn qos_2_is_acknowledged_once_stored_and_published_once() {
    let mut h = H::new(Config::default());
    let (sub, _) = h.mconnect("sub", V3, true);
    h.msubscribe(sub, V3, "x", m::QoS::ExactlyOnce);
    let persistent = connect_packet("pub", V3, false);
    let (p, _) = h.mconnect_with(persistent);
    h.auto_persist = false;
    h.mpublish(p, V3, "x", m::QoS::ExactlyOnce, b"once");
    assert_eq!(h.mtake(p, V3), []);
    // The resend before PUBREC: not published again, answered with the original.
    h.msend(
        p,
        V3,
        Packet::Publish(MPublish {
            dup: true,
            qos: QosPid::ExactlyOnce(pid(1)),
            retain: false,
            topic: "x",
            properties: Properties::EMPTY,
            payload: b"once",
        }),
    );
    h.persist();
    // One answer for both: the resend joined the original's.
    assert_eq!(h.mtake(p, V3), [MGot::PubRec(1, ReasonCode::Success)]);
    // A resend after PUBREC, across a reconnect: still not published again.
    h.b.handle_closed(p, h.now);
    h.drain();
    let (p, present) = h.mconnect("pub", V3, false);
    assert!(present);
    h.mpublish(p, V3, "x", m::QoS::ExactlyOnce, b"once");
    assert_eq!(h.mtake(p, V3), [MGot::PubRec(1, ReasonCode::Success)]);
    h.msend(p, V3, Packet::PubRel(MAck::new(pid(1))));
    assert_eq!(h.mtake(p, V3), []);
    h.persist();
    assert_eq!(h.mtake(p, V3), [MGot::PubComp(1)]);
    assert_eq!(payloads_of(&h.mpublishes(sub, V3)), [&b"once"[..]]);
    // Released: the same packet id is a new message now.
    h.mpublish(p, V3, "x", m::QoS::ExactlyOnce, b"again");
    h.persist();
    assert_eq!(payloads_of(&h.mpublishes(sub, V3)), [&b"again"[..]]);
}

#[test]
fn wildcards_and_the_parent_of_hash() {
    let mut h = H::new(Config::default());
    let (s, _) = h.mconnect("s", V3, true);
    h.msubscribe(s, V3, "a/#", m::QoS::AtMostOnce);
    h.msubscribe(s, V3, "+/x/+", m::QoS::AtMostOnce);
    let (p, _) = h.mconnect("p", V3, true);
    for t in ["a", "a/b", "a/b/c", "b", "q/x/r", "q/x", "/x/"] {
        h.mpublish(p, V3, t, m::QoS::AtMostOnce, t.as_bytes());
    }
    let topics: Vec<String> = h.mpublishes(s, V3).into_iter().map(|p| p.topic).collect();
    assert_eq!(topics, ["a", "a/b", "a/b/c", "q/x/r", "/x/"]);
}

#[test]
fn mqtt_and_mq_clients_exchange_both_ways() {
    let mut h = H::new(Config::default());
    let (mq, _) = h.connect("mq-client", SessionMode::Clean);
    h.subscribe(mq, 1, "sensors.*.temp", None, 16);
    let (dev, _) = h.mconnect("device", V5, true);
    h.msubscribe(dev, V5, "cmd/device/#", m::QoS::AtLeastOnce);
    // MQTT to mq: the topic mapped, user properties as headers.
    let user = [("unit", "C")];
    let props = Properties {
        user: m::List::new(&user),
        content_type: Some("text/plain"),
        ..Properties::EMPTY
    };
    h.mpublish_with(
        dev,
        V5,
        "sensors/kitchen/temp",
        m::QoS::AtLeastOnce,
        false,
        props,
        b"21.5",
    );
    let d = h.deliveries(mq);
    assert_eq!(
        (d[0].topic.as_str(), d[0].payload.as_slice()),
        ("sensors.kitchen.temp", &b"21.5"[..])
    );
    // mq to MQTT, with request-reply metadata.
    h.publish_with(
        mq,
        5,
        "cmd.device.reboot",
        QoS::AtLeastOnce,
        None,
        Meta {
            reply_to: Some("replies.mq-client"),
            correlation: Some(b"c1"),
            ttl_ms: Some(10_000),
            ..Meta::default()
        },
        b"now",
    );
    let got = h.mpublishes(dev, V5);
    let p = &got[0];
    assert_eq!(
        (p.topic.as_str(), p.qos, p.payload.as_slice()),
        ("cmd/device/reboot", 1, &b"now"[..])
    );
    assert_eq!(p.response_topic.as_deref(), Some("replies/mq-client"));
    assert_eq!(p.correlation.as_deref(), Some(&b"c1"[..]));
    assert_eq!(p.expiry, Some(10));
}

#[test]
fn properties_travel_between_mqtt_clients() {
    let mut h = H::new(Config::default());
    let (s, _) = h.mconnect("s", V5, true);
    h.msubscribe(s, V5, "req", m::QoS::AtLeastOnce);
    let (p, _) = h.mconnect("p", V5, true);
    let user = [("k", "v"), ("k", "w")];
    let props = Properties {
        user: m::List::new(&user),
        content_type: Some("application/json"),
        response_topic: Some("resp/p"),
        correlation_data: Some(b"42"),
        message_expiry: Some(60),
        payload_format: Some(m::PayloadFormat::Utf8),
        ..Properties::EMPTY
    };
    h.mpublish_with(p, V5, "req", m::QoS::AtLeastOnce, false, props, b"{}");
    h.advance(Duration::from_secs(5));
    let got = h.mpublishes(s, V5);
    let g = &got[0];
    assert_eq!(g.content_type.as_deref(), Some("application/json"));
    assert_eq!(g.response_topic.as_deref(), Some("resp/p"));
    assert_eq!(g.correlation.as_deref(), Some(&b"42"[..]));
    assert_eq!(
        g.user,
        [
            ("k".to_string(), "v".to_string()),
            ("k".to_string(), "w".to_string())
        ]
    );
    assert_eq!(g.expiry, Some(60));
    // A topic alias: set with the topic, then used alone.
    let alias = Properties {
        topic_alias: core::num::NonZeroU16::new(3),
        ..Properties::EMPTY
    };
    h.mpublish_with(p, V5, "req", m::QoS::AtMostOnce, false, alias, b"a1");
    h.mpublish_with(p, V5, "", m::QoS::AtMostOnce, false, alias, b"a2");
    assert_eq!(payloads_of(&h.mpublishes(s, V5)), [&b"a1"[..], b"a2"]);
}

#[test]
fn shared_subscriptions_are_groups() {
    let mut h = H::new(Config::default());
    let (a, _) = h.mconnect("a", V3, true);
    let (b, _) = h.mconnect("b", V5, true);
    h.msubscribe(a, V3, "$share/g/jobs/+", m::QoS::AtLeastOnce);
    h.msubscribe(b, V5, "$share/g/jobs/+", m::QoS::AtLeastOnce);
    let (p, _) = h.mconnect("p", V3, true);
    for i in 0..4u8 {
        h.mpublish(p, V3, "jobs/x", m::QoS::AtMostOnce, &[i]);
    }
    let (ga, gb) = (h.mpublishes(a, V3), h.mpublishes(b, V5));
    assert_eq!(ga.len() + gb.len(), 4);
    assert!(!ga.is_empty() && !gb.is_empty());
}
