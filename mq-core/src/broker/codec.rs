//! The codec of each connection: the mq wire protocol's, MQTT's or NATS's. The broker
//! hands every connection's bytes, timers and writes to its codec through
//! this enum; the router behind them is the same.

use super::ConnId;
use super::conn::{After, Conn};
use super::mesh::link::LinkConn;
use super::mqtt::MqttConn;
use super::nats::NatsConn;
use super::router::Router;
use crate::framing::Framing;
use crate::time::Instant;

/// Which protocol a connection speaks (see [`Broker::accept`](super::Broker::accept)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// The mq wire protocol over this framing (a TCP stream, or a serial
    /// line, which carries one connection after another).
    Mq(Framing),
    /// MQTT 3.1.1 or 5 (the CONNECT says which) over a byte stream.
    Mqtt,
    /// The NATS client protocol (text operations) over a byte stream.
    Nats,
}

impl From<Framing> for Protocol {
    fn from(framing: Framing) -> Self {
        Protocol::Mq(framing)
    }
}

pub(crate) enum Codec {
    Mq(Conn),
    Mqtt(MqttConn),
    Nats(NatsConn),
    /// A node link this broker opened (`Broker::connect_link`).
    Link(LinkConn),
}

impl Codec {
    pub(crate) fn new(id: ConnId, now: Instant, protocol: Protocol, r: &mut Router) -> Self {
        match protocol {
            Protocol::Mq(framing) => Codec::Mq(Conn::new(id, now, framing, r)),
            Protocol::Mqtt => Codec::Mqtt(MqttConn::new(id, now, r)),
            Protocol::Nats => Codec::Nats(NatsConn::new(id, now, r)),
        }
    }

    pub(crate) fn is_mqtt(&self) -> bool {
        matches!(self, Codec::Mqtt(_))
    }

    pub(crate) fn is_nats(&self) -> bool {
        matches!(self, Codec::Nats(_))
    }

    pub(crate) fn input(
        &mut self,
        id: ConnId,
        now: Instant,
        bytes: &[u8],
        r: &mut Router,
    ) -> usize {
        match self {
            Codec::Mq(c) => c.input(id, now, bytes, r),
            Codec::Mqtt(c) => c.input(id, now, bytes, r),
            Codec::Nats(c) => c.input(id, now, bytes, r),
            Codec::Link(c) => c.input(id, now, bytes, r),
        }
    }

    pub(crate) fn on_timer(&mut self, id: ConnId, now: Instant, r: &mut Router) {
        match self {
            Codec::Mq(c) => c.on_timer(id, now, r),
            Codec::Mqtt(c) => c.on_timer(id, now, r),
            Codec::Nats(c) => c.on_timer(id, now, r),
            Codec::Link(c) => c.on_timer(id, now, r),
        }
    }

    /// A serial line between connections (it counts as no connection).
    pub(crate) fn is_idle(&self) -> bool {
        match self {
            Codec::Mq(c) => c.is_idle(),
            Codec::Mqtt(_) | Codec::Nats(_) | Codec::Link(_) => false,
        }
    }

    pub(crate) fn wrote(&mut self, now: Instant) {
        match self {
            Codec::Mq(c) => c.wrote(now),
            Codec::Mqtt(c) => c.wrote(now),
            Codec::Nats(c) => c.wrote(now),
            Codec::Link(c) => c.wrote(now),
        }
    }

    pub(crate) fn closed(&mut self, id: ConnId, r: &mut Router) {
        match self {
            Codec::Mq(c) => c.closed(id, r),
            Codec::Mqtt(c) => c.closed(id, r),
            Codec::Nats(c) => c.closed(id, r),
            Codec::Link(c) => c.closed(id, r),
        }
    }

    pub(crate) fn write(
        &mut self,
        id: ConnId,
        now: Instant,
        buf: &mut [u8],
        r: &mut Router,
    ) -> usize {
        match self {
            Codec::Mq(c) => c.write(id, buf, r),
            Codec::Mqtt(c) => c.write(id, now, buf, r),
            Codec::Nats(c) => c.write(id, now, buf, r),
            Codec::Link(c) => c.write(id, buf, r),
        }
    }

    pub(crate) fn after_write(&mut self, id: ConnId, r: &Router) -> After {
        match self {
            Codec::Mq(c) => c.after_write(id, r),
            Codec::Mqtt(c) => c.after_write(id, r),
            Codec::Nats(c) => c.after_write(id, r),
            Codec::Link(c) => c.after_write(id, r),
        }
    }

    pub(crate) fn line_idle(&mut self, id: ConnId, now: Instant, r: &mut Router) {
        if let Codec::Mq(c) = self {
            c.line_idle(id, now, r);
        }
    }
}
