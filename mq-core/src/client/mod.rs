//! The client session: one client's side of the protocol, as a sans-IO state machine.
//!
//! [`Session`] speaks the [`wire`](crate::wire) protocol to one broker over whatever
//! transport the adapter owns (TCP, a UART, a test harness). It keeps everything a
//! client must remember across reconnects (unacknowledged publishes, subscriptions,
//! deliveries the application still holds) in caller storage and fixed tables, and
//! never allocates, reads a clock or does I/O.
//!
//! [`Session`] is a thin conductor; each concern has a file of its own:
//!
//! - `session`: the [`Session`] type, its polling contract, input dispatch.
//! - `connection`: the lifecycle (connect, handshake, keepalive, timeouts,
//!   reconnect with backoff, close) and the connection's state.
//! - `receive`: frames in, deliveries into the inbox (reassembled or chunked),
//!   acks and nacks.
//! - `publish`: publishes into the outbox, their frames, the broker's answers.
//! - `subscribe`: subscriptions and credit, the broker's answers.
//! - `request`: request-reply: the session's reply subscription, correlation
//!   ids, the table of requests waiting for their reply, and replying.
//! - `transmit`: which frame goes out next, and what writing it changes.
//! - `event`: [`Event`]s and the queue that keeps them in order with messages.
//!
//! and the tables and storage they work on:
//!
//! - `outbox`: publishes waiting to be sent or acknowledged (caller storage).
//! - `inbox`: received deliveries waiting for the application (caller storage).
//! - `subscriptions`: the subscription table.
//! - `held`: QoS 1 deliveries the application has not acked, and the ring of
//!   recently acked ones that suppresses redeliveries.
//! - `backoff`: reconnect delays with jitter.
//! - `error`: one error type per operation.

mod admin;
pub(crate) mod backoff;
mod connection;
mod error;
mod event;
mod fingerprints;
mod held;
mod inbox;
mod le;
mod outbox;
mod publish;
mod receive;
mod records;
mod request;
mod session;
mod subscribe;
mod subscriptions;
#[cfg(test)]
pub(crate) mod tests;
mod transmit;

use core::fmt;
use core::time::Duration;

use crate::wire::{Headers, Limits, Meta, QoS, SessionMode, Start};

pub use crate::framing::{Framer, Framing, SerialOnly, StreamOnly};
pub use admin::{AdminError, AdminId};
pub use error::{
    AckError, Backpressure, ConfigError, CreditError, PublishError, RequestError, SubscribeError,
    UnsubscribeError,
};
pub use event::{Chunk, Delivery, Event};
pub use inbox::RECORD_OVERHEAD as INBOX_RECORD_OVERHEAD;
pub use outbox::RECORD_OVERHEAD as OUTBOX_RECORD_OVERHEAD;
pub use request::{MAX_CORRELATION_LEN, ReplyAddress, RequestFailure};
pub use session::Session;
pub use subscriptions::{MAX_FILTER_LEN, MAX_GROUP_LEN};

/// Longest client id, in bytes.
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// Longest auth token, in bytes.
pub const MAX_TOKEN_LEN: usize = 128;

/// How a [`Session`] is configured; fixed for its lifetime. `Debug` does not show
/// the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// The client's identity; the broker keys sessions by it.
    pub client_id: heapless::String<MAX_CLIENT_ID_LEN>,
    /// Auth token sent in `Hello`, if the broker requires one.
    pub token: Option<heapless::String<MAX_TOKEN_LEN>>,
    /// Clean or resumed session.
    pub mode: SessionMode,
    /// What this client accepts: largest frame it receives (lowered to what the
    /// inbox can hold), default credit per subscription, keepalive.
    pub limits: Limits,
    /// Largest frame this client produces (encoded, before framing). Publishes are
    /// fragmented to the smaller of this and the broker's maximum frame, so
    /// [`Session::poll_transmit`] needs a buffer of only
    /// [`Framing::max_framed_len`]`(max_frame_out)` bytes: a device need not hold
    /// a whole broker frame. Control frames (`Hello`, `Subscribe`, ...: a few
    /// hundred bytes at most) are not fragmented. Default `u32::MAX`: the broker's
    /// limit alone.
    pub max_frame_out: u32,
    /// Producer id for deduplicated publishing. When set, every QoS 1 publish
    /// carries `Dedup { producer, seq }` with `seq` 1, 2, 3, ... assigned by
    /// [`Session::publish`]. The sequence restarts with each `Session`, so use a
    /// producer id that is fresh for this session's lifetime (or one the broker's
    /// dedup window has forgotten).
    pub producer: Option<u64>,
    /// First reconnect delay; doubled per failed attempt.
    pub reconnect_min: Duration,
    /// Largest reconnect delay (before jitter of ±25 %).
    pub reconnect_max: Duration,
    /// Time from [`Event::Connect`] to `Welcome`; zero disables the timeout.
    pub connect_timeout: Duration,
    /// Seed for the reconnect jitter.
    pub seed: u64,
}

impl Config {
    /// A configuration for `client_id` with defaults: resumed session, 64 KiB
    /// frames received, outgoing frames as large as the broker takes, credit 32, keepalive 30 s, reconnect 100 ms to 30 s, connect timeout
    /// 10 s, no token, no producer id.
    pub fn new(client_id: &str) -> Result<Config, ConfigError> {
        let client_id =
            heapless::String::try_from(client_id).map_err(|_| ConfigError::ClientIdTooLong)?;
        Ok(Config {
            client_id,
            token: None,
            mode: SessionMode::Resume,
            limits: Limits {
                max_frame: 64 * 1024,
                credit: 32,
                keepalive_ms: 30_000,
            },
            max_frame_out: u32::MAX,
            producer: None,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            seed: 0,
        })
    }

    /// Sets the auth token.
    pub fn with_token(mut self, token: &str) -> Result<Config, ConfigError> {
        self.token =
            Some(heapless::String::try_from(token).map_err(|_| ConfigError::TokenTooLong)?);
        Ok(self)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("client_id", &self.client_id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("mode", &self.mode)
            .field("limits", &self.limits)
            .field("max_frame_out", &self.max_frame_out)
            .field("producer", &self.producer)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("connect_timeout", &self.connect_timeout)
            .field("seed", &self.seed)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Config {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Config {{ client_id: {}, token: {}, mode: {}, limits: {}, max_frame_out: {}, producer: {}, reconnect: {}..{}, connect_timeout: {} }}",
            self.client_id.as_str(),
            self.token.is_some(),
            self.mode,
            self.limits,
            self.max_frame_out,
            self.producer,
            self.reconnect_min,
            self.reconnect_max,
            self.connect_timeout,
        )
    }
}

/// Identifies a publish until the broker acknowledges it: the wire `Publish::id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PublishId(pub u32);

/// Identifies a subscription: the wire `Subscribe::sub`, chosen by the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubId(pub u32);

/// Identifies a delivery to [`Session::ack`] / [`Session::nack`]. Opaque: a slot of
/// the held table and its generation, so an id never names a later delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeliveryId(pub(crate) u64);

impl DeliveryId {
    /// The id of every QoS 0 delivery: nothing to acknowledge.
    pub const NONE: DeliveryId = DeliveryId(0);

    /// Whether the delivery needs an ack or nack (QoS 1).
    pub const fn needs_ack(self) -> bool {
        self.0 != 0
    }
}

/// Identifies a request of [`Session::request`] until its reply or failure: the
/// correlation id it carries (on the wire its 8 bytes, big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RequestId(pub u64);

/// Options of [`Session::publish`]. The default: QoS 0, no properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PublishOptions<'a> {
    /// Delivery guarantee.
    pub qos: QoS,
    /// Properties: TTL, priority, reply-to, correlation, headers.
    pub meta: Meta<'a>,
}

impl Default for PublishOptions<'_> {
    fn default() -> Self {
        PublishOptions {
            qos: QoS::AtMostOnce,
            meta: Meta::default(),
        }
    }
}

/// Options of [`Session::subscribe`]. The default: no group, [`Start::New`], QoS 1
/// (deliver with whatever QoS the publisher used), the default credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubscribeOptions<'a> {
    /// Join this group (competing consumers) instead of receiving every message.
    pub group: Option<&'a str>,
    /// Where the subscription starts reading (first subscribe only; a
    /// resubscription after a lost session uses [`Start::Cursor`]).
    pub start: Start,
    /// Highest QoS wanted.
    pub qos: QoS,
    /// Deliveries the application can hold unacked; 0 means `Config::limits.credit`.
    pub credit: u32,
}

/// Options of [`Session::request`]. The default: QoS 0, no TTL, priority 0, no
/// headers, no timeout. The reply-to topic and the correlation id are the
/// session's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RequestOptions<'a> {
    /// Delivery guarantee of the request.
    pub qos: QoS,
    /// Time to live of the request, in milliseconds.
    pub ttl_ms: Option<u32>,
    /// Priority of the request.
    pub priority: u8,
    /// Application headers of the request.
    pub headers: Headers<'a>,
    /// How long to wait for the reply: then [`Event::RequestFailed`] with
    /// [`RequestFailure::Timeout`]. `None` waits as long as the session lasts.
    pub timeout: Option<Duration>,
}

impl Default for RequestOptions<'_> {
    fn default() -> Self {
        RequestOptions {
            qos: QoS::AtMostOnce,
            ttl_ms: None,
            priority: 0,
            headers: Headers::EMPTY,
            timeout: None,
        }
    }
}

impl Default for SubscribeOptions<'_> {
    fn default() -> Self {
        SubscribeOptions {
            group: None,
            start: Start::New,
            qos: QoS::AtLeastOnce,
            credit: 0,
        }
    }
}

/// Where the session is in its connection lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum State {
    /// Created; [`Session::connect`] not called yet.
    Idle,
    /// [`Event::Connect`] emitted; waiting for [`Session::handle_connected`].
    Connecting,
    /// Transport up, `Hello` queued or sent; waiting for `Welcome`.
    Handshaking,
    /// `Welcome` received: publishing, subscribing and delivering.
    Connected,
    /// [`Event::Disconnected`] emitted; waiting for the adapter to close the
    /// transport and call [`Session::handle_disconnected`].
    Disconnecting,
    /// Waiting to reconnect; [`Event::Connect`] follows at
    /// [`Session::poll_timeout`].
    Backoff,
    /// [`Session::close`] called; `Close` queued.
    Closing,
    /// Closed for good (until [`Session::connect`] is called again).
    Closed,
}

/// Counters of what a session has done; they only grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Frames received and handled.
    pub frames_in: u64,
    /// Frames written by `poll_transmit` (each fragment counts).
    pub frames_out: u64,
    /// Bytes written by `poll_transmit`, framing included.
    pub bytes_out: u64,
    /// Publishes accepted into the outbox.
    pub publishes: u64,
    /// `PubAck`s received for outbox entries.
    pub publish_acks: u64,
    /// Publishes refused (by the broker, or locally when they cannot be framed).
    pub publish_rejects: u64,
    /// Deliveries shown to the application (a chunked message counts once).
    pub deliveries: u64,
    /// Redeliveries of recently acked messages, re-acked and not shown.
    pub duplicates_suppressed: u64,
    /// Redeliveries of messages the application still holds, absorbed by
    /// updating the held entry's tag.
    pub redeliveries_absorbed: u64,
    /// `Event::Connect`s after the first.
    pub reconnects: u64,
    /// Pings sent.
    pub pings: u64,
    /// Connections dropped for keepalive or connect timeouts.
    pub timeouts: u64,
    /// Connections dropped for malformed or unexpected input from the broker.
    pub protocol_errors: u64,
    /// Replies to requests of the session's that no longer wait for one
    /// (answered, failed, timed out, or of an earlier run), acknowledged and
    /// dropped.
    pub replies_dropped: u64,
    /// Frames of an earlier connection dropped while a new one was being opened
    /// on a serial line (see the serial-line rules in [`crate::wire`]).
    pub stale_frames: u64,
    /// Events lost because the application did not drain `poll_event` (0 when the
    /// polling contract is followed).
    pub events_overflowed: u64,
}

impl State {
    /// The state in one word, as `Display` writes it (without the
    /// formatting machinery, for devices).
    pub const fn as_str(&self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Connecting => "connecting",
            State::Handshaking => "handshaking",
            State::Connected => "connected",
            State::Disconnecting => "disconnecting",
            State::Backoff => "backoff",
            State::Closing => "closing",
            State::Closed => "closed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
