//! Every decoding error from a packet that shows it, with the answer a server
//! gives; and every encoding error.

use core::num::NonZeroU16;

use super::super::*;
use super::hex;

use DecodeError as E;
use Version::{V3_1, V3_1_1, V5};

/// `(version, packet in hex, error)`.
const CASES: &[(Version, &str, DecodeError)] = &[
    // Fixed header and remaining length.
    (V5, "30 80808080 01", E::BadVarInt),
    (V5, "c0 8000", E::BadVarInt),
    (V5, "00 00", E::UnknownPacketType),
    (V3_1_1, "f0 00", E::UnknownPacketType),
    (V5, "c1 00", E::BadFlags),
    (V5, "60 02 0001", E::BadFlags),
    (V5, "80 05 0001 00 6100", E::BadFlags),
    (V5, "38 05 0001 61 00 00", E::BadFlags),
    (V3_1_1, "20 02 02 00", E::BadFlags),
    (V3_1, "20 02 01 00", E::BadFlags),
    (V5, "40 03 0001", E::Truncated),
    (V5, "40 01 00", E::Truncated),
    (V5, "c0 01 00", E::TrailingBytes),
    (V5, "c0 00 00", E::TrailingBytes),
    (V3_1_1, "40 03 0001 00", E::TrailingBytes),
    // Strings.
    (V3_1_1, "30 04 0001 ff 00", E::BadUtf8),
    (V3_1_1, "30 04 0001 00 00", E::BadUtf8),
    (V3_1_1, "30 05 0002 eda0", E::Truncated),
    (V3_1_1, "30 05 0003 eda080", E::BadUtf8),
    // QoS.
    (V3_1_1, "36 05 0001 61 0001", E::BadQoS),
    (V3_1_1, "82 06 0001 0001 61 03", E::BadQoS),
    // Properties.
    (V5, "40 06 0001 00 02 7f00", E::UnknownProperty),
    (V5, "40 07 0001 00 03 230001", E::PropertyNotAllowed),
    (V5, "30 07 0001 61 03 020000", E::Truncated),
    (V5, "30 09 0001 61 05 1800000001", E::PropertyNotAllowed),
    (
        V5,
        "40 0c 0001 00 08 1f000161 1f000162",
        E::DuplicateProperty,
    ),
    (
        V5,
        "82 0b 0001 04 0b01 0b02 0001 61 00",
        E::DuplicateProperty,
    ),
    (V5, "30 06 0001 61 02 0102", E::BadPropertyValue),
    (V5, "30 07 0001 61 03 230000", E::BadPropertyValue),
    (V5, "30 06 0001 61 02 0b00", E::BadPropertyValue),
    (V5, "30 09 0001 61 05 08 0002 612b", E::BadPropertyValue),
    (V5, "20 09 00 00 06 2200 0a 21 0000", E::BadPropertyValue),
    (V5, "20 05 00 00 02 2402", E::BadPropertyValue),
    (V5, "20 05 00 00 02 2502", E::BadPropertyValue),
    (V5, "20 08 00 00 05 2700000000", E::BadPropertyValue),
    (V5, "f0 06 00 04 16 000100", E::BadPropertyValue),
    (V5, "40 06 0001 00 02 1f00", E::Truncated),
    (V5, "40 05 0001 00 80", E::Truncated),
    (V5, "40 08 0001 00 04 8080 8000", E::BadVarInt),
    // Reason codes.
    (V5, "40 03 0001 8f", E::BadReasonCode),
    (V5, "40 03 0001 05", E::BadReasonCode),
    (V5, "62 03 0001 97", E::BadReasonCode),
    (V5, "e0 01 91", E::BadReasonCode),
    (V5, "f0 01 87", E::BadReasonCode),
    (V5, "20 03 00 10 00", E::BadReasonCode),
    (V3_1_1, "20 02 00 06", E::BadReasonCode),
    (V3_1_1, "90 03 0001 03", E::BadReasonCode),
    (V5, "90 04 0001 00 8e", E::BadReasonCode),
    (V5, "b0 04 0001 00 8e", E::BadReasonCode),
    (V3_1_1, "20 02 01 05", E::SessionPresentOnRefusal),
    // Packet identifiers.
    (V5, "40 02 0000", E::ZeroPacketId),
    (V3_1_1, "32 05 0001 61 0000", E::ZeroPacketId),
    (V3_1_1, "82 06 0000 0001 61 00", E::ZeroPacketId),
    (V3_1_1, "a2 05 0000 0001 61", E::ZeroPacketId),
    (V3_1_1, "90 03 0000 00", E::ZeroPacketId),
    // Topics.
    (V3_1_1, "30 05 0003 612f2b", E::TopicNameInvalid),
    (V3_1_1, "30 03 0001 23", E::TopicNameInvalid),
    (V3_1_1, "30 02 0000", E::EmptyTopic),
    (V5, "30 03 0000 00", E::EmptyTopic),
    // SUBSCRIBE, UNSUBSCRIBE and their acks.
    (V3_1_1, "82 02 0001", E::EmptyPayload),
    (V5, "82 03 0001 00", E::EmptyPayload),
    (V3_1_1, "a2 02 0001", E::EmptyPayload),
    (V3_1_1, "90 02 0001", E::EmptyPayload),
    (V5, "b0 03 0001 00", E::EmptyPayload),
    (V3_1_1, "82 06 0001 0001 61 04", E::BadSubscriptionOptions),
    (V5, "82 07 0001 00 0001 61 40", E::BadSubscriptionOptions),
    (V5, "82 07 0001 00 0001 61 30", E::BadRetainHandling),
    (
        V5,
        "82 10 0001 00 000a 2473686172652f672f61 04",
        E::NoLocalOnShared,
    ),
    (V5, "82 05 0001 00 0001", E::Truncated),
    // CONNECT.
    (
        V3_1_1,
        "10 0e 0004 4d515454 04 03 003c 0002 6964",
        E::BadConnectFlags,
    ),
    (
        V3_1_1,
        "10 0e 0004 4d515454 04 0a 003c 0002 6964",
        E::BadConnectFlags,
    ),
    (
        V3_1_1,
        "10 0e 0004 4d515454 04 22 003c 0002 6964",
        E::BadConnectFlags,
    ),
    (
        V3_1_1,
        "10 0e 0004 4d515454 04 1e 003c 0002 6964",
        E::BadConnectFlags,
    ),
    (
        V3_1_1,
        "10 0e 0004 4d515454 04 42 003c 0002 6964",
        E::BadConnectFlags,
    ),
    (
        V3_1_1,
        "10 0e 0004 4d515458 04 02 003c 0002 6964",
        E::BadProtocolName,
    ),
    (
        V3_1_1,
        "10 0e 0004 4d515454 06 02 003c 0002 6964",
        E::UnsupportedProtocolVersion,
    ),
    (
        V3_1_1,
        "10 0e 0004 4d515454 03 02 003c 0002 6964",
        E::UnsupportedProtocolVersion,
    ),
    (
        V3_1_1,
        "10 0c 0004 4d515454 04 00 003c 0000",
        E::ClientIdRejected,
    ),
    (
        V3_1,
        "10 0e 0006 4d5149736470 03 02 003c 0000",
        E::ClientIdRejected,
    ),
    (
        V3_1,
        "10 26 0006 4d5149736470 03 02 003c 0018 616161616161616161616161616161616161616161616161",
        E::ClientIdRejected,
    ),
    (
        V3_1_1,
        "10 12 0004 4d515454 04 06 003c 0002 6964 0000 0000",
        E::EmptyTopic,
    ),
    (
        V3_1_1,
        "10 13 0004 4d515454 04 06 003c 0002 6964 0001 23 0000",
        E::TopicNameInvalid,
    ),
    (
        V3_1_1,
        "10 12 0004 4d515454 04 06 003c 0002 6964 0001 61 00",
        E::Truncated,
    ),
    (
        V5,
        "10 0f 0004 4d515454 05 02 003c 09 0002 6964",
        E::Truncated,
    ),
    (
        V5,
        "10 11 0004 4d515454 05 02 003c 02 2300 0002 6964",
        E::PropertyNotAllowed,
    ),
    (
        V5,
        "10 17 0004 4d515454 05 06 003c 00 0002 6964 02 1100 0001 61 0000",
        E::PropertyNotAllowed,
    ),
];

#[test]
fn every_decode_error() {
    let mut seen = std::collections::BTreeSet::new();
    for &(version, bytes, want) in CASES {
        let bytes = hex(bytes);
        assert_eq!(
            Packet::decode(&bytes, version),
            Err(want),
            "{bytes:02x?} as {version:?}"
        );
        seen.insert(std::format!("{want:?}"));
    }
    // Every variant but the stream decoder's is shown here.
    assert_eq!(seen.len(), 24, "{seen:?}");
}

#[test]
fn answers_to_decode_errors() {
    assert_eq!(E::Truncated.reason_code(), ReasonCode::MalformedPacket);
    assert_eq!(
        E::DuplicateProperty.reason_code(),
        ReasonCode::ProtocolError
    );
    assert_eq!(
        E::TopicNameInvalid.reason_code(),
        ReasonCode::TopicNameInvalid
    );
    assert_eq!(E::PacketTooLarge.reason_code(), ReasonCode::PacketTooLarge);
    assert_eq!(
        E::UnsupportedProtocolVersion.v3_connack(),
        Some(ConnectReturnCode::UnacceptableProtocolVersion)
    );
    assert_eq!(
        E::ClientIdRejected.v3_connack(),
        Some(ConnectReturnCode::IdentifierRejected)
    );
    assert_eq!(E::BadProtocolName.v3_connack(), None);
    assert_eq!(E::BadUtf8.v3_connack(), None);
    // Every code a decode error names may be sent in CONNACK and DISCONNECT.
    for &(_, _, e) in CASES {
        let code = e.reason_code();
        assert!(code.allowed_in(PacketType::ConnAck), "{e:?}");
        let in_disconnect = code.allowed_in(PacketType::Disconnect);
        assert!(
            in_disconnect || e.v3_connack().is_some() || e == E::BadProtocolName,
            "{e:?}"
        );
        assert!(!e.as_str().is_empty());
    }
    assert_eq!(
        std::format!("{}", ReasonCode::PacketTooLarge),
        "packet too large (0x95)"
    );
}

#[test]
fn connect_version_of_undecodable_connects() {
    // A v5 CONNECT with a bad property still says it is v5.
    let bad = hex("10 11 0004 4d515454 05 02 003c 02 2300 0002 6964");
    assert!(Packet::decode(&bad, V5).is_err());
    assert_eq!(connect_version(&bad), Ok(V5));
    assert_eq!(
        connect_version(&hex("10 0e 0004 4d515454 07 02")),
        Err(E::UnsupportedProtocolVersion)
    );
    assert_eq!(
        connect_version(&hex("20 02 00 00")),
        Err(E::UnknownPacketType)
    );
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn publish(topic: &str) -> Publish<'_> {
    Publish {
        dup: false,
        qos: QosPid::AtMostOnce,
        retain: false,
        topic,
        properties: Properties::EMPTY,
        payload: b"",
    }
}

#[test]
fn every_encode_error() {
    let mut buf = [0u8; 128];
    let enc = |p: Packet<'_>, v: Version, buf: &mut [u8]| p.encode(v, buf).map(|_| ());

    let long = "x".repeat(MAX_FIELD + 1);
    let mut big = std::vec![0u8; 70_000];
    assert_eq!(
        enc(Packet::Publish(publish(&long)), V5, &mut big),
        Err(EncodeError::FieldTooLong)
    );
    let props = Properties {
        subscription_ids: List::new(&[0]),
        ..Properties::EMPTY
    };
    let p = Publish {
        properties: props,
        ..publish("t")
    };
    assert_eq!(
        enc(Packet::Publish(p), V5, &mut buf),
        Err(EncodeError::FieldTooLong)
    );

    let mut ack = Ack::new(pid(1));
    ack.properties.topic_alias = NonZeroU16::new(1);
    assert_eq!(
        enc(Packet::PubAck(ack), V5, &mut buf),
        Err(EncodeError::PropertyNotAllowed)
    );

    let auth = Auth {
        reason: ReasonCode::Success,
        properties: Properties::EMPTY,
    };
    assert_eq!(
        enc(Packet::Auth(auth), V3_1_1, &mut buf),
        Err(EncodeError::NotInVersion)
    );
    let refused = Ack {
        reason: ReasonCode::NotAuthorized,
        ..Ack::new(pid(1))
    };
    assert_eq!(
        enc(Packet::PubAck(refused), V3_1_1, &mut buf),
        Err(EncodeError::NotInVersion)
    );
    let will = Disconnect {
        reason: ReasonCode::DisconnectWithWillMessage,
        properties: Properties::EMPTY,
    };
    assert_eq!(
        enc(Packet::Disconnect(will), V3_1_1, &mut buf),
        Err(EncodeError::NotInVersion)
    );
    let unsub = UnsubAck {
        packet_id: pid(1),
        properties: Properties::EMPTY,
        reasons: List::new(&[ReasonCode::NotAuthorized]),
    };
    assert_eq!(
        enc(Packet::UnsubAck(unsub), V3_1_1, &mut buf),
        Err(EncodeError::NotInVersion)
    );

    let invalid = [
        Packet::Publish(Publish {
            dup: true,
            ..publish("t")
        }),
        Packet::Publish(publish("")),
        Packet::Publish(publish("a/+")),
        Packet::PubAck(Ack {
            reason: ReasonCode::GrantedQoS1,
            ..Ack::new(pid(1))
        }),
        Packet::ConnAck(ConnAck {
            session_present: true,
            reason: ReasonCode::NotAuthorized,
            properties: Properties::EMPTY,
        }),
        Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties {
                maximum_qos: Some(QoS::ExactlyOnce),
                ..Properties::EMPTY
            },
        }),
        Packet::Subscribe(Subscribe {
            packet_id: pid(1),
            properties: Properties::EMPTY,
            subscriptions: List::EMPTY,
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: pid(1),
            properties: Properties::EMPTY,
            filters: List::EMPTY,
        }),
        Packet::SubAck(SubAck {
            packet_id: pid(1),
            properties: Properties::EMPTY,
            reasons: List::EMPTY,
        }),
        Packet::Connect(Connect {
            version: V3_1_1,
            clean_start: true,
            keep_alive: 0,
            properties: Properties::EMPTY,
            client_id: "c",
            will: None,
            username: None,
            password: Some(b"p"),
        }),
    ];
    for p in invalid {
        assert_eq!(enc(p, V5, &mut buf), Err(EncodeError::Invalid), "{p:?}");
    }
    assert_eq!(
        std::format!("{}", EncodeError::BufferTooSmall { needed: 9 }),
        "output buffer too small: 9 bytes needed"
    );
}
