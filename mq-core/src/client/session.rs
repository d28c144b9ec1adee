//! The client session state machine.

use core::time::Duration;

use heapless::{Deque, String, Vec};

use super::backoff::Backoff;
use super::held::{Held, MessageKey, Settle, Slot, topic_hash};
use super::inbox::{self, Inbox, RecordHead};
use super::outbox::{Outbox, PushError, Record};
use super::subscriptions::{Outgoing, Subscription, Subscriptions};
use super::{
    AckError, Backpressure, Chunk, Config, CreditError, Delivery, DeliveryId, Event, Framing,
    PublishError, PublishId, PublishOptions, State, Stats, SubId, SubscribeError, SubscribeOptions,
    UnsubscribeError,
};
use crate::framing::stream::{self, Split, StreamDecoder, StreamError};
use crate::time::Instant;
use crate::topic::{Filter, MAX_TOPIC_LEN, Topic};
use crate::wire::{
    Ack, Close, Credit, Dedup, Deliver, ErrorFrame, Fragment, Frame, Hello, Limits, Meta, Nack,
    PROTOCOL_VERSION, PubAck, PubReject, Publish, QoS, Reason, SubAck, SubReject, Subscribe,
    UnsubAck, Unsubscribe, Welcome,
};

/// Events queued besides messages (messages live in the inbox).
const EVENTS: usize = 16;
/// Event slots input handling leaves free for lifecycle events (`Disconnected`,
/// `Connect`, `Closed`), which are produced without a way to push back.
const RESERVE: usize = 4;
/// Pongs owed to the broker.
const PONGS: usize = 4;

/// A frame `poll_transmit` is about to write, and what writing it changes.
#[derive(Debug, Clone, Copy)]
enum Tx {
    Error,
    Close,
    Hello,
    Pong,
    Ping,
    Subscribe(usize),
    Unsubscribe(usize),
    Settle(usize),
    Credit { index: usize, owed: u32, grant: u32 },
    Publish { at: usize, sent: u64, total: u64 },
}

/// An event other than a message, stored compactly until polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Note {
    Connect,
    Connected(bool),
    Disconnected(Reason),
    Published(u32, u64, bool),
    PublishRejected(u32, Reason),
    Subscribed(u32),
    SubscribeRejected(u32, Reason),
    Unsubscribed(u32),
    Closed,
}

impl Note {
    /// Messages are not notes: they live in the inbox.
    fn from_event(event: Event<'_>) -> Option<Note> {
        Some(match event {
            Event::Connect => Note::Connect,
            Event::Connected { session_present } => Note::Connected(session_present),
            Event::Disconnected { reason } => Note::Disconnected(reason),
            Event::Published { id, seq, duplicate } => Note::Published(id.0, seq, duplicate),
            Event::PublishRejected { id, reason } => Note::PublishRejected(id.0, reason),
            Event::Subscribed { sub } => Note::Subscribed(sub.0),
            Event::SubscribeRejected { sub, reason } => Note::SubscribeRejected(sub.0, reason),
            Event::Unsubscribed { sub } => Note::Unsubscribed(sub.0),
            Event::Closed => Note::Closed,
            Event::Message(_) | Event::Chunk(_) => return None,
        })
    }

    fn event(self) -> Event<'static> {
        match self {
            Note::Connect => Event::Connect,
            Note::Connected(session_present) => Event::Connected { session_present },
            Note::Disconnected(reason) => Event::Disconnected { reason },
            Note::Published(id, seq, duplicate) => Event::Published {
                id: PublishId(id),
                seq,
                duplicate,
            },
            Note::PublishRejected(id, reason) => Event::PublishRejected {
                id: PublishId(id),
                reason,
            },
            Note::Subscribed(sub) => Event::Subscribed { sub: SubId(sub) },
            Note::SubscribeRejected(sub, reason) => Event::SubscribeRejected {
                sub: SubId(sub),
                reason,
            },
            Note::Unsubscribed(sub) => Event::Unsubscribed { sub: SubId(sub) },
            Note::Closed => Event::Closed,
        }
    }
}

/// What happens to the remaining fragments of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RxMode {
    /// Reassembled in the inbox.
    Reassemble,
    /// Each fragment becomes a chunk.
    Chunked,
    /// A redelivery already handled: drop the rest.
    Discard,
}

/// A fragmented delivery in progress.
#[derive(Debug, Clone)]
struct RxFrag {
    mode: RxMode,
    sub: u32,
    tag: u64,
    /// Offset the next fragment must have.
    next: u64,
    total: u64,
    /// Fields of the chunks still to come.
    head: RecordHead,
    /// The topic from the first fragment, for the chunks still to come.
    topic: String<MAX_TOPIC_LEN>,
}

/// Payload bytes a fragment of `p`'s message starting at `offset` can carry within
/// `max` encoded bytes. Exact, unlike [`crate::wire::publish_overhead`] (a bound): the
/// frame is measured with an empty payload, whose length prefix then grows to at
/// most the size of `max`'s.
fn fragment_room(p: &Publish<'_>, offset: u64, max: usize) -> usize {
    let probe = Publish {
        fragment: Some(Fragment {
            offset,
            total: p.payload.len() as u64,
        }),
        payload: &[],
        ..*p
    };
    let base = Frame::Publish(probe).encoded_len();
    max.saturating_sub(base.saturating_sub(1) + stream::prefix_len(max))
}

/// One client's session with a broker: a sans-IO state machine.
///
/// The session owns no socket, clock or heap. The adapter moves bytes and time in
/// and out through four groups of methods:
///
/// - **`handle_*`** (something happened): [`handle_connected`](Self::handle_connected),
///   [`handle_disconnected`](Self::handle_disconnected),
///   [`handle_input`](Self::handle_input) (stream bytes),
///   [`handle_frame`](Self::handle_frame) (one decoded frame, for serial drivers),
///   [`handle_timeout`](Self::handle_timeout).
/// - **commands** (the application wants something; they return at once):
///   [`connect`](Self::connect), [`close`](Self::close), [`publish`](Self::publish),
///   [`subscribe`](Self::subscribe), [`unsubscribe`](Self::unsubscribe),
///   [`ack`](Self::ack), [`nack`](Self::nack), [`grant_credit`](Self::grant_credit).
/// - **`poll_*`** (what the session wants done):
///   [`poll_transmit`](Self::poll_transmit) (bytes to write),
///   [`poll_event`](Self::poll_event) (what happened, for the application),
///   [`poll_timeout`](Self::poll_timeout) (when to call `handle_timeout`).
/// - **getters**: [`state`](Self::state), [`is_connected`](Self::is_connected),
///   [`stats`](Self::stats), [`broker_limits`](Self::broker_limits), ...
///
/// # Polling contract
///
/// After every `handle_*` call or command:
///
/// 1. call `poll_transmit` until it returns `None`, writing what it returns;
/// 2. call `poll_event` until it returns `None`, acting on each event (this may
///    issue commands: acks, publishes); if any event was returned, go back to 1
///    (consuming messages can queue acks and credit);
/// 3. sleep until `poll_timeout()` (or input arrives), then call `handle_timeout`.
///
/// Start with [`connect`](Self::connect): it emits [`Event::Connect`], the cue to
/// open a transport and report it with `handle_connected` (or `handle_disconnected`
/// if that fails). [`Event::Disconnected`] means the connection is over: write what
/// `poll_transmit` still returns, close the transport if it is still open and call
/// `handle_disconnected`; the session then
/// emits `Event::Connect` again after a backoff. [`Event::Closed`] means close the
/// transport for good.
///
/// Input is never dropped: when the inbox, the held table or the event queue
/// cannot take what the next frame produces, `handle_input` stops before it and
/// `handle_frame` returns [`Backpressure`]; hand the rest in again after draining
/// events.
///
/// # Storage
///
/// `outbox` holds publishes until they are sent (QoS 0) or acknowledged (QoS 1);
/// `inbox` holds received messages until the application has seen them. Each
/// record takes [`OUTBOX_RECORD_OVERHEAD`](super::OUTBOX_RECORD_OVERHEAD) or
/// [`INBOX_RECORD_OVERHEAD`](super::INBOX_RECORD_OVERHEAD) bytes besides its topic,
/// properties and payload. The largest frame the client announces is lowered so
/// that any single delivery fits the inbox; messages larger than the inbox arrive
/// as [`Event::Chunk`]s. `SUBS` bounds the subscriptions and `HELD` the QoS 1
/// deliveries the application holds unacked at once.
pub struct Session<B, const SUBS: usize = 8, const HELD: usize = 32>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    config: Config,
    framing: Framing,
    state: State,
    outbox: Outbox<B>,
    inbox: Inbox<B>,
    subs: Subscriptions<SUBS>,
    held: Held<HELD>,
    /// Events stamped with the number of messages queued before them.
    events: Deque<(u32, Note), EVENTS>,
    msgs_queued: u32,
    msgs_emitted: u32,
    backoff: Backoff,
    /// Counts connections; a held delivery's tag is valid only in its epoch.
    epoch: u32,
    /// The largest frame this client accepts, as announced in `Hello`.
    max_frame_in: u32,
    broker: Option<Limits>,
    keepalive: Option<Duration>,
    /// Connect timeout (connecting, handshaking) or reconnect time (backoff).
    deadline: Option<Instant>,
    last_tx: Instant,
    last_rx: Instant,
    hello_pending: bool,
    ping_pending: Option<u64>,
    ping_counter: u64,
    pongs: Deque<u64, PONGS>,
    error_pending: Option<Reason>,
    close_pending: bool,
    /// The reason `Disconnected` was emitted with on this connection.
    reported: Option<Reason>,
    rx: Option<RxFrag>,
    next_publish_id: u32,
    publish_ids_wrapped: bool,
    dedup_seq: u64,
    connects: u64,
    stats: Stats,
}

impl<B, const SUBS: usize, const HELD: usize> Session<B, SUBS, HELD>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    /// A session that will speak to the broker as `config` says, framing its output
    /// as `framing`, keeping publishes in `outbox` and received messages in `inbox`.
    /// Nothing happens until [`connect`](Self::connect) (or `handle_connected`).
    pub fn new(config: Config, framing: Framing, outbox: B, inbox: B) -> Self {
        let inbox = Inbox::new(inbox);
        let room = inbox.capacity().saturating_sub(inbox::RECORD_OVERHEAD);
        let max_frame_in = config
            .limits
            .max_frame
            .min(u32::try_from(room).unwrap_or(u32::MAX));
        let backoff = Backoff::new(config.seed);
        Session {
            config,
            framing,
            state: State::Idle,
            outbox: Outbox::new(outbox),
            inbox,
            subs: Subscriptions::new(),
            held: Held::new(),
            events: Deque::new(),
            msgs_queued: 0,
            msgs_emitted: 0,
            backoff,
            epoch: 0,
            max_frame_in,
            broker: None,
            keepalive: None,
            deadline: None,
            last_tx: Instant::ZERO,
            last_rx: Instant::ZERO,
            hello_pending: false,
            ping_pending: None,
            ping_counter: 0,
            pongs: Deque::new(),
            error_pending: None,
            close_pending: false,
            reported: None,
            rx: None,
            next_publish_id: 1,
            publish_ids_wrapped: false,
            dedup_seq: 0,
            connects: 0,
            stats: Stats::default(),
        }
    }

    // ---------------------------------------------------------------- getters

    /// Where the session is in its connection lifecycle.
    pub fn state(&self) -> State {
        self.state
    }

    /// True between `Welcome` and the end of the connection.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The limits announced to the broker in `Hello` (`max_frame` lowered to what
    /// the inbox holds). A serial driver sizes its decoder for `max_frame`.
    pub fn receive_limits(&self) -> Limits {
        Limits {
            max_frame: self.max_frame_in,
            ..self.config.limits
        }
    }

    /// The broker's limits from the last `Welcome`.
    pub fn broker_limits(&self) -> Option<Limits> {
        self.broker
    }

    /// Publishes in the outbox: not yet sent, or QoS 1 awaiting `PubAck`.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Outbox bytes in use.
    pub fn outbox_bytes(&self) -> usize {
        self.outbox.bytes()
    }

    /// Inbox bytes in use.
    pub fn inbox_bytes(&self) -> usize {
        self.inbox.bytes()
    }

    /// Held-table slots in use: deliveries the application has not acked, and acks
    /// waiting to be sent.
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// Subscriptions in the table (including ones being unsubscribed).
    pub fn subscriptions(&self) -> usize {
        self.subs.len()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    // ---------------------------------------------------------------- handle_*

    /// The transport to the broker is up: `Hello` is queued.
    pub fn handle_connected(&mut self, now: Instant) {
        match self.state {
            State::Connecting => {}
            State::Idle | State::Backoff => self.begin_attempt(now),
            _ => {
                warn!("handle_connected in state {}", self.state);
                return;
            }
        }
        debug!("transport up, sending hello");
        self.state = State::Handshaking;
        self.hello_pending = true;
        self.last_tx = now;
        self.last_rx = now;
    }

    /// The transport is gone (closed by either side, or it never came up). Emits
    /// `Disconnected` unless the session already did for this connection, then
    /// schedules a reconnect with backoff; after [`close`](Self::close) emits
    /// `Closed` instead.
    pub fn handle_disconnected(&mut self, now: Instant) {
        match self.state {
            State::Idle | State::Backoff | State::Closed => return,
            State::Closing => {
                self.end_connection();
                self.state = State::Closed;
                self.push_event(Event::Closed);
                return;
            }
            State::Connecting | State::Handshaking | State::Connected | State::Disconnecting => {}
        }
        let reason = match self.reported {
            Some(reason) => reason,
            None => {
                self.push_event(Event::Disconnected {
                    reason: Reason::Normal,
                });
                Reason::Normal
            }
        };
        self.end_connection();
        if matches!(
            reason,
            Reason::BadToken | Reason::UnsupportedVersion | Reason::SessionTakenOver
        ) {
            debug!("broker refused the session for good: {}", reason);
            self.state = State::Closed;
            self.push_event(Event::Closed);
            return;
        }
        let delay = self
            .backoff
            .next_delay(self.config.reconnect_min, self.config.reconnect_max);
        self.state = State::Backoff;
        self.deadline = Some(now + delay);
    }

    /// Bytes from a stream transport (varint-framed, whatever `Framing` the output
    /// uses). Consumes whole frames only and returns how many bytes it took; keep
    /// the rest and hand it in again with more. Stops early when the next delivery
    /// does not fit (see [`Backpressure`]): drain events, then call again. Input that
    /// is not a valid frame ends the connection (`ErrorFrame`, then
    /// `Event::Disconnected`) and is consumed entirely, as is input arriving while no
    /// connection is active.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> usize {
        let decoder = StreamDecoder::new(self.max_frame_in);
        let mut consumed = 0;
        while consumed < bytes.len() {
            if !self.accepts_input() {
                return bytes.len();
            }
            let rest = bytes.get(consumed..).unwrap_or(&[]);
            match decoder.split(rest) {
                Ok(Split::Incomplete { .. }) => break,
                Ok(Split::Whole { body, consumed: n }) => match Frame::decode(body) {
                    Ok(frame) => match self.handle_frame(now, frame) {
                        Ok(()) => consumed += n,
                        Err(_) => break,
                    },
                    Err(_) => {
                        self.violation(Reason::Malformed);
                        return bytes.len();
                    }
                },
                Err(StreamError::FrameTooLarge { .. }) => {
                    self.violation(Reason::FrameTooLarge);
                    return bytes.len();
                }
                Err(_) => {
                    self.violation(Reason::Malformed);
                    return bytes.len();
                }
            }
        }
        consumed
    }

    /// One decoded frame from the broker (serial drivers decode with
    /// [`SerialDecoder`](crate::framing::serial::SerialDecoder) and call this).
    /// `Err` means the frame was not consumed: drain events and hand it in again.
    /// Frames arriving while no connection is active are ignored.
    pub fn handle_frame(&mut self, now: Instant, frame: Frame<'_>) -> Result<(), Backpressure> {
        if !self.accepts_input() {
            return Ok(());
        }
        self.last_rx = now;
        self.inbox.release_shown();
        if !self.room(1) {
            return Err(Backpressure::Events);
        }
        trace!("received {}", frame.kind());
        let handshaking = self.state == State::Handshaking;
        let result = match frame {
            Frame::Welcome(w) => self.on_welcome(now, w),
            Frame::Error(e) => {
                debug!("broker error: {}", e.code);
                self.end_with(e.code, None);
                Ok(())
            }
            Frame::Close(c) => {
                debug!("broker closed: {}", c.reason);
                self.end_with(c.reason, None);
                Ok(())
            }
            Frame::Ping(value) => self
                .pongs
                .push_back(value)
                .map_err(|_| Backpressure::Transmit),
            Frame::Pong(_) => Ok(()),
            _ if handshaking => {
                self.violation(Reason::ProtocolViolation);
                Ok(())
            }
            Frame::PubAck(a) => {
                self.on_puback(a);
                Ok(())
            }
            Frame::PubReject(r) => {
                self.on_pubreject(r);
                Ok(())
            }
            Frame::SubAck(a) => {
                self.on_suback(a);
                Ok(())
            }
            Frame::SubReject(r) => {
                self.on_subreject(r);
                Ok(())
            }
            Frame::UnsubAck(a) => {
                self.on_unsuback(a);
                Ok(())
            }
            Frame::Deliver(d) => self.on_deliver(d),
            Frame::Hello(_)
            | Frame::Publish(_)
            | Frame::Subscribe(_)
            | Frame::Unsubscribe(_)
            | Frame::Ack(_)
            | Frame::Nack(_)
            | Frame::Credit(_) => {
                self.violation(Reason::ProtocolViolation);
                Ok(())
            }
        };
        if result.is_ok() {
            self.stats.frames_in += 1;
        }
        result
    }

    /// Time passed: reconnects after backoff, sends keepalive pings, detects a dead
    /// broker or a handshake that takes too long. Call it at
    /// [`poll_timeout`](Self::poll_timeout) (calling it early is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = self.deadline.is_some_and(|d| now >= d);
        match self.state {
            State::Backoff if due => self.emit_connect(now),
            State::Connecting | State::Handshaking if due => {
                debug!("no welcome in time");
                self.stats.timeouts += 1;
                self.end_with(Reason::Timeout, None);
            }
            State::Connected => {
                let Some(ka) = self.keepalive else { return };
                if now >= self.last_rx + ka.saturating_mul(3) / 2 {
                    debug!("keepalive timeout");
                    self.stats.timeouts += 1;
                    self.end_with(Reason::KeepaliveTimeout, None);
                } else if self.ping_pending.is_none() && now >= self.last_tx + ka / 2 {
                    self.ping_counter = self.ping_counter.wrapping_add(1);
                    self.ping_pending = Some(self.ping_counter);
                }
            }
            _ => {}
        }
    }

    // ---------------------------------------------------------------- commands

    /// Starts the session (or restarts it after `Closed`): emits
    /// [`Event::Connect`]. Does nothing in any other state.
    pub fn connect(&mut self, now: Instant) {
        if matches!(self.state, State::Idle | State::Closed) {
            self.emit_connect(now);
        }
    }

    /// Ends the session: sends `Close { Normal }` if a connection is up, then emits
    /// [`Event::Closed`] once `poll_transmit` has written it (at once otherwise).
    /// The session does not reconnect. The outbox, subscriptions and held
    /// deliveries are kept for a later [`connect`](Self::connect).
    pub fn close(&mut self, _now: Instant) {
        match self.state {
            State::Closing | State::Closed => {}
            State::Connected | State::Handshaking if !self.hello_pending => {
                self.state = State::Closing;
                self.close_pending = true;
            }
            _ => {
                self.end_connection();
                self.state = State::Closed;
                self.push_event(Event::Closed);
            }
        }
    }

    /// Queues a message; it is sent when connected (now or after a reconnect).
    ///
    /// QoS 0 messages leave the outbox once written by `poll_transmit`; QoS 1
    /// messages stay until `PubAck` ([`Event::Published`]) or `PubReject`
    /// ([`Event::PublishRejected`]) and are resent after every reconnect, in order,
    /// with the same id and dedup sequence. Messages larger than the broker's
    /// maximum frame (or [`Config::max_frame_out`]) are sent as fragments.
    pub fn publish(
        &mut self,
        _now: Instant,
        topic: &str,
        payload: &[u8],
        opts: &PublishOptions<'_>,
    ) -> Result<PublishId, PublishError> {
        Topic::new(topic).map_err(|_| PublishError::InvalidTopic)?;
        let id = self.candidate_publish_id();
        let dedup_seq = match (opts.qos, self.config.producer) {
            (QoS::AtLeastOnce, Some(_)) => Some(self.dedup_seq.wrapping_add(1)),
            _ => None,
        };
        if let Some(max_frame) = self.frame_limit() {
            // The last fragment has the longest offset: if it cannot carry a byte,
            // no fragment can.
            let p = Publish {
                id,
                topic,
                qos: opts.qos,
                dedup: dedup_seq
                    .zip(self.config.producer)
                    .map(|(seq, producer)| Dedup { producer, seq }),
                meta: opts.meta,
                fragment: None,
                payload,
            };
            let max = max_frame as usize;
            let last = (payload.len() as u64).saturating_sub(1);
            if Frame::Publish(p).encoded_len() > max && fragment_room(&p, last, max) == 0 {
                return Err(PublishError::TooLarge);
            }
        }
        self.outbox
            .push(id, opts.qos, dedup_seq, topic, &opts.meta, payload)
            .map_err(|e| match e {
                PushError::Full => PublishError::OutboxFull,
                PushError::TooLarge => PublishError::TooLarge,
            })?;
        if let Some(seq) = dedup_seq {
            self.dedup_seq = seq;
        }
        self.next_publish_id = id.wrapping_add(1);
        if self.next_publish_id == 0 {
            self.publish_ids_wrapped = true;
        }
        self.stats.publishes += 1;
        trace!("publish {} queued", id);
        Ok(PublishId(id))
    }

    /// Adds a subscription; `Subscribe` is sent when connected. The broker's answer
    /// arrives as [`Event::Subscribed`] or [`Event::SubscribeRejected`].
    pub fn subscribe(
        &mut self,
        _now: Instant,
        filter: &str,
        opts: &SubscribeOptions<'_>,
    ) -> Result<SubId, SubscribeError> {
        Filter::new(filter).map_err(|_| SubscribeError::InvalidFilter)?;
        let filter = String::try_from(filter).map_err(|_| SubscribeError::FilterTooLong)?;
        let group = match opts.group {
            None => None,
            Some("") => return Err(SubscribeError::InvalidGroup),
            Some(g) => Some(String::try_from(g).map_err(|_| SubscribeError::InvalidGroup)?),
        };
        if self.subs.is_full() {
            return Err(SubscribeError::TableFull);
        }
        let id = self.subs.allocate_id();
        let window = if opts.credit == 0 {
            self.config.limits.credit
        } else {
            opts.credit
        };
        let sub = Subscription {
            id,
            filter,
            group,
            qos: opts.qos,
            start: opts.start,
            window,
            owed: 0,
            grant: 0,
            sent: false,
            acked: false,
            unsubscribing: false,
            outgoing: Outgoing::Subscribe,
        };
        if !self.subs.push(sub) {
            return Err(SubscribeError::TableFull);
        }
        Ok(SubId(id))
    }

    /// Ends a subscription. When the broker may know it, `Unsubscribe` is sent and
    /// the subscription is removed at `UnsubAck` ([`Event::Unsubscribed`]);
    /// deliveries may arrive until then. When its `Subscribe` is still waiting to be
    /// sent (a new subscription, or a resubscription after the broker lost the
    /// session), it is removed at once and no event follows.
    pub fn unsubscribe(&mut self, _now: Instant, sub: SubId) -> Result<(), UnsubscribeError> {
        let index = self.subs.index(sub.0).ok_or(UnsubscribeError::UnknownSub)?;
        let Some(s) = self.subs.get_mut(index) else {
            return Err(UnsubscribeError::UnknownSub);
        };
        if s.unsubscribing {
            return Ok(());
        }
        if !s.sent {
            self.subs.remove(index);
            return Ok(());
        }
        s.unsubscribing = true;
        s.outgoing = Outgoing::Unsubscribe;
        Ok(())
    }

    /// Acknowledges a delivery (sends `Ack` with its current broker tag). Acking a
    /// QoS 0 delivery ([`DeliveryId::NONE`]) does nothing and succeeds. Acked
    /// messages are remembered, so a redelivery of one is re-acked and not shown.
    pub fn ack(&mut self, id: DeliveryId) -> Result<(), AckError> {
        self.settle(id, Settle::Ack)
    }

    /// Refuses a delivery: `requeue` asks the broker to deliver it again (possibly
    /// to another group member), otherwise it is dead-lettered.
    pub fn nack(&mut self, id: DeliveryId, requeue: bool) -> Result<(), AckError> {
        self.settle(id, Settle::Nack { requeue })
    }

    /// Widens a subscription's credit window by `credit` deliveries.
    pub fn grant_credit(&mut self, sub: SubId, credit: u32) -> Result<(), CreditError> {
        let s = self.subs.by_id_mut(sub.0).ok_or(CreditError::UnknownSub)?;
        s.window = s.window.saturating_add(credit);
        s.grant = s.grant.saturating_add(credit);
        Ok(())
    }

    // ---------------------------------------------------------------- poll_*

    /// Writes as many whole frames as fit into the front of `buf`, framed as
    /// configured, and returns the bytes written; `None` when there is nothing to
    /// send or the next frame does not fit, in which case `buf` is untouched.
    ///
    /// `buf` must hold the largest frame: at least
    /// `framing.max_framed_len(min(broker max_frame, Config::max_frame_out))` bytes
    /// ([`Framing::max_framed_len`], [`broker_limits`](Self::broker_limits),
    /// [`Config::max_frame_out`]); publishes are fragmented to that maximum, not
    /// to `buf`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let mut written = 0;
        loop {
            self.drop_unsendable();
            let Some((tx, frame)) = self.next_tx() else {
                break;
            };
            let Some(out) = buf.get_mut(written..) else {
                break;
            };
            // Publishes are sized to the broker's limit; nothing else comes close.
            let result = self.framing.encode(&frame, u32::MAX, out);
            let Ok(n) = result else {
                break;
            };
            trace!("sent {}", frame.kind());
            written += n;
            self.stats.frames_out += 1;
            self.stats.bytes_out += n as u64;
            self.commit(tx);
        }
        if written == 0 {
            return None;
        }
        self.last_tx = now;
        Some(written)
    }

    /// The next event, in order. A [`Event::Message`] or [`Event::Chunk`] borrows
    /// the inbox until the next call, which releases its space.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        if let Some(&(stamp, note)) = self.events.front()
            && stamp == self.msgs_emitted
        {
            self.inbox.release_shown();
            self.events.pop_front();
            return Some(note.event());
        }
        let Some(head) = self.inbox.take_next() else {
            // No message is ready, so whatever is queued is due.
            return self.events.pop_front().map(|(_, note)| note.event());
        };
        self.msgs_emitted = self.msgs_emitted.wrapping_add(1);
        let complete = !head.chunk || head.last;
        if complete {
            self.stats.deliveries += 1;
            if head.qos == QoS::AtMostOnce
                && let Some(s) = self.subs.by_id_mut(head.sub)
            {
                s.owed = s.owed.saturating_add(1);
            }
        }
        let view = self.inbox.shown()?;
        let (id, sub) = (DeliveryId(head.id), SubId(head.sub));
        Some(if head.chunk {
            Event::Chunk(Chunk {
                id,
                sub,
                topic: view.topic,
                seq: head.seq,
                attempt: head.attempt,
                qos: head.qos,
                meta: view.meta,
                offset: head.offset,
                total: head.total,
                data: view.data,
                last: head.last,
            })
        } else {
            Event::Message(Delivery {
                id,
                sub,
                topic: view.topic,
                seq: head.seq,
                attempt: head.attempt,
                qos: head.qos,
                meta: view.meta,
                payload: view.data,
            })
        })
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Backoff | State::Connecting | State::Handshaking => self.deadline,
            State::Connected => self.keepalive.map(|ka| {
                let dead = self.last_rx + ka.saturating_mul(3) / 2;
                if self.ping_pending.is_none() {
                    dead.min(self.last_tx + ka / 2)
                } else {
                    dead
                }
            }),
            _ => None,
        }
    }

    // ---------------------------------------------------------------- internals

    fn accepts_input(&self) -> bool {
        matches!(self.state, State::Handshaking | State::Connected)
    }

    /// Whether `n` more events fit while keeping the lifecycle reserve.
    fn room(&self, n: usize) -> bool {
        self.events.len() + n + RESERVE <= EVENTS
    }

    fn push_event(&mut self, event: Event<'static>) {
        let Some(note) = Note::from_event(event) else {
            return;
        };
        if self.events.push_back((self.msgs_queued, note)).is_err() {
            warn!("event queue overflow: poll_event is not being drained");
            self.stats.events_overflowed += 1;
        }
    }

    fn begin_attempt(&mut self, now: Instant) {
        self.reported = None;
        self.deadline =
            (!self.config.connect_timeout.is_zero()).then(|| now + self.config.connect_timeout);
    }

    fn emit_connect(&mut self, now: Instant) {
        if self.connects > 0 {
            self.stats.reconnects += 1;
        }
        self.connects += 1;
        self.begin_attempt(now);
        self.state = State::Connecting;
        self.push_event(Event::Connect);
    }

    /// The connection must end: emits `Disconnected { reason }` and, when `error`
    /// is set and the broker has our `Hello`, sends an `ErrorFrame` first.
    fn end_with(&mut self, reason: Reason, error: Option<Reason>) {
        let hello_sent = self.state == State::Connected
            || (self.state == State::Handshaking && !self.hello_pending);
        self.error_pending = error.filter(|_| hello_sent);
        self.state = State::Disconnecting;
        self.reported = Some(reason);
        self.push_event(Event::Disconnected { reason });
    }

    fn violation(&mut self, reason: Reason) {
        warn!("bad input from the broker: {}", reason);
        self.stats.protocol_errors += 1;
        self.end_with(reason, Some(reason));
    }

    /// Forgets everything that belonged to the connection.
    fn end_connection(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.held.connection_lost();
        if let Some(rx) = self.rx.take() {
            if rx.mode == RxMode::Reassemble {
                self.inbox.drop_partial();
            }
            // The application never saw it whole: a redelivery must be shown.
            if rx.mode != RxMode::Discard
                && let Some(slot) = self.held.lookup(DeliveryId(rx.head.id))
            {
                self.held.free(slot);
            }
        }
        self.pongs.clear();
        self.ping_pending = None;
        self.hello_pending = false;
        self.error_pending = None;
        self.close_pending = false;
        self.keepalive = None;
        self.deadline = None;
    }

    fn on_welcome(&mut self, now: Instant, w: Welcome) -> Result<(), Backpressure> {
        if self.state != State::Handshaking {
            self.violation(Reason::ProtocolViolation);
            return Ok(());
        }
        if w.version != PROTOCOL_VERSION {
            self.stats.protocol_errors += 1;
            self.end_with(Reason::UnsupportedVersion, Some(Reason::UnsupportedVersion));
            return Ok(());
        }
        let forgotten = if w.session_present {
            0
        } else {
            self.subs.count_forgotten()
        };
        if !self.room(1 + forgotten) && !self.events.is_empty() {
            return Err(Backpressure::Events);
        }
        debug!("welcome, session present: {}", w.session_present);
        self.state = State::Connected;
        self.broker = Some(w.limits);
        self.keepalive = match (self.config.limits.keepalive_ms, w.limits.keepalive_ms) {
            (0, 0) => None,
            (0, ms) | (ms, 0) => Some(ms),
            (a, b) => Some(a.min(b)),
        }
        .map(|ms| Duration::from_millis(u64::from(ms)));
        self.deadline = None;
        self.last_rx = now;
        self.backoff.reset();
        self.outbox.rewind();
        self.push_event(Event::Connected {
            session_present: w.session_present,
        });
        let mut removed: Vec<u32, SUBS> = Vec::new();
        self.subs.on_welcome(w.session_present, |id| {
            let _ = removed.push(id);
        });
        for id in removed {
            self.push_event(Event::Unsubscribed { sub: SubId(id) });
        }
        Ok(())
    }

    fn on_puback(&mut self, a: PubAck) {
        if self.outbox.remove_acked(a.id) {
            self.stats.publish_acks += 1;
            self.push_event(Event::Published {
                id: PublishId(a.id),
                seq: a.seq,
                duplicate: a.duplicate,
            });
        } else {
            debug!("puback for unknown publish {}", a.id);
        }
    }

    fn on_pubreject(&mut self, r: PubReject) {
        // Frees the entry in any state: a rejected fragmented publish stops.
        self.outbox.remove(r.id);
        self.stats.publish_rejects += 1;
        self.push_event(Event::PublishRejected {
            id: PublishId(r.id),
            reason: r.reason,
        });
    }

    fn on_suback(&mut self, a: SubAck) {
        match self.subs.by_id_mut(a.sub) {
            Some(s) if !s.acked => {
                s.acked = true;
                if !s.unsubscribing {
                    self.push_event(Event::Subscribed { sub: SubId(a.sub) });
                }
            }
            Some(_) => {}
            None => debug!("suback for unknown subscription {}", a.sub),
        }
    }

    fn on_subreject(&mut self, r: SubReject) {
        if let Some(index) = self.subs.index(r.sub) {
            self.subs.remove(index);
            self.push_event(Event::SubscribeRejected {
                sub: SubId(r.sub),
                reason: r.reason,
            });
        }
    }

    fn on_unsuback(&mut self, a: UnsubAck) {
        if let Some(index) = self.subs.index(a.sub)
            && self.subs.get(index).is_some_and(|s| s.unsubscribing)
        {
            self.subs.remove(index);
            self.push_event(Event::Unsubscribed { sub: SubId(a.sub) });
        }
    }

    fn on_deliver(&mut self, d: Deliver<'_>) -> Result<(), Backpressure> {
        if self.rx.is_some() {
            return self.on_fragment(&d);
        }
        if self.subs.index(d.sub).is_none() {
            self.violation(Reason::ProtocolViolation);
            return Ok(());
        }
        if Topic::new(d.topic).is_err() {
            self.violation(Reason::Malformed);
            return Ok(());
        }
        let len = d.payload.len() as u64;
        let (total, more) = match d.fragment {
            None => (len, false),
            Some(f) if f.offset == 0 && len <= f.total => (f.total, f.more_follow(d.payload.len())),
            Some(_) => {
                self.violation(Reason::ProtocolViolation);
                return Ok(());
            }
        };
        let key = MessageKey {
            sub: d.sub,
            topic_hash: topic_hash(d.topic),
            seq: d.seq,
        };
        if d.qos == QoS::AtLeastOnce {
            if let Some(settle) = self.held.recall(&key) {
                self.held
                    .insert(Slot::Settling { tag: d.tag, settle })
                    .ok_or(Backpressure::Held)?;
                debug!("duplicate delivery suppressed (seq {})", d.seq);
                self.stats.duplicates_suppressed += 1;
                self.discard_rest(&d, total, more);
                return Ok(());
            }
            if let Some(slot) = self.held.find(&key) {
                self.held.set(
                    slot,
                    Slot::Held {
                        key,
                        tag: d.tag,
                        epoch: self.epoch,
                    },
                );
                self.stats.redeliveries_absorbed += 1;
                self.discard_rest(&d, total, more);
                return Ok(());
            }
            if !self.held.has_free() {
                return Err(Backpressure::Held);
            }
        }
        let whole = inbox::record_len(d.topic.len(), &d.meta, total);
        let reassemble = whole.is_some_and(|n| n <= self.inbox.capacity());
        let (record, chunked) = if reassemble {
            (whole, false)
        } else {
            (inbox::record_len(d.topic.len(), &d.meta, len), true)
        };
        let Some(record) = record.filter(|n| *n <= self.inbox.capacity()) else {
            // A single frame larger than the inbox: more than we announced.
            self.violation(Reason::FrameTooLarge);
            return Ok(());
        };
        if chunked && d.fragment.is_none() {
            self.violation(Reason::FrameTooLarge);
            return Ok(());
        }
        if !self.inbox.has_room(record) {
            return Err(Backpressure::Inbox);
        }
        let id = match d.qos {
            QoS::AtMostOnce => DeliveryId::NONE,
            QoS::AtLeastOnce => self
                .held
                .insert(Slot::Held {
                    key,
                    tag: d.tag,
                    epoch: self.epoch,
                })
                .ok_or(Backpressure::Held)?,
        };
        let head = RecordHead {
            chunk: chunked,
            last: !more,
            qos: d.qos,
            sub: d.sub,
            attempt: d.attempt,
            seq: d.seq,
            id: id.0,
            offset: 0,
            total,
        };
        let data_len = if chunked {
            d.payload.len()
        } else {
            usize::try_from(total).unwrap_or(usize::MAX)
        };
        if !self.inbox.add(&head, d.topic, &d.meta, d.payload, data_len) {
            // Checked above; undo the slot so nothing is half done.
            if let Some(slot) = self.held.lookup(id) {
                self.held.free(slot);
            }
            return Err(Backpressure::Inbox);
        }
        if chunked || !more {
            self.msgs_queued = self.msgs_queued.wrapping_add(1);
        }
        if more {
            self.rx = Some(RxFrag {
                mode: if chunked {
                    RxMode::Chunked
                } else {
                    RxMode::Reassemble
                },
                sub: d.sub,
                tag: d.tag,
                next: len,
                total,
                head,
                topic: String::try_from(d.topic).unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// The rest of a fragmented redelivery that was already handled is dropped.
    fn discard_rest(&mut self, d: &Deliver<'_>, total: u64, more: bool) {
        if more {
            self.rx = Some(RxFrag {
                mode: RxMode::Discard,
                sub: d.sub,
                tag: d.tag,
                next: d.payload.len() as u64,
                total,
                head: RecordHead {
                    chunk: false,
                    last: false,
                    qos: d.qos,
                    sub: d.sub,
                    attempt: d.attempt,
                    seq: d.seq,
                    id: 0,
                    offset: 0,
                    total,
                },
                topic: String::new(),
            });
        }
    }

    /// A deliver while a fragmented one is in progress: must be its next fragment.
    /// The fragment state stays in `self.rx` after a violation so that ending the
    /// connection cleans it up.
    fn on_fragment(&mut self, d: &Deliver<'_>) -> Result<(), Backpressure> {
        let Some(rx) = self.rx.as_ref() else {
            return Ok(());
        };
        let (mode, next, total, head) = (rx.mode, rx.next, rx.total, rx.head);
        let len = d.payload.len() as u64;
        let in_order = d.sub == rx.sub
            && d.tag == rx.tag
            && d.fragment
                .is_some_and(|f| f.offset == next && f.total == total && len <= total - next);
        if !in_order {
            self.violation(Reason::ProtocolViolation);
            return Ok(());
        }
        let end = next + len;
        let done = end == total;
        match mode {
            RxMode::Discard => {}
            RxMode::Reassemble => {
                if self.inbox.append(d.payload).is_none() {
                    self.violation(Reason::ProtocolViolation);
                    return Ok(());
                }
                if done {
                    self.msgs_queued = self.msgs_queued.wrapping_add(1);
                }
            }
            RxMode::Chunked => {
                let meta = Meta::default();
                let topic = self.rx.as_ref().map_or("", |rx| rx.topic.as_str());
                let Some(record) = inbox::record_len(topic.len(), &meta, len)
                    .filter(|n| *n <= self.inbox.capacity())
                else {
                    self.violation(Reason::FrameTooLarge);
                    return Ok(());
                };
                if !self.inbox.has_room(record) {
                    return Err(Backpressure::Inbox);
                }
                let head = RecordHead {
                    offset: next,
                    last: done,
                    ..head
                };
                if !self
                    .inbox
                    .add(&head, topic, &meta, d.payload, d.payload.len())
                {
                    return Err(Backpressure::Inbox);
                }
                self.msgs_queued = self.msgs_queued.wrapping_add(1);
            }
        }
        if done {
            self.rx = None;
        } else if let Some(rx) = self.rx.as_mut() {
            rx.next = end;
        }
        Ok(())
    }

    fn settle(&mut self, id: DeliveryId, settle: Settle) -> Result<(), AckError> {
        if !id.needs_ack() {
            return Ok(());
        }
        let slot = self.held.lookup(id).ok_or(AckError::Unknown)?;
        let Slot::Held { key, tag, epoch } = self.held.slot(slot) else {
            return Err(AckError::Unknown);
        };
        if settle != (Settle::Nack { requeue: true }) {
            self.held.remember(key, settle);
        }
        if self.state == State::Connected && epoch == self.epoch {
            self.held.set(slot, Slot::Settling { tag, settle });
            Ok(())
        } else {
            self.held.free(slot);
            Err(AckError::Stale)
        }
    }

    fn candidate_publish_id(&self) -> u32 {
        let mut id = self.next_publish_id;
        // Ids only repeat after the counter wrapped; the outbox cannot hold
        // anywhere near 2^32 records, so this ends.
        while id == 0 || (self.publish_ids_wrapped && self.outbox.contains_id(id)) {
            id = id.wrapping_add(1);
        }
        id
    }

    /// The publish frame for the outbox record `rec` of which `sent` payload bytes
    /// went out, and the payload offset after it; `None` when not even one payload
    /// byte fits `max_frame` next to the record's headers.
    fn publish_frame<'r>(
        &self,
        rec: &Record<'r>,
        sent: u64,
        max_frame: u32,
    ) -> Option<(Publish<'r>, u64)> {
        let max = max_frame as usize;
        let total = rec.payload.len() as u64;
        let dedup = rec
            .dedup_seq
            .and_then(|seq| self.config.producer.map(|producer| Dedup { producer, seq }));
        let mut p = Publish {
            id: rec.id,
            topic: rec.topic,
            qos: rec.qos,
            dedup,
            meta: rec.meta,
            fragment: None,
            payload: rec.payload,
        };
        if sent == 0 && Frame::Publish(p).encoded_len() <= max {
            return Some((p, total));
        }
        let room = fragment_room(&p, sent, max);
        if room == 0 {
            return None;
        }
        let end = sent.saturating_add(room as u64).min(total);
        p.fragment = Some(Fragment {
            offset: sent,
            total,
        });
        p.payload = rec
            .payload
            .get(usize::try_from(sent).ok()?..usize::try_from(end).ok()?)?;
        Some((p, end))
    }

    /// The largest publish frame to produce: the broker's maximum frame, capped by
    /// `Config::max_frame_out`; `None` before the first `Welcome`.
    fn frame_limit(&self) -> Option<u32> {
        self.broker
            .map(|b| b.max_frame.min(self.config.max_frame_out))
    }

    /// Rejects, locally, publishes whose headers alone exceed the largest frame
    /// ([`frame_limit`](Self::frame_limit)): they could never be sent.
    fn drop_unsendable(&mut self) {
        if self.state != State::Connected {
            return;
        }
        let Some(max_frame) = self.frame_limit() else {
            return;
        };
        while self.room(1) {
            let Some((rec, sent)) = self.outbox.next() else {
                return;
            };
            if sent > 0 || self.publish_frame(&rec, sent, max_frame).is_some() {
                return;
            }
            let id = rec.id;
            warn!("publish {} cannot fit the broker's maximum frame", id);
            self.outbox.drop_next();
            self.stats.publish_rejects += 1;
            self.push_event(Event::PublishRejected {
                id: PublishId(id),
                reason: Reason::MessageTooLarge,
            });
        }
    }

    /// The next frame to write, without changing anything.
    fn next_tx(&self) -> Option<(Tx, Frame<'_>)> {
        match self.state {
            State::Disconnecting => self.error_pending.map(|code| {
                (
                    Tx::Error,
                    Frame::Error(ErrorFrame {
                        code,
                        text: code.as_str(),
                    }),
                )
            }),
            // Everything queued before `close` (acks, publishes, unsubscribes)
            // goes out first, then the Close.
            State::Closing => self.next_connected_tx().or_else(|| {
                self.close_pending.then_some((
                    Tx::Close,
                    Frame::Close(Close {
                        reason: Reason::Normal,
                        text: "",
                    }),
                ))
            }),
            State::Handshaking => self.hello_pending.then(|| {
                (
                    Tx::Hello,
                    Frame::Hello(Hello {
                        version: PROTOCOL_VERSION,
                        client_id: self.config.client_id.as_str(),
                        session: self.config.mode,
                        token: self.config.token.as_ref().map(|t| t.as_str()),
                        limits: self.receive_limits(),
                    }),
                )
            }),
            State::Connected => self.next_connected_tx(),
            _ => None,
        }
    }

    fn next_connected_tx(&self) -> Option<(Tx, Frame<'_>)> {
        if let Some(&value) = self.pongs.front() {
            return Some((Tx::Pong, Frame::Pong(value)));
        }
        if let Some(value) = self.ping_pending {
            return Some((Tx::Ping, Frame::Ping(value)));
        }
        // Settlements before subscription changes: an unsubscribe must not
        // overtake the acks issued before it.
        if let Some((slot, tag, settle)) = self.held.next_settling() {
            let frame = match settle {
                Settle::Ack => Frame::Ack(Ack { tag }),
                Settle::Nack { requeue } => Frame::Nack(Nack { tag, requeue }),
            };
            return Some((Tx::Settle(slot), frame));
        }
        for (index, s) in self.subs.iter().enumerate() {
            match s.outgoing {
                Outgoing::Subscribe => {
                    return Some((
                        Tx::Subscribe(index),
                        Frame::Subscribe(Subscribe {
                            sub: s.id,
                            filter: s.filter.as_str(),
                            group: s.group.as_ref().map(|g| g.as_str()),
                            start: s.start,
                            qos: s.qos,
                            credit: s.window,
                        }),
                    ));
                }
                Outgoing::Unsubscribe => {
                    return Some((
                        Tx::Unsubscribe(index),
                        Frame::Unsubscribe(Unsubscribe { sub: s.id }),
                    ));
                }
                Outgoing::None => {}
            }
        }
        for (index, s) in self.subs.iter().enumerate() {
            if s.unsubscribing || !s.sent {
                continue;
            }
            if let Some(credit) = s.credit_due() {
                let grant = s.grant.min(credit);
                return Some((
                    Tx::Credit {
                        index,
                        owed: credit - grant,
                        grant,
                    },
                    Frame::Credit(Credit { sub: s.id, credit }),
                ));
            }
        }
        let max_frame = self.frame_limit()?;
        let (rec, sent) = self.outbox.next()?;
        let (publish, end) = self.publish_frame(&rec, sent, max_frame)?;
        Some((
            Tx::Publish {
                at: rec.at,
                sent: end,
                total: rec.payload.len() as u64,
            },
            Frame::Publish(publish),
        ))
    }

    /// A frame from `next_tx` was written.
    fn commit(&mut self, tx: Tx) {
        match tx {
            Tx::Error => self.error_pending = None,
            Tx::Close => {
                self.end_connection();
                self.state = State::Closed;
                self.push_event(Event::Closed);
            }
            Tx::Hello => self.hello_pending = false,
            Tx::Pong => {
                self.pongs.pop_front();
            }
            Tx::Ping => {
                self.ping_pending = None;
                self.stats.pings += 1;
            }
            Tx::Subscribe(index) => {
                if let Some(s) = self.subs.get_mut(index) {
                    s.outgoing = Outgoing::None;
                    if !s.sent {
                        // A new subscription: the whole window went with it.
                        s.grant = 0;
                        s.owed = 0;
                    }
                    s.sent = true;
                }
            }
            Tx::Unsubscribe(index) => {
                if let Some(s) = self.subs.get_mut(index) {
                    s.outgoing = Outgoing::None;
                }
            }
            Tx::Settle(slot) => self.held.free(slot),
            Tx::Credit { index, owed, grant } => {
                if let Some(s) = self.subs.get_mut(index) {
                    s.owed = s.owed.saturating_sub(owed);
                    s.grant = s.grant.saturating_sub(grant);
                }
            }
            Tx::Publish { at, sent, total } => self.outbox.advance(at, sent, total),
        }
    }
}
