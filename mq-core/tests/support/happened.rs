//! What a client session's event means to a simulation, copied out of the
//! session. Payloads are a publisher's byte and its message number.

use mq_core::client::{DeliveryId, Event};
use mq_core::wire::QoS;

pub enum Happened {
    Connect,
    Disconnected(mq_core::Reason),
    Published(u32),
    Subscribed,
    Message {
        topic: String,
        publisher: u8,
        n: u32,
        ack: Option<DeliveryId>,
    },
    Other(String),
}

impl Happened {
    /// Panics on a refused publish or subscribe: simulations refuse none.
    pub fn from_event(client: usize, ev: Event<'_>) -> Happened {
        match ev {
            Event::Connect => Happened::Connect,
            Event::Disconnected { reason } => Happened::Disconnected(reason),
            Event::Published { id, .. } => Happened::Published(id.0),
            Event::Subscribed { .. } => Happened::Subscribed,
            Event::PublishRejected { id, reason } => {
                panic!("client {client}: publish {id:?} rejected: {reason}")
            }
            Event::SubscribeRejected { sub, reason } => {
                panic!("client {client}: subscribe {sub:?} rejected: {reason}")
            }
            Event::Message(d) => Happened::Message {
                topic: d.topic.to_string(),
                publisher: d.payload[0],
                n: u32::from_le_bytes(d.payload[1..5].try_into().expect("5-byte payload")),
                ack: (d.qos == QoS::AtLeastOnce).then_some(d.id),
            },
            other => Happened::Other(format!("{other:?}")),
        }
    }
}

/// A payload as `Happened::Message` reads it.
pub fn payload(publisher: u8, n: u32) -> Vec<u8> {
    let mut p = vec![publisher];
    p.extend_from_slice(&n.to_le_bytes());
    p
}
