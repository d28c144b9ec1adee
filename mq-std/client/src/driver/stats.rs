//! What a client reports about itself.

use mq_core::client::{State, Stats as SessionStats};

/// A snapshot of a client's state and counters, as of the last time its I/O
/// loop ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Where the session is in its connection lifecycle.
    pub state: State,
    /// The session's counters (frames, publishes, deliveries, reconnects, ...).
    pub session: SessionStats,
    /// Publishes in the outbox: not yet sent, or QoS 1 awaiting `PubAck`.
    pub outbox_messages: usize,
    /// Outbox bytes in use.
    pub outbox_bytes: usize,
    /// Inbox bytes in use (received, not yet handed to a subscription).
    pub inbox_bytes: usize,
    /// QoS 1 deliveries not settled yet, and acks waiting to be sent.
    pub held: usize,
    /// Subscriptions with a live handle.
    pub subscriptions: usize,
    /// Publishers waiting for outbox room.
    pub waiting_publishers: usize,
    /// QoS 0 publishes that returned at once (nobody waits for their fate) and
    /// could not be sent: too large for the broker's frames, or still on their
    /// way when the session closed.
    pub unsent_qos0: u64,
    /// Bytes of publishes on their way from the application to the session
    /// (bounded by `ClientOptions::outbox_bytes`).
    pub room_bytes: usize,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            state: State::Idle,
            session: SessionStats::default(),
            outbox_messages: 0,
            outbox_bytes: 0,
            inbox_bytes: 0,
            held: 0,
            subscriptions: 0,
            waiting_publishers: 0,
            unsent_qos0: 0,
            room_bytes: 0,
        }
    }
}
