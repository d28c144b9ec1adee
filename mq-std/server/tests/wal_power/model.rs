//! What the test knows, as the clients and the disk saw it: every publish and
//! whether its record was durable, every queue and the acks its subscribers
//! made. The checks after a power cut read this.

use std::collections::BTreeMap;
use std::time::Duration;

use mq_core::broker::ConnId;
use mq_core::wire::QoS;

/// A message: its publisher and number, carried at the start of its payload.
pub type Msg = (u8, u32);

/// The topics publishes go to.
pub const TOPICS: [&str; 4] = ["data.a", "data.b", "jobs.x", "misc.z"];

/// `msg`'s payload: publisher, number, then `pad` filler bytes.
pub fn payload(msg: Msg, pad: usize) -> Vec<u8> {
    let mut p = vec![msg.0];
    p.extend_from_slice(&msg.1.to_le_bytes());
    p.resize(5 + pad, 0x5a);
    p
}

/// The message a payload carries.
pub fn msg_of(payload: &[u8]) -> Msg {
    let n = u32::from_le_bytes(payload[1..5].try_into().expect("a test payload"));
    (payload[0], n)
}

/// A publish as the test saw it.
#[derive(Debug, Clone)]
pub struct Published {
    pub topic: &'static str,
    pub qos: QoS,
    /// Filler bytes after the message number.
    pub pad: usize,
    /// The step it was sent at.
    pub sent: u64,
    /// Its record is on disk for sure (synced, and its file's name too).
    pub durable: bool,
    /// When the publisher got its acknowledgement.
    pub acked_at: Option<Duration>,
}

/// What a subscriber's ack of a message amounts to on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckState {
    /// Its record is not known durable yet.
    Pending,
    /// Its record is durable: the message must never be delivered again.
    Durable,
    /// A power cut came before its record was known durable: it may or may
    /// not have survived.
    Uncertain,
}

/// A durable queue: a persistent subscriber's subscription, or a group's.
#[derive(Debug)]
pub struct Queue {
    pub name: &'static str,
    pub filter: &'static str,
    pub group: Option<&'static str>,
    /// The step from which its subscription is known durable: every durable
    /// QoS 1 message sent later to a matching topic is owed to it.
    pub since: Option<u64>,
    pub acks: BTreeMap<Msg, AckState>,
}

impl Queue {
    pub fn new(name: &'static str, filter: &'static str, group: Option<&'static str>) -> Queue {
        Queue {
            name,
            filter,
            group,
            since: None,
            acks: BTreeMap::new(),
        }
    }

    /// Whether `p` is owed to this queue: durable, QoS 1, on a matching
    /// topic, sent once the subscription was durable.
    pub fn owes(&self, p: &Published) -> bool {
        let filter = mq_core::topic::Filter::new(self.filter).expect("a test filter");
        let topic = mq_core::topic::Topic::new(p.topic).expect("a test topic");
        p.durable
            && p.qos == QoS::AtLeastOnce
            && self.since.is_some_and(|s| s < p.sent)
            && filter.matches(topic)
    }
}

/// What a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Publishes on a clean session.
    Publisher(u8),
    /// Subscribes on a persistent session, for queue `queue`.
    Subscriber { queue: usize },
}

/// A client of the broker (it lives outside the broker's process: a power
/// cut of the broker's machine takes only its connection).
#[derive(Debug)]
pub struct Client {
    pub name: &'static str,
    pub role: Role,
    pub conn: Option<ConnId>,
    /// Connected only to look at its queue after a power cut.
    pub auditor: bool,
    /// Its subscription's record is known durable: its session must be
    /// found after a power cut.
    pub durable_session: bool,
    /// Deliveries on this connection not acked yet: tag and message.
    pub unacked: Vec<(u64, Msg)>,
    /// Publisher: the next message number, and its outbox: QoS 1 publishes
    /// (by publish id) awaiting an ack, sent again after each reconnection
    /// with the same producer sequence, as the clients do.
    pub next: u32,
    pub in_flight: BTreeMap<u32, Msg>,
}

impl Client {
    pub fn new(name: &'static str, role: Role) -> Client {
        Client {
            name,
            role,
            conn: None,
            auditor: false,
            durable_session: false,
            unacked: Vec::new(),
            next: 1,
            in_flight: BTreeMap::new(),
        }
    }

    /// The queue it consumes from, if it subscribes.
    pub fn queue(&self) -> Option<usize> {
        match self.role {
            Role::Subscriber { queue } => Some(queue),
            Role::Publisher(_) => None,
        }
    }
}

/// A record whose durability the test waits to learn, with its token.
#[derive(Debug, Clone, Copy)]
pub enum Awaited {
    Publish(Msg),
    Ack(usize, Msg),
    Subscribe(usize),
}

/// The clients and queues every seed starts with: two publishers, two
/// persistent fan-out subscribers, a group of two, and an auditor on `>`
/// that connects only after power cuts (so it holds every message).
pub fn cast() -> (Vec<Client>, Vec<Queue>) {
    let queues = vec![
        Queue::new("s1", "data.>", None),
        Queue::new("s2", "data.a", None),
        Queue::new("workers", "jobs.>", Some("workers")),
        Queue::new("audit", ">", None),
    ];
    let mut clients = vec![
        Client::new("p1", Role::Publisher(1)),
        Client::new("p2", Role::Publisher(2)),
        Client::new("s1", Role::Subscriber { queue: 0 }),
        Client::new("s2", Role::Subscriber { queue: 1 }),
        Client::new("w1", Role::Subscriber { queue: 2 }),
        Client::new("w2", Role::Subscriber { queue: 2 }),
        Client::new("audit", Role::Subscriber { queue: 3 }),
    ];
    clients[6].auditor = true;
    (clients, queues)
}
