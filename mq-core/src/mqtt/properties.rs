//! MQTT 5 properties (§2.2.2): one [`Properties`] type for every packet, with
//! the per-packet rules (which properties a packet type may carry, which may
//! repeat) checked on decode and on encode.

use core::num::{NonZeroU16, NonZeroU32};

use super::bytes::{MAX_FIELD, MAX_VARINT, Reader, Writer, field_len, varint_len};
use super::list::{List, ListItem};
use super::{DecodeError, EncodeError, PacketType, QoS};

/// User properties: name/value string pairs, any number, in order.
pub type UserProperties<'a> = List<'a, (&'a str, &'a str)>;

/// Subscription identifiers (one in a SUBSCRIBE, any number in a PUBLISH a
/// server sends).
pub type SubscriptionIds<'a> = List<'a, u32>;

/// What the payload format indicator says of the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PayloadFormat {
    /// 0: unspecified bytes.
    Unspecified,
    /// 1: UTF-8 text.
    Utf8,
}

/// The properties of a packet (or of a CONNECT's will). Absent properties are
/// `None` (or empty lists); MQTT 3.1.1 packets have none.
///
/// Decoding checks that each property is one the packet type may carry, that
/// single-valued ones appear once, and their values; encoding refuses
/// properties the packet type may not carry ([`EncodeError::PropertyNotAllowed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Properties<'a> {
    /// 0x01 (PUBLISH, will).
    pub payload_format: Option<PayloadFormat>,
    /// 0x02, seconds (PUBLISH, will).
    pub message_expiry: Option<u32>,
    /// 0x03 (PUBLISH, will).
    pub content_type: Option<&'a str>,
    /// 0x08 (PUBLISH, will): a topic name, without wildcards.
    pub response_topic: Option<&'a str>,
    /// 0x09 (PUBLISH, will).
    pub correlation_data: Option<&'a [u8]>,
    /// 0x0B (PUBLISH, SUBSCRIBE): each 1 to 268,435,455.
    pub subscription_ids: SubscriptionIds<'a>,
    /// 0x11, seconds (CONNECT, CONNACK, DISCONNECT).
    pub session_expiry: Option<u32>,
    /// 0x12 (CONNACK).
    pub assigned_client_id: Option<&'a str>,
    /// 0x13, seconds (CONNACK).
    pub server_keep_alive: Option<u16>,
    /// 0x15 (CONNECT, CONNACK, AUTH).
    pub auth_method: Option<&'a str>,
    /// 0x16 (CONNECT, CONNACK, AUTH); only with an authentication method.
    pub auth_data: Option<&'a [u8]>,
    /// 0x17 (CONNECT).
    pub request_problem_info: Option<bool>,
    /// 0x18, seconds (will).
    pub will_delay: Option<u32>,
    /// 0x19 (CONNECT).
    pub request_response_info: Option<bool>,
    /// 0x1A (CONNACK).
    pub response_info: Option<&'a str>,
    /// 0x1C (CONNACK, DISCONNECT).
    pub server_reference: Option<&'a str>,
    /// 0x1F (CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK,
    /// DISCONNECT, AUTH).
    pub reason_string: Option<&'a str>,
    /// 0x21 (CONNECT, CONNACK).
    pub receive_maximum: Option<NonZeroU16>,
    /// 0x22 (CONNECT, CONNACK).
    pub topic_alias_maximum: Option<u16>,
    /// 0x23 (PUBLISH).
    pub topic_alias: Option<NonZeroU16>,
    /// 0x24 (CONNACK): 0 or 1 (absent means 2).
    pub maximum_qos: Option<QoS>,
    /// 0x25 (CONNACK).
    pub retain_available: Option<bool>,
    /// 0x26 (every packet with properties, and wills).
    pub user: UserProperties<'a>,
    /// 0x27 (CONNECT, CONNACK).
    pub maximum_packet_size: Option<NonZeroU32>,
    /// 0x28 (CONNACK).
    pub wildcard_subscription_available: Option<bool>,
    /// 0x29 (CONNACK).
    pub subscription_ids_available: Option<bool>,
    /// 0x2A (CONNACK).
    pub shared_subscription_available: Option<bool>,
}

/// Where properties appear: a packet type, or a CONNECT's will. A bit set over
/// packet type numbers; bit 0 (packet type 0 is reserved) stands for the will.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place(u16);

impl Place {
    pub(crate) const WILL: Place = Place(1);

    pub(crate) const fn of(packet: PacketType) -> Place {
        Place(1 << packet as u8)
    }
}

const fn places(types: &[PacketType], will: bool) -> u16 {
    let mut mask = if will { 1 } else { 0 };
    let mut i = 0;
    while i < types.len() {
        mask |= 1 << types[i] as u8;
        i += 1;
    }
    mask
}

/// How a property's value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Byte,
    Two,
    Four,
    Var,
    Str,
    Bin,
    Pair,
}

const PAYLOAD_FORMAT: u8 = 0x01;
const SUBSCRIPTION_ID: u8 = 0x0B;
const REASON_STRING: u8 = 0x1F;
const USER: u8 = 0x26;

/// The encoding and allowed places of property `id`.
const fn spec(id: u32) -> Option<(Kind, u16)> {
    use PacketType::*;
    const MESSAGE: u16 = places(&[Publish], true);
    const ACKS: u16 = places(
        &[
            ConnAck, PubAck, PubRec, PubRel, PubComp, SubAck, UnsubAck, Disconnect, Auth,
        ],
        false,
    );
    // Every packet type that has properties, and wills.
    const ALL: u16 = !places(&[PingReq, PingResp], false);
    Some(match id {
        0x01 => (Kind::Byte, MESSAGE),
        0x02 => (Kind::Four, MESSAGE),
        0x03 | 0x08 => (Kind::Str, MESSAGE),
        0x09 => (Kind::Bin, MESSAGE),
        0x0B => (Kind::Var, places(&[Publish, Subscribe], false)),
        0x11 => (Kind::Four, places(&[Connect, ConnAck, Disconnect], false)),
        0x12 | 0x1A => (Kind::Str, places(&[ConnAck], false)),
        0x13 => (Kind::Two, places(&[ConnAck], false)),
        0x15 => (Kind::Str, places(&[Connect, ConnAck, Auth], false)),
        0x16 => (Kind::Bin, places(&[Connect, ConnAck, Auth], false)),
        0x17 | 0x19 => (Kind::Byte, places(&[Connect], false)),
        0x18 => (Kind::Four, places(&[], true)),
        0x1C => (Kind::Str, places(&[ConnAck, Disconnect], false)),
        0x1F => (Kind::Str, ACKS),
        0x21 | 0x22 => (Kind::Two, places(&[Connect, ConnAck], false)),
        0x23 => (Kind::Two, places(&[Publish], false)),
        0x24 | 0x25 | 0x28 | 0x29 | 0x2A => (Kind::Byte, places(&[ConnAck], false)),
        0x26 => (Kind::Pair, ALL),
        0x27 => (Kind::Four, places(&[Connect, ConnAck], false)),
        _ => return None,
    })
}

/// One property's value as read from or written to the wire.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Int(u32),
    Str(&'a str),
    Bin(&'a [u8]),
    Pair(&'a str, &'a str),
}

fn read_value<'a>(kind: Kind, r: &mut Reader<'a>) -> Result<Value<'a>, DecodeError> {
    Ok(match kind {
        Kind::Byte => Value::Int(u32::from(r.u8()?)),
        Kind::Two => Value::Int(u32::from(r.u16()?)),
        Kind::Four => Value::Int(r.u32()?),
        Kind::Var => Value::Int(r.varint()?),
        Kind::Str => Value::Str(r.string()?),
        Kind::Bin => Value::Bin(r.binary()?),
        Kind::Pair => Value::Pair(r.string()?, r.string()?),
    })
}

/// Reads the next property of `id` from a validated property block.
fn next_of<'a>(bytes: &mut &'a [u8], want: u8) -> Option<Value<'a>> {
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let id = r.varint().ok()?;
        let (kind, _) = spec(id)?;
        let value = read_value(kind, &mut r).ok()?;
        if id == u32::from(want) {
            *bytes = r.rest();
            return Some(value);
        }
    }
    *bytes = &[];
    None
}

impl<'a> ListItem<'a> for (&'a str, &'a str) {
    fn read_next(bytes: &mut &'a [u8]) -> Option<Self> {
        match next_of(bytes, USER)? {
            Value::Pair(k, v) => Some((k, v)),
            _ => None,
        }
    }
}

impl<'a> ListItem<'a> for u32 {
    fn read_next(bytes: &mut &'a [u8]) -> Option<Self> {
        match next_of(bytes, SUBSCRIPTION_ID)? {
            Value::Int(id) => Some(id),
            _ => None,
        }
    }
}

fn flag(v: u32) -> Result<bool, DecodeError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::BadPropertyValue),
    }
}

impl<'a> Properties<'a> {
    /// No properties.
    pub const EMPTY: Properties<'static> = Properties {
        payload_format: None,
        message_expiry: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        subscription_ids: List::EMPTY,
        session_expiry: None,
        assigned_client_id: None,
        server_keep_alive: None,
        auth_method: None,
        auth_data: None,
        request_problem_info: None,
        will_delay: None,
        request_response_info: None,
        response_info: None,
        server_reference: None,
        reason_string: None,
        receive_maximum: None,
        topic_alias_maximum: None,
        topic_alias: None,
        maximum_qos: None,
        retain_available: None,
        user: List::EMPTY,
        maximum_packet_size: None,
        wildcard_subscription_available: None,
        subscription_ids_available: None,
        shared_subscription_available: None,
    };

    /// True when no property is present.
    pub fn is_empty(&self) -> bool {
        let mut any = false;
        self.each(|_, _| any = true);
        !any
    }

    /// These properties without the reason string and user properties: what a
    /// sender may drop to fit the receiver's maximum packet size.
    pub fn without_diagnostics(&self) -> Self {
        Properties {
            reason_string: None,
            user: List::EMPTY,
            ..*self
        }
    }

    /// Reads a property block (its length, then the properties) for `place`.
    pub(crate) fn decode(r: &mut Reader<'a>, place: Place) -> Result<Self, DecodeError> {
        let len = r.varint()?;
        let block = r.take(len as usize)?;
        let mut p = Properties::default();
        let mut seen = 0u64;
        let mut br = Reader::new(block);
        while !br.is_empty() {
            let id = br.varint()?;
            let (kind, allowed) = spec(id).ok_or(DecodeError::UnknownProperty)?;
            if allowed & place.0 == 0 {
                return Err(DecodeError::PropertyNotAllowed);
            }
            let value = read_value(kind, &mut br)?;
            let bit = 1u64 << id;
            let repeats = id == u32::from(USER)
                || (id == u32::from(SUBSCRIPTION_ID) && place == Place::of(PacketType::Publish));
            if seen & bit != 0 && !repeats {
                return Err(DecodeError::DuplicateProperty);
            }
            seen |= bit;
            p.set(id as u8, value)?;
        }
        if seen & (1 << USER) != 0 {
            p.user = List::encoded(block);
        }
        if seen & (1 << SUBSCRIPTION_ID) != 0 {
            p.subscription_ids = List::encoded(block);
        }
        if p.auth_data.is_some() && p.auth_method.is_none() {
            return Err(DecodeError::BadPropertyValue);
        }
        Ok(p)
    }

    fn set(&mut self, id: u8, value: Value<'a>) -> Result<(), DecodeError> {
        let bad = DecodeError::BadPropertyValue;
        match (id, value) {
            (0x01, Value::Int(v)) => {
                self.payload_format = Some(if flag(v)? {
                    PayloadFormat::Utf8
                } else {
                    PayloadFormat::Unspecified
                })
            }
            (0x02, Value::Int(v)) => self.message_expiry = Some(v),
            (0x03, Value::Str(s)) => self.content_type = Some(s),
            (0x08, Value::Str(s)) => {
                if s.is_empty() || s.contains(['+', '#']) {
                    return Err(bad);
                }
                self.response_topic = Some(s)
            }
            (0x09, Value::Bin(b)) => self.correlation_data = Some(b),
            (0x0B, Value::Int(v)) => {
                if v == 0 {
                    return Err(bad);
                }
            }
            (0x11, Value::Int(v)) => self.session_expiry = Some(v),
            (0x12, Value::Str(s)) => self.assigned_client_id = Some(s),
            (0x13, Value::Int(v)) => self.server_keep_alive = Some(v as u16),
            (0x15, Value::Str(s)) => self.auth_method = Some(s),
            (0x16, Value::Bin(b)) => self.auth_data = Some(b),
            (0x17, Value::Int(v)) => self.request_problem_info = Some(flag(v)?),
            (0x18, Value::Int(v)) => self.will_delay = Some(v),
            (0x19, Value::Int(v)) => self.request_response_info = Some(flag(v)?),
            (0x1A, Value::Str(s)) => self.response_info = Some(s),
            (0x1C, Value::Str(s)) => self.server_reference = Some(s),
            (0x1F, Value::Str(s)) => self.reason_string = Some(s),
            (0x21, Value::Int(v)) => {
                self.receive_maximum = Some(NonZeroU16::new(v as u16).ok_or(bad)?)
            }
            (0x22, Value::Int(v)) => self.topic_alias_maximum = Some(v as u16),
            (0x23, Value::Int(v)) => self.topic_alias = Some(NonZeroU16::new(v as u16).ok_or(bad)?),
            (0x24, Value::Int(v)) => {
                self.maximum_qos = Some(if flag(v)? {
                    QoS::AtLeastOnce
                } else {
                    QoS::AtMostOnce
                })
            }
            (0x25, Value::Int(v)) => self.retain_available = Some(flag(v)?),
            (0x26, Value::Pair(..)) => {}
            (0x27, Value::Int(v)) => {
                self.maximum_packet_size = Some(NonZeroU32::new(v).ok_or(bad)?)
            }
            (0x28, Value::Int(v)) => self.wildcard_subscription_available = Some(flag(v)?),
            (0x29, Value::Int(v)) => self.subscription_ids_available = Some(flag(v)?),
            (0x2A, Value::Int(v)) => self.shared_subscription_available = Some(flag(v)?),
            _ => return Err(DecodeError::UnknownProperty),
        }
        Ok(())
    }

    /// Calls `f` with each present property, in identifier order.
    fn each(&self, mut f: impl FnMut(u8, Value<'a>)) {
        let int = |v: Option<u32>| v.map(Value::Int);
        let b = |v: Option<bool>| v.map(|v| Value::Int(u32::from(v)));
        let s = |v: Option<&'a str>| v.map(Value::Str);
        let bin = |v: Option<&'a [u8]>| v.map(Value::Bin);
        let fields = [
            (
                PAYLOAD_FORMAT,
                b(self.payload_format.map(|p| p == PayloadFormat::Utf8)),
            ),
            (0x02, int(self.message_expiry)),
            (0x03, s(self.content_type)),
            (0x08, s(self.response_topic)),
            (0x09, bin(self.correlation_data)),
        ];
        for (id, v) in fields {
            if let Some(v) = v {
                f(id, v);
            }
        }
        for id in self.subscription_ids.iter() {
            f(SUBSCRIPTION_ID, Value::Int(id));
        }
        let fields = [
            (0x11, int(self.session_expiry)),
            (0x12, s(self.assigned_client_id)),
            (0x13, int(self.server_keep_alive.map(u32::from))),
            (0x15, s(self.auth_method)),
            (0x16, bin(self.auth_data)),
            (0x17, b(self.request_problem_info)),
            (0x18, int(self.will_delay)),
            (0x19, b(self.request_response_info)),
            (0x1A, s(self.response_info)),
            (0x1C, s(self.server_reference)),
            (REASON_STRING, s(self.reason_string)),
            (0x21, int(self.receive_maximum.map(|v| u32::from(v.get())))),
            (0x22, int(self.topic_alias_maximum.map(u32::from))),
            (0x23, int(self.topic_alias.map(|v| u32::from(v.get())))),
            (0x24, int(self.maximum_qos.map(|q| q as u32))),
            (0x25, b(self.retain_available)),
        ];
        for (id, v) in fields {
            if let Some(v) = v {
                f(id, v);
            }
        }
        for (k, v) in self.user.iter() {
            f(USER, Value::Pair(k, v));
        }
        let fields = [
            (0x27, int(self.maximum_packet_size.map(NonZeroU32::get))),
            (0x28, b(self.wildcard_subscription_available)),
            (0x29, b(self.subscription_ids_available)),
            (0x2A, b(self.shared_subscription_available)),
        ];
        for (id, v) in fields {
            if let Some(v) = v {
                f(id, v);
            }
        }
    }

    /// Bytes of the properties without their length prefix.
    fn inner_len(&self) -> usize {
        let mut len = 0usize;
        self.each(|id, value| {
            let kind = spec(u32::from(id)).map(|(k, _)| k);
            len = len.saturating_add(1 + value_len(kind, value));
        });
        len
    }

    /// Bytes of the property block: its length, then the properties.
    pub(crate) fn encoded_len(&self) -> usize {
        let inner = self.inner_len();
        varint_len(inner) + inner
    }

    /// Whether these properties may be encoded for `place`.
    pub(crate) fn check(&self, place: Place) -> Result<(), EncodeError> {
        let mut result = Ok(());
        self.each(|id, value| {
            if result.is_ok() {
                result = check_one(id, value, place);
            }
        });
        result?;
        if self.maximum_qos == Some(QoS::ExactlyOnce)
            || (self.auth_data.is_some() && self.auth_method.is_none())
            || (place == Place::of(PacketType::Subscribe) && self.subscription_ids.len() > 1)
        {
            return Err(EncodeError::Invalid);
        }
        Ok(())
    }

    /// Writes the property block.
    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        w.varint(self.inner_len());
        self.each(|id, value| {
            w.u8(id);
            match (spec(u32::from(id)).map(|(k, _)| k), value) {
                (Some(Kind::Byte), Value::Int(v)) => w.u8(v as u8),
                (Some(Kind::Two), Value::Int(v)) => w.u16(v as u16),
                (Some(Kind::Four), Value::Int(v)) => w.u32(v),
                (_, Value::Int(v)) => w.varint(v as usize),
                (_, Value::Str(s)) => w.string(s),
                (_, Value::Bin(b)) => w.binary(b),
                (_, Value::Pair(k, v)) => {
                    w.string(k);
                    w.string(v);
                }
            }
        });
    }
}

fn check_one(id: u8, value: Value<'_>, place: Place) -> Result<(), EncodeError> {
    let Some((kind, allowed)) = spec(u32::from(id)) else {
        return Err(EncodeError::PropertyNotAllowed);
    };
    if allowed & place.0 == 0 {
        return Err(EncodeError::PropertyNotAllowed);
    }
    let too_long = match (kind, value) {
        (Kind::Var, Value::Int(v)) => v == 0 || v > MAX_VARINT,
        (_, Value::Str(s)) => s.len() > MAX_FIELD,
        (_, Value::Bin(b)) => b.len() > MAX_FIELD,
        (_, Value::Pair(k, v)) => k.len().max(v.len()) > MAX_FIELD,
        _ => false,
    };
    if too_long {
        return Err(EncodeError::FieldTooLong);
    }
    Ok(())
}

fn value_len(kind: Option<Kind>, value: Value<'_>) -> usize {
    match (kind, value) {
        (Some(Kind::Byte), _) => 1,
        (Some(Kind::Two), _) => 2,
        (Some(Kind::Four), _) => 4,
        (_, Value::Int(v)) => varint_len(v as usize),
        (_, Value::Str(s)) => field_len(s.len()),
        (_, Value::Bin(b)) => field_len(b.len()),
        (_, Value::Pair(k, v)) => field_len(k.len()) + field_len(v.len()),
    }
}
