//! Every packet, in both versions: encoded and decoded back unchanged, with
//! the short forms MQTT 5 allows and what 3.1.1 leaves out.

use core::num::{NonZeroU16, NonZeroU32};

use super::super::*;
use super::{encode, hex, round_trip};

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

const USER: &[(&str, &str)] = &[("k", "v"), ("k", "again"), ("", "")];

/// Every property a CONNACK may carry.
fn connack_properties() -> Properties<'static> {
    Properties {
        session_expiry: Some(3600),
        assigned_client_id: Some("auto-1"),
        server_keep_alive: Some(30),
        auth_method: Some("SCRAM-SHA-1"),
        auth_data: Some(b"\x00\x01"),
        response_info: Some("resp/"),
        server_reference: Some("other:1883"),
        reason_string: Some("welcome"),
        receive_maximum: NonZeroU16::new(100),
        topic_alias_maximum: Some(16),
        maximum_qos: Some(QoS::AtLeastOnce),
        retain_available: Some(false),
        user: List::new(USER),
        maximum_packet_size: NonZeroU32::new(1 << 20),
        wildcard_subscription_available: Some(true),
        subscription_ids_available: Some(true),
        shared_subscription_available: Some(false),
        ..Properties::EMPTY
    }
}

fn message_properties() -> Properties<'static> {
    Properties {
        payload_format: Some(PayloadFormat::Utf8),
        message_expiry: Some(60),
        content_type: Some("application/json"),
        response_topic: Some("reply/to/me"),
        correlation_data: Some(b"\xFFid"),
        user: List::new(USER),
        ..Properties::EMPTY
    }
}

fn connect(version: Version) -> Connect<'static> {
    let v5 = version == Version::V5;
    Connect {
        version,
        clean_start: false,
        keep_alive: 15,
        properties: if v5 {
            Properties {
                session_expiry: Some(u32::MAX),
                receive_maximum: NonZeroU16::new(10),
                maximum_packet_size: NonZeroU32::new(4096),
                topic_alias_maximum: Some(0),
                request_response_info: Some(true),
                request_problem_info: Some(false),
                auth_method: Some("PLAIN"),
                user: List::new(USER),
                ..Properties::EMPTY
            }
        } else {
            Properties::EMPTY
        },
        client_id: "device-17",
        will: Some(Will {
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: if v5 {
                Properties {
                    will_delay: Some(5),
                    ..message_properties()
                }
            } else {
                Properties::EMPTY
            },
            topic: "status/device-17",
            payload: b"offline",
        }),
        username: Some("device"),
        password: Some(b"\x00secret"),
    }
}

#[test]
fn connect_every_version() {
    for version in [Version::V3_1, Version::V3_1_1, Version::V5] {
        let c = connect(version);
        // The version argument is ignored for CONNECT.
        let bytes = round_trip(&Packet::Connect(c), Version::V3_1_1);
        assert_eq!(connect_version(&bytes), Ok(version));
        let bare = Connect {
            will: None,
            username: None,
            password: None,
            clean_start: true,
            properties: Properties::EMPTY,
            ..c
        };
        round_trip(&Packet::Connect(bare), version);
    }
    // MQTT 5 allows a password without a user name, and an empty client id.
    let c = Connect {
        username: None,
        client_id: "",
        ..connect(Version::V5)
    };
    round_trip(&Packet::Connect(c), Version::V5);
}

#[test]
fn connack_both_versions() {
    let ok = ConnAck {
        session_present: true,
        reason: ReasonCode::Success,
        properties: connack_properties(),
    };
    round_trip(&Packet::ConnAck(ok), Version::V5);
    let v3 = ConnAck {
        properties: Properties::EMPTY,
        ..ok
    };
    assert_eq!(
        round_trip(&Packet::ConnAck(v3), Version::V3_1_1),
        hex("20020100")
    );
    // 3.1 has no session-present flag.
    assert_eq!(encode(&Packet::ConnAck(v3), Version::V3_1), hex("20020000"));
    for code in ReasonCode::ALL
        .iter()
        .filter(|c| c.allowed_in(PacketType::ConnAck))
    {
        let refused = ConnAck {
            session_present: false,
            reason: *code,
            properties: Properties::EMPTY,
        };
        assert_eq!(
            round_trip(&Packet::ConnAck(refused), Version::V5)[3],
            code.code()
        );
        // 3.1.1 says it with the nearest return code.
        let bytes = encode(&Packet::ConnAck(refused), Version::V3_1_1);
        assert_eq!(bytes[3], ConnectReturnCode::from_reason(*code).code());
    }
    for rc in 0..=5 {
        let code = ConnectReturnCode::from_u8(rc).unwrap();
        assert_eq!(ConnectReturnCode::from_reason(code.to_reason()), code);
        let bytes = [0x20, 2, 0, rc];
        let Ok(Packet::ConnAck(a)) = Packet::decode(&bytes, Version::V3_1_1) else {
            panic!()
        };
        assert_eq!(a.reason, code.to_reason());
    }
}

#[test]
fn publish_every_qos_and_flag() {
    let payload = [0xAB; 300];
    for version in [Version::V3_1, Version::V3_1_1, Version::V5] {
        for qos in [
            QosPid::AtMostOnce,
            QosPid::AtLeastOnce(pid(1)),
            QosPid::ExactlyOnce(pid(u16::MAX)),
        ] {
            for (dup, retain) in [(false, false), (true, false), (false, true), (true, true)] {
                if dup && qos == QosPid::AtMostOnce {
                    continue;
                }
                let p = Publish {
                    dup,
                    qos,
                    retain,
                    topic: "a/b/ü",
                    properties: if version == Version::V5 {
                        message_properties()
                    } else {
                        Properties::EMPTY
                    },
                    payload: &payload,
                };
                let bytes = round_trip(&Packet::Publish(p), version);
                let Ok(Packet::Publish(back)) = Packet::decode(&bytes, version) else {
                    panic!()
                };
                // Zero copy: payload and topic point into the bytes.
                let range = bytes.as_ptr_range();
                assert!(range.contains(&back.payload.as_ptr()));
                assert!(range.contains(&back.topic.as_ptr()));
            }
        }
    }
}

#[test]
fn publish_v5_topic_alias_and_subscription_ids() {
    // A server sends several subscription identifiers; an aliased publish may
    // have an empty topic.
    let p = Publish {
        dup: false,
        qos: QosPid::AtMostOnce,
        retain: false,
        topic: "",
        properties: Properties {
            topic_alias: NonZeroU16::new(3),
            subscription_ids: List::new(&[1, 127, 128, 268_435_455]),
            ..Properties::EMPTY
        },
        payload: b"",
    };
    let bytes = round_trip(&Packet::Publish(p), Version::V5);
    assert_eq!(
        bytes,
        hex("30 12 0000 0f 0b01 0b7f 0b8001 0bffffff7f 230003")
    );
}

#[test]
fn pub_acks_short_and_long_forms() {
    let kinds: [fn(Ack<'static>) -> Packet<'static>; 4] = [
        Packet::PubAck,
        Packet::PubRec,
        Packet::PubRel,
        Packet::PubComp,
    ];
    for make in kinds {
        let ack = Ack::new(pid(7));
        let first = make(ack).packet_type() as u8;
        let flags = if first == PacketType::PubRel as u8 {
            2
        } else {
            0
        };
        let head = first << 4 | flags;
        // Success without properties: two bytes in both versions.
        assert_eq!(round_trip(&make(ack), Version::V5), [head, 2, 0, 7]);
        assert_eq!(round_trip(&make(ack), Version::V3_1_1), [head, 2, 0, 7]);
        let kind = make(ack).packet_type();
        for code in ReasonCode::ALL.iter().filter(|c| c.allowed_in(kind)) {
            let with_code = Ack {
                reason: *code,
                ..ack
            };
            let bytes = round_trip(&make(with_code), Version::V5);
            if *code != ReasonCode::Success {
                assert_eq!(bytes, [head, 3, 0, 7, code.code()]);
            }
            let full = Ack {
                properties: Properties {
                    reason_string: Some("why"),
                    user: List::new(USER),
                    ..Properties::EMPTY
                },
                ..with_code
            };
            round_trip(&make(full), Version::V5);
        }
        // The reason-code-only and empty-properties forms decode as well.
        let long = [head, 4, 0, 7, 0, 0];
        assert_eq!(Packet::decode(&long, Version::V5), Ok(make(ack)));
    }
}

#[test]
fn subscribe_options_and_acks() {
    let subs = [
        Subscription {
            filter: "a/+/c",
            options: SubscriptionOptions::qos(QoS::AtLeastOnce),
        },
        Subscription {
            filter: "$share/g/x/#",
            options: SubscriptionOptions {
                qos: QoS::ExactlyOnce,
                no_local: false,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
        },
        Subscription {
            filter: "n/l",
            options: SubscriptionOptions {
                qos: QoS::AtMostOnce,
                no_local: true,
                retain_as_published: false,
                retain_handling: RetainHandling::SendAtNewSubscribe,
            },
        },
    ];
    let s = Subscribe {
        packet_id: pid(10),
        properties: Properties {
            subscription_ids: List::new(&[42]),
            user: List::new(USER),
            ..Properties::EMPTY
        },
        subscriptions: List::new(&subs),
    };
    round_trip(&Packet::Subscribe(s), Version::V5);
    assert_eq!(Subscribe::subscription_id(&s), Some(42));
    // 3.1.1 keeps the QoS only.
    let v3 = encode(&Packet::Subscribe(s), Version::V3_1_1);
    let Ok(Packet::Subscribe(back)) = Packet::decode(&v3, Version::V3_1_1) else {
        panic!()
    };
    assert!(back.properties.is_empty());
    assert!(
        back.subscriptions
            .iter()
            .map(|s| s.options)
            .eq(subs.iter().map(|s| SubscriptionOptions::qos(s.options.qos)))
    );

    let codes = [
        ReasonCode::GrantedQoS1,
        ReasonCode::TopicFilterInvalid,
        ReasonCode::GRANTED_QOS_0,
        ReasonCode::GrantedQoS2,
    ];
    let ack = SubAck {
        packet_id: pid(10),
        properties: Properties {
            reason_string: Some("one refused"),
            ..Properties::EMPTY
        },
        reasons: List::new(&codes),
    };
    round_trip(&Packet::SubAck(ack), Version::V5);
    // 3.1.1 says every failure as 0x80.
    assert_eq!(
        encode(&Packet::SubAck(ack), Version::V3_1_1),
        [0x90, 6, 0, 10, 1, 0x80, 0, 2]
    );
}

#[test]
fn unsubscribe_and_unsuback() {
    let u = Unsubscribe {
        packet_id: pid(3),
        properties: Properties::EMPTY,
        filters: List::new(&["a/#", "b/+", "$share/g/c"]),
    };
    round_trip(&Packet::Unsubscribe(u), Version::V5);
    round_trip(&Packet::Unsubscribe(u), Version::V3_1_1);
    let ack = UnsubAck {
        packet_id: pid(3),
        properties: Properties {
            user: List::new(USER),
            ..Properties::EMPTY
        },
        reasons: List::new(&[ReasonCode::Success, ReasonCode::NoSubscriptionExisted]),
    };
    round_trip(&Packet::UnsubAck(ack), Version::V5);
    assert_eq!(
        encode(&Packet::UnsubAck(ack), Version::V3_1_1),
        [0xB0, 2, 0, 3]
    );
}

#[test]
fn ping_disconnect_auth() {
    for version in [Version::V3_1_1, Version::V5] {
        assert_eq!(round_trip(&Packet::PingReq, version), [0xC0, 0]);
        assert_eq!(round_trip(&Packet::PingResp, version), [0xD0, 0]);
        let normal = Packet::Disconnect(Disconnect::NORMAL);
        assert_eq!(round_trip(&normal, version), [0xE0, 0]);
    }
    for code in ReasonCode::ALL
        .iter()
        .filter(|c| c.allowed_in(PacketType::Disconnect))
    {
        let d = Disconnect {
            reason: *code,
            properties: Properties {
                session_expiry: Some(0),
                server_reference: Some("elsewhere"),
                reason_string: Some("bye"),
                user: List::new(USER),
                ..Properties::EMPTY
            },
        };
        round_trip(&Packet::Disconnect(d), Version::V5);
        let short = Disconnect {
            properties: Properties::EMPTY,
            ..d
        };
        let bytes = round_trip(&Packet::Disconnect(short), Version::V5);
        assert_eq!(bytes.len(), if code.code() == 0 { 2 } else { 3 });
    }
    for code in [
        ReasonCode::Success,
        ReasonCode::ContinueAuthentication,
        ReasonCode::ReAuthenticate,
    ] {
        let a = Auth {
            reason: code,
            properties: Properties {
                auth_method: Some("SCRAM-SHA-256"),
                auth_data: Some(b"nonce"),
                reason_string: Some("step"),
                user: List::new(USER),
                ..Properties::EMPTY
            },
        };
        round_trip(&Packet::Auth(a), Version::V5);
    }
    assert_eq!(
        Packet::decode(&[0xF0, 0], Version::V5),
        Ok(Packet::Auth(Auth {
            reason: ReasonCode::Success,
            properties: Properties::EMPTY
        }))
    );
}

#[test]
fn large_remaining_lengths() {
    // Remaining lengths of two and three bytes.
    for len in [200usize, 20_000] {
        let payload = std::vec![7u8; len];
        let p = Publish {
            dup: false,
            qos: QosPid::AtMostOnce,
            retain: false,
            topic: "t",
            properties: Properties::EMPTY,
            payload: &payload,
        };
        let bytes = round_trip(&Packet::Publish(p), Version::V3_1_1);
        assert_eq!(bytes.len(), 1 + if len < 16_384 { 2 } else { 3 } + 3 + len);
    }
}

#[test]
fn fit_drops_reason_string_then_user_properties() {
    let ack = Packet::PubAck(Ack {
        packet_id: pid(1),
        reason: ReasonCode::QuotaExceeded,
        properties: Properties {
            reason_string: Some("the queue of this topic is full"),
            user: List::new(&[("queue", "orders")]),
            ..Properties::EMPTY
        },
    });
    let full = ack.encoded_len(Version::V5);
    assert_eq!(ack.fit(Version::V5, full as u32), Ok(ack));
    let Ok(Packet::PubAck(no_reason)) = ack.fit(Version::V5, full as u32 - 1) else {
        panic!()
    };
    assert_eq!(no_reason.properties.reason_string, None);
    assert!(!no_reason.properties.user.is_empty());
    let Ok(Packet::PubAck(bare)) = ack.fit(Version::V5, 5) else {
        panic!()
    };
    assert!(bare.properties.is_empty());
    assert_eq!(
        encode(&Packet::PubAck(bare), Version::V5),
        [0x40, 3, 0, 1, 0x97]
    );
    assert_eq!(
        ack.fit(Version::V5, 4),
        Err(EncodeError::PacketTooLarge { len: full, max: 4 })
    );
    // A PUBLISH keeps its user properties: it does not fit, or it is sent whole.
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QosPid::AtMostOnce,
        retain: false,
        topic: "t",
        properties: message_properties(),
        payload: b"",
    });
    let len = p.encoded_len(Version::V5);
    assert_eq!(
        p.fit(Version::V5, 20),
        Err(EncodeError::PacketTooLarge { len, max: 20 })
    );
}
