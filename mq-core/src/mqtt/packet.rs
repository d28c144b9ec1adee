//! [`Packet`]: every control packet, decoded from and encoded into whole
//! packets (fixed header included).

use super::bytes::{MAX_VARINT, Reader, Writer, varint_len};
use super::{
    Ack, Auth, ConnAck, Connect, DecodeError, Disconnect, EncodeError, Properties, Publish, SubAck,
    Subscribe, UnsubAck, Unsubscribe, Version,
};

/// The largest packet MQTT can express: a one-byte type, a four-byte remaining
/// length and 268,435,455 bytes.
pub const MAX_PACKET_SIZE: u32 = 1 + 4 + MAX_VARINT;

/// A control packet's type: the high nibble of its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum PacketType {
    /// 1, client to server.
    Connect = 1,
    /// 2, server to client.
    ConnAck,
    /// 3, both ways.
    Publish,
    /// 4, both ways.
    PubAck,
    /// 5, both ways.
    PubRec,
    /// 6, both ways.
    PubRel,
    /// 7, both ways.
    PubComp,
    /// 8, client to server.
    Subscribe,
    /// 9, server to client.
    SubAck,
    /// 10, client to server.
    Unsubscribe,
    /// 11, server to client.
    UnsubAck,
    /// 12, client to server.
    PingReq,
    /// 13, server to client.
    PingResp,
    /// 14, client to server (and in MQTT 5 server to client).
    Disconnect,
    /// 15, both ways (MQTT 5 only).
    Auth,
}

impl PacketType {
    /// The type with this number (1 to 15).
    pub const fn from_u8(n: u8) -> Option<Self> {
        use PacketType::*;
        Some(match n {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }

    /// Whether a client may send this type (a server receiving any other closes
    /// the connection with a protocol error).
    pub const fn sent_by_client(self) -> bool {
        !matches!(
            self,
            PacketType::ConnAck | PacketType::SubAck | PacketType::UnsubAck | PacketType::PingResp
        )
    }

    /// The fixed header flags this type requires (PUBLISH's vary).
    const fn flags(self) -> u8 {
        match self {
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
            _ => 0,
        }
    }
}

/// One MQTT control packet. Strings, binary data, lists and payloads borrow
/// the bytes it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(
    clippy::large_enum_variant,
    reason = "a packet lives while its bytes are handled; boxing a CONNECT would need alloc"
)]
pub enum Packet<'a> {
    /// See [`Connect`].
    Connect(Connect<'a>),
    /// See [`ConnAck`].
    ConnAck(ConnAck<'a>),
    /// See [`Publish`].
    Publish(Publish<'a>),
    /// QoS 1 acknowledgement.
    PubAck(Ack<'a>),
    /// QoS 2, first step: received.
    PubRec(Ack<'a>),
    /// QoS 2, second step: released.
    PubRel(Ack<'a>),
    /// QoS 2, last step: complete.
    PubComp(Ack<'a>),
    /// See [`Subscribe`].
    Subscribe(Subscribe<'a>),
    /// See [`SubAck`].
    SubAck(SubAck<'a>),
    /// See [`Unsubscribe`].
    Unsubscribe(Unsubscribe<'a>),
    /// See [`UnsubAck`].
    UnsubAck(UnsubAck<'a>),
    /// Keep alive probe.
    PingReq,
    /// Keep alive answer.
    PingResp,
    /// See [`Disconnect`].
    Disconnect(Disconnect<'a>),
    /// See [`Auth`].
    Auth(Auth<'a>),
}

impl<'a> Packet<'a> {
    /// Decodes one whole packet occupying all of `bytes`, as `version` says it
    /// (a CONNECT names its own version and decodes the same under any).
    pub fn decode(bytes: &'a [u8], version: Version) -> Result<Packet<'a>, DecodeError> {
        let mut r = Reader::new(bytes);
        let first = r.u8()?;
        let len = r.varint()? as usize;
        let body = r.take(len)?;
        r.finish()?;
        let kind = PacketType::from_u8(first >> 4)
            .filter(|&k| k != PacketType::Auth || version == Version::V5)
            .ok_or(DecodeError::UnknownPacketType)?;
        let flags = first & 0x0F;
        if kind != PacketType::Publish && flags != kind.flags() {
            return Err(DecodeError::BadFlags);
        }
        let mut r = Reader::new(body);
        let r = &mut r;
        Ok(match kind {
            PacketType::Connect => Packet::Connect(Connect::decode(r)?),
            PacketType::ConnAck => Packet::ConnAck(ConnAck::decode(r, version)?),
            PacketType::Publish => Packet::Publish(Publish::decode(flags, r, version)?),
            PacketType::PubAck => Packet::PubAck(Ack::decode(kind, r, version)?),
            PacketType::PubRec => Packet::PubRec(Ack::decode(kind, r, version)?),
            PacketType::PubRel => Packet::PubRel(Ack::decode(kind, r, version)?),
            PacketType::PubComp => Packet::PubComp(Ack::decode(kind, r, version)?),
            PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(r, version)?),
            PacketType::SubAck => Packet::SubAck(SubAck::decode(r, version)?),
            PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(r, version)?),
            PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode(r, version)?),
            PacketType::PingReq => {
                r.finish()?;
                Packet::PingReq
            }
            PacketType::PingResp => {
                r.finish()?;
                Packet::PingResp
            }
            PacketType::Disconnect => Packet::Disconnect(Disconnect::decode(r, version)?),
            PacketType::Auth => Packet::Auth(Auth::decode(r)?),
        })
    }

    /// The packet's type.
    pub const fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// The packet's properties (none for PINGREQ and PINGRESP).
    pub fn properties(&self) -> Option<&Properties<'a>> {
        match self {
            Packet::Connect(p) => Some(&p.properties),
            Packet::ConnAck(p) => Some(&p.properties),
            Packet::Publish(p) => Some(&p.properties),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                Some(&p.properties)
            }
            Packet::Subscribe(p) => Some(&p.properties),
            Packet::SubAck(p) => Some(&p.properties),
            Packet::Unsubscribe(p) => Some(&p.properties),
            Packet::UnsubAck(p) => Some(&p.properties),
            Packet::PingReq | Packet::PingResp => None,
            Packet::Disconnect(p) => Some(&p.properties),
            Packet::Auth(p) => Some(&p.properties),
        }
    }

    fn properties_mut(&mut self) -> Option<&mut Properties<'a>> {
        match self {
            Packet::Connect(p) => Some(&mut p.properties),
            Packet::ConnAck(p) => Some(&mut p.properties),
            Packet::Publish(p) => Some(&mut p.properties),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                Some(&mut p.properties)
            }
            Packet::Subscribe(p) => Some(&mut p.properties),
            Packet::SubAck(p) => Some(&mut p.properties),
            Packet::Unsubscribe(p) => Some(&mut p.properties),
            Packet::UnsubAck(p) => Some(&mut p.properties),
            Packet::PingReq | Packet::PingResp => None,
            Packet::Disconnect(p) => Some(&mut p.properties),
            Packet::Auth(p) => Some(&mut p.properties),
        }
    }

    /// Checks what encoding for `version` requires.
    fn check(&self, version: Version) -> Result<(), EncodeError> {
        match self {
            Packet::Connect(p) => p.check(),
            Packet::ConnAck(p) => p.check(version),
            Packet::Publish(p) => p.check(version),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                p.check(self.packet_type(), version)
            }
            Packet::Subscribe(p) => p.check(version),
            Packet::SubAck(p) => p.check(version),
            Packet::Unsubscribe(p) => p.check(version),
            Packet::UnsubAck(p) => p.check(version),
            Packet::PingReq | Packet::PingResp => Ok(()),
            Packet::Disconnect(p) => p.check(version),
            Packet::Auth(p) => p.check(version),
        }
    }

    /// The remaining length: bytes after the fixed header.
    fn body_len(&self, version: Version) -> usize {
        match self {
            Packet::Connect(p) => p.body_len(),
            Packet::ConnAck(p) => p.body_len(version),
            Packet::Publish(p) => p.body_len(version),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                p.body_len(version)
            }
            Packet::Subscribe(p) => p.body_len(version),
            Packet::SubAck(p) => p.body_len(version),
            Packet::Unsubscribe(p) => p.body_len(version),
            Packet::UnsubAck(p) => p.body_len(version),
            Packet::PingReq | Packet::PingResp => 0,
            Packet::Disconnect(p) => p.body_len(version),
            Packet::Auth(p) => p.body_len(),
        }
    }

    fn write_body(&self, version: Version, w: &mut Writer<'_>) {
        match self {
            Packet::Connect(p) => p.write_body(w),
            Packet::ConnAck(p) => p.write_body(version, w),
            Packet::Publish(p) => p.write_body(version, w),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                p.write_body(version, w)
            }
            Packet::Subscribe(p) => p.write_body(version, w),
            Packet::SubAck(p) => p.write_body(version, w),
            Packet::Unsubscribe(p) => p.write_body(version, w),
            Packet::UnsubAck(p) => p.write_body(version, w),
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(p) => p.write_body(version, w),
            Packet::Auth(p) => p.write_body(w),
        }
    }

    /// A CONNECT is always encoded in the version it names.
    fn effective(&self, version: Version) -> Version {
        match self {
            Packet::Connect(c) => c.version,
            _ => version,
        }
    }

    /// Bytes [`encode`](Self::encode) writes for `version`.
    pub fn encoded_len(&self, version: Version) -> usize {
        let body = self.body_len(self.effective(version));
        1 + varint_len(body) + body
    }

    /// Encodes the packet for `version` into the front of `buf` and returns
    /// the bytes written; a CONNECT uses the version it names. What 3.1.1 has
    /// no field for (properties, MQTT 5 subscription options) is left out;
    /// what would change meaning without it is refused
    /// ([`EncodeError::NotInVersion`]). On any error `buf` is left untouched.
    pub fn encode(&self, version: Version, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let version = self.effective(version);
        self.check(version)?;
        let body = self.body_len(version);
        let len = 1 + varint_len(body) + body;
        if body > MAX_VARINT as usize {
            return Err(EncodeError::PacketTooLarge {
                len,
                max: MAX_PACKET_SIZE as usize,
            });
        }
        let Some(out) = buf.get_mut(..len) else {
            return Err(EncodeError::BufferTooSmall { needed: len });
        };
        let flags = match self {
            Packet::Publish(p) => p.flags(),
            _ => self.packet_type().flags(),
        };
        let mut w = Writer::new(out);
        w.u8((self.packet_type() as u8) << 4 | flags);
        w.varint(body);
        self.write_body(version, &mut w);
        debug_assert!(
            !w.overflowed() && w.position() == len,
            "encoded length is exact"
        );
        Ok(len)
    }

    /// This packet as it may be sent to a receiver whose maximum packet size
    /// is `max`: unchanged when it fits; otherwise, for packets that carry a
    /// reason string, without it, then also without user properties (as MQTT 5
    /// allows); otherwise [`EncodeError::PacketTooLarge`] (a PUBLISH that does
    /// not fit is not sent at all).
    pub fn fit(self, version: Version, max: u32) -> Result<Packet<'a>, EncodeError> {
        let len = self.encoded_len(version);
        if len <= max as usize {
            return Ok(self);
        }
        let mut packet = self;
        let trims = matches!(
            self,
            Packet::ConnAck(_)
                | Packet::PubAck(_)
                | Packet::PubRec(_)
                | Packet::PubRel(_)
                | Packet::PubComp(_)
                | Packet::SubAck(_)
                | Packet::UnsubAck(_)
                | Packet::Disconnect(_)
                | Packet::Auth(_)
        );
        if trims && let Some(p) = packet.properties_mut() {
            p.reason_string = None;
            if packet.encoded_len(version) <= max as usize {
                return Ok(packet);
            }
            if let Some(p) = packet.properties_mut() {
                *p = p.without_diagnostics();
            }
            if packet.encoded_len(version) <= max as usize {
                return Ok(packet);
            }
        }
        Err(EncodeError::PacketTooLarge {
            len,
            max: max as usize,
        })
    }
}
