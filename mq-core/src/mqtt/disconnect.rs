//! DISCONNECT and AUTH: a reason code and properties, both left out when they
//! are the defaults.

use super::bytes::{Reader, Writer};
use super::properties::Properties;
use super::publish::Ack;
use super::{DecodeError, EncodeError, PacketType, ReasonCode, Version};

/// DISCONNECT: the sender closes the connection, saying why. In 3.1.1 only a
/// client sends it, with no reason (a 3.1.1 server just closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Disconnect<'a> {
    /// Why (0x00 normal disconnection; 0x04 publish the will anyway).
    pub reason: ReasonCode,
    /// MQTT 5 properties (session expiry, reason string, server reference,
    /// user properties).
    pub properties: Properties<'a>,
}

/// AUTH (MQTT 5): a step of an extended authentication exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Auth<'a> {
    /// Success, continue authentication, or re-authenticate.
    pub reason: ReasonCode,
    /// Properties (authentication method and data, reason string, user
    /// properties).
    pub properties: Properties<'a>,
}

impl<'a> Disconnect<'a> {
    /// A normal disconnection without properties.
    pub const NORMAL: Disconnect<'static> = Disconnect {
        reason: ReasonCode::NORMAL_DISCONNECTION,
        properties: Properties::EMPTY,
    };

    pub(super) fn decode(r: &mut Reader<'a>, version: Version) -> Result<Self, DecodeError> {
        let (reason, properties) = Ack::decode_tail(PacketType::Disconnect, r, version)?;
        Ok(Disconnect { reason, properties })
    }

    pub(super) fn check(&self, version: Version) -> Result<(), EncodeError> {
        // 3.1.1's DISCONNECT means "normal, discard the will" and nothing else.
        if version != Version::V5 && self.reason != ReasonCode::NORMAL_DISCONNECTION {
            return Err(EncodeError::NotInVersion);
        }
        Ack::check_tail(
            PacketType::Disconnect,
            self.reason,
            &self.properties,
            version,
        )
    }

    pub(super) fn body_len(&self, version: Version) -> usize {
        Ack::tail_len(self.reason, &self.properties, version)
    }

    pub(super) fn write_body(&self, version: Version, w: &mut Writer<'_>) {
        Ack::write_tail(self.reason, &self.properties, version, w);
    }
}

impl<'a> Auth<'a> {
    pub(super) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let (reason, properties) = Ack::decode_tail(PacketType::Auth, r, Version::V5)?;
        Ok(Auth { reason, properties })
    }

    pub(super) fn check(&self, version: Version) -> Result<(), EncodeError> {
        if version != Version::V5 {
            return Err(EncodeError::NotInVersion);
        }
        Ack::check_tail(PacketType::Auth, self.reason, &self.properties, version)
    }

    pub(super) fn body_len(&self) -> usize {
        Ack::tail_len(self.reason, &self.properties, Version::V5)
    }

    pub(super) fn write_body(&self, w: &mut Writer<'_>) {
        Ack::write_tail(self.reason, &self.properties, Version::V5, w);
    }
}
