//! The workloads, the systems they run against, and what each system runs them
//! as (or why it cannot).

use std::fmt;

/// The shape of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Publisher to receivers, fire and forget; rates at the receivers.
    Stream(Shape),
    /// The publisher waits for the broker's acknowledgements, a window of them
    /// outstanding; durable where the system offers it.
    Acked,
    /// Request-reply round trips, one at a time.
    RoundTrip,
    /// Peer to peer with no broker process, at least once: a publisher's
    /// peer sends straight to the receivers' peers, each receiver counts
    /// distinct messages (losses and duplicates are reported).
    Peer(Shape),
    /// liner's seed benchmark (`bench_pair_sendto_*`): peer to peer, at least
    /// once, 1-to-1, cycles of this many messages sent in a loop, each cycle
    /// timed from its first send to its last arrival, with [`CYCLE_PAUSE`]
    /// between cycles; `count` is the cycles' total.
    Cycles(u64),
}

/// The pause between two of liner's seed cycles (the seed sleeps a second).
pub const CYCLE_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Who receives a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One receiver.
    One,
    /// Every receiver gets every message.
    FanOut(usize),
    /// The receivers compete: each message goes to one of them.
    Group(usize),
}

impl Shape {
    pub fn receivers(self) -> usize {
        match self {
            Shape::One => 1,
            Shape::FanOut(n) | Shape::Group(n) => n,
        }
    }

    /// Deliveries per published message.
    pub fn fanout(self) -> u64 {
        match self {
            Shape::FanOut(n) => n as u64,
            Shape::One | Shape::Group(_) => 1,
        }
    }
}

/// One workload of a run.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Short id for `--workloads`: `1`, `2a`, `2b`, `3`, ...
    pub id: &'static str,
    pub title: &'static str,
    pub kind: Kind,
    /// Payload bytes.
    pub size: usize,
    /// Messages published (round trips for [`Kind::RoundTrip`]).
    pub count: u64,
    /// The publisher is a plain loop: each publish call awaited before the
    /// next (a user's first program), instead of a window of them in flight.
    pub plain: bool,
}

impl Workload {
    /// Deliveries (acks, round trips) expected when `sent` messages were sent.
    pub fn expected(&self, sent: u64) -> u64 {
        match self.kind {
            Kind::Stream(shape) | Kind::Peer(shape) => sent * shape.fanout(),
            Kind::Acked | Kind::RoundTrip | Kind::Cycles(_) => sent,
        }
    }
}

/// How many messages a run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// The counts.
    Full,
    /// A tenth, for a quick look.
    Quick,
    /// A few thousand: does the harness still work (CI).
    Smoke,
}

/// Every workload at `scale`.
pub fn workloads(scale: Scale) -> Vec<Workload> {
    let n = |full: u64, quick: u64, smoke: u64| match scale {
        Scale::Full => full,
        Scale::Quick => quick,
        Scale::Smoke => smoke,
    };
    vec![
        Workload {
            id: "1",
            title: "1-to-1, fire and forget, 100 B",
            kind: Kind::Stream(Shape::One),
            size: 100,
            count: n(1_000_000, 100_000, 2_000),
            plain: false,
        },
        Workload {
            id: "1p",
            title: "1-to-1, fire and forget, 100 B, plain loop (one publish awaited at a time)",
            kind: Kind::Stream(Shape::One),
            size: 100,
            count: n(1_000_000, 100_000, 2_000),
            plain: true,
        },
        Workload {
            id: "2a",
            title: "1-to-1, fire and forget, 1 KiB",
            kind: Kind::Stream(Shape::One),
            size: 1024,
            count: n(500_000, 50_000, 1_000),
            plain: false,
        },
        Workload {
            id: "2b",
            title: "1-to-1, fire and forget, 64 KiB",
            kind: Kind::Stream(Shape::One),
            size: 64 * 1024,
            count: n(20_000, 2_000, 100),
            plain: false,
        },
        Workload {
            id: "3",
            title: "acknowledged publish, window 256, durable where offered, 100 B",
            kind: Kind::Acked,
            size: 100,
            count: n(200_000, 20_000, 1_000),
            plain: false,
        },
        Workload {
            id: "4",
            title: "request-reply round trips, one at a time, 100 B",
            kind: Kind::RoundTrip,
            size: 100,
            count: n(10_000, 2_000, 200),
            plain: false,
        },
        Workload {
            id: "5",
            title: "fan-out 1 to 4, fire and forget, 100 B",
            kind: Kind::Stream(Shape::FanOut(4)),
            size: 100,
            count: n(250_000, 25_000, 1_000),
            plain: false,
        },
        Workload {
            id: "6",
            title: "competing consumers: 1 publisher, 4 group members, 100 B",
            kind: Kind::Stream(Shape::Group(4)),
            size: 100,
            count: n(1_000_000, 100_000, 2_000),
            plain: false,
        },
        Workload {
            id: "7",
            title: "peer to peer, at least once, send_to 1-to-1, 100 B",
            kind: Kind::Peer(Shape::One),
            size: 100,
            count: n(200_000, 20_000, 1_000),
            plain: false,
        },
        Workload {
            id: "8",
            title: "peer to peer, at least once, send_all fan-out 1 to 4, 100 B",
            kind: Kind::Peer(Shape::FanOut(4)),
            size: 100,
            count: n(50_000, 5_000, 500),
            plain: false,
        },
        Workload {
            id: "9",
            title: "peer to peer, at least once, liner's seed: send_to of 1 KiB in cycles of 10,000 (1,000 with --smoke)",
            kind: Kind::Cycles(n(10_000, 10_000, 1_000)),
            size: 1024,
            count: n(100_000, 30_000, 2_000),
            plain: false,
        },
    ]
}

/// What mq-peer runs the peer-to-peer workloads as.
const PEER_MQ: &str = "QoS 1 publish to a subscriber at another peer (WAL fsync per group \
     commit at both), window 1,024, acked by the receiver";
const PEER_MQ_FANOUT: &str = "QoS 1 publish to a subscriber at each of 4 peers (WAL fsync per \
     group commit), window 1,024, acked by the receivers";

/// The systems measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum System {
    Mq,
    /// `mqd` serving MQTT, with the MQTT clients Mosquitto runs with.
    MqMqtt,
    /// `mqd` serving the NATS client protocol, with the client NATS runs with.
    MqNats,
    /// mq over TLS (`listen_tls`), the same client: the cost of encryption.
    MqTls,
    Nats,
    Mosquitto,
    Redis,
    ZeroMq,
    Liner,
    Tcp,
    /// mq's desktop peers (`mq_std::peer`): a node in each application's
    /// process, no `mqd`.
    MqPeer,
}

impl System {
    pub const ALL: [System; 11] = [
        System::Mq,
        System::MqMqtt,
        System::MqNats,
        System::MqTls,
        System::Nats,
        System::Mosquitto,
        System::Redis,
        System::ZeroMq,
        System::Liner,
        System::Tcp,
        System::MqPeer,
    ];

    /// The id used by `--systems`.
    pub fn id(self) -> &'static str {
        match self {
            System::Mq => "mq",
            System::MqMqtt => "mq-mqtt",
            System::MqNats => "mq-nats",
            System::MqTls => "mq-tls",
            System::Nats => "nats",
            System::Mosquitto => "mosquitto",
            System::Redis => "redis",
            System::ZeroMq => "zeromq",
            System::Liner => "liner",
            System::Tcp => "tcp",
            System::MqPeer => "mq-peer",
        }
    }

    /// What this system runs workload `w` as, or why it cannot.
    pub fn mode(self, w: &Workload) -> Result<&'static str, &'static str> {
        use Kind::*;
        use Shape::*;
        match (self, w.kind) {
            (System::MqPeer, Peer(One)) => Ok(PEER_MQ),
            (System::MqPeer, Peer(_)) => Ok(PEER_MQ_FANOUT),
            (System::MqPeer, Cycles(_)) => Ok(PEER_MQ),
            (System::MqPeer, _) => Err("mq-peer runs the peer-to-peer workloads (7, 8, 9)"),
            (System::Liner, Peer(FanOut(_))) => Ok("send_all, at least once"),
            (System::Liner, Peer(_) | Cycles(_)) => Ok("send_to, at least once"),
            (_, Peer(_) | Cycles(_)) => Err("peer to peer, no broker: mq-peer and liner only"),
            (System::Redis, Stream(One)) if w.plain => Ok("pub/sub, PUBLISH awaited one at a time"),
            (System::Mq, Stream(Group(_))) => Ok("QoS 0, group subscription"),
            (System::Mq, Stream(_)) => Ok("QoS 0"),
            (System::Mq, Acked) => Ok("QoS 1, WAL, fsync per group commit"),
            (System::Mq, RoundTrip) => Ok("QoS 0 publish + subscription each way"),
            (System::MqTls, Stream(Group(_))) => Ok("TLS 1.3 (rustls), QoS 0, group"),
            (System::MqTls, Stream(_)) => Ok("TLS 1.3 (rustls, ring), QoS 0"),
            (System::MqTls, Acked) => Ok("TLS 1.3, QoS 1, WAL, fsync per group commit"),
            (System::MqTls, RoundTrip) => Ok("TLS 1.3, QoS 0 publish + subscription each way"),
            (System::MqMqtt, Stream(Group(_))) => Ok("MQTT, QoS 0, $share subscription"),
            (System::MqMqtt, Stream(_)) => Ok("MQTT (rumqttc), QoS 0"),
            (System::MqMqtt, Acked) => Ok("MQTT QoS 1, WAL, fsync per group commit"),
            (System::MqMqtt, RoundTrip) => Ok("MQTT QoS 0 publish + subscription each way"),
            (System::MqNats, Stream(Group(_))) => Ok("NATS (async-nats), queue group"),
            (System::MqNats, Stream(_)) => Ok("NATS (async-nats) pub/sub"),
            (System::MqNats, Acked) => Err(
                "no JetStream: mqd's NATS messages are at most once (its acknowledged \
                 publishes are the mq protocol's and MQTT's QoS 1)",
            ),
            (System::MqNats, RoundTrip) => Ok("NATS (async-nats) request-reply"),
            (System::Nats, Stream(Group(_))) => Ok("core, queue group"),
            (System::Nats, Stream(_)) => Ok("core pub/sub"),
            (System::Nats, Acked) => Ok("JetStream, file storage"),
            (System::Nats, RoundTrip) => Ok("core request-reply"),
            (System::Mosquitto, Stream(Group(_))) => Ok("QoS 0, $share subscription"),
            (System::Mosquitto, Stream(_)) => Ok("QoS 0"),
            (System::Mosquitto, Acked) => Ok("QoS 1"),
            (System::Mosquitto, RoundTrip) => Ok("QoS 0 publish + subscription each way"),
            (System::Redis, Stream(Group(_))) => {
                Ok("streams: XADD in pipelines of 64, XREADGROUP NOACK")
            }
            (System::Redis, Stream(_)) => Ok("pub/sub, PUBLISH in pipelines of 64"),
            (System::Redis, Acked) => Ok("streams: XADD in pipelines of 64"),
            (System::Redis, RoundTrip) => Ok("pub/sub each way"),
            (System::ZeroMq, Stream(Group(_))) => Ok("PUSH/PULL, no broker"),
            (System::ZeroMq, Stream(_)) => Ok("PUB/SUB, no broker"),
            (System::ZeroMq, Acked) => {
                Err("no broker to store or acknowledge (sockets only: the no-broker bound)")
            }
            (System::ZeroMq, RoundTrip) => Ok("REQ/REP, no broker"),
            (System::Liner, Stream(Group(_))) => Ok("send_to a topic of 4 subscribers"),
            (System::Liner, Stream(FanOut(_))) => Ok("send_all"),
            (System::Liner, Stream(One)) => Ok("send_to"),
            (System::Liner, Acked) => Err(
                "no acknowledgement reaches the sender: send_to returns once queued \
                 (at-least-once is a resend from the sender's store)",
            ),
            (System::Liner, RoundTrip) => Ok("send_to each way"),
            (System::Tcp, Stream(Group(_))) => Ok("batches round-robin over 4 connections"),
            (System::Tcp, Stream(FanOut(_))) => Ok("each batch to 4 connections"),
            (System::Tcp, Stream(One)) => Ok("length-prefixed frames, 64 KiB writes"),
            (System::Tcp, Acked) => Err("no broker: nothing stores or acknowledges"),
            (System::Tcp, RoundTrip) => Ok("ping-pong of one frame"),
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            System::Mq => "mq",
            System::MqMqtt => "mq (MQTT)",
            System::MqNats => "mq (NATS)",
            System::MqTls => "mq (TLS)",
            System::Nats => "NATS",
            System::Mosquitto => "Mosquitto",
            System::Redis => "Redis",
            System::ZeroMq => "ZeroMQ",
            System::Liner => "liner",
            System::Tcp => "TCP limit",
            System::MqPeer => "mq peers",
        })
    }
}
