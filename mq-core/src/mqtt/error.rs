//! What can go wrong decoding and encoding packets, and what a server answers.

use core::fmt;

use super::{ConnectReturnCode, ReasonCode};

/// Bytes are not a packet the receiver may accept.
///
/// Every variant names the MQTT 5 reason code a server answers with
/// ([`reason_code`](Self::reason_code): in a CONNACK before the session is open,
/// in a DISCONNECT after, and then it closes) and what a 3.1.1 server does
/// ([`v3_connack`](Self::v3_connack): a CONNACK return code for the two CONNECT
/// errors 3.1.1 has one for, otherwise close the connection without a word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet is larger than the maximum packet size (from its fixed header
    /// alone).
    PacketTooLarge,
    /// A variable byte integer (the remaining length, a property length, a
    /// subscription identifier) has more than four bytes or is not in its
    /// shortest form.
    BadVarInt,
    /// Packet type 0, or AUTH (15) in 3.1.1.
    UnknownPacketType,
    /// The fixed header's flags are not what the packet type requires (PUBREL,
    /// SUBSCRIBE and UNSUBSCRIBE want `0010`, the others `0000`; DUP is set on
    /// a QoS 0 PUBLISH), or reserved bits of CONNACK's flags are set.
    BadFlags,
    /// A field runs past the end of the packet.
    Truncated,
    /// Bytes are left after the packet's last field.
    TrailingBytes,
    /// A string is not UTF-8 or contains U+0000.
    BadUtf8,
    /// A QoS of 3 in a PUBLISH or a subscription's options.
    BadQoS,
    /// An unknown property identifier.
    UnknownProperty,
    /// A property the packet type may not carry.
    PropertyNotAllowed,
    /// A property that may appear once appears twice.
    DuplicateProperty,
    /// A property value out of its range (a zero receive maximum, topic alias,
    /// maximum packet size or subscription identifier; a flag that is not 0 or
    /// 1; a maximum QoS of 2).
    BadPropertyValue,
    /// A reason code the packet type may not carry (or a 3.1.1 return code
    /// above 5, or a 3.1.1 SUBACK code other than 0, 1, 2 and 0x80).
    BadReasonCode,
    /// A packet identifier of zero where one is required.
    ZeroPacketId,
    /// A PUBLISH or will topic with a `+` or `#` in it.
    TopicNameInvalid,
    /// An empty PUBLISH topic without a topic alias (or an empty will topic).
    EmptyTopic,
    /// A SUBSCRIBE or UNSUBSCRIBE without a topic filter, or a SUBACK or an MQTT
    /// 5 UNSUBACK without a reason code.
    EmptyPayload,
    /// Reserved bits of a subscription's options are set.
    BadSubscriptionOptions,
    /// A retain handling of 3.
    BadRetainHandling,
    /// No Local on a shared subscription (`$share/…`).
    NoLocalOnShared,
    /// CONNECT flags: the reserved bit, will QoS 3, will QoS or retain without
    /// a will, or (3.1.1) a password without a user name.
    BadConnectFlags,
    /// A CONNECT whose protocol name is neither `MQTT` nor `MQIsdp`.
    BadProtocolName,
    /// A CONNECT for a protocol level this codec does not speak (3, 4 and 5 are
    /// spoken).
    UnsupportedProtocolVersion,
    /// A 3.1.1 CONNECT with an empty client identifier and a kept session, or a
    /// 3.1 one whose identifier is empty or longer than 23 bytes.
    ClientIdRejected,
    /// A CONNACK refusing the connection with the session-present flag set.
    SessionPresentOnRefusal,
}

impl DecodeError {
    /// The MQTT 5 reason code a server answers this error with.
    pub const fn reason_code(self) -> ReasonCode {
        use DecodeError::*;
        match self {
            PacketTooLarge => ReasonCode::PacketTooLarge,
            BadVarInt
            | UnknownPacketType
            | BadFlags
            | Truncated
            | TrailingBytes
            | BadUtf8
            | BadQoS
            | UnknownProperty
            | PropertyNotAllowed
            | BadSubscriptionOptions
            | BadConnectFlags => ReasonCode::MalformedPacket,
            DuplicateProperty
            | BadPropertyValue
            | BadReasonCode
            | ZeroPacketId
            | EmptyTopic
            | EmptyPayload
            | BadRetainHandling
            | NoLocalOnShared
            | SessionPresentOnRefusal => ReasonCode::ProtocolError,
            TopicNameInvalid => ReasonCode::TopicNameInvalid,
            BadProtocolName | UnsupportedProtocolVersion => ReasonCode::UnsupportedProtocolVersion,
            ClientIdRejected => ReasonCode::ClientIdentifierNotValid,
        }
    }

    /// What a 3.1.1 server answers: `Some` return code to send in a CONNACK
    /// before closing, or `None` to close without answering.
    pub const fn v3_connack(self) -> Option<ConnectReturnCode> {
        match self {
            DecodeError::UnsupportedProtocolVersion => {
                Some(ConnectReturnCode::UnacceptableProtocolVersion)
            }
            DecodeError::ClientIdRejected => Some(ConnectReturnCode::IdentifierRejected),
            _ => None,
        }
    }

    /// A short description.
    pub const fn as_str(self) -> &'static str {
        use DecodeError::*;
        match self {
            PacketTooLarge => "packet larger than the maximum packet size",
            BadVarInt => "invalid variable byte integer",
            UnknownPacketType => "unknown packet type",
            BadFlags => "invalid fixed header flags",
            Truncated => "field runs past the end of the packet",
            TrailingBytes => "bytes after the last field",
            BadUtf8 => "string is not valid MQTT UTF-8",
            BadQoS => "QoS 3",
            UnknownProperty => "unknown property",
            PropertyNotAllowed => "property not allowed in this packet",
            DuplicateProperty => "property repeated",
            BadPropertyValue => "property value out of range",
            BadReasonCode => "reason code not allowed in this packet",
            ZeroPacketId => "packet identifier 0",
            TopicNameInvalid => "wildcard in a topic name",
            EmptyTopic => "empty topic name",
            EmptyPayload => "no topic filters or reason codes",
            BadSubscriptionOptions => "reserved subscription option bits set",
            BadRetainHandling => "retain handling 3",
            NoLocalOnShared => "no local on a shared subscription",
            BadConnectFlags => "invalid CONNECT flags",
            BadProtocolName => "unknown protocol name",
            UnsupportedProtocolVersion => "unsupported protocol level",
            ClientIdRejected => "client identifier rejected",
            SessionPresentOnRefusal => "session present on a refused connection",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for DecodeError {}

/// A packet could not be encoded. Nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
    },
    /// The packet is larger than the limit it must fit (the peer's maximum
    /// packet size, or MQTT's own of 268,435,460 bytes), even without the
    /// reason string and user properties.
    PacketTooLarge {
        /// Its encoded size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A string or binary field is longer than 65,535 bytes, or a subscription
    /// identifier is 0 or above 268,435,455.
    FieldTooLong,
    /// A property the packet type may not carry.
    PropertyNotAllowed,
    /// The packet cannot be said in the protocol version it is encoded for
    /// (AUTH, or a failure reason code where 3.1.1 has no field for it).
    NotInVersion,
    /// Fields the receiver would reject: a reason code the packet type may not
    /// carry, DUP on QoS 0, an empty topic without an alias, an empty list of
    /// filters or reason codes, a 3.1.1 password without a user name, a maximum
    /// QoS of 2.
    Invalid,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
            EncodeError::PacketTooLarge { len, max } => {
                write!(f, "packet of {len} bytes exceeds the maximum of {max}")
            }
            EncodeError::FieldTooLong => f.write_str("field too long"),
            EncodeError::PropertyNotAllowed => f.write_str("property not allowed in this packet"),
            EncodeError::NotInVersion => f.write_str("not expressible in this protocol version"),
            EncodeError::Invalid => f.write_str("packet fields are invalid"),
        }
    }
}

impl core::error::Error for EncodeError {}
