//! The client session state machine: the [`Session`] type, its polling contract,
//! and the dispatch of input to the concerns in the sibling files (connection
//! lifecycle, receiving, publishing, subscribing, transmitting, events).

#[cfg(doc)]
use super::Event;
#[cfg(feature = "alloc")]
use super::admin::AdminOut;
use super::connection::Connection;
use super::event::Events;
use super::held::Held;
use super::inbox::{self, Inbox};
use super::outbox::Outbox;
use super::receive::RxFrag;
use super::request::Requests;
use super::subscriptions::Subscriptions;
use super::{Backpressure, Config, Framer, Framing, State, Stats};
use crate::time::Instant;
use crate::wire::fragment::Reassembler;
use crate::wire::{Frame, Limits, Reason};
use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;

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
///   [`ack`](Self::ack), [`nack`](Self::nack), [`grant_credit`](Self::grant_credit),
///   [`request`](Self::request), [`reply`](Self::reply).
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
/// deliveries the application holds unacked at once; `REQS` the requests waiting
/// for their reply (the reply subscription has a slot of its own besides
/// `SUBS`). A session that makes no requests can set `REQS` to 0.
///
/// `F` frames what `poll_transmit` writes: a [`Framing`] chosen when the
/// session is built, or a framing in the type
/// ([`StreamOnly`](super::StreamOnly), [`SerialOnly`](super::SerialOnly)) for a
/// device that speaks over one transport and should link no other's encoder.
pub struct Session<
    B,
    const SUBS: usize = 8,
    const HELD: usize = 32,
    const REQS: usize = 4,
    F = Framing,
> where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    pub(super) config: Config,
    pub(super) framing: F,
    pub(super) conn: Connection,
    pub(super) outbox: Outbox<B>,
    pub(super) inbox: Inbox<B>,
    pub(super) subs: Subscriptions<SUBS>,
    pub(super) held: Held<HELD>,
    pub(super) requests: Requests<REQS>,
    pub(super) events: Events,
    /// The largest frame this client accepts, as announced in `Hello`.
    pub(super) max_frame_in: u32,
    /// Checks the fragments of deliveries.
    pub(super) reasm: Reassembler,
    /// A fragmented delivery in progress.
    pub(super) rx: Option<RxFrag>,
    pub(super) next_publish_id: u32,
    pub(super) publish_ids_wrapped: bool,
    pub(super) dedup_seq: u64,
    pub(super) stats: Stats,
    /// An admin request waiting to be sent (only with `alloc`: a device
    /// without it has no use for them, and keeps the room).
    #[cfg(feature = "alloc")]
    pub(super) admin_out: Option<AdminOut>,
    #[cfg(feature = "alloc")]
    pub(super) next_admin: u32,
}

impl<B, const SUBS: usize, const HELD: usize, const REQS: usize, F: Framer>
    Session<B, SUBS, HELD, REQS, F>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    /// A session that will speak to the broker as `config` says, framing its output
    /// as `framing`, keeping publishes in `outbox` and received messages in `inbox`.
    /// Nothing happens until [`connect`](Self::connect) (or `handle_connected`).
    pub fn new(config: Config, framing: F, outbox: B, inbox: B) -> Self {
        let mut slot = MaybeUninit::uninit();
        Self::new_in(&mut slot, config, framing, outbox, inbox);
        // SAFETY: `new_in` initialised it.
        unsafe { slot.assume_init() }
    }

    /// [`new`](Self::new), built in `slot` rather than returned: a session's
    /// tables are several KB, and building one by value takes a stack frame
    /// that size once (a device's start-up stack peak). For a session in a
    /// `static` or in a client built in place.
    pub fn new_in(
        slot: &mut MaybeUninit<Self>,
        config: Config,
        framing: F,
        outbox: B,
        inbox: B,
    ) -> &mut Self {
        // The inbox's capacity (`Inbox::capacity`).
        let room = inbox.as_ref().len().saturating_sub(inbox::RECORD_OVERHEAD);
        #[cfg(feature = "alloc")]
        let inbox = Inbox::new(inbox);
        let max_frame_in = config
            .limits
            .max_frame
            .min(u32::try_from(room).unwrap_or(u32::MAX));
        #[cfg(feature = "alloc")]
        let conn = Connection::new(config.seed);
        #[cfg(not(feature = "alloc"))]
        let config_seed = config.seed;
        let _ = Self::FIELDS;
        let p = slot.as_mut_ptr();
        // SAFETY: each field of the session is written once, through a raw
        // pointer into `slot` (no reference to the uninitialised memory is
        // made), every field is (`Self::FIELDS` does not compile when one is
        // added), and only then is `slot` taken as initialised.
        unsafe {
            // Devices zero the slot first (one call): some of the zero
            // fields below are then left out of the code (40 bytes less).
            #[cfg(not(feature = "alloc"))]
            p.write_bytes(0, 1);
            addr_of_mut!((*p).requests).write(Requests::new(config.seed, &config.client_id));
            addr_of_mut!((*p).config).write(config);
            addr_of_mut!((*p).framing).write(framing);
            #[cfg(not(feature = "alloc"))]
            Connection::init_on_zeros(addr_of_mut!((*p).conn), config_seed);
            #[cfg(feature = "alloc")]
            addr_of_mut!((*p).conn).write(conn);
            #[cfg(not(feature = "alloc"))]
            Outbox::init_on_zeros(addr_of_mut!((*p).outbox), outbox);
            #[cfg(not(feature = "alloc"))]
            Inbox::init_on_zeros(addr_of_mut!((*p).inbox), inbox);
            #[cfg(feature = "alloc")]
            addr_of_mut!((*p).outbox).write(Outbox::new(outbox));
            #[cfg(feature = "alloc")]
            addr_of_mut!((*p).inbox).write(inbox);
            addr_of_mut!((*p).subs).write(Subscriptions::new());
            #[cfg(not(feature = "alloc"))]
            Held::init_on_zeros(addr_of_mut!((*p).held));
            #[cfg(feature = "alloc")]
            Held::init(addr_of_mut!((*p).held));
            // On devices the zeroed slot holds `Events::new()` already (an
            // empty deque, its indices 0, and the counters 0: tested in
            // `event.rs`), `false` and 0: their stores are left out.
            #[cfg(feature = "alloc")]
            addr_of_mut!((*p).events).write(Events::new());
            addr_of_mut!((*p).max_frame_in).write(max_frame_in);
            addr_of_mut!((*p).reasm).write(Reassembler::new());
            addr_of_mut!((*p).rx).write(None);
            addr_of_mut!((*p).next_publish_id).write(1);
            #[cfg(feature = "alloc")]
            addr_of_mut!((*p).publish_ids_wrapped).write(false);
            #[cfg(feature = "alloc")]
            addr_of_mut!((*p).dedup_seq).write(0);
            // All `u64` counters: on devices the zeroed slot holds
            // `Stats::default()` already (its `memclr` call is left out).
            #[cfg(feature = "alloc")]
            addr_of_mut!((*p).stats).write(Stats::default());
            #[cfg(feature = "alloc")]
            addr_of_mut!((*p).admin_out).write(None);
            #[cfg(feature = "alloc")]
            addr_of_mut!((*p).next_admin).write(0);
            slot.assume_init_mut()
        }
    }

    /// Names every field without `..`: adding a field to the session stops
    /// this from compiling until [`new_in`](Self::new_in) writes it too.
    const FIELDS: fn(Self) = |session| {
        let Session {
            config: _,
            framing: _,
            conn: _,
            outbox: _,
            inbox: _,
            subs: _,
            held: _,
            requests: _,
            events: _,
            max_frame_in: _,
            reasm: _,
            rx: _,
            next_publish_id: _,
            publish_ids_wrapped: _,
            dedup_seq: _,
            stats: _,
            #[cfg(feature = "alloc")]
                admin_out: _,
            #[cfg(feature = "alloc")]
                next_admin: _,
        } = session;
    };

    // ---------------------------------------------------------------- getters

    /// Where the session is in its connection lifecycle.
    pub fn state(&self) -> State {
        self.conn.state
    }

    /// True between `Welcome` and the end of the connection.
    pub fn is_connected(&self) -> bool {
        self.conn.state == State::Connected
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
        self.conn.broker
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

    /// A serial line's decoder dropped a damaged frame from the broker (its
    /// CRC or COBS failed, or it overran the buffer). Past the handshake the
    /// connection ends with an `ErrorFrame` ([`Reason::Malformed`]), as a
    /// broken stream would, so what the frame carried is recovered in order by
    /// the reconnect; during the handshake it is ignored (it may be the tail of
    /// an earlier connection's frame). See the protocol's serial-line rules.
    pub fn handle_damaged_frame(&mut self, _now: Instant) {
        if self.conn.state == State::Connected {
            self.violation(Reason::Malformed);
        }
    }

    /// A frame only clients send arrived, refused unread by a client's
    /// decoder ([`Frame::decode_from_broker`], or a serial line's
    /// [`SerialDecoder::for_client`](crate::framing::serial::SerialDecoder::for_client)):
    /// a protocol violation, whatever it held, as `handle_frame` would find it.
    pub fn handle_unexpected_frame(&mut self, _now: Instant) {
        if self.accepts_input() {
            self.violation(Reason::ProtocolViolation);
        }
    }

    /// One decoded frame, for transports that delimit frames themselves (a
    /// serial line: decode with a
    /// [`SerialDecoder`](crate::framing::serial::SerialDecoder) and call this).
    /// `Err` means the frame was not consumed: drain events and hand it in again.
    /// Frames arriving while no connection is active are ignored. On a serial
    /// line, deliveries and answers arriving before `Welcome` belong to an
    /// earlier connection: they are dropped and counted in
    /// [`Stats::stale_frames`].
    pub fn handle_frame(&mut self, now: Instant, frame: Frame<'_>) -> Result<(), Backpressure> {
        self.on_frame(now, &frame)
    }

    /// [`handle_frame`](Self::handle_frame) by reference: a frame is large,
    /// and one decoded from a stream is handled where it was decoded.
    pub(super) fn on_frame(&mut self, now: Instant, frame: &Frame<'_>) -> Result<(), Backpressure> {
        if !self.accepts_input() {
            return Ok(());
        }
        if self.is_stale(frame) {
            debug!("dropped a {} of an earlier connection", frame.kind());
            self.stats.stale_frames += 1;
            return Ok(());
        }
        self.conn.last_rx = now;
        self.inbox.release_shown();
        if !self.events.room(1) {
            return Err(Backpressure::Events);
        }
        trace!("received {}", frame.kind());
        let handshaking = self.conn.state == State::Handshaking;
        let result = match *frame {
            // By reference, as a `Deliver`: moved out, it was copied (108
            // bytes more on devices).
            Frame::Welcome(ref w) => self.on_welcome(now, w),
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
                .conn
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
            // By reference: a `Deliver` is large, and moving it out is a copy.
            Frame::Deliver(ref d) => self.on_deliver(d),
            #[cfg(feature = "alloc")]
            Frame::AdminAnswer(a) => self.on_admin_answer(a),
            // Without `alloc` the session never asks: an answer is out of place
            // (a client's decoders refuse one unread; this is for a frame
            // decoded otherwise).
            #[cfg(not(feature = "alloc"))]
            Frame::AdminAnswer(_) => {
                self.violation(Reason::ProtocolViolation);
                Ok(())
            }
            Frame::Hello(_)
            | Frame::Publish(_)
            | Frame::Subscribe(_)
            | Frame::Unsubscribe(_)
            | Frame::Ack(_)
            | Frame::AckMessage(_)
            | Frame::Nack(_)
            | Frame::Admin(_)
            | Frame::Credit(_)
            | Frame::Interest(_) => {
                self.violation(Reason::ProtocolViolation);
                Ok(())
            }
        };
        if result.is_ok() {
            self.stats.frames_in += 1;
        }
        result
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.conn.poll_timeout(), self.requests.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the session can make requests at all: with `REQS == 0` the
    /// request-reply paths compile away.
    pub(super) const REQUESTS: bool = REQS > 0;

    pub(super) fn accepts_input(&self) -> bool {
        matches!(self.conn.state, State::Handshaking | State::Connected)
    }

    /// A frame that, on a serial line, can only belong to an earlier connection:
    /// a delivery or an answer arriving before `Welcome`.
    fn is_stale(&self, frame: &Frame<'_>) -> bool {
        self.framing.framing().is_serial()
            && self.conn.state == State::Handshaking
            && matches!(
                frame,
                Frame::Deliver(_)
                    | Frame::PubAck(_)
                    | Frame::PubReject(_)
                    | Frame::SubAck(_)
                    | Frame::SubReject(_)
                    | Frame::UnsubAck(_)
            )
    }
}
