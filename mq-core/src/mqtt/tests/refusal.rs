//! mq refusals answered in MQTT.

use super::super::*;
use crate::wire::Reason;

fn packet(answer: Answer) -> PacketType {
    match answer {
        Answer::ConnAck => PacketType::ConnAck,
        Answer::PubAck => PacketType::PubAck,
        Answer::SubAck => PacketType::SubAck,
        Answer::UnsubAck => PacketType::UnsubAck,
        Answer::Disconnect => PacketType::Disconnect,
    }
}

const ANSWERS: [Answer; 5] = [
    Answer::ConnAck,
    Answer::PubAck,
    Answer::SubAck,
    Answer::UnsubAck,
    Answer::Disconnect,
];

#[test]
fn every_reason_has_an_allowed_code_in_every_answer() {
    for code in 0..=40 {
        let reason = Reason::from_code(code);
        for answer in ANSWERS {
            let c = answer.code(reason);
            assert!(
                c.allowed_in(packet(answer)),
                "{reason:?} in {answer:?}: {c}"
            );
            assert_eq!(
                c.is_error(),
                reason != Reason::Normal && c != ReasonCode::NoSubscriptionExisted
            );
        }
    }
}

#[test]
fn the_table() {
    use ReasonCode as C;
    let cases = [
        (Reason::NotAuthorized, Answer::PubAck, C::NotAuthorized),
        (Reason::BadToken, Answer::ConnAck, C::BadUserNameOrPassword),
        (Reason::QueueFull, Answer::PubAck, C::QuotaExceeded),
        (Reason::MessageTooLarge, Answer::PubAck, C::QuotaExceeded),
        (
            Reason::MessageTooLarge,
            Answer::Disconnect,
            C::PacketTooLarge,
        ),
        (Reason::InvalidTopic, Answer::PubAck, C::TopicNameInvalid),
        (Reason::InvalidFilter, Answer::SubAck, C::TopicFilterInvalid),
        (Reason::StorageFull, Answer::SubAck, C::QuotaExceeded),
        (
            Reason::ShuttingDown,
            Answer::Disconnect,
            C::ServerShuttingDown,
        ),
        (Reason::ShuttingDown, Answer::ConnAck, C::ServerUnavailable),
        (
            Reason::SessionTakenOver,
            Answer::Disconnect,
            C::SessionTakenOver,
        ),
        (
            Reason::KeepaliveTimeout,
            Answer::Disconnect,
            C::KeepAliveTimeout,
        ),
        (
            Reason::IdInUse,
            Answer::ConnAck,
            C::ClientIdentifierNotValid,
        ),
        (
            Reason::UnknownId,
            Answer::UnsubAck,
            C::NoSubscriptionExisted,
        ),
        (Reason::Other(999), Answer::PubAck, C::UnspecifiedError),
    ];
    for (reason, answer, code) in cases {
        assert_eq!(answer.code(reason), code, "{reason:?} in {answer:?}");
    }
}

#[test]
fn v311_behaviour() {
    use ConnectReturnCode as R;
    assert_eq!(
        Answer::ConnAck.v3(Reason::BadToken),
        V3Refusal::ConnAck(R::BadUserNameOrPassword)
    );
    assert_eq!(
        Answer::ConnAck.v3(Reason::NotAuthorized),
        V3Refusal::ConnAck(R::NotAuthorized)
    );
    assert_eq!(
        Answer::ConnAck.v3(Reason::UnsupportedVersion),
        V3Refusal::ConnAck(R::UnacceptableProtocolVersion)
    );
    assert_eq!(
        Answer::ConnAck.v3(Reason::IdInUse),
        V3Refusal::ConnAck(R::IdentifierRejected)
    );
    assert_eq!(
        Answer::ConnAck.v3(Reason::ShuttingDown),
        V3Refusal::ConnAck(R::ServerUnavailable)
    );
    assert_eq!(Answer::ConnAck.v3(Reason::Malformed), V3Refusal::Close);
    assert_eq!(
        Answer::ConnAck.v3(Reason::Normal),
        V3Refusal::ConnAck(R::Accepted)
    );
    // Permanent publish refusals are acknowledged, passing ones close.
    assert_eq!(
        Answer::PubAck.v3(Reason::NotAuthorized),
        V3Refusal::Acknowledge
    );
    assert_eq!(
        Answer::PubAck.v3(Reason::MessageTooLarge),
        V3Refusal::Acknowledge
    );
    assert_eq!(Answer::PubAck.v3(Reason::QueueFull), V3Refusal::Close);
    assert_eq!(Answer::PubAck.v3(Reason::StorageFull), V3Refusal::Close);
    assert_eq!(
        Answer::SubAck.v3(Reason::NotAuthorized),
        V3Refusal::SubAckFailure
    );
    assert_eq!(
        Answer::UnsubAck.v3(Reason::NotAuthorized),
        V3Refusal::Acknowledge
    );
    assert_eq!(
        Answer::Disconnect.v3(Reason::SessionTakenOver),
        V3Refusal::Close
    );
}

#[test]
fn reason_codes_are_named_and_round_trip() {
    assert_eq!(ReasonCode::ALL.len(), 43);
    for code in 0..=255u8 {
        if let Some(c) = ReasonCode::from_u8(code) {
            assert_eq!(c.code(), code);
            assert!(!c.as_str().is_empty());
        }
    }
    assert_eq!(ReasonCode::ContinueAuthentication.code(), 0x18);
    assert_eq!(ReasonCode::WildcardSubscriptionsNotSupported.code(), 0xA2);
}
