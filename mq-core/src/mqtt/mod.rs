//! MQTT 3.1.1 and 5 packets, sans-IO and without allocation: the codec a
//! second protocol front of the broker (and one day a firmware client) speaks.
//!
//! - [`Packet`]: all fifteen control packets. [`Packet::decode`] takes one whole
//!   packet and the connection's [`Version`] and returns a packet whose
//!   strings, binary data, lists and payload borrow the input; it checks
//!   everything the specification requires a receiver to check (fixed-header
//!   flags, variable byte integers of at most four bytes in their shortest
//!   form, UTF-8 strings without U+0000, properties allowed for the packet type
//!   and not repeated, their values, reason codes, packet identifiers, reserved
//!   bits, QoS 3, the will flags, wildcards in topic names, empty SUBSCRIBE and
//!   UNSUBSCRIBE payloads, ...). A [`DecodeError`] names the MQTT 5 reason code
//!   to answer with and the 3.1.1 behaviour. Topic filters are checked one by
//!   one by [`topic::MqttFilter::parse`], since a bad filter is refused in the
//!   SUBACK rather than by closing.
//! - [`Packet::encoded_len`] and [`Packet::encode`] write into a caller buffer
//!   (untouched, with the size needed, when too small); [`Packet::fit`] drops
//!   the reason string and then user properties to fit the peer's maximum
//!   packet size, as MQTT 5 allows. Encoding refuses what a receiver would
//!   reject ([`EncodeError`]).
//! - [`stream::PacketDecoder`]: splits a byte stream into packets, refusing one
//!   larger than the maximum packet size from its fixed header alone.
//! - [`ReasonCode`] (every MQTT 5 code by name, with the packets allowed to
//!   carry each), [`ConnectReturnCode`] (3.1.1), and [`Answer`]: what to send for
//!   each mq refusal [`Reason`](crate::wire::Reason), in either version.
//! - [`topic`]: MQTT topic names and filters, and their mapping to and from mq
//!   topics and filters (the table is in its docs).
//!
//! # Versions
//!
//! [`Version::V5`] is MQTT 5, [`Version::V3_1_1`] MQTT 3.1.1 (protocol level 4)
//! and [`Version::V3_1`] the older MQTT 3.1 (`MQIsdp`, level 3), which has the
//! wire format of 3.1.1 but no session-present flag. A connection's version is
//! the one its CONNECT names ([`Connect::version`]; [`connect_version`] reads
//! it from a CONNECT that fails to decode, to answer in the right version).
//! The types are MQTT 5's; a 3.1.1 packet decodes with no properties and
//! default reason codes (3.1.1 CONNACK return codes and SUBACK failures map to
//! their MQTT 5 codes), and encoding for 3.1.1 leaves out what 3.1.1 has no
//! field for.
//!
//! # Left to the connection
//!
//! Decoding checks each packet alone. What depends on the connection's state
//! or direction is the connection codec's to check: the first packet is a
//! CONNECT and no other CONNECT follows; a server receives only what
//! [`PacketType::sent_by_client`] allows; topic aliases are within the
//! announced maximum (and an aliased empty topic names a known alias); a
//! client's PUBLISH carries no subscription identifier; a DISCONNECT does not
//! set a session expiry after a CONNECT said 0; the receive maximum; and,
//! optionally, that a payload flagged UTF-8 is (0x99 otherwise).
//!
//! This module does not depend on the broker: the broker's MQTT codec turns
//! packets into its commands and its outputs into packets.

mod bytes;
mod connect;
mod disconnect;
mod error;
mod list;
mod packet;
mod properties;
mod publish;
mod reason;
mod refusal;
pub mod stream;
mod subscribe;
pub mod topic;

#[cfg(all(test, feature = "std"))]
mod tests;

pub use bytes::{MAX_FIELD, MAX_VARINT};
pub use connect::{ConnAck, Connect, Will, connect_version};
pub use disconnect::{Auth, Disconnect};
pub use error::{DecodeError, EncodeError};
pub use list::{List, ListItem, ListIter};
pub use packet::{MAX_PACKET_SIZE, Packet, PacketType};
pub use properties::{PayloadFormat, Properties, SubscriptionIds, UserProperties};
pub use publish::{Ack, Publish, QosPid};
pub use reason::{ConnectReturnCode, ReasonCode};
pub use refusal::{Answer, V3Refusal};
pub use subscribe::{
    RetainHandling, SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe,
};

/// A packet identifier: never zero.
pub type PacketId = core::num::NonZeroU16;

/// The MQTT protocol version a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Version {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V3_1,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    V3_1_1,
    /// MQTT 5: protocol name `MQTT`, level 5.
    V5,
}

/// An MQTT delivery guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum QoS {
    /// 0: at most once.
    AtMostOnce = 0,
    /// 1: at least once.
    AtLeastOnce = 1,
    /// 2: exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS with these two bits (3 is not one).
    pub const fn from_bits(bits: u8) -> Option<QoS> {
        match bits {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}
