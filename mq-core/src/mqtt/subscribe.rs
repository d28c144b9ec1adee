//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK.
//!
//! Decoding checks the packets' structure; whether each topic filter is a valid
//! filter is answered per filter (SUBACK or UNSUBACK code 0x8F in MQTT 5, 0x80
//! in 3.1.1, without closing the connection), so it is left to
//! [`topic::MqttFilter::parse`](super::topic::MqttFilter::parse).

use super::bytes::{MAX_FIELD, Reader, Writer, field_len};
use super::list::{List, ListItem};
use super::properties::{Place, Properties};
use super::publish::read_packet_id;
use super::{DecodeError, EncodeError, PacketId, PacketType, QoS, ReasonCode, Version, topic};

/// Whether the server sends retained messages when a subscription is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RetainHandling {
    /// 0: send them (3.1.1's only behaviour).
    #[default]
    SendAtSubscribe,
    /// 1: send them only if the subscription did not exist yet.
    SendAtNewSubscribe,
    /// 2: do not send them.
    DoNotSend,
}

/// A subscription's options (MQTT 5; 3.1.1 has only the QoS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubscriptionOptions {
    /// The highest QoS the server may deliver with.
    pub qos: QoS,
    /// Do not deliver the subscriber's own publishes (not on shared
    /// subscriptions).
    pub no_local: bool,
    /// Keep the RETAIN flag of forwarded messages as published.
    pub retain_as_published: bool,
    /// Sending retained messages on subscribe.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// The 3.1.1 options: QoS only, the rest at their defaults.
    pub const fn qos(qos: QoS) -> Self {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }

    fn from_byte(b: u8, version: Version) -> Result<Self, DecodeError> {
        let reserved = if version == Version::V5 { 0xC0 } else { 0xFC };
        if b & reserved != 0 {
            return Err(DecodeError::BadSubscriptionOptions);
        }
        let qos = QoS::from_bits(b & 3).ok_or(DecodeError::BadQoS)?;
        let retain_handling = match (b >> 4) & 3 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtNewSubscribe,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::BadRetainHandling),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: b & 0x04 != 0,
            retain_as_published: b & 0x08 != 0,
            retain_handling,
        })
    }

    /// The options byte; 3.1.1 keeps the QoS only.
    fn to_byte(self, version: Version) -> u8 {
        let qos = self.qos as u8;
        if version != Version::V5 {
            return qos;
        }
        qos | u8::from(self.no_local) << 2
            | u8::from(self.retain_as_published) << 3
            | (self.retain_handling as u8) << 4
    }
}

/// One topic filter of a SUBSCRIBE with its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Subscription<'a> {
    /// The topic filter as sent (possibly `$share/group/filter`); not checked
    /// as a filter by decoding.
    pub filter: &'a str,
    /// Its options.
    pub options: SubscriptionOptions,
}

impl<'a> ListItem<'a> for Subscription<'a> {
    fn read_next(bytes: &mut &'a [u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        let filter = r.string().ok()?;
        let options = SubscriptionOptions::from_byte(r.u8().ok()?, Version::V5).ok()?;
        *bytes = r.rest();
        Some(Subscription { filter, options })
    }
}

impl<'a> ListItem<'a> for &'a str {
    fn read_next(bytes: &mut &'a [u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        let s = r.string().ok()?;
        *bytes = r.rest();
        Some(s)
    }
}

impl<'a> ListItem<'a> for ReasonCode {
    fn read_next(bytes: &mut &'a [u8]) -> Option<Self> {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        ReasonCode::from_u8(b)
    }
}

/// SUBSCRIBE: one or more topic filters with options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Subscribe<'a> {
    /// Echoed in the SUBACK.
    pub packet_id: PacketId,
    /// MQTT 5 properties (one subscription identifier, user properties).
    pub properties: Properties<'a>,
    /// The filters, at least one.
    pub subscriptions: List<'a, Subscription<'a>>,
}

/// SUBACK: one reason code per filter of the SUBSCRIBE, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubAck<'a> {
    /// The SUBSCRIBE's packet identifier.
    pub packet_id: PacketId,
    /// MQTT 5 properties (reason string, user properties).
    pub properties: Properties<'a>,
    /// Granted QoS or failure per filter; 3.1.1 says every failure as 0x80.
    pub reasons: List<'a, ReasonCode>,
}

/// UNSUBSCRIBE: one or more topic filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Unsubscribe<'a> {
    /// Echoed in the UNSUBACK.
    pub packet_id: PacketId,
    /// MQTT 5 properties (user properties).
    pub properties: Properties<'a>,
    /// The filters, at least one.
    pub filters: List<'a, &'a str>,
}

/// UNSUBACK: in MQTT 5 one reason code per filter; 3.1.1 has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnsubAck<'a> {
    /// The UNSUBSCRIBE's packet identifier.
    pub packet_id: PacketId,
    /// MQTT 5 properties (reason string, user properties).
    pub properties: Properties<'a>,
    /// MQTT 5 outcome per filter (empty in 3.1.1).
    pub reasons: List<'a, ReasonCode>,
}

fn properties<'a>(
    r: &mut Reader<'a>,
    kind: PacketType,
    version: Version,
) -> Result<Properties<'a>, DecodeError> {
    match version {
        Version::V5 => Properties::decode(r, Place::of(kind)),
        _ => Ok(Properties::EMPTY),
    }
}

fn properties_len(p: &Properties<'_>, version: Version) -> usize {
    match version {
        Version::V5 => p.encoded_len(),
        _ => 0,
    }
}

fn check_properties(p: &Properties<'_>, kind: PacketType, v: Version) -> Result<(), EncodeError> {
    match v {
        Version::V5 => p.check(Place::of(kind)),
        _ => Ok(()),
    }
}

fn write_properties(p: &Properties<'_>, version: Version, w: &mut Writer<'_>) {
    if version == Version::V5 {
        p.write(w);
    }
}

/// Reads reason codes to the end of the packet: each allowed in `kind`
/// (3.1.1 SUBACK: 0, 1, 2 or 0x80), at least one.
fn read_reasons<'a>(
    r: &mut Reader<'a>,
    kind: PacketType,
    version: Version,
) -> Result<List<'a, ReasonCode>, DecodeError> {
    let bytes = r.rest();
    if bytes.is_empty() {
        return Err(DecodeError::EmptyPayload);
    }
    let ok = |&b: &u8| match version {
        Version::V5 => ReasonCode::from_u8(b).is_some_and(|c| c.allowed_in(kind)),
        _ => matches!(b, 0 | 1 | 2 | 0x80),
    };
    if !bytes.iter().all(ok) {
        return Err(DecodeError::BadReasonCode);
    }
    Ok(List::encoded(bytes))
}

fn check_reasons(reasons: &List<'_, ReasonCode>, kind: PacketType) -> Result<(), EncodeError> {
    if reasons.is_empty() || !reasons.iter().all(|c| c.allowed_in(kind)) {
        return Err(EncodeError::Invalid);
    }
    Ok(())
}

/// A reason code as 3.1.1 SUBACK says it.
fn v3_suback(code: ReasonCode) -> u8 {
    if code.is_error() { 0x80 } else { code.code() }
}

impl<'a> Subscribe<'a> {
    pub(super) fn decode(r: &mut Reader<'a>, version: Version) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r)?;
        let properties = properties(r, PacketType::Subscribe, version)?;
        let payload = r.rest();
        if payload.is_empty() {
            return Err(DecodeError::EmptyPayload);
        }
        let mut pr = Reader::new(payload);
        while !pr.is_empty() {
            let filter = pr.string()?;
            let options = SubscriptionOptions::from_byte(pr.u8()?, version)?;
            if options.no_local && filter.starts_with(topic::SHARE_PREFIX) {
                return Err(DecodeError::NoLocalOnShared);
            }
        }
        Ok(Subscribe {
            packet_id,
            properties,
            subscriptions: List::encoded(payload),
        })
    }

    /// The subscription identifier (MQTT 5), if the client gave one.
    pub fn subscription_id(&self) -> Option<u32> {
        self.properties.subscription_ids.iter().next()
    }

    pub(super) fn check(&self, version: Version) -> Result<(), EncodeError> {
        check_properties(&self.properties, PacketType::Subscribe, version)?;
        if self.subscriptions.is_empty() {
            return Err(EncodeError::Invalid);
        }
        for s in self.subscriptions.iter() {
            if s.filter.len() > MAX_FIELD {
                return Err(EncodeError::FieldTooLong);
            }
            let retain_handling = s.options.retain_handling as u8;
            if (version == Version::V5
                && s.options.no_local
                && s.filter.starts_with(topic::SHARE_PREFIX))
                || retain_handling > 2
            {
                return Err(EncodeError::Invalid);
            }
        }
        Ok(())
    }

    pub(super) fn body_len(&self, version: Version) -> usize {
        let filters: usize = self
            .subscriptions
            .iter()
            .map(|s| field_len(s.filter.len()) + 1)
            .sum();
        2 + properties_len(&self.properties, version) + filters
    }

    pub(super) fn write_body(&self, version: Version, w: &mut Writer<'_>) {
        w.u16(self.packet_id.get());
        write_properties(&self.properties, version, w);
        for s in self.subscriptions.iter() {
            w.string(s.filter);
            w.u8(s.options.to_byte(version));
        }
    }
}

impl<'a> SubAck<'a> {
    pub(super) fn decode(r: &mut Reader<'a>, version: Version) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r)?;
        let properties = properties(r, PacketType::SubAck, version)?;
        let reasons = read_reasons(r, PacketType::SubAck, version)?;
        Ok(SubAck {
            packet_id,
            properties,
            reasons,
        })
    }

    pub(super) fn check(&self, version: Version) -> Result<(), EncodeError> {
        check_properties(&self.properties, PacketType::SubAck, version)?;
        check_reasons(&self.reasons, PacketType::SubAck)
    }

    pub(super) fn body_len(&self, version: Version) -> usize {
        2 + properties_len(&self.properties, version) + self.reasons.len()
    }

    pub(super) fn write_body(&self, version: Version, w: &mut Writer<'_>) {
        w.u16(self.packet_id.get());
        write_properties(&self.properties, version, w);
        for code in self.reasons.iter() {
            w.u8(match version {
                Version::V5 => code.code(),
                _ => v3_suback(code),
            });
        }
    }
}

impl<'a> Unsubscribe<'a> {
    pub(super) fn decode(r: &mut Reader<'a>, version: Version) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r)?;
        let properties = properties(r, PacketType::Unsubscribe, version)?;
        let payload = r.rest();
        if payload.is_empty() {
            return Err(DecodeError::EmptyPayload);
        }
        let mut pr = Reader::new(payload);
        while !pr.is_empty() {
            pr.string()?;
        }
        Ok(Unsubscribe {
            packet_id,
            properties,
            filters: List::encoded(payload),
        })
    }

    pub(super) fn check(&self, version: Version) -> Result<(), EncodeError> {
        check_properties(&self.properties, PacketType::Unsubscribe, version)?;
        if self.filters.is_empty() {
            return Err(EncodeError::Invalid);
        }
        if self.filters.iter().any(|f| f.len() > MAX_FIELD) {
            return Err(EncodeError::FieldTooLong);
        }
        Ok(())
    }

    pub(super) fn body_len(&self, version: Version) -> usize {
        let filters: usize = self.filters.iter().map(|f| field_len(f.len())).sum();
        2 + properties_len(&self.properties, version) + filters
    }

    pub(super) fn write_body(&self, version: Version, w: &mut Writer<'_>) {
        w.u16(self.packet_id.get());
        write_properties(&self.properties, version, w);
        for f in self.filters.iter() {
            w.string(f);
        }
    }
}

impl<'a> UnsubAck<'a> {
    pub(super) fn decode(r: &mut Reader<'a>, version: Version) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r)?;
        if version != Version::V5 {
            r.finish()?;
            return Ok(UnsubAck {
                packet_id,
                properties: Properties::EMPTY,
                reasons: List::EMPTY,
            });
        }
        let properties = Properties::decode(r, Place::of(PacketType::UnsubAck))?;
        let reasons = read_reasons(r, PacketType::UnsubAck, version)?;
        Ok(UnsubAck {
            packet_id,
            properties,
            reasons,
        })
    }

    pub(super) fn check(&self, version: Version) -> Result<(), EncodeError> {
        if version != Version::V5 {
            // 3.1.1 acknowledges every unsubscribe: a failure cannot be said.
            if self.reasons.iter().any(ReasonCode::is_error) {
                return Err(EncodeError::NotInVersion);
            }
            return Ok(());
        }
        self.properties.check(Place::of(PacketType::UnsubAck))?;
        check_reasons(&self.reasons, PacketType::UnsubAck)
    }

    pub(super) fn body_len(&self, version: Version) -> usize {
        match version {
            Version::V5 => 2 + self.properties.encoded_len() + self.reasons.len(),
            _ => 2,
        }
    }

    pub(super) fn write_body(&self, version: Version, w: &mut Writer<'_>) {
        w.u16(self.packet_id.get());
        if version == Version::V5 {
            self.properties.write(w);
            for code in self.reasons.iter() {
                w.u8(code.code());
            }
        }
    }
}
