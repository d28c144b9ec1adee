//! Reason codes: every MQTT 5 reason code by name, which packets may carry each,
//! and the MQTT 3.1.1 CONNACK return codes.

use core::fmt;

use super::PacketType;

macro_rules! reason_codes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $text:literal; )*) => {
        /// An MQTT 5 reason code (§2.4). Codes below 0x80 report success, the
        /// others failure. One byte value has several names in the spec: 0x00 is
        /// *Success*, *Normal disconnection* (DISCONNECT) and *Granted QoS 0*
        /// (SUBACK); see the associated constants.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[repr(u8)]
        pub enum ReasonCode {
            $( $(#[$doc])* $name = $code, )*
        }

        impl ReasonCode {
            /// Every reason code, in code order.
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$name),*];

            /// The reason code with this value, if MQTT 5 defines one.
            pub const fn from_u8(code: u8) -> Option<ReasonCode> {
                match code {
                    $( $code => Some(ReasonCode::$name), )*
                    _ => None,
                }
            }

            /// The name the specification gives it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( ReasonCode::$name => $text, )*
                }
            }
        }
    };
}

reason_codes! {
    /// 0x00: success; also *Normal disconnection* and *Granted QoS 0*.
    Success = 0x00, "success";
    /// 0x01: the subscription is accepted with QoS 1 at most.
    GrantedQoS1 = 0x01, "granted QoS 1";
    /// 0x02: the subscription is accepted with QoS 2 at most.
    GrantedQoS2 = 0x02, "granted QoS 2";
    /// 0x04: the client disconnects but wants its will message published.
    DisconnectWithWillMessage = 0x04, "disconnect with will message";
    /// 0x10: accepted, but nobody is subscribed to the topic.
    NoMatchingSubscribers = 0x10, "no matching subscribers";
    /// 0x11: the unsubscribed filter had no subscription.
    NoSubscriptionExisted = 0x11, "no subscription existed";
    /// 0x18: continue the authentication exchange.
    ContinueAuthentication = 0x18, "continue authentication";
    /// 0x19: start a re-authentication.
    ReAuthenticate = 0x19, "re-authenticate";
    /// 0x80: failure, no other code applies.
    UnspecifiedError = 0x80, "unspecified error";
    /// 0x81: the packet could not be parsed.
    MalformedPacket = 0x81, "malformed packet";
    /// 0x82: the packet breaks the protocol.
    ProtocolError = 0x82, "protocol error";
    /// 0x83: valid, but the receiver does not accept it.
    ImplementationSpecificError = 0x83, "implementation specific error";
    /// 0x84: the server does not speak the requested protocol version.
    UnsupportedProtocolVersion = 0x84, "unsupported protocol version";
    /// 0x85: the client identifier is valid but not allowed.
    ClientIdentifierNotValid = 0x85, "client identifier not valid";
    /// 0x86: the user name or password is not accepted.
    BadUserNameOrPassword = 0x86, "bad user name or password";
    /// 0x87: the client may not do this.
    NotAuthorized = 0x87, "not authorized";
    /// 0x88: the server is not available.
    ServerUnavailable = 0x88, "server unavailable";
    /// 0x89: the server is busy; try later.
    ServerBusy = 0x89, "server busy";
    /// 0x8A: the client is banned.
    Banned = 0x8A, "banned";
    /// 0x8B: the server is shutting down.
    ServerShuttingDown = 0x8B, "server shutting down";
    /// 0x8C: the authentication method is not supported or does not match.
    BadAuthenticationMethod = 0x8C, "bad authentication method";
    /// 0x8D: nothing was received for 1.5 times the keep alive.
    KeepAliveTimeout = 0x8D, "keep alive timeout";
    /// 0x8E: another connection with the same client identifier took over.
    SessionTakenOver = 0x8E, "session taken over";
    /// 0x8F: the topic filter is well formed but not accepted.
    TopicFilterInvalid = 0x8F, "topic filter invalid";
    /// 0x90: the topic name is well formed but not accepted.
    TopicNameInvalid = 0x90, "topic name invalid";
    /// 0x91: the packet identifier is already in use.
    PacketIdentifierInUse = 0x91, "packet identifier in use";
    /// 0x92: the packet identifier is not known.
    PacketIdentifierNotFound = 0x92, "packet identifier not found";
    /// 0x93: more QoS 1 and 2 publishes in flight than the receive maximum.
    ReceiveMaximumExceeded = 0x93, "receive maximum exceeded";
    /// 0x94: the topic alias is zero or above the maximum.
    TopicAliasInvalid = 0x94, "topic alias invalid";
    /// 0x95: the packet is larger than the maximum packet size.
    PacketTooLarge = 0x95, "packet too large";
    /// 0x96: the data rate is too high.
    MessageRateTooHigh = 0x96, "message rate too high";
    /// 0x97: an administrative or implementation limit is exceeded.
    QuotaExceeded = 0x97, "quota exceeded";
    /// 0x98: closed by an administrative action.
    AdministrativeAction = 0x98, "administrative action";
    /// 0x99: the payload does not match the payload format indicator.
    PayloadFormatInvalid = 0x99, "payload format invalid";
    /// 0x9A: the server does not support retained messages.
    RetainNotSupported = 0x9A, "retain not supported";
    /// 0x9B: the QoS is above the server's maximum QoS.
    QoSNotSupported = 0x9B, "QoS not supported";
    /// 0x9C: use another server for now.
    UseAnotherServer = 0x9C, "use another server";
    /// 0x9D: use another server from now on.
    ServerMoved = 0x9D, "server moved";
    /// 0x9E: the server does not support shared subscriptions.
    SharedSubscriptionsNotSupported = 0x9E, "shared subscriptions not supported";
    /// 0x9F: connections arrive too fast.
    ConnectionRateExceeded = 0x9F, "connection rate exceeded";
    /// 0xA0: the connection has been open as long as it may.
    MaximumConnectTime = 0xA0, "maximum connect time";
    /// 0xA1: the server does not support subscription identifiers.
    SubscriptionIdentifiersNotSupported = 0xA1, "subscription identifiers not supported";
    /// 0xA2: the server does not support wildcard subscriptions.
    WildcardSubscriptionsNotSupported = 0xA2, "wildcard subscriptions not supported";
}

impl ReasonCode {
    /// 0x00 in a DISCONNECT.
    pub const NORMAL_DISCONNECTION: ReasonCode = ReasonCode::Success;
    /// 0x00 in a SUBACK.
    pub const GRANTED_QOS_0: ReasonCode = ReasonCode::Success;

    /// The byte on the wire.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// True for failures (0x80 and above).
    pub const fn is_error(self) -> bool {
        self.code() >= 0x80
    }

    /// The SUBACK code granting `qos`.
    pub const fn granted(qos: super::QoS) -> ReasonCode {
        match qos {
            super::QoS::AtMostOnce => ReasonCode::Success,
            super::QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
            super::QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
        }
    }

    /// Whether MQTT 5 allows this code in a packet of type `packet` (Table 2-6).
    /// PUBREC takes PUBACK's codes and PUBCOMP PUBREL's.
    pub const fn allowed_in(self, packet: PacketType) -> bool {
        use ReasonCode::*;
        let code = self.code();
        match packet {
            PacketType::ConnAck => matches!(
                self,
                Success
                    | UnspecifiedError
                    | MalformedPacket
                    | ProtocolError
                    | ImplementationSpecificError
                    | UnsupportedProtocolVersion
                    | ClientIdentifierNotValid
                    | BadUserNameOrPassword
                    | NotAuthorized
                    | ServerUnavailable
                    | ServerBusy
                    | Banned
                    | BadAuthenticationMethod
                    | TopicNameInvalid
                    | PacketTooLarge
                    | QuotaExceeded
                    | PayloadFormatInvalid
                    | RetainNotSupported
                    | QoSNotSupported
                    | UseAnotherServer
                    | ServerMoved
                    | ConnectionRateExceeded
            ),
            PacketType::PubAck | PacketType::PubRec => matches!(
                self,
                Success
                    | NoMatchingSubscribers
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicNameInvalid
                    | PacketIdentifierInUse
                    | QuotaExceeded
                    | PayloadFormatInvalid
            ),
            PacketType::PubRel | PacketType::PubComp => {
                matches!(self, Success | PacketIdentifierNotFound)
            }
            PacketType::SubAck => matches!(
                self,
                Success
                    | GrantedQoS1
                    | GrantedQoS2
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicFilterInvalid
                    | PacketIdentifierInUse
                    | QuotaExceeded
                    | SharedSubscriptionsNotSupported
                    | SubscriptionIdentifiersNotSupported
                    | WildcardSubscriptionsNotSupported
            ),
            PacketType::UnsubAck => matches!(
                self,
                Success
                    | NoSubscriptionExisted
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicFilterInvalid
                    | PacketIdentifierInUse
            ),
            // Everything from 0x80 on except the CONNACK-only and ack-only codes.
            PacketType::Disconnect => match self {
                Success | DisconnectWithWillMessage => true,
                UnsupportedProtocolVersion
                | ClientIdentifierNotValid
                | BadUserNameOrPassword
                | ServerUnavailable
                | Banned
                | BadAuthenticationMethod
                | PacketIdentifierInUse
                | PacketIdentifierNotFound => false,
                _ => code >= 0x80,
            },
            PacketType::Auth => matches!(self, Success | ContinueAuthentication | ReAuthenticate),
            _ => false,
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:02X})", self.as_str(), self.code())
    }
}

/// An MQTT 3.1.1 (and 3.1) CONNACK return code (§3.2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum ConnectReturnCode {
    /// 0: connection accepted.
    Accepted = 0,
    /// 1: the server does not support the requested protocol level.
    UnacceptableProtocolVersion = 1,
    /// 2: the client identifier is not allowed.
    IdentifierRejected = 2,
    /// 3: the MQTT service is unavailable.
    ServerUnavailable = 3,
    /// 4: the user name or password is malformed or wrong.
    BadUserNameOrPassword = 4,
    /// 5: the client is not authorized to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The return code with this value (0 to 5).
    pub const fn from_u8(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Accepted,
            1 => Self::UnacceptableProtocolVersion,
            2 => Self::IdentifierRejected,
            3 => Self::ServerUnavailable,
            4 => Self::BadUserNameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }

    /// The byte on the wire.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The 3.1.1 return code that says what an MQTT 5 CONNACK reason code says,
    /// as closely as 3.1.1 can: refusals 3.1.1 has no code for become
    /// *server unavailable*.
    pub const fn from_reason(reason: ReasonCode) -> Self {
        match reason {
            ReasonCode::Success => Self::Accepted,
            ReasonCode::UnsupportedProtocolVersion => Self::UnacceptableProtocolVersion,
            ReasonCode::ClientIdentifierNotValid => Self::IdentifierRejected,
            ReasonCode::BadUserNameOrPassword => Self::BadUserNameOrPassword,
            ReasonCode::NotAuthorized
            | ReasonCode::Banned
            | ReasonCode::BadAuthenticationMethod => Self::NotAuthorized,
            _ => Self::ServerUnavailable,
        }
    }

    /// The MQTT 5 reason code with the same meaning.
    pub const fn to_reason(self) -> ReasonCode {
        match self {
            Self::Accepted => ReasonCode::Success,
            Self::UnacceptableProtocolVersion => ReasonCode::UnsupportedProtocolVersion,
            Self::IdentifierRejected => ReasonCode::ClientIdentifierNotValid,
            Self::ServerUnavailable => ReasonCode::ServerUnavailable,
            Self::BadUserNameOrPassword => ReasonCode::BadUserNameOrPassword,
            Self::NotAuthorized => ReasonCode::NotAuthorized,
        }
    }
}

impl fmt::Display for ConnectReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.to_reason().as_str(), self.code())
    }
}
