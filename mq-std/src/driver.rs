//! The client core both clients drive: one [`Session`] and the callers waiting on
//! it, independent of any runtime.
//!
//! Every delivery decision (resending, ordering, deduplication, redelivery,
//! reconnect timing, keepalive) is the session's. The [`Driver`] only turns
//! application calls into session commands and session events into replies to
//! the callers that wait for them, and buffers bytes between the session and a
//! socket. The async client ([`crate::client`]) runs it in a tokio task, the
//! blocking one ([`crate::blocking`]) on a mio thread; both loops are the same:
//!
//! 1. hand in what happened: [`handle_command`](Driver::handle_command) (from the
//!    command channel), bytes read into [`read_buf`](Driver::read_buf) with
//!    [`handle_read`](Driver::handle_read), [`handle_written`](Driver::handle_written)
//!    after writing from [`output`](Driver::output),
//!    [`handle_connected`](Driver::handle_connected) /
//!    [`handle_disconnected`](Driver::handle_disconnected) for the transport,
//!    [`handle_timeout`](Driver::handle_timeout) at [`Wants::timeout`];
//! 2. call [`poll`](Driver::poll) and act on its [`Wants`]: stop, disconnect,
//!    connect (in that order of precedence);
//! 3. wait for the socket (readable while `read_buf` is not empty, writable while
//!    `output` is not), the command channel, or the timeout.
//!
//! # Bounds
//!
//! Nothing here grows without bound. Received messages go to per-subscription
//! sinks whose capacity is the subscription's credit window; when a sink is full
//! the driver keeps that one message aside and stops taking events from the
//! session until the application makes room, so the session's inbox fills, it
//! stops consuming input, the read buffer fills, the driver stops reading and
//! TCP pushes back to the broker. Output is taken from the session only while
//! less than [`WRITE_HIGH_WATER`] bytes wait for the socket. Publishers that
//! find the outbox full wait, as callers, for an acknowledgement to free room;
//! the driver keeps no message queue of its own.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mq_core::client::{
    self as core_client, Chunk, Config, Delivery, DeliveryId, Event, Framing, PublishError,
    PublishId, Session, SubId, SubscribeError,
};
use mq_core::framing::stream::{Split, StreamDecoder};
use mq_core::wire::{Headers, Limits, Meta, QoS};
use mq_core::{Instant, Reason};
use tracing::{debug, warn};

use crate::client::{ClientOptions, Error, Message, PubAck, Stats, SubscribeOptions};

#[cfg(test)]
mod tests;

/// Subscriptions one client can hold.
pub(crate) const SUBS: usize = 32;
/// QoS 1 deliveries the application can hold unacked at once, across all
/// subscriptions; more wait in the broker.
pub(crate) const HELD: usize = 256;
/// The largest frame the client accepts (lowered to what the inbox holds).
const MAX_FRAME: u32 = 1 << 20;
/// Bytes read from the socket at once, besides room for one whole frame.
const READ_CHUNK: usize = 64 * 1024;
/// Output waiting for the socket beyond which no more is taken from the session.
pub(crate) const WRITE_HIGH_WATER: usize = 64 * 1024;
/// The largest frame written before the broker's limits are known (`Hello`).
const HANDSHAKE_FRAME: u32 = 64 * 1024;
/// Bounds of `ClientOptions::outbox_bytes` and `inbox_bytes`.
const MIN_STORE: usize = 4 * 1024;
const MAX_STORE: usize = 1 << 30;
/// The largest credit window (and sink capacity) of a subscription.
const MAX_CREDIT: u32 = 65_535;
/// Pieces of a large message are reassembled into a buffer reserved up to this
/// size at once; larger ones grow as their pieces arrive.
const MAX_RESERVE: u64 = 16 << 20;

type ClientSession = Session<Vec<u8>, SUBS, HELD>;

/// A caller waiting for one answer: a tokio oneshot sender or the blocking
/// client's equivalent.
pub(crate) trait Reply<T>: Send {
    /// Answers the caller; an answer nobody waits for any more is dropped.
    fn send(self: Box<Self>, value: T);
    /// True once the caller stopped waiting (its future was dropped, its
    /// timeout passed).
    fn is_closed(&self) -> bool;
}

/// A boxed [`Reply`].
pub(crate) type ReplyTo<T> = Box<dyn Reply<T>>;

/// What a [`Sink`] did with a message.
pub(crate) enum Offer {
    /// Queued for the application.
    Taken,
    /// The sink is full; the message comes back.
    Full(Message),
    /// The application dropped its end; the message comes back.
    Closed(Message),
}

/// Where a subscription's messages go: a bounded tokio or std channel.
pub(crate) trait Sink: Send {
    /// Queues `msg` without blocking.
    fn offer(&mut self, msg: Message) -> Offer;
}

/// Sends commands to the driver's loop and wakes it.
pub(crate) trait CommandSender: Send + Sync {
    /// False when the loop is gone.
    fn send(&self, cmd: Command) -> bool;
}

/// The way into a driver, shared by every handle of one client (clients,
/// subscriptions, messages): the command channel, and what the driver
/// publishes back (statistics, why it closed).
pub(crate) struct Commands {
    sender: Box<dyn CommandSender>,
    stats: Mutex<Stats>,
    closed: Mutex<Option<Reason>>,
}

impl Commands {
    pub(crate) fn new(sender: Box<dyn CommandSender>) -> Arc<Commands> {
        Arc::new(Commands {
            sender,
            stats: Mutex::new(Stats::default()),
            closed: Mutex::new(None),
        })
    }

    /// Sends `cmd`; fails when the driver has stopped.
    pub(crate) fn send(&self, cmd: Command) -> Result<(), Error> {
        if self.sender.send(cmd) {
            Ok(())
        } else {
            Err(self.closed_error())
        }
    }

    /// The error for a call on a stopped driver.
    pub(crate) fn closed_error(&self) -> Error {
        let reason = *self.closed.lock().unwrap_or_else(PoisonError::into_inner);
        Error::Closed(reason.unwrap_or(Reason::Normal))
    }

    /// The latest statistics.
    pub(crate) fn stats(&self) -> Stats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Tells the driver, after the application took a message from a sink, that a
/// message waits for room there. The driver sets the flag before its last try;
/// the application clears it after taking one.
pub(crate) fn made_room(waiting: &AtomicBool, commands: &Commands) {
    fence(Ordering::SeqCst);
    if waiting.swap(false, Ordering::SeqCst) {
        let _ = commands.send(Command::Room);
    }
}

/// What both clients' `Subscription`s share: the id, and the way back to the
/// driver. Tells the driver when a full sink has room again, and ends the
/// subscription when dropped.
pub(crate) struct SubscriptionEnd {
    pub sub: SubId,
    waiting: Arc<AtomicBool>,
    commands: Arc<Commands>,
}

impl SubscriptionEnd {
    pub(crate) fn new(sub: SubId, waiting: Arc<AtomicBool>, commands: Arc<Commands>) -> Self {
        SubscriptionEnd {
            sub,
            waiting,
            commands,
        }
    }

    /// Passes on what the application took from the sink, after telling the
    /// driver there is room.
    pub(crate) fn took<T>(&self, taken: T, some: bool) -> T {
        if some {
            made_room(&self.waiting, &self.commands);
        }
        taken
    }
}

impl Drop for SubscriptionEnd {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Unsubscribe(self.sub));
    }
}

impl std::fmt::Debug for SubscriptionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("sub", &self.sub)
            .finish()
    }
}

/// A message to publish, with its properties, owned.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub ttl_ms: Option<u32>,
    pub priority: u8,
    pub reply_to: Option<String>,
    pub correlation: Option<Bytes>,
    /// Encoded headers ([`Headers::from_encoded`]).
    pub headers: Vec<u8>,
}

impl Outgoing {
    fn meta(&self) -> Meta<'_> {
        Meta {
            ttl_ms: self.ttl_ms,
            priority: self.priority,
            reply_to: self.reply_to.as_deref(),
            correlation: self.correlation.as_deref(),
            headers: Headers::from_encoded(&self.headers).unwrap_or(Headers::EMPTY),
        }
    }
}

/// What the application asks of the driver.
pub(crate) enum Command {
    /// Publish; answered at `PubAck` (QoS 1) or once queued (QoS 0).
    Publish {
        msg: Outgoing,
        reply: ReplyTo<Result<PubAck, Error>>,
    },
    /// Publish with a reply-to topic and a fresh correlation id; answered with
    /// the reply.
    Request {
        msg: Outgoing,
        reply: ReplyTo<Result<Message, Error>>,
    },
    /// Subscribe; messages go to `sink`; answered at `SubAck`.
    Subscribe {
        filter: String,
        opts: SubscribeOptions,
        sink: Box<dyn Sink>,
        /// Set by the driver when a message waits for room in `sink`.
        waiting: Arc<AtomicBool>,
        reply: ReplyTo<Result<SubId, Error>>,
    },
    /// End a subscription (its handle was dropped).
    Unsubscribe(SubId),
    /// The application processed a delivery.
    Ack(DeliveryId),
    /// The application refused a delivery.
    Nack { id: DeliveryId, requeue: bool },
    /// A sink has room again.
    Room,
    /// Close the session; answered once `Close` is written to the socket.
    Close(Option<ReplyTo<()>>),
}

/// What the loop must do after [`Driver::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wants {
    /// Open a new connection to the broker (dropping any old one), then call
    /// `handle_connected`, or `handle_disconnected` with the error.
    pub connect: bool,
    /// End the connection (or the attempt): if the loop has a socket or a
    /// connect in progress, write what `output` holds without waiting, close it
    /// and call `handle_disconnected`; with neither, ignore this.
    pub disconnect: bool,
    /// The session is over: write `output` (bounded in time), close the socket,
    /// call `finish` and end the loop.
    pub stop: bool,
    /// When to call `handle_timeout`.
    pub timeout: Option<Instant>,
}

/// What to do when a publish is acknowledged or refused.
enum Then {
    /// Answer the publisher.
    Reply(ReplyTo<Result<PubAck, Error>>),
    /// A request: only a refusal is answered (to the requester).
    Request(u64),
}

/// A subscription's end in the driver.
struct Subscriber {
    sink: Box<dyn Sink>,
    waiting: Arc<AtomicBool>,
}

/// A large message arriving in pieces.
struct Partial {
    msg: Message,
    data: Vec<u8>,
}

/// The reply subscription of request-reply.
enum ReplySub {
    None,
    Pending(SubId),
    Active(SubId),
}

/// Requests and the private topic their replies come back on.
struct Requests {
    topic: String,
    sub: ReplySub,
    /// Requests held until the reply subscription is active.
    held: Vec<(u64, Outgoing)>,
    /// Requesters waiting for their reply, by correlation id.
    waiting: HashMap<u64, ReplyTo<Result<Message, Error>>>,
    next: u64,
}

impl Requests {
    fn is_reply_sub(&self, sub: SubId) -> bool {
        matches!(self.sub, ReplySub::Active(s) | ReplySub::Pending(s) if s == sub)
    }

    fn fail(&mut self, corr: u64, error: Error) {
        if let Some(reply) = self.waiting.remove(&corr) {
            reply.send(Err(error));
        }
    }
}

/// The client core: a session, its socket buffers, and the callers waiting on
/// it. See the module docs for the loop that drives it.
pub(crate) struct Driver {
    session: Box<ClientSession>,
    commands: Arc<Commands>,
    default_credit: u32,
    /// Input not consumed by the session yet: `rx[rx_start..rx_len]`. The
    /// session takes a few frames per call (its event queue is short), so what it
    /// consumed is skipped, not copied away: the rest moves to the front once per
    /// read ([`read_buf`](Self::read_buf)).
    rx: Vec<u8>,
    rx_start: usize,
    rx_len: usize,
    /// Output not written yet: `tx[tx_start..tx_end]`.
    tx: Vec<u8>,
    tx_start: usize,
    tx_end: usize,
    /// Room `tx` keeps for one whole frame.
    frame_room: usize,
    want_connect: bool,
    want_disconnect: bool,
    /// The transport is gone; its leftover input still goes to the session.
    draining: bool,
    stopping: bool,
    finished: bool,
    welcomed: bool,
    user_closed: bool,
    last_reason: Reason,
    connect_waiter: Option<ReplyTo<Result<(), Error>>>,
    connect_error: Option<io::Error>,
    closers: Vec<ReplyTo<()>>,
    /// QoS 1 publishes in the outbox, by publish id.
    publishes: HashMap<u32, Then>,
    /// Publishers waiting for outbox room, in arrival order.
    waiting: VecDeque<(Outgoing, Then)>,
    /// Outbox bytes in use when the first waiting publisher last failed.
    waiting_outbox: usize,
    subscribes: HashMap<u32, ReplyTo<Result<SubId, Error>>>,
    subscribers: HashMap<u32, Subscriber>,
    /// A message whose sink was full: no event is taken until it is placed.
    parked: Option<Message>,
    partial: Option<Partial>,
    requests: Requests,
}

impl Driver {
    /// A driver for a client configured by `opts`; nothing happens until
    /// [`start`](Self::start).
    pub(crate) fn new(opts: &ClientOptions, commands: Arc<Commands>) -> Result<Driver, Error> {
        let mut config = Config::new(&opts.client_id)
            .map_err(|_| Error::Invalid("client id longer than 64 bytes"))?;
        if opts.client_id.is_empty() {
            return Err(Error::Invalid("empty client id"));
        }
        if let Some(token) = &opts.token {
            config = config
                .with_token(token)
                .map_err(|_| Error::Invalid("token longer than 128 bytes"))?;
        }
        if opts.reconnect_min.is_zero() || opts.reconnect_max < opts.reconnect_min {
            return Err(Error::Invalid(
                "reconnect_min must be non-zero and at most reconnect_max",
            ));
        }
        let store = MIN_STORE..=MAX_STORE;
        if !store.contains(&opts.outbox_bytes) || !store.contains(&opts.inbox_bytes) {
            return Err(Error::Invalid(
                "outbox_bytes and inbox_bytes must be between 4 KiB and 1 GiB",
            ));
        }
        window(opts.credit, 1)?;
        config.mode = opts.session;
        config.limits = Limits {
            max_frame: MAX_FRAME,
            credit: opts.credit.max(1),
            keepalive_ms: u32::try_from(opts.keepalive.as_millis()).unwrap_or(u32::MAX),
        };
        config.producer = opts.dedup.then(random_u64);
        config.reconnect_min = opts.reconnect_min;
        config.reconnect_max = opts.reconnect_max;
        config.connect_timeout = opts.connect_timeout;
        config.seed = random_u64();
        let session = Box::new(Session::new(
            config,
            Framing::Stream,
            vec![0; opts.outbox_bytes],
            vec![0; opts.inbox_bytes],
        ));
        let max_in = session.receive_limits().max_frame as usize;
        let frame_room = Framing::Stream.max_framed_len(HANDSHAKE_FRAME as usize);
        let requests = Requests {
            topic: reply_topic(&opts.client_id),
            sub: ReplySub::None,
            held: Vec::new(),
            waiting: HashMap::new(),
            next: 1,
        };
        Ok(Driver {
            session,
            commands,
            default_credit: opts.credit.max(1),
            rx: vec![0; Framing::Stream.max_framed_len(max_in) + READ_CHUNK],
            rx_start: 0,
            rx_len: 0,
            tx: vec![0; WRITE_HIGH_WATER + frame_room],
            tx_start: 0,
            tx_end: 0,
            frame_room,
            want_connect: false,
            want_disconnect: false,
            draining: false,
            stopping: false,
            finished: false,
            welcomed: false,
            user_closed: false,
            last_reason: Reason::Normal,
            connect_waiter: None,
            connect_error: None,
            closers: Vec::new(),
            publishes: HashMap::new(),
            waiting: VecDeque::new(),
            waiting_outbox: 0,
            subscribes: HashMap::new(),
            subscribers: HashMap::new(),
            parked: None,
            partial: None,
            requests,
        })
    }

    /// Starts connecting; `welcome` is answered at the first `Welcome`, or with
    /// why the first attempt failed (after which the driver stops).
    pub(crate) fn start(&mut self, now: Instant, welcome: ReplyTo<Result<(), Error>>) {
        self.connect_waiter = Some(welcome);
        self.session.connect(now);
    }

    // ------------------------------------------------------------- transport

    /// The connection is up.
    pub(crate) fn handle_connected(&mut self, now: Instant) {
        self.draining = false;
        self.clear_buffers();
        self.session.handle_connected(now);
    }

    /// The connection (or the attempt) is over; `error` says why, if it failed.
    ///
    /// Input already read is not lost: whole frames in the read buffer still go
    /// to the session (the broker's last words, such as `Close` with
    /// `SessionTakenOver`, are usually right before its end of stream), and the
    /// session hears of the disconnect once none is left. While the session
    /// cannot take them (a full sink), that waits for the application.
    pub(crate) fn handle_disconnected(&mut self, now: Instant, error: Option<io::Error>) {
        if let Some(e) = &error {
            debug!("connection lost: {e}");
        }
        if !self.welcomed && self.connect_error.is_none() {
            self.connect_error = error;
        }
        // Nothing more can be written on this connection.
        self.tx_start = 0;
        self.tx_end = 0;
        self.draining = true;
        self.settle_disconnect(now);
    }

    /// Reports a lost transport to the session once the input it left behind
    /// holds no whole frame. True when it did.
    fn settle_disconnect(&mut self, now: Instant) -> bool {
        if !self.draining {
            return false;
        }
        let input = &self.rx[self.rx_start..self.rx_len];
        let decoder = StreamDecoder::new(self.session.receive_limits().max_frame);
        if !input.is_empty() && matches!(decoder.split(input), Ok(Split::Whole { .. })) {
            return false;
        }
        self.draining = false;
        self.clear_buffers();
        self.session.handle_disconnected(now);
        true
    }

    /// Where to read socket bytes into; empty while the session cannot take
    /// more (backpressure).
    pub(crate) fn read_buf(&mut self) -> &mut [u8] {
        if self.rx_start > 0 {
            self.rx.copy_within(self.rx_start..self.rx_len, 0);
            self.rx_len -= self.rx_start;
            self.rx_start = 0;
        }
        &mut self.rx[self.rx_len..]
    }

    /// `n` bytes were read into [`read_buf`](Self::read_buf).
    pub(crate) fn handle_read(&mut self, n: usize) {
        self.rx_len = (self.rx_len + n).min(self.rx.len());
    }

    /// Bytes to write to the socket.
    pub(crate) fn output(&self) -> &[u8] {
        &self.tx[self.tx_start..self.tx_end]
    }

    /// `n` bytes of [`output`](Self::output) were written.
    pub(crate) fn handle_written(&mut self, n: usize) {
        self.tx_start = (self.tx_start + n).min(self.tx_end);
        if self.tx_start == self.tx_end {
            self.tx_start = 0;
            self.tx_end = 0;
        }
    }

    /// Time passed; call at [`Wants::timeout`] (earlier is harmless).
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.session.handle_timeout(now);
    }

    fn clear_buffers(&mut self) {
        self.rx_start = 0;
        self.rx_len = 0;
        self.tx_start = 0;
        self.tx_end = 0;
    }

    // -------------------------------------------------------------- commands

    /// An application call.
    pub(crate) fn handle_command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Publish { msg, reply } => {
                if self.stopping {
                    reply.send(Err(self.closed_error()));
                } else {
                    self.enqueue(now, msg, Then::Reply(reply));
                }
            }
            Command::Request { msg, reply } => self.request(now, msg, reply),
            Command::Subscribe {
                filter,
                opts,
                sink,
                waiting,
                reply,
            } => self.subscribe(now, &filter, &opts, Subscriber { sink, waiting }, reply),
            Command::Unsubscribe(sub) => self.unsubscribe(now, sub),
            Command::Ack(id) => {
                if let Err(e) = self.session.ack(id) {
                    debug!("ack not sent: {e}");
                }
            }
            Command::Nack { id, requeue } => {
                if let Err(e) = self.session.nack(id, requeue) {
                    debug!("nack not sent: {e}");
                }
            }
            Command::Room => {}
            Command::Close(reply) => {
                if let Some(reply) = reply {
                    if self.finished {
                        reply.send(());
                    } else {
                        self.closers.push(reply);
                    }
                }
                if !self.stopping {
                    self.user_closed = true;
                }
                // Subscriptions end now: a full sink must not keep the session's
                // `Closed` event queued behind messages nobody will read.
                self.subscribers.clear();
                if let Some(msg) = self.parked.take() {
                    self.requeue(msg);
                }
                self.session.close(now);
            }
        }
    }

    fn closed_error(&self) -> Error {
        Error::Closed(self.final_reason())
    }

    fn final_reason(&self) -> Reason {
        if self.user_closed {
            Reason::Normal
        } else {
            self.last_reason
        }
    }

    /// A publish, or a waiting publisher at the back of the line.
    fn enqueue(&mut self, now: Instant, msg: Outgoing, then: Then) {
        if !self.waiting.is_empty() {
            // Callers that gave up leave nothing behind, even while the outbox
            // stays full (a long outage with retrying callers).
            self.prune_waiting();
            self.waiting.push_back((msg, then));
            return;
        }
        if let Some(back) = self.try_publish(now, msg, then) {
            self.waiting_outbox = self.session.outbox_bytes();
            self.waiting.push_back(back);
        }
    }

    /// Hands a publish to the session; gives it back when the outbox is full.
    fn try_publish(&mut self, now: Instant, msg: Outgoing, then: Then) -> Option<(Outgoing, Then)> {
        let opts = core_client::PublishOptions {
            qos: msg.qos,
            meta: msg.meta(),
        };
        match self.session.publish(now, &msg.topic, &msg.payload, &opts) {
            Ok(PublishId(id)) => {
                match (msg.qos, then) {
                    (QoS::AtMostOnce, Then::Reply(reply)) => reply.send(Ok(PubAck {
                        seq: None,
                        duplicate: false,
                    })),
                    (QoS::AtMostOnce, Then::Request(_)) => {}
                    (QoS::AtLeastOnce, then) => {
                        self.publishes.insert(id, then);
                    }
                }
                None
            }
            Err(PublishError::OutboxFull) => Some((msg, then)),
            Err(e) => {
                let error = match e {
                    PublishError::InvalidTopic => Error::Invalid("invalid topic"),
                    PublishError::TooLarge => Error::TooLarge,
                    _ => Error::Invalid("publish refused"),
                };
                self.answer(then, Err(error));
                None
            }
        }
    }

    /// Answers whoever waits on a publish.
    fn answer(&mut self, then: Then, result: Result<PubAck, Error>) {
        match (then, result) {
            (Then::Reply(reply), result) => reply.send(result),
            (Then::Request(corr), Err(e)) => self.requests.fail(corr, e),
            (Then::Request(_), Ok(_)) => {}
        }
    }

    /// Retries waiting publishers, first come first served, once
    /// acknowledgements (or writes, for QoS 0) freed outbox room. True when one
    /// was placed.
    fn retry_waiting(&mut self, now: Instant) -> bool {
        if self.waiting.is_empty() || self.session.outbox_bytes() >= self.waiting_outbox {
            return false;
        }
        self.prune_waiting();
        let mut placed = false;
        while let Some((msg, then)) = self.waiting.pop_front() {
            match self.try_publish(now, msg, then) {
                None => placed = true,
                Some(back) => {
                    self.waiting_outbox = self.session.outbox_bytes();
                    self.waiting.push_front(back);
                    break;
                }
            }
        }
        placed
    }

    /// Forgets waiting publishers whose callers stopped waiting.
    fn prune_waiting(&mut self) {
        let requests = &self.requests.waiting;
        self.waiting.retain(|(_, then)| match then {
            Then::Reply(reply) => !reply.is_closed(),
            Then::Request(corr) => requests.get(corr).is_some_and(|r| !r.is_closed()),
        });
    }

    fn request(&mut self, now: Instant, mut msg: Outgoing, reply: ReplyTo<Result<Message, Error>>) {
        if self.stopping {
            reply.send(Err(self.closed_error()));
            return;
        }
        let corr = self.requests.next;
        self.requests.next += 1;
        msg.reply_to = Some(self.requests.topic.clone());
        msg.correlation = Some(Bytes::copy_from_slice(&corr.to_be_bytes()));
        // Requesters that gave up (timed out) leave nothing behind.
        self.requests.waiting.retain(|_, r| !r.is_closed());
        self.requests.waiting.insert(corr, reply);
        match self.requests.sub {
            ReplySub::Active(_) => self.enqueue(now, msg, Then::Request(corr)),
            ReplySub::Pending(_) => self.requests.held.push((corr, msg)),
            ReplySub::None => {
                let opts = core_client::SubscribeOptions {
                    credit: self.default_credit,
                    ..core_client::SubscribeOptions::default()
                };
                match self.session.subscribe(now, &self.requests.topic, &opts) {
                    Ok(sub) => {
                        self.requests.sub = ReplySub::Pending(sub);
                        self.requests.held.push((corr, msg));
                    }
                    Err(e) => self.requests.fail(corr, subscribe_error(e)),
                }
            }
        }
    }

    fn subscribe(
        &mut self,
        now: Instant,
        filter: &str,
        opts: &SubscribeOptions,
        subscriber: Subscriber,
        reply: ReplyTo<Result<SubId, Error>>,
    ) {
        if self.stopping {
            reply.send(Err(self.closed_error()));
            return;
        }
        let core_opts = core_client::SubscribeOptions {
            group: opts.group.as_deref(),
            start: opts.start,
            qos: opts.qos,
            credit: match window(opts.credit, self.default_credit) {
                Ok(w) => w,
                Err(e) => return reply.send(Err(e)),
            },
        };
        match self.session.subscribe(now, filter, &core_opts) {
            Ok(sub) => {
                self.subscribers.insert(sub.0, subscriber);
                self.subscribes.insert(sub.0, reply);
            }
            Err(e) => reply.send(Err(subscribe_error(e))),
        }
    }

    fn unsubscribe(&mut self, now: Instant, sub: SubId) {
        self.subscribers.remove(&sub.0);
        if self.parked.as_ref().is_some_and(|m| m.sub == sub)
            && let Some(msg) = self.parked.take()
        {
            self.requeue(msg);
        }
        if let Err(e) = self.session.unsubscribe(now, sub) {
            debug!("unsubscribe {}: {e}", sub.0);
        }
    }

    /// Gives a message nobody will take back to the broker.
    fn requeue(&mut self, mut msg: Message) {
        if let Some(id) = msg.disarm() {
            let _ = self.session.nack(id, true);
        }
    }

    // ------------------------------------------------------------------ poll

    /// Moves everything that can move between the session, the buffers and the
    /// callers, then says what the loop must do.
    pub(crate) fn poll(&mut self, now: Instant) -> Wants {
        loop {
            let mut progress = false;
            if let Some(msg) = self.parked.take() {
                self.offer(now, msg);
                progress |= self.parked.is_none();
            }
            if self.rx_len > self.rx_start {
                let n = self
                    .session
                    .handle_input(now, &self.rx[self.rx_start..self.rx_len]);
                if n > 0 {
                    self.rx_start += n;
                    progress = true;
                }
            }
            progress |= self.settle_disconnect(now);
            progress |= self.transmit(now);
            while self.parked.is_none() {
                let Some(happened) = self.next_event() else {
                    break;
                };
                progress = true;
                self.on_event(now, happened);
            }
            progress |= self.retry_waiting(now);
            if !progress {
                break;
            }
        }
        self.publish_stats();
        let wants = Wants {
            connect: self.want_connect && !self.stopping,
            disconnect: self.want_disconnect,
            stop: self.stopping,
            timeout: self.session.poll_timeout(),
        };
        self.want_connect = false;
        self.want_disconnect = false;
        wants
    }

    /// Takes output from the session while the socket keeps up.
    fn transmit(&mut self, now: Instant) -> bool {
        let mut any = false;
        while self.tx_end - self.tx_start < WRITE_HIGH_WATER {
            if self.tx.len() - self.tx_end < self.frame_room {
                self.tx.copy_within(self.tx_start..self.tx_end, 0);
                self.tx_end -= self.tx_start;
                self.tx_start = 0;
            }
            match self.session.poll_transmit(now, &mut self.tx[self.tx_end..]) {
                Some(n) => {
                    self.tx_end += n;
                    any = true;
                }
                None => break,
            }
        }
        any
    }

    /// The next session event, with what it borrows copied out.
    fn next_event(&mut self) -> Option<Happened> {
        let commands = &self.commands;
        let partial = &mut self.partial;
        Some(match self.session.poll_event()? {
            Event::Connect => Happened::Connect,
            Event::Connected { session_present } => Happened::Connected(session_present),
            Event::Disconnected { reason } => Happened::Disconnected(reason),
            Event::Published { id, seq, duplicate } => Happened::Published {
                id: id.0,
                ack: PubAck {
                    seq: Some(seq),
                    duplicate,
                },
            },
            Event::PublishRejected { id, reason } => Happened::PublishRejected(id.0, reason),
            Event::Subscribed { sub } => Happened::Subscribed(sub),
            Event::SubscribeRejected { sub, reason } => Happened::SubscribeRejected(sub, reason),
            Event::Unsubscribed { sub } => Happened::Unsubscribed(sub),
            Event::Message(d) => Happened::Message(Message::new(
                &d,
                Bytes::copy_from_slice(d.payload),
                commands,
            )),
            Event::Chunk(c) => match reassemble(partial, &c, commands) {
                Some(msg) => Happened::Message(msg),
                None => Happened::Piece,
            },
            // The driver keeps its own request-reply for now: it makes no
            // requests through the session, which therefore reports none.
            Event::Reply { .. } | Event::RequestFailed { .. } => Happened::Piece,
            Event::Closed => Happened::Closed,
        })
    }

    fn on_event(&mut self, now: Instant, happened: Happened) {
        match happened {
            Happened::Connect => self.want_connect = true,
            Happened::Connected(session_present) => {
                debug!("connected, session present: {session_present}");
                self.welcomed = true;
                self.size_output();
                if let Some(w) = self.connect_waiter.take() {
                    // What the caller sees first says connected.
                    self.publish_stats();
                    w.send(Ok(()));
                }
            }
            Happened::Disconnected(reason) => {
                debug!("disconnected: {reason}");
                self.last_reason = reason;
                self.want_disconnect = true;
                if !self.welcomed
                    && let Some(w) = self.connect_waiter.take()
                {
                    w.send(Err(self.first_failure(reason)));
                    self.session.close(now);
                }
            }
            Happened::Published { id, ack } => {
                if let Some(then) = self.publishes.remove(&id) {
                    self.answer(then, Ok(ack));
                }
            }
            Happened::PublishRejected(id, reason) => {
                if let Some(then) = self.publishes.remove(&id) {
                    self.answer(then, Err(Error::Rejected(reason)));
                }
            }
            Happened::Subscribed(sub) => {
                if self.requests.is_reply_sub(sub) {
                    self.requests.sub = ReplySub::Active(sub);
                    for (corr, msg) in std::mem::take(&mut self.requests.held) {
                        self.enqueue(now, msg, Then::Request(corr));
                    }
                } else if let Some(reply) = self.subscribes.remove(&sub.0) {
                    if reply.is_closed() {
                        self.unsubscribe(now, sub);
                    } else {
                        reply.send(Ok(sub));
                    }
                }
            }
            Happened::SubscribeRejected(sub, reason) => {
                if self.requests.is_reply_sub(sub) {
                    self.requests.sub = ReplySub::None;
                    for (corr, _) in std::mem::take(&mut self.requests.held) {
                        self.requests.fail(corr, Error::Rejected(reason));
                    }
                }
                self.subscribers.remove(&sub.0);
                if let Some(reply) = self.subscribes.remove(&sub.0) {
                    reply.send(Err(Error::Rejected(reason)));
                }
            }
            Happened::Unsubscribed(sub) => {
                if self.requests.is_reply_sub(sub) {
                    self.requests.sub = ReplySub::None;
                }
                self.subscribers.remove(&sub.0);
                if let Some(reply) = self.subscribes.remove(&sub.0) {
                    reply.send(Err(self.closed_error()));
                }
            }
            Happened::Message(msg) => self.route(now, msg),
            Happened::Piece => {}
            Happened::Closed => {
                debug!("session closed: {}", self.final_reason());
                self.stopping = true;
            }
        }
    }

    /// Why the first connection attempt failed, for `connect`.
    fn first_failure(&mut self, reason: Reason) -> Error {
        if let Some(e) = self.connect_error.take() {
            return Error::Io(e);
        }
        match reason {
            Reason::Normal => Error::Io(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the connection closed before the broker's welcome",
            )),
            Reason::Timeout => Error::Timeout,
            reason => Error::Refused(reason),
        }
    }

    /// Makes room in the output buffer for the broker's largest frame.
    fn size_output(&mut self) {
        let Some(limits) = self.session.broker_limits() else {
            return;
        };
        let room = Framing::Stream.max_framed_len(limits.max_frame as usize);
        if room > self.frame_room {
            self.frame_room = room;
            self.tx.resize(WRITE_HIGH_WATER + room, 0);
        }
    }

    /// A message to its requester or its subscription's sink.
    fn route(&mut self, now: Instant, mut msg: Message) {
        if self.requests.is_reply_sub(msg.sub) {
            // A reply is consumed here whether or not its requester still waits.
            if let Some(id) = msg.disarm() {
                let _ = self.session.ack(id);
            }
            let corr = msg
                .correlation
                .as_deref()
                .and_then(|c| <[u8; 8]>::try_from(c).ok())
                .map(u64::from_be_bytes);
            match corr.and_then(|c| self.requests.waiting.remove(&c)) {
                Some(reply) => reply.send(Ok(msg)),
                None => debug!("reply for no waiting request dropped"),
            }
            return;
        }
        self.offer(now, msg);
    }

    /// Places a message in its sink, or parks it when the sink is full.
    fn offer(&mut self, now: Instant, msg: Message) {
        let sub = msg.sub;
        let Some(s) = self.subscribers.get_mut(&sub.0) else {
            // Unsubscribed: deliveries may arrive until the broker confirms.
            self.requeue(msg);
            return;
        };
        let msg = match s.sink.offer(msg) {
            Offer::Taken => return,
            Offer::Full(msg) => {
                s.waiting.store(true, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                match s.sink.offer(msg) {
                    Offer::Taken => return,
                    Offer::Full(msg) => {
                        self.parked = Some(msg);
                        return;
                    }
                    Offer::Closed(msg) => msg,
                }
            }
            Offer::Closed(msg) => msg,
        };
        // The application dropped the subscription.
        self.unsubscribe(now, sub);
        self.requeue(msg);
    }

    fn publish_stats(&self) {
        let s = &self.session;
        let stats = Stats {
            state: s.state(),
            session: s.stats(),
            outbox_messages: s.outbox_len(),
            outbox_bytes: s.outbox_bytes(),
            inbox_bytes: s.inbox_bytes(),
            held: s.held_len(),
            subscriptions: self.subscribers.len(),
            waiting_publishers: self.waiting.len(),
        };
        *self
            .commands
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = stats;
    }

    /// The loop is ending (after [`Wants::stop`], with the output written):
    /// answers every caller still waiting and ends every subscription.
    pub(crate) fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.stopping = true;
        let reason = self.final_reason();
        *self
            .commands
            .closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason);
        self.publish_stats();
        let error = || Error::Closed(reason);
        if let Some(w) = self.connect_waiter.take() {
            w.send(Err(error()));
        }
        for (_, then) in self.publishes.drain() {
            if let Then::Reply(reply) = then {
                reply.send(Err(error()));
            }
        }
        for (_, then) in std::mem::take(&mut self.waiting) {
            if let Then::Reply(reply) = then {
                reply.send(Err(error()));
            }
        }
        for (_, reply) in self.subscribes.drain() {
            reply.send(Err(error()));
        }
        for (_, reply) in self.requests.waiting.drain() {
            reply.send(Err(error()));
        }
        self.requests.held.clear();
        self.subscribers.clear();
        self.parked = None;
        self.partial = None;
        for reply in self.closers.drain(..) {
            reply.send(());
        }
    }
}

/// A session event with its borrowed parts copied out.
enum Happened {
    Connect,
    Connected(bool),
    Disconnected(Reason),
    Published {
        id: u32,
        ack: PubAck,
    },
    PublishRejected(u32, Reason),
    Subscribed(SubId),
    SubscribeRejected(SubId, Reason),
    Unsubscribed(SubId),
    Message(Message),
    /// A piece of a large message, kept until the last one.
    Piece,
    Closed,
}

/// Adds a piece of a large message; the whole message once the last arrived.
fn reassemble(
    partial: &mut Option<Partial>,
    c: &Chunk<'_>,
    commands: &Arc<Commands>,
) -> Option<Message> {
    if c.offset == 0 {
        let head = Delivery {
            id: c.id,
            sub: c.sub,
            topic: c.topic,
            seq: c.seq,
            attempt: c.attempt,
            qos: c.qos,
            meta: c.meta,
            payload: &[],
        };
        let reserve = usize::try_from(c.total.min(MAX_RESERVE)).unwrap_or(0);
        *partial = Some(Partial {
            msg: Message::new(&head, Bytes::new(), commands),
            data: Vec::with_capacity(reserve),
        });
    }
    let p = partial.as_mut()?;
    if p.msg.sub != c.sub || p.msg.seq != c.seq || p.data.len() as u64 != c.offset {
        // Not the continuation of what we have: the session restarts a message
        // from offset 0, so drop the fragment.
        warn!("out-of-place piece of a message dropped");
        return None;
    }
    p.data.extend_from_slice(c.data);
    if !c.last {
        return None;
    }
    let Partial { mut msg, data } = partial.take()?;
    msg.payload = Bytes::from(data);
    Some(msg)
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

fn subscribe_error(e: SubscribeError) -> Error {
    match e {
        SubscribeError::InvalidFilter => Error::Invalid("invalid filter"),
        SubscribeError::FilterTooLong => Error::Invalid("filter longer than 128 bytes"),
        SubscribeError::InvalidGroup => Error::Invalid("group name empty or longer than 64 bytes"),
        SubscribeError::TableFull => Error::TooManySubscriptions,
        _ => Error::Invalid("subscription refused"),
    }
}

/// The private topic this client's replies come back on: `_reply.<client id>`
/// when that is a valid topic, else `_reply.<random hex>`.
fn reply_topic(client_id: &str) -> String {
    let topic = format!("_reply.{client_id}");
    if mq_core::topic::Topic::new(&topic).is_ok() {
        topic
    } else {
        format!("_reply.{:016x}", random_u64())
    }
}

/// 64 random bits from the standard library's hasher keys, the time, the
/// process id and a counter: unique enough for client and producer ids.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}
