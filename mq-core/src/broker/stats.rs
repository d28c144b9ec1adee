//! Counters an operator would graph.

/// Broker counters. Totals only grow; `current_*` values go up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Open connections.
    pub current_connections: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Sessions (connected or persistent and away).
    pub current_sessions: u64,
    /// Topics the broker knows.
    pub current_topics: u64,
    /// Subscriptions (a group member counts once).
    pub current_subscriptions: u64,
    /// Messages waiting in queues (all subscriptions and groups).
    pub current_queued: u64,
    /// Deliveries sent and not yet acked.
    pub current_inflight: u64,
    /// Messages kept for replay.
    pub current_retained: u64,
    /// Messages accepted from publishers.
    pub messages_in: u64,
    /// Payload bytes accepted.
    pub bytes_in: u64,
    /// Deliveries sent (redeliveries included).
    pub messages_out: u64,
    /// Payload bytes delivered.
    pub bytes_out: u64,
    /// Deliveries acked.
    pub acked: u64,
    /// Deliveries nacked.
    pub nacked: u64,
    /// Redeliveries (attempt > 1).
    pub redelivered: u64,
    /// Ack deadlines missed by a delivery that stayed with its subscriber
    /// (each counts an attempt; see `Config::ack_timeout`).
    pub ack_timeouts: u64,
    /// Messages dropped because their TTL ran out.
    pub expired: u64,
    /// Messages dropped by an overflow policy (`DropOldest`, or QoS 0 into a full
    /// `RejectNew` queue).
    pub dropped: u64,
    /// Publishes refused (any reason).
    pub rejected: u64,
    /// Queues shed as a slow consumer's ([`Overflow::Pace`](super::Overflow::Pace)).
    pub shed: u64,
    /// Messages moved to a dead-letter topic.
    pub dead_lettered: u64,
    /// Publishes recognised as duplicates.
    pub duplicates: u64,
    /// Frames refused as malformed or out of place.
    pub protocol_errors: u64,
    /// Handshakes refused for a bad token, and publishes or subscribes refused for
    /// missing permissions.
    pub auth_failures: u64,
    /// Store records emitted.
    pub store_ops: u64,
    /// Open MQTT connections (also counted in `current_connections`).
    pub current_mqtt_connections: u64,
    /// MQTT connections accepted since start (also in `connections_total`).
    pub mqtt_connections_total: u64,
    /// Open NATS connections (also counted in `current_connections`).
    pub current_nats_connections: u64,
    /// NATS connections accepted since start (also in `connections_total`).
    pub nats_connections_total: u64,
    /// Topics with a retained message (MQTT's retained slot).
    pub current_retained_slots: u64,
    /// Will messages published.
    pub wills_published: u64,
    /// Topics forgotten after keeping nothing for their `forget_after`
    /// ([`Retention::forget_after`](super::Retention::forget_after)).
    pub topics_forgotten: u64,
}
