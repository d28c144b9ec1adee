//! Reason codes carried by rejects, close and error frames.

use core::fmt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why something was refused or closed.
///
/// On the wire a reason is a `u16`; codes this build does not know decode as
/// [`Reason::Other`] so that a newer peer never makes an older one fail to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Reason {
    /// No error (a normal close).
    Normal,
    /// The peer sent bytes that are not a valid frame.
    Malformed,
    /// A frame arrived that is not allowed in the current state.
    ProtocolViolation,
    /// The peer speaks a protocol version this side does not.
    UnsupportedVersion,
    /// A frame was larger than the negotiated maximum.
    FrameTooLarge,
    /// A message was larger than the broker accepts.
    MessageTooLarge,
    /// The auth token is unknown or missing.
    BadToken,
    /// The token does not permit this publish or subscribe.
    NotAuthorized,
    /// The topic name is not valid.
    InvalidTopic,
    /// The subscription filter is not valid.
    InvalidFilter,
    /// The queue is full and its overflow policy rejects new messages.
    QueueFull,
    /// A publisher was held for room in a full queue and its deadline passed.
    Timeout,
    /// The broker's storage is full.
    StorageFull,
    /// The storage layer failed.
    StorageFailed,
    /// The message's time to live ran out.
    Expired,
    /// The id is already in use (subscription id, client id).
    IdInUse,
    /// The id is not known (subscription id, delivery tag).
    UnknownId,
    /// The peer did not send anything within the keepalive interval.
    KeepaliveTimeout,
    /// The broker is shutting down.
    ShuttingDown,
    /// Another connection took over this client id.
    SessionTakenOver,
    /// A configured limit (connections, subscriptions, memory) is reached.
    LimitReached,
    /// A code this build does not know.
    Other(u16),
}

impl Reason {
    /// The wire code of this reason.
    pub const fn code(self) -> u16 {
        match self {
            Reason::Normal => 0,
            Reason::Malformed => 1,
            Reason::ProtocolViolation => 2,
            Reason::UnsupportedVersion => 3,
            Reason::FrameTooLarge => 4,
            Reason::MessageTooLarge => 5,
            Reason::BadToken => 6,
            Reason::NotAuthorized => 7,
            Reason::InvalidTopic => 8,
            Reason::InvalidFilter => 9,
            Reason::QueueFull => 10,
            Reason::Timeout => 11,
            Reason::StorageFull => 12,
            Reason::StorageFailed => 13,
            Reason::Expired => 14,
            Reason::IdInUse => 15,
            Reason::UnknownId => 16,
            Reason::KeepaliveTimeout => 17,
            Reason::ShuttingDown => 18,
            Reason::SessionTakenOver => 19,
            Reason::LimitReached => 20,
            Reason::Other(c) => c,
        }
    }

    /// The reason for a wire code; unknown codes become [`Reason::Other`].
    pub const fn from_code(code: u16) -> Reason {
        match code {
            0 => Reason::Normal,
            1 => Reason::Malformed,
            2 => Reason::ProtocolViolation,
            3 => Reason::UnsupportedVersion,
            4 => Reason::FrameTooLarge,
            5 => Reason::MessageTooLarge,
            6 => Reason::BadToken,
            7 => Reason::NotAuthorized,
            8 => Reason::InvalidTopic,
            9 => Reason::InvalidFilter,
            10 => Reason::QueueFull,
            11 => Reason::Timeout,
            12 => Reason::StorageFull,
            13 => Reason::StorageFailed,
            14 => Reason::Expired,
            15 => Reason::IdInUse,
            16 => Reason::UnknownId,
            17 => Reason::KeepaliveTimeout,
            18 => Reason::ShuttingDown,
            19 => Reason::SessionTakenOver,
            20 => Reason::LimitReached,
            c => Reason::Other(c),
        }
    }

    /// A short human-readable description.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Normal => "normal",
            Reason::Malformed => "malformed frame",
            Reason::ProtocolViolation => "protocol violation",
            Reason::UnsupportedVersion => "unsupported protocol version",
            Reason::FrameTooLarge => "frame too large",
            Reason::MessageTooLarge => "message too large",
            Reason::BadToken => "bad token",
            Reason::NotAuthorized => "not authorized",
            Reason::InvalidTopic => "invalid topic",
            Reason::InvalidFilter => "invalid filter",
            Reason::QueueFull => "queue full",
            Reason::Timeout => "timed out",
            Reason::StorageFull => "storage full",
            Reason::StorageFailed => "storage failed",
            Reason::Expired => "expired",
            Reason::IdInUse => "id in use",
            Reason::UnknownId => "unknown id",
            Reason::KeepaliveTimeout => "keepalive timeout",
            Reason::ShuttingDown => "shutting down",
            Reason::SessionTakenOver => "session taken over",
            Reason::LimitReached => "limit reached",
            Reason::Other(_) => "unknown reason",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Other(c) => write!(f, "unknown reason {c}"),
            r => f.write_str(r.as_str()),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.code())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u16::deserialize(d).map(Reason::from_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in 0..=64u16 {
            assert_eq!(Reason::from_code(code).code(), code);
        }
        assert_eq!(Reason::from_code(9999), Reason::Other(9999));
    }
}
