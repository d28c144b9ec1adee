//! Options of a client connection, of a publish and of a subscription (owned
//! versions of the core's borrowed ones), and what they turn into for the
//! driver: a publish's [`Outgoing`] message, a subscription's credit window.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use mq_core::topic::Topic;
use mq_core::wire::{Headers, HeadersBuilder, Meta, QoS, SessionMode, Start};

use super::error::Error;
use super::message::Message;
use super::random::random_u64;
use super::room::Reserved;
use crate::tls::TlsOptions;

/// The address `mqd` listens on by default, and clients connect to by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7410";

/// The largest credit window (and sink capacity) of a subscription.
const MAX_CREDIT: u32 = 65_535;

/// How to connect. `Default` connects to [`DEFAULT_ADDR`]
/// with a random client id and a clean session. `Debug` does not show the token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The broker's address, `host:port`.
    pub addr: String,
    /// The client's identity (at most 64 bytes); the broker keys sessions by it.
    /// Default: `mq-` and 16 random hex digits.
    pub client_id: String,
    /// Auth token, if the broker requires one.
    pub token: Option<String>,
    /// Clean (default) or resumed session.
    pub session: SessionMode,
    /// Keepalive interval; zero disables it. Default 15 s.
    pub keepalive: Duration,
    /// Bytes of unacknowledged publishes the client keeps for resending. A
    /// publish that does not fit waits for room. Default 8 MiB.
    pub outbox_bytes: usize,
    /// Bytes of received messages buffered before the application takes them;
    /// larger messages arrive in pieces and are reassembled. Default 2 MiB.
    pub inbox_bytes: usize,
    /// Credit of a subscription whose options name none: how many deliveries it
    /// may have outstanding (and how many messages the client buffers for it).
    /// Default 1024: enough to keep a subscriber streaming at full speed over
    /// loopback; lower it for large messages or many subscriptions.
    pub credit: u32,
    /// Tag QoS 1 publishes with a producer id (random per client) and sequence,
    /// so that the broker drops the duplicates a resend after reconnecting may
    /// create. Default true.
    pub dedup: bool,
    /// First reconnect delay; doubled per failed attempt. Default 100 ms.
    pub reconnect_min: Duration,
    /// Largest reconnect delay. Default 30 s.
    pub reconnect_max: Duration,
    /// Time from starting a connection to the broker's `Welcome`. Default 10 s.
    pub connect_timeout: Duration,
    /// Speak TLS (`None`, the default: plain TCP). The broker's certificate
    /// is verified against the CA given and the server name.
    pub tls: Option<TlsOptions>,
}

impl ClientOptions {
    /// The defaults, connecting to `addr`.
    pub fn new(addr: impl Into<String>) -> Self {
        ClientOptions {
            addr: addr.into(),
            ..ClientOptions::default()
        }
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            addr: DEFAULT_ADDR.to_string(),
            client_id: format!("mq-{:016x}", random_u64()),
            token: None,
            session: SessionMode::Clean,
            keepalive: Duration::from_secs(15),
            outbox_bytes: 8 << 20,
            inbox_bytes: 2 << 20,
            credit: 1024,
            dedup: true,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("addr", &self.addr)
            .field("client_id", &self.client_id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("session", &self.session)
            .field("keepalive", &self.keepalive)
            .field("outbox_bytes", &self.outbox_bytes)
            .field("inbox_bytes", &self.inbox_bytes)
            .field("credit", &self.credit)
            .field("dedup", &self.dedup)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("connect_timeout", &self.connect_timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

/// How to publish one message. The default: QoS 1, no properties.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishOptions {
    /// Delivery guarantee. QoS 1 (default): `publish` resolves when the broker has
    /// stored the message. QoS 0: it resolves once the message is queued.
    pub qos: QoS,
    /// Time to live from when the broker accepts the message (millisecond
    /// resolution).
    pub ttl: Option<Duration>,
    /// Priority: higher is delivered first among the messages waiting in a
    /// subscription's queue (first in first out within a priority).
    pub priority: u8,
    /// Topic a reply should be published to.
    pub reply_to: Option<String>,
    /// Correlation id linking a reply to its request.
    pub correlation: Option<Bytes>,
    /// Application headers; keys are 1 to 255 bytes.
    pub headers: Vec<(String, Bytes)>,
}

impl PublishOptions {
    /// The defaults with this QoS.
    pub fn new(qos: QoS) -> Self {
        PublishOptions {
            qos,
            ..PublishOptions::default()
        }
    }

    /// The message to hand to the driver: topic, payload and these options, with
    /// the headers encoded.
    pub(crate) fn outgoing(&self, topic: &str, payload: Bytes) -> Result<Outgoing, Error> {
        let mut headers = Vec::new();
        if !self.headers.is_empty() {
            // A pair's encoding: two varint lengths (at most 10 bytes each) and
            // the bytes.
            let size: usize = self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 20)
                .sum();
            let mut buf = vec![0u8; size];
            let mut builder = HeadersBuilder::new(&mut buf);
            for (key, value) in &self.headers {
                builder
                    .push(key, value)
                    .map_err(|_| Error::Invalid("header key empty or longer than 255 bytes"))?;
            }
            headers = builder.finish().as_encoded().to_vec();
        }
        let ttl_ms = self
            .ttl
            .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX));
        let props = Properties {
            ttl_ms,
            priority: self.priority,
            reply_to: self.reply_to.clone(),
            correlation: self.correlation.clone(),
            headers,
        };
        Ok(Outgoing {
            topic: topic.into(),
            payload,
            qos: self.qos,
            props: (props != Properties::default()).then(|| Box::new(props)),
            reserved: None,
        })
    }
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            qos: QoS::AtLeastOnce,
            ttl: None,
            priority: 0,
            reply_to: None,
            correlation: None,
            headers: Vec::new(),
        }
    }
}

/// How to subscribe. The default: every message (no group), new messages only,
/// QoS 1 (deliver with whatever QoS the publisher used), the client's credit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// Join this group: its members compete, each message goes to one of them.
    pub group: Option<String>,
    /// Where the subscription starts reading.
    pub start: Start,
    /// Highest QoS wanted.
    pub qos: QoS,
    /// Deliveries the subscription may have outstanding (unacked, or not yet
    /// taken by the application); 0 means [`ClientOptions::credit`]. Also the
    /// number of messages the client buffers for this subscription.
    pub credit: u32,
}

impl SubscribeOptions {
    /// The defaults, as a member of `group`.
    pub fn group(group: impl Into<String>) -> Self {
        SubscribeOptions {
            group: Some(group.into()),
            ..SubscribeOptions::default()
        }
    }
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            group: None,
            start: Start::New,
            qos: QoS::AtLeastOnce,
            credit: 0,
        }
    }
}

/// A message to publish, with its properties, owned. It travels by value
/// through the command channel and into the driver, so what most publishes
/// lack (the properties) is boxed, and absent when all are the defaults.
pub(crate) struct Outgoing {
    pub topic: Box<str>,
    pub payload: Bytes,
    pub qos: QoS,
    pub props: Option<Box<Properties>>,
    /// Its share of the room between the application and the driver, given
    /// back when the driver is done with it, at the end of the driver's pass
    /// if the session took it (see [`super::room`]). Requests have none.
    pub reserved: Option<Reserved>,
}

/// A publish's properties (all of [`Meta`]), owned.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Properties {
    pub ttl_ms: Option<u32>,
    pub priority: u8,
    pub reply_to: Option<String>,
    pub correlation: Option<Bytes>,
    /// Encoded headers ([`Headers::from_encoded`]).
    pub headers: Vec<u8>,
}

impl Outgoing {
    /// The bytes it occupies on its way to the driver (an estimate that
    /// bounds memory, not the size of its frame).
    pub(crate) fn size(&self) -> usize {
        const FIXED: usize = 64;
        let props = self.props.as_deref().map_or(0, |p| {
            p.headers.len()
                + p.reply_to.as_ref().map_or(0, String::len)
                + p.correlation.as_ref().map_or(0, Bytes::len)
        });
        FIXED + self.topic.len() + self.payload.len() + props
    }

    /// What can be checked before the message leaves the caller, so that a
    /// fire-and-forget publish still fails where the caller sees it: the
    /// topic, and a size the outbox can never hold.
    pub(crate) fn check(&self, outbox_bytes: usize) -> Result<(), Error> {
        Topic::new(&self.topic).map_err(|_| Error::Invalid("invalid topic"))?;
        if self.payload.len() > outbox_bytes {
            return Err(Error::TooLarge);
        }
        Ok(())
    }

    pub(super) fn meta(&self) -> Meta<'_> {
        let Some(p) = self.props.as_deref() else {
            return Meta::default();
        };
        Meta {
            ttl_ms: p.ttl_ms,
            priority: p.priority,
            reply_to: p.reply_to.as_deref(),
            correlation: p.correlation.as_deref(),
            headers: Headers::from_encoded(&p.headers).unwrap_or(Headers::EMPTY),
        }
    }
}

/// A subscription's credit window: its own, or the client's default. It is also
/// the capacity of the subscription's sink, hence the bound.
pub(crate) fn window(credit: u32, default: u32) -> Result<u32, Error> {
    let window = if credit == 0 { default.max(1) } else { credit };
    if window > MAX_CREDIT {
        return Err(Error::Invalid("credit larger than 65535"));
    }
    Ok(window)
}

/// The options of a reply to `request`.
pub(crate) fn reply_options(request: &Message) -> Result<PublishOptions, Error> {
    if request.reply_to.is_none() {
        return Err(Error::Invalid("the message has no reply-to topic"));
    }
    Ok(PublishOptions {
        correlation: request.correlation.clone(),
        ..PublishOptions::default()
    })
}
