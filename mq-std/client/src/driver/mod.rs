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
//! The driver owns the types both front ends share and re-export: the options
//! (`options.rs`), [`Error`], [`Message`] and [`PubAck`], [`Stats`], and the
//! command channel their handles talk to it through (`command.rs`). Its own
//! work is split by side: application calls in `calls.rs`, the socket in
//! `transport.rs`, the session's events in `events.rs`, and here the state
//! and [`poll`](Driver::poll).
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

mod admin;
mod assemble;
mod calls;
mod command;
mod error;
mod events;
mod message;
mod options;
mod random;
mod room;
mod secure;
mod stats;
mod transport;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use mq_core::client::{Config, Framing, Session, SubId};
use mq_core::counter_hash::CounterHash;
use mq_core::wire::Limits;
use mq_core::{Instant, Reason};
use tracing::debug;

use crate::tls::ClientTls;
pub use admin::Admin;
use admin::AdminReplyTo;
use assemble::Partial;
pub(crate) use command::{
    Command, CommandSender, Commands, Offer, Reply, ReplyTo, Sink, SubscriptionEnd,
};
pub use error::Error;
use message::Settler;
pub use message::{Message, PubAck};
use options::Outgoing;
pub use options::{ClientOptions, DEFAULT_ADDR, PublishOptions, SubscribeOptions};
pub(crate) use options::{reply_options, window};
pub use random::random_u64;
pub(crate) use room::NoRoom;
use room::Reserved;
pub(crate) use secure::Received;
pub use stats::Stats;

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

/// Requests waiting for their reply at once; more wait for a free slot.
pub(crate) const REQS: usize = 256;

type ClientSession = Session<Vec<u8>, SUBS, HELD, REQS>;

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
    /// Nobody waits (a QoS 0 publish that returned at once): a failure is
    /// counted ([`Stats::unsent_qos0`]) and logged.
    Forget,
    /// A request waiting for room in the outbox or the session's table of
    /// requests.
    Request(ReplyTo<Result<Message, Error>>, std::time::Duration),
}

/// A subscription's end in the driver.
struct Subscriber {
    sink: Box<dyn Sink>,
    waiting: Arc<AtomicBool>,
}

/// The client core: a session, its socket buffers, and the callers waiting on
/// it. See the module docs for the loop that drives it.
pub(crate) struct Driver {
    session: Box<ClientSession>,
    commands: Arc<Commands>,
    /// `commands`, as messages see it.
    settler: Arc<dyn Settler>,
    default_credit: u32,
    /// Input not consumed by the session yet: `rx[rx_start..rx_len]`. The
    /// session takes a few frames per call (its event queue is short), so what it
    /// consumed is skipped, not copied away: the rest moves to the front only
    /// when the end runs short of room ([`read_buf`](Self::read_buf)).
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
    /// QoS 1 publishes in the outbox, by publish id (handed out in order,
    /// answered mostly in order: [`CounterHash`]).
    publishes: HashMap<u32, Then, CounterHash>,
    /// Publishers waiting for outbox room, in arrival order.
    waiting: VecDeque<(Outgoing, Then)>,
    /// Outbox bytes in use when the first waiting publisher last failed.
    waiting_outbox: usize,
    /// The line's length at which it is next pruned of callers that gave up.
    prune_at: usize,
    /// The room of the publishes handed to the session in this pass, given
    /// back at its end with one wake-up ([`Reserved::absorb`]).
    handed: Option<Reserved>,
    subscribes: HashMap<u32, ReplyTo<Result<SubId, Error>>>,
    subscribers: HashMap<u32, Subscriber>,
    /// A message whose sink was full: no event is taken until it is placed.
    parked: Option<Message>,
    partial: Option<Partial>,
    /// Requesters waiting for their reply, by the session's request id.
    requests: HashMap<u64, ReplyTo<Result<Message, Error>>>,
    /// QoS 0 publishes nobody waited for that could not be sent.
    unsent_qos0: u64,
    /// Admin requests waiting to be sent, and sent ones by id.
    admin_queue: VecDeque<(Admin, AdminReplyTo)>,
    admins: HashMap<u32, AdminReplyTo>,
    /// TLS settings, when the client speaks TLS.
    tls: Option<ClientTls>,
    /// TLS on the current connection.
    tls_conn: Option<rustls::ClientConnection>,
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
        let tls = match &opts.tls {
            Some(t) => Some(t.client_config(&opts.addr).map_err(Error::Tls)?),
            None => None,
        };
        let session = Box::new(Session::new(
            config,
            Framing::Stream,
            vec![0; opts.outbox_bytes],
            vec![0; opts.inbox_bytes],
        ));
        let max_in = session.receive_limits().max_frame as usize;
        let frame_room = Framing::Stream.max_framed_len(HANDSHAKE_FRAME as usize);
        Ok(Driver {
            session,
            settler: commands.clone(),
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
            publishes: HashMap::default(),
            waiting: VecDeque::new(),
            waiting_outbox: 0,
            prune_at: calls::PRUNE_FROM,
            handed: None,
            subscribes: HashMap::new(),
            subscribers: HashMap::new(),
            parked: None,
            partial: None,
            requests: HashMap::new(),
            unsent_qos0: 0,
            admin_queue: VecDeque::new(),
            admins: HashMap::new(),
            tls,
            tls_conn: None,
        })
    }

    /// Starts connecting; `welcome` is answered at the first `Welcome`, or with
    /// why the first attempt failed (after which the driver stops).
    pub(crate) fn start(&mut self, now: Instant, welcome: ReplyTo<Result<(), Error>>) {
        self.connect_waiter = Some(welcome);
        self.session.connect(now);
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
            // Input TLS decrypted earlier, for which there was no room then.
            progress |= self.plaintext_in().unwrap_or(false);
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
            progress |= self.send_admin();
            if !progress {
                break;
            }
        }
        // Publishers waiting for room wake once for the whole pass.
        self.handed = None;
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
            unsent_qos0: self.unsent_qos0,
            room_bytes: self.commands.room().used(),
        };
        self.commands.set_stats(stats);
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
        self.commands.set_closed(reason);
        self.handed = None;
        self.commands.room().close();
        let error = || Error::Closed(reason);
        if let Some(w) = self.connect_waiter.take() {
            w.send(Err(error()));
        }
        for (_, then) in self.publishes.drain() {
            then.fail(error());
        }
        for (_, then) in std::mem::take(&mut self.waiting) {
            if matches!(then, Then::Forget) {
                self.unsent_qos0 += 1;
            }
            then.fail(error());
        }
        for (_, reply) in self.subscribes.drain() {
            reply.send(Err(error()));
        }
        for (_, reply) in self.requests.drain() {
            reply.send(Err(error()));
        }
        self.admins_closed(reason);
        self.subscribers.clear();
        self.parked = None;
        self.partial = None;
        self.publish_stats();
        for reply in self.closers.drain(..) {
            reply.send(());
        }
    }
}

impl Drop for Driver {
    /// However the loop ended (a runtime shut down under it), publishers
    /// waiting for room give up.
    fn drop(&mut self) {
        self.commands.room().close();
    }
}

impl Then {
    /// Tells whoever waits that it failed.
    fn fail(self, error: Error) {
        match self {
            Then::Reply(reply) => reply.send(Err(error)),
            Then::Request(reply, _) => reply.send(Err(error)),
            Then::Forget => debug!("a QoS 0 publish was not sent: {error}"),
        }
    }
}
