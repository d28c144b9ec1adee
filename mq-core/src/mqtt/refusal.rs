//! What an MQTT server says when the router refuses something: the MQTT 5
//! reason code and the MQTT 3.1.1 behaviour for each mq [`Reason`].
//!
//! | mq reason | CONNACK | PUBACK/PUBREC | SUBACK | UNSUBACK | DISCONNECT | 3.1.1 CONNACK | 3.1.1 publish |
//! | --- | --- | --- | --- | --- | --- | --- | --- |
//! | `Normal` | 0x00 | 0x00 | 0x00 | 0x00 | 0x00 | 0 | acknowledge |
//! | `Malformed` | 0x81 | 0x80 | 0x80 | 0x80 | 0x81 | close | close |
//! | `ProtocolViolation` | 0x82 | 0x80 | 0x80 | 0x80 | 0x82 | close | close |
//! | `UnsupportedVersion` | 0x84 | 0x80 | 0x80 | 0x80 | 0x82 | 1 | close |
//! | `FrameTooLarge`, `MessageTooLarge` | 0x95 | 0x97 | 0x97 | 0x80 | 0x95 | 3 | acknowledge |
//! | `BadToken` | 0x86 | 0x87 | 0x87 | 0x87 | 0x87 | 4 | acknowledge |
//! | `NotAuthorized` | 0x87 | 0x87 | 0x87 | 0x87 | 0x87 | 5 | acknowledge |
//! | `InvalidTopic` | 0x90 | 0x90 | 0x8F | 0x8F | 0x90 | 3 | acknowledge |
//! | `InvalidFilter` | 0x80 | 0x80 | 0x8F | 0x8F | 0x8F | 3 | acknowledge |
//! | `QueueFull`, `Timeout`, `StorageFull`, `LimitReached` | 0x97 | 0x97 | 0x97 | 0x80 | 0x97 | 3 | close |
//! | `StorageFailed` | 0x88 | 0x80 | 0x80 | 0x80 | 0x80 | 3 | close |
//! | `Expired` | 0x80 | 0x80 | 0x80 | 0x80 | 0x80 | 3 | acknowledge |
//! | `IdInUse` | 0x85 | 0x91 | 0x91 | 0x91 | 0x80 | 2 | close |
//! | `UnknownId` | 0x80 | 0x80 | 0x80 | 0x11 | 0x80 | 3 | close |
//! | `KeepaliveTimeout` | 0x80 | 0x80 | 0x80 | 0x80 | 0x8D | 3 | close |
//! | `ShuttingDown` | 0x88 | 0x80 | 0x80 | 0x80 | 0x8B | 3 | close |
//! | `SessionTakenOver` | 0x80 | 0x80 | 0x80 | 0x80 | 0x8E | 3 | close |
//! | other | 0x80 | 0x80 | 0x80 | 0x80 | 0x80 | 3 | close |
//!
//! 3.1.1 cannot refuse a publish. A refusal that retrying cannot cure
//! (permissions, size, topic, expiry) is *acknowledged* and the message
//! dropped, as Mosquitto does, so that the client does not resend it forever;
//! a refusal that may pass later (a full queue or store, shutting down) *closes*
//! the connection, so that the client resends the unacknowledged publish after
//! reconnecting. A 3.1.1 SUBACK says every failure as 0x80, and a 3.1.1
//! UNSUBACK cannot fail: it is sent anyway.

use super::{ConnectReturnCode, ReasonCode};
use crate::wire::Reason;

/// The packet a server answers a refused request with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Answer {
    /// A refused CONNECT.
    ConnAck,
    /// A refused publish (PUBACK for QoS 1, PUBREC for QoS 2).
    PubAck,
    /// A refused subscription (one SUBACK code).
    SubAck,
    /// A refused unsubscription (one UNSUBACK code).
    UnsubAck,
    /// The server closing the connection.
    Disconnect,
}

/// What a 3.1.1 server does where an MQTT 5 server sends a reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum V3Refusal {
    /// Send this CONNACK return code, then close.
    ConnAck(ConnectReturnCode),
    /// Send 0x80 (failure) for this filter in the SUBACK.
    SubAckFailure,
    /// Acknowledge as if accepted (PUBACK, PUBREC, UNSUBACK): the request is
    /// dropped.
    Acknowledge,
    /// Close the connection without an answer.
    Close,
}

impl Answer {
    /// The MQTT 5 reason code for `reason` in this answer; always one the
    /// packet may carry.
    pub const fn code(self, reason: Reason) -> ReasonCode {
        use Answer as A;
        use ReasonCode as C;
        match (reason, self) {
            (Reason::Normal, _) => C::Success,
            (Reason::Malformed, A::ConnAck | A::Disconnect) => C::MalformedPacket,
            (Reason::ProtocolViolation, A::ConnAck | A::Disconnect) => C::ProtocolError,
            (Reason::UnsupportedVersion, A::ConnAck) => C::UnsupportedProtocolVersion,
            (Reason::UnsupportedVersion, A::Disconnect) => C::ProtocolError,
            (Reason::FrameTooLarge | Reason::MessageTooLarge, A::ConnAck | A::Disconnect) => {
                C::PacketTooLarge
            }
            (Reason::FrameTooLarge | Reason::MessageTooLarge, A::PubAck | A::SubAck) => {
                C::QuotaExceeded
            }
            (Reason::BadToken, A::ConnAck) => C::BadUserNameOrPassword,
            (Reason::BadToken | Reason::NotAuthorized, _) => C::NotAuthorized,
            (Reason::InvalidTopic, A::ConnAck | A::PubAck | A::Disconnect) => C::TopicNameInvalid,
            (Reason::InvalidTopic | Reason::InvalidFilter, A::SubAck | A::UnsubAck)
            | (Reason::InvalidFilter, A::Disconnect) => C::TopicFilterInvalid,
            (
                Reason::QueueFull | Reason::Timeout | Reason::StorageFull | Reason::LimitReached,
                A::ConnAck | A::PubAck | A::SubAck | A::Disconnect,
            ) => C::QuotaExceeded,
            (Reason::StorageFailed | Reason::ShuttingDown, A::ConnAck) => C::ServerUnavailable,
            (Reason::IdInUse, A::ConnAck) => C::ClientIdentifierNotValid,
            (Reason::IdInUse, A::PubAck | A::SubAck | A::UnsubAck) => C::PacketIdentifierInUse,
            (Reason::UnknownId, A::UnsubAck) => C::NoSubscriptionExisted,
            (Reason::KeepaliveTimeout, A::Disconnect) => C::KeepAliveTimeout,
            (Reason::ShuttingDown, A::Disconnect) => C::ServerShuttingDown,
            (Reason::SessionTakenOver, A::Disconnect) => C::SessionTakenOver,
            _ => C::UnspecifiedError,
        }
    }

    /// What a 3.1.1 server does for `reason` in this answer.
    pub const fn v3(self, reason: Reason) -> V3Refusal {
        match self {
            // 3.1.1 has no return code for a broken CONNECT: it closes.
            Answer::ConnAck if matches!(reason, Reason::Malformed | Reason::ProtocolViolation) => {
                V3Refusal::Close
            }
            Answer::ConnAck => {
                V3Refusal::ConnAck(ConnectReturnCode::from_reason(self.code(reason)))
            }
            Answer::SubAck if matches!(reason, Reason::Normal) => V3Refusal::Acknowledge,
            Answer::SubAck => V3Refusal::SubAckFailure,
            Answer::UnsubAck => V3Refusal::Acknowledge,
            Answer::Disconnect => V3Refusal::Close,
            Answer::PubAck => match reason {
                Reason::Normal
                | Reason::FrameTooLarge
                | Reason::MessageTooLarge
                | Reason::BadToken
                | Reason::NotAuthorized
                | Reason::InvalidTopic
                | Reason::InvalidFilter
                | Reason::Expired => V3Refusal::Acknowledge,
                _ => V3Refusal::Close,
            },
        }
    }
}
