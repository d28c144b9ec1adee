//! CONNECT (with its will, user name and password) and CONNACK.

use super::bytes::{MAX_FIELD, Reader, Writer, field_len};
use super::properties::{Place, Properties};
use super::{
    ConnectReturnCode, DecodeError, EncodeError, PacketType, QoS, ReasonCode, Version, topic,
};

/// CONNECT: a client opens a session. The first packet on a connection, and the
/// only one that says which protocol version the connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Connect<'a> {
    /// The protocol version (protocol name and level).
    pub version: Version,
    /// Clean start (MQTT 5) or clean session (3.1.1): discard any stored
    /// session.
    pub clean_start: bool,
    /// Keep alive in seconds; 0 turns it off.
    pub keep_alive: u16,
    /// MQTT 5 properties.
    pub properties: Properties<'a>,
    /// The client identifier; may be empty (the server assigns one).
    pub client_id: &'a str,
    /// The will message, published when the connection ends abnormally.
    pub will: Option<Will<'a>>,
    /// The user name.
    pub username: Option<&'a str>,
    /// The password (binary data).
    pub password: Option<&'a [u8]>,
}

/// A will message carried by CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Will<'a> {
    /// QoS to publish it with.
    pub qos: QoS,
    /// Publish it retained.
    pub retain: bool,
    /// MQTT 5 will properties (will delay, and the message's own properties).
    pub properties: Properties<'a>,
    /// Its topic: a topic name, without wildcards.
    pub topic: &'a str,
    /// Its payload.
    pub payload: &'a [u8],
}

/// CONNACK: the server accepts or refuses a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnAck<'a> {
    /// A stored session was resumed (always false on a refusal).
    pub session_present: bool,
    /// The outcome; in 3.1.1 the return code with the same meaning
    /// ([`ConnectReturnCode::from_reason`]).
    pub reason: ReasonCode,
    /// MQTT 5 properties.
    pub properties: Properties<'a>,
}

const USERNAME: u8 = 0x80;
const PASSWORD: u8 = 0x40;
const WILL_RETAIN: u8 = 0x20;
const WILL_QOS_SHIFT: u8 = 3;
const WILL: u8 = 0x04;
const CLEAN: u8 = 0x02;
const RESERVED: u8 = 0x01;

/// The longest client identifier MQTT 3.1 allows.
const MAX_V3_1_CLIENT_ID: usize = 23;

/// Reads the protocol name and level.
fn read_version(r: &mut Reader<'_>) -> Result<Version, DecodeError> {
    let name = r.binary()?;
    let level = r.u8()?;
    match (name, level) {
        (b"MQTT", 4) => Ok(Version::V3_1_1),
        (b"MQTT", 5) => Ok(Version::V5),
        (b"MQIsdp", 3) => Ok(Version::V3_1),
        (b"MQTT" | b"MQIsdp", _) => Err(DecodeError::UnsupportedProtocolVersion),
        _ => Err(DecodeError::BadProtocolName),
    }
}

/// The protocol version a whole CONNECT packet (fixed header included) asks
/// for, read from its variable header alone: what a server needs to answer a
/// CONNECT it could not decode in the right version.
pub fn connect_version(packet: &[u8]) -> Result<Version, DecodeError> {
    let mut r = Reader::new(packet);
    if r.u8()? != (PacketType::Connect as u8) << 4 {
        return Err(DecodeError::UnknownPacketType);
    }
    r.varint()?;
    read_version(&mut r)
}

fn protocol_name(version: Version) -> (&'static [u8], u8) {
    match version {
        Version::V3_1 => (b"MQIsdp", 3),
        Version::V3_1_1 => (b"MQTT", 4),
        Version::V5 => (b"MQTT", 5),
    }
}

impl<'a> Connect<'a> {
    pub(super) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let version = read_version(r)?;
        let flags = r.u8()?;
        let keep_alive = r.u16()?;
        let v5 = version == Version::V5;
        let will_qos =
            QoS::from_bits((flags >> WILL_QOS_SHIFT) & 3).ok_or(DecodeError::BadConnectFlags)?;
        let has_will = flags & WILL != 0;
        if flags & RESERVED != 0
            || (!has_will && (will_qos != QoS::AtMostOnce || flags & WILL_RETAIN != 0))
            || (!v5 && flags & PASSWORD != 0 && flags & USERNAME == 0)
        {
            return Err(DecodeError::BadConnectFlags);
        }
        let properties = if v5 {
            Properties::decode(r, Place::of(PacketType::Connect))?
        } else {
            Properties::EMPTY
        };
        let client_id = r.string()?;
        let clean_start = flags & CLEAN != 0;
        let id_ok = match version {
            Version::V3_1 => (1..=MAX_V3_1_CLIENT_ID).contains(&client_id.len()),
            Version::V3_1_1 => clean_start || !client_id.is_empty(),
            Version::V5 => true,
        };
        if !id_ok {
            return Err(DecodeError::ClientIdRejected);
        }
        let will = if has_will {
            let properties = if v5 {
                Properties::decode(r, Place::WILL)?
            } else {
                Properties::EMPTY
            };
            let topic = r.string()?;
            if topic.is_empty() {
                return Err(DecodeError::EmptyTopic);
            }
            if !topic::is_topic_name(topic) {
                return Err(DecodeError::TopicNameInvalid);
            }
            Some(Will {
                qos: will_qos,
                retain: flags & WILL_RETAIN != 0,
                properties,
                topic,
                payload: r.binary()?,
            })
        } else {
            None
        };
        let username = if flags & USERNAME != 0 {
            Some(r.string()?)
        } else {
            None
        };
        let password = if flags & PASSWORD != 0 {
            Some(r.binary()?)
        } else {
            None
        };
        r.finish()?;
        Ok(Connect {
            version,
            clean_start,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        })
    }

    pub(super) fn check(&self) -> Result<(), EncodeError> {
        let v5 = self.version == Version::V5;
        if v5 {
            self.properties.check(Place::of(PacketType::Connect))?;
        }
        let mut fields = [self.client_id.len(), 0, 0, 0, 0];
        if let Some(will) = &self.will {
            if v5 {
                will.properties.check(Place::WILL)?;
            }
            if will.topic.is_empty() || !topic::is_topic_name(will.topic) {
                return Err(EncodeError::Invalid);
            }
            fields[1] = will.topic.len();
            fields[2] = will.payload.len();
        }
        fields[3] = self.username.map_or(0, str::len);
        fields[4] = self.password.map_or(0, <[u8]>::len);
        if fields.iter().any(|&n| n > MAX_FIELD) {
            return Err(EncodeError::FieldTooLong);
        }
        if !v5 && self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::Invalid);
        }
        Ok(())
    }

    pub(super) fn body_len(&self) -> usize {
        let v5 = self.version == Version::V5;
        let (name, _) = protocol_name(self.version);
        let mut len = field_len(name.len()) + 1 + 1 + 2 + field_len(self.client_id.len());
        if v5 {
            len += self.properties.encoded_len();
        }
        if let Some(will) = &self.will {
            if v5 {
                len += will.properties.encoded_len();
            }
            len += field_len(will.topic.len()) + field_len(will.payload.len());
        }
        len + self.username.map_or(0, |u| field_len(u.len()))
            + self.password.map_or(0, |p| field_len(p.len()))
    }

    pub(super) fn write_body(&self, w: &mut Writer<'_>) {
        let v5 = self.version == Version::V5;
        let (name, level) = protocol_name(self.version);
        w.binary(name);
        w.u8(level);
        let mut flags = 0;
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }
        if let Some(will) = &self.will {
            flags |= WILL | (will.qos as u8) << WILL_QOS_SHIFT;
            if will.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.clean_start {
            flags |= CLEAN;
        }
        w.u8(flags);
        w.u16(self.keep_alive);
        if v5 {
            self.properties.write(w);
        }
        w.string(self.client_id);
        if let Some(will) = &self.will {
            if v5 {
                will.properties.write(w);
            }
            w.string(will.topic);
            w.binary(will.payload);
        }
        if let Some(u) = self.username {
            w.string(u);
        }
        if let Some(p) = self.password {
            w.binary(p);
        }
    }
}

impl<'a> ConnAck<'a> {
    pub(super) fn decode(r: &mut Reader<'a>, version: Version) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        // MQTT 3.1 has no session-present flag: the whole byte is reserved.
        let reserved = if version == Version::V3_1 { 0xFF } else { 0xFE };
        if flags & reserved != 0 {
            return Err(DecodeError::BadFlags);
        }
        let code = r.u8()?;
        let (reason, properties) = if version == Version::V5 {
            let reason = ReasonCode::from_u8(code)
                .filter(|c| c.allowed_in(PacketType::ConnAck))
                .ok_or(DecodeError::BadReasonCode)?;
            let properties = Properties::decode(r, Place::of(PacketType::ConnAck))?;
            (reason, properties)
        } else {
            let rc = ConnectReturnCode::from_u8(code).ok_or(DecodeError::BadReasonCode)?;
            (rc.to_reason(), Properties::EMPTY)
        };
        r.finish()?;
        let session_present = flags & 1 != 0;
        if session_present && reason.is_error() {
            return Err(DecodeError::SessionPresentOnRefusal);
        }
        Ok(ConnAck {
            session_present,
            reason,
            properties,
        })
    }

    pub(super) fn check(&self, version: Version) -> Result<(), EncodeError> {
        if !self.reason.allowed_in(PacketType::ConnAck)
            || (self.session_present && self.reason.is_error())
        {
            return Err(EncodeError::Invalid);
        }
        if version == Version::V5 {
            self.properties.check(Place::of(PacketType::ConnAck))?;
        }
        Ok(())
    }

    pub(super) fn body_len(&self, version: Version) -> usize {
        match version {
            Version::V5 => 2 + self.properties.encoded_len(),
            _ => 2,
        }
    }

    pub(super) fn write_body(&self, version: Version, w: &mut Writer<'_>) {
        w.u8(u8::from(self.session_present && version != Version::V3_1));
        match version {
            Version::V5 => {
                w.u8(self.reason.code());
                self.properties.write(w);
            }
            _ => w.u8(ConnectReturnCode::from_reason(self.reason).code()),
        }
    }
}
