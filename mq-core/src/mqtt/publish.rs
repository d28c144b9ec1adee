//! PUBLISH and the four packets that acknowledge it: PUBACK (QoS 1), PUBREC,
//! PUBREL and PUBCOMP (QoS 2).

use super::bytes::{MAX_FIELD, Reader, Writer, field_len};
use super::properties::{Place, Properties};
use super::{DecodeError, EncodeError, PacketId, PacketType, QoS, ReasonCode, Version, topic};

/// A PUBLISH's QoS with the packet identifier QoS 1 and 2 need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QosPid {
    /// QoS 0: no packet identifier.
    AtMostOnce,
    /// QoS 1, acknowledged by PUBACK.
    AtLeastOnce(PacketId),
    /// QoS 2, acknowledged by PUBREC, PUBREL, PUBCOMP.
    ExactlyOnce(PacketId),
}

impl QosPid {
    /// The QoS.
    pub const fn qos(self) -> QoS {
        match self {
            QosPid::AtMostOnce => QoS::AtMostOnce,
            QosPid::AtLeastOnce(_) => QoS::AtLeastOnce,
            QosPid::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }

    /// The packet identifier (QoS 1 and 2).
    pub const fn packet_id(self) -> Option<PacketId> {
        match self {
            QosPid::AtMostOnce => None,
            QosPid::AtLeastOnce(id) | QosPid::ExactlyOnce(id) => Some(id),
        }
    }
}

/// PUBLISH: an application message, either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Publish<'a> {
    /// A resend of a QoS 1 or 2 publish (never set with QoS 0).
    pub dup: bool,
    /// QoS and packet identifier.
    pub qos: QosPid,
    /// Retain the message (or, server to client, it was retained).
    pub retain: bool,
    /// The topic name: no wildcards; empty only in MQTT 5 with a topic alias.
    pub topic: &'a str,
    /// MQTT 5 properties.
    pub properties: Properties<'a>,
    /// The payload.
    pub payload: &'a [u8],
}

const DUP: u8 = 0x08;
const RETAIN: u8 = 0x01;

impl<'a> Publish<'a> {
    pub(super) fn decode(
        flags: u8,
        r: &mut Reader<'a>,
        version: Version,
    ) -> Result<Self, DecodeError> {
        let qos = QoS::from_bits((flags >> 1) & 3).ok_or(DecodeError::BadQoS)?;
        let dup = flags & DUP != 0;
        if dup && qos == QoS::AtMostOnce {
            return Err(DecodeError::BadFlags);
        }
        let topic = r.string()?;
        if !topic::is_topic_name(topic) {
            return Err(DecodeError::TopicNameInvalid);
        }
        let qos = match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            QoS::AtLeastOnce => QosPid::AtLeastOnce(read_packet_id(r)?),
            QoS::ExactlyOnce => QosPid::ExactlyOnce(read_packet_id(r)?),
        };
        let properties = if version == Version::V5 {
            Properties::decode(r, Place::of(PacketType::Publish))?
        } else {
            Properties::EMPTY
        };
        if topic.is_empty() && properties.topic_alias.is_none() {
            return Err(DecodeError::EmptyTopic);
        }
        Ok(Publish {
            dup,
            qos,
            retain: flags & RETAIN != 0,
            topic,
            properties,
            payload: r.rest(),
        })
    }

    pub(super) fn flags(&self) -> u8 {
        let mut flags = (self.qos.qos() as u8) << 1;
        if self.dup {
            flags |= DUP;
        }
        if self.retain {
            flags |= RETAIN;
        }
        flags
    }

    pub(super) fn check(&self, version: Version) -> Result<(), EncodeError> {
        if self.topic.len() > MAX_FIELD {
            return Err(EncodeError::FieldTooLong);
        }
        let alias = version == Version::V5 && self.properties.topic_alias.is_some();
        if (self.dup && self.qos == QosPid::AtMostOnce)
            || !topic::is_topic_name(self.topic)
            || (self.topic.is_empty() && !alias)
        {
            return Err(EncodeError::Invalid);
        }
        if version == Version::V5 {
            self.properties.check(Place::of(PacketType::Publish))?;
        }
        Ok(())
    }

    pub(super) fn body_len(&self, version: Version) -> usize {
        let id = if self.qos.packet_id().is_some() { 2 } else { 0 };
        let props = match version {
            Version::V5 => self.properties.encoded_len(),
            _ => 0,
        };
        field_len(self.topic.len()) + id + props + self.payload.len()
    }

    pub(super) fn write_body(&self, version: Version, w: &mut Writer<'_>) {
        w.string(self.topic);
        if let Some(id) = self.qos.packet_id() {
            w.u16(id.get());
        }
        if version == Version::V5 {
            self.properties.write(w);
        }
        w.bytes(self.payload);
    }
}

pub(super) fn read_packet_id(r: &mut Reader<'_>) -> Result<PacketId, DecodeError> {
    PacketId::new(r.u16()?).ok_or(DecodeError::ZeroPacketId)
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP (which one is the [`Packet`](super::Packet)
/// variant holding it): the next step of a QoS 1 or 2 publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ack<'a> {
    /// The publish's packet identifier.
    pub packet_id: PacketId,
    /// MQTT 5 reason code (PUBACK and PUBREC: success, *no matching
    /// subscribers* or a refusal; PUBREL and PUBCOMP: success or *packet
    /// identifier not found*). 3.1.1 has none: encoding a failure for 3.1.1 is
    /// [`EncodeError::NotInVersion`].
    pub reason: ReasonCode,
    /// MQTT 5 properties (reason string, user properties).
    pub properties: Properties<'a>,
}

impl<'a> Ack<'a> {
    /// A successful acknowledgement without properties.
    pub const fn new(packet_id: PacketId) -> Self {
        Ack {
            packet_id,
            reason: ReasonCode::Success,
            properties: Properties::EMPTY,
        }
    }

    /// Reads PUBACK, PUBREC, PUBREL and PUBCOMP, and also DISCONNECT and AUTH
    /// (without a packet identifier): a reason code and properties that may
    /// be left out at the end of the packet.
    pub(super) fn decode_tail(
        kind: PacketType,
        r: &mut Reader<'a>,
        version: Version,
    ) -> Result<(ReasonCode, Properties<'a>), DecodeError> {
        let mut reason = ReasonCode::Success;
        let mut properties = Properties::EMPTY;
        if version == Version::V5 && !r.is_empty() {
            reason = ReasonCode::from_u8(r.u8()?)
                .filter(|c| c.allowed_in(kind))
                .ok_or(DecodeError::BadReasonCode)?;
            if !r.is_empty() {
                properties = Properties::decode(r, Place::of(kind))?;
            }
        }
        r.finish()?;
        Ok((reason, properties))
    }

    pub(super) fn decode(
        kind: PacketType,
        r: &mut Reader<'a>,
        version: Version,
    ) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r)?;
        let (reason, properties) = Self::decode_tail(kind, r, version)?;
        Ok(Ack {
            packet_id,
            reason,
            properties,
        })
    }

    /// Checks a reason code and properties for encoding; in 3.1.1 only a
    /// success code (below 0x80) without properties can be said.
    pub(super) fn check_tail(
        kind: PacketType,
        reason: ReasonCode,
        properties: &Properties<'_>,
        version: Version,
    ) -> Result<(), EncodeError> {
        if !reason.allowed_in(kind) {
            return Err(EncodeError::Invalid);
        }
        match version {
            Version::V5 => properties.check(Place::of(kind)),
            _ if reason.is_error() => Err(EncodeError::NotInVersion),
            _ => Ok(()),
        }
    }

    /// Bytes of the reason code and properties in their shortest form.
    pub(super) fn tail_len(
        reason: ReasonCode,
        properties: &Properties<'_>,
        version: Version,
    ) -> usize {
        match version {
            Version::V5 if !properties.is_empty() => 1 + properties.encoded_len(),
            Version::V5 if reason != ReasonCode::Success => 1,
            _ => 0,
        }
    }

    pub(super) fn write_tail(
        reason: ReasonCode,
        properties: &Properties<'_>,
        version: Version,
        w: &mut Writer<'_>,
    ) {
        if Self::tail_len(reason, properties, version) > 0 {
            w.u8(reason.code());
            if !properties.is_empty() {
                properties.write(w);
            }
        }
    }

    pub(super) fn check(&self, kind: PacketType, version: Version) -> Result<(), EncodeError> {
        Self::check_tail(kind, self.reason, &self.properties, version)
    }

    pub(super) fn body_len(&self, version: Version) -> usize {
        2 + Self::tail_len(self.reason, &self.properties, version)
    }

    pub(super) fn write_body(&self, version: Version, w: &mut Writer<'_>) {
        w.u16(self.packet_id.get());
        Self::write_tail(self.reason, &self.properties, version, w);
    }
}
