//! Packets real programs sent: captured through a logging TCP proxy in front of
//! Mosquitto 2.0.11 on 127.0.0.1:1883, from `mosquitto_pub`, `mosquitto_sub` and
//! `mosquitto_rr` 2.0.11 (the command lines are above each capture), and
//! Mosquitto's answers. Each must decode to what the command asked for; where
//! our encoder writes properties in the same order, it must write the same
//! bytes.

use std::vec::Vec;

use super::super::stream::{Decoded, PacketDecoder};
use super::super::*;
use super::{encode, hex};

/// Splits a captured stream into packets, decoding with `version`.
fn packets(stream: &[u8], version: Version) -> Vec<Packet<'_>> {
    let dec = PacketDecoder::new(version, MAX_PACKET_SIZE);
    let mut rest = stream;
    let mut out = Vec::new();
    while !rest.is_empty() {
        match dec.decode(rest) {
            Ok(Decoded::Packet { packet, consumed }) => {
                out.push(packet);
                rest = &rest[consumed..];
            }
            other => panic!("capture does not decode: {other:?} at {rest:02x?}"),
        }
    }
    out
}

/// Every packet of the stream re-encodes to a packet that decodes the same;
/// `exact` says whether the bytes must be the captured ones.
fn reencode(stream: &[u8], version: Version, exact: bool) {
    let mut again = Vec::new();
    for p in packets(stream, version) {
        let bytes = encode(&p, version);
        assert_eq!(Packet::decode(&bytes, version), Ok(p));
        again.extend_from_slice(&bytes);
    }
    if exact {
        assert_eq!(again, stream);
    }
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// `mosquitto_pub -V mqttv311 -i cap-pub311 -q 1 -t sensors/kitchen/temp -m 21.5
/// -u alice -P secret --will-topic dead/cap --will-payload gone --will-qos 1
/// --will-retain`
#[test]
fn v311_publish_with_will_and_credentials() {
    let c2s = hex(
        "103500044d51545404ee003c000a6361702d7075623331310008646561642f6361700004676f6e65\
         0005616c6963650006736563726574321c001473656e736f72732f6b69746368656e2f74656d7000\
         0132312e35e000",
    );
    let s2c = hex("2002000040020001");
    let p = packets(&c2s, Version::V3_1_1);
    assert_eq!(
        p[0],
        Packet::Connect(Connect {
            version: Version::V3_1_1,
            clean_start: true,
            keep_alive: 60,
            properties: Properties::EMPTY,
            client_id: "cap-pub311",
            will: Some(Will {
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: Properties::EMPTY,
                topic: "dead/cap",
                payload: b"gone",
            }),
            username: Some("alice"),
            password: Some(b"secret"),
        })
    );
    assert_eq!(
        p[1],
        Packet::Publish(Publish {
            dup: false,
            qos: QosPid::AtLeastOnce(pid(1)),
            retain: false,
            topic: "sensors/kitchen/temp",
            properties: Properties::EMPTY,
            payload: b"21.5",
        })
    );
    assert_eq!(p[2], Packet::Disconnect(Disconnect::NORMAL));
    let s = packets(&s2c, Version::V3_1_1);
    assert_eq!(
        s[0],
        Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties::EMPTY,
        })
    );
    assert_eq!(s[1], Packet::PubAck(Ack::new(pid(1))));
    reencode(&c2s, Version::V3_1_1, true);
    reencode(&s2c, Version::V3_1_1, true);
}

/// `mosquitto_pub -V mqttv5 -i cap-pub5 -q 2 -t a/b -m hello -D publish
/// user-property k v -D publish message-expiry-interval 60 -D publish
/// content-type text/plain -D publish response-topic reply/me -D publish
/// correlation-data c1 -D publish payload-format-indicator 1 -D connect
/// session-expiry-interval 300 -D connect receive-maximum 10 -D connect
/// maximum-packet-size 65536 -D connect topic-alias-maximum 5 -D connect
/// user-property who cap`
#[test]
fn v5_qos2_publish_with_properties() {
    let c2s = hex(
        "103000044d5154540502003c1b110000012c21000a270001000022000526000377686f0003636170\
         00086361702d7075623534380003612f6200012b2600016b000176020000003c03000a746578742f\
         706c61696e0800087265706c792f6d650900026331010168656c6c6f62020001e000",
    );
    let s2c = hex("200900000622000a2100145002000170020001");
    let p = packets(&c2s, Version::V5);
    let Packet::Connect(c) = p[0] else { panic!() };
    assert_eq!(c.version, Version::V5);
    assert_eq!(c.client_id, "cap-pub5");
    assert_eq!(c.properties.session_expiry, Some(300));
    assert_eq!(c.properties.receive_maximum.map(|n| n.get()), Some(10));
    assert_eq!(
        c.properties.maximum_packet_size.map(|n| n.get()),
        Some(65536)
    );
    assert_eq!(c.properties.topic_alias_maximum, Some(5));
    assert!(c.properties.user.iter().eq([("who", "cap")]));
    let Packet::Publish(pb) = p[1] else { panic!() };
    assert_eq!(pb.qos, QosPid::ExactlyOnce(pid(1)));
    assert_eq!((pb.topic, pb.payload), ("a/b", &b"hello"[..]));
    let props = pb.properties;
    assert_eq!(props.payload_format, Some(PayloadFormat::Utf8));
    assert_eq!(props.message_expiry, Some(60));
    assert_eq!(props.content_type, Some("text/plain"));
    assert_eq!(props.response_topic, Some("reply/me"));
    assert_eq!(props.correlation_data, Some(&b"c1"[..]));
    assert!(props.user.iter().eq([("k", "v")]));
    assert_eq!(p[2], Packet::PubRel(Ack::new(pid(1))));
    assert_eq!(p[3], Packet::Disconnect(Disconnect::NORMAL));
    let s = packets(&s2c, Version::V5);
    let Packet::ConnAck(ack) = s[0] else { panic!() };
    assert_eq!(ack.properties.topic_alias_maximum, Some(10));
    assert_eq!(ack.properties.receive_maximum.map(|n| n.get()), Some(20));
    assert_eq!(s[1], Packet::PubRec(Ack::new(pid(1))));
    assert_eq!(s[2], Packet::PubComp(Ack::new(pid(1))));
    // mosquitto_pub writes the user property first; we write in identifier order.
    reencode(&c2s, Version::V5, false);
    reencode(&s2c, Version::V5, false);
}

/// `mosquitto_pub -V mqttv5 -i cap-ret5 -q 1 -r -t r/x -n`: a retained empty
/// payload (deletes the retained message), answered with *no matching
/// subscribers*.
#[test]
fn v5_retained_delete_and_no_matching_subscribers() {
    let c2s = hex("101800044d5154540502003c0321001400086361702d7265743533080003722f78000100e000");
    let s2c = hex("200900000622000a2100144003000110");
    let p = packets(&c2s, Version::V5);
    let Packet::Publish(pb) = p[1] else { panic!() };
    assert!(pb.retain && pb.payload.is_empty());
    let s = packets(&s2c, Version::V5);
    let Packet::PubAck(ack) = s[1] else { panic!() };
    assert_eq!(ack.reason, ReasonCode::NoMatchingSubscribers);
    reencode(&c2s, Version::V5, true);
    // Mosquitto's CONNACK has topic alias maximum before receive maximum.
    reencode(&s2c, Version::V5, false);
}

/// `mosquitto_pub -V mqttv31 -i cap31 -q 0 -t x/y -m old`: MQTT 3.1.
#[test]
fn v31_mqisdp() {
    let c2s = hex("101300064d51497364700302003c0005636170333130080003782f796f6c64e000");
    let p = packets(&c2s, Version::V3_1);
    let Packet::Connect(c) = p[0] else { panic!() };
    assert_eq!((c.version, c.client_id), (Version::V3_1, "cap31"));
    assert_eq!(connect_version(&c2s), Ok(Version::V3_1));
    reencode(&c2s, Version::V3_1, true);
    reencode(&hex("20020000"), Version::V3_1, true);
}

/// `mosquitto_sub -V mqttv5 -i cap-sub5 -q 2 -t 'r/#' -t '$share/g/a/+' -D
/// subscribe subscription-identifier 7 -D subscribe user-property s t -C 1 -c
/// -x 120 -k 30`, with a retained message on `r/y` (user property a=b).
#[test]
fn v5_subscribe_shared_and_retained_delivery() {
    let c2s = hex(
        "101d00044d5154540500001e08110000007821000100086361702d7375623582210001090b072600\
         01730001740003722f2302000c2473686172652f672f612f2b0240020001e000",
    );
    let s2c =
        hex("200900000622000a2100149005000100020233150003722f790001090b07260001610001626b657074");
    let p = packets(&c2s, Version::V5);
    let Packet::Connect(c) = p[0] else { panic!() };
    assert!(!c.clean_start);
    assert_eq!(c.keep_alive, 30);
    let Packet::Subscribe(sub) = p[1] else {
        panic!()
    };
    assert_eq!(sub.subscription_id(), Some(7));
    let filters: Vec<_> = sub.subscriptions.iter().map(|s| s.filter).collect();
    assert_eq!(filters, ["r/#", "$share/g/a/+"]);
    assert!(
        sub.subscriptions
            .iter()
            .all(|s| s.options == SubscriptionOptions::qos(QoS::ExactlyOnce))
    );
    let shared = topic::MqttFilter::parse(filters[1]).unwrap();
    assert_eq!((shared.share, shared.filter), (Some("g"), "a/+"));
    assert_eq!(p[2], Packet::PubAck(Ack::new(pid(1))));
    let s = packets(&s2c, Version::V5);
    let Packet::SubAck(sa) = s[1] else { panic!() };
    assert!(sa.reasons.iter().eq([ReasonCode::GrantedQoS2; 2]));
    let Packet::Publish(pb) = s[2] else { panic!() };
    assert!(pb.retain);
    assert!(pb.properties.subscription_ids.iter().eq([7]));
    assert!(pb.properties.user.iter().eq([("a", "b")]));
    reencode(&c2s, Version::V5, true);
    reencode(&s2c, Version::V5, false);
}

/// `mosquitto_sub -V mqttv5 -i cap-uns5 -U 'r/#' -U nothing/here -t zz -D
/// unsubscribe user-property u v`, and the 3.1.1 `-U 'r/#'`.
#[test]
fn unsubscribe_both_versions() {
    let c2s = hex(
        "101800044d5154540502003c0321000100086361702d756e7335820800010000027a7a00a20f0002\
         07260001750001760003722f23a21800030726000175000176000c6e6f7468696e672f68657265e0\
         0104",
    );
    let s2c = hex("200900000622000a210014900400010000b00400020011b00400030011");
    let p = packets(&c2s, Version::V5);
    let Packet::Unsubscribe(u) = p[2] else {
        panic!()
    };
    assert!(u.filters.iter().eq(["r/#"]));
    assert!(u.properties.user.iter().eq([("u", "v")]));
    let Packet::Disconnect(d) = p[4] else {
        panic!()
    };
    assert_eq!(d.reason, ReasonCode::DisconnectWithWillMessage);
    let s = packets(&s2c, Version::V5);
    let Packet::UnsubAck(ua) = s[2] else { panic!() };
    assert!(ua.reasons.iter().eq([ReasonCode::NoSubscriptionExisted]));
    reencode(&c2s, Version::V5, true);
    reencode(&s2c, Version::V5, false);

    let c2s = hex(
        "101600044d5154540402003c000a6361702d756e733331318207000100027a7a00a20700020003722f23e000",
    );
    let s2c = hex("200200009003000100b0020002");
    let s = packets(&s2c, Version::V3_1_1);
    assert_eq!(
        s[2],
        Packet::UnsubAck(UnsubAck {
            packet_id: pid(2),
            properties: Properties::EMPTY,
            reasons: List::EMPTY,
        })
    );
    reencode(&c2s, Version::V3_1_1, true);
    reencode(&s2c, Version::V3_1_1, true);
}

/// `mosquitto_sub -V mqttv311 -q 2 -t 'q2/#'` receiving a QoS 2 message from
/// `mosquitto_pub -V mqttv311 -q 2 -t q2/x -m exactly`: the whole exchange.
#[test]
fn v311_qos2_exchange() {
    let sub_c2s = hex(
        "101600044d5154540402003c000a6361702d73756233313182090001000471322f23025002000170020001e000",
    );
    let sub_s2c = hex("200200009003000102340f000471322f78000165786163746c7962020001");
    let pub_c2s = hex(
        "101700044d5154540402003c000b6361702d70756233313162340f000471322f78000165786163746c7962020001e000",
    );
    let s = packets(&sub_s2c, Version::V3_1_1);
    let Packet::SubAck(sa) = s[1] else { panic!() };
    assert!(sa.reasons.iter().eq([ReasonCode::GrantedQoS2]));
    let p = packets(&pub_c2s, Version::V3_1_1);
    assert_eq!(p[2], Packet::PubRel(Ack::new(pid(1))));
    for stream in [&sub_c2s, &sub_s2c, &pub_c2s] {
        reencode(stream, Version::V3_1_1, true);
    }
}

/// `mosquitto_rr -V mqttv5 -i cap-rr -t req/t -e resp/t -m ping`: a request
/// with a response topic.
#[test]
fn v5_request_response() {
    let c2s = hex(
        "101600044d5154540502003c0321000100066361702d7272820c0001000006726573702f74003015\
         00057265712f7409080006726573702f7470696e67e00104",
    );
    let p = packets(&c2s, Version::V5);
    let Packet::Publish(pb) = p[2] else { panic!() };
    assert_eq!(pb.properties.response_topic, Some("resp/t"));
    reencode(&c2s, Version::V5, true);
}
