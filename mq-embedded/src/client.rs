//! The transport-independent half of both drivers: the application's commands,
//! and the loop that drives the session over whatever [`Link`] a transport
//! provides for the duration of one poll.

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;
use mq_core::__mq_debug as debug;

use mq_core::Instant;
use mq_core::client::{
    AckError, Config, CreditError, DeliveryId, Framer, Framing, PublishError, PublishId,
    PublishOptions, ReplyAddress, RequestError, RequestId, RequestOptions, Session, State, Stats,
    SubId, SubscribeError, SubscribeOptions, UnsubscribeError,
};

use crate::buffers::{BufferError, Buffers, largest_frame};

/// The session type both drivers run: storage borrowed from the caller, and
/// framed as `F` (the driver's [`Transport::Framer`]).
pub type ClientSession<
    'a,
    const SUBS: usize,
    const HELD: usize,
    const REQS: usize = 4,
    F = Framing,
> = Session<&'a mut [u8], SUBS, HELD, REQS, F>;

/// The transport half of a [`Client`] ([`Tcp`](crate::Tcp),
/// [`Serial`](crate::Serial)). Its framing is in its type, so that a build
/// links the encoder of the framing it speaks and no other.
pub trait Transport: sealed::Sealed {
    /// How the session frames what it sends over this transport.
    type Framer: Framer;
    /// The framer's value.
    const FRAMER: Self::Framer;
}

pub(crate) mod sealed {
    /// Only this crate's transports are [`Transport`](super::Transport)s.
    pub trait Sealed {}
}

/// Where a transport stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkStatus {
    /// Connecting; not yet usable. (A serial line never is: without the TCP
    /// driver nothing says it.)
    #[cfg_attr(not(feature = "tcp"), allow(dead_code))]
    Opening,
    /// Bytes flow.
    Up,
    /// Gone (refused, reset, closed by the peer), or never came up.
    Down,
}

/// What the driver needs from a transport while it runs one poll.
pub(crate) trait Link {
    /// Starts a connection to the broker, dropping anything left of an earlier
    /// one; `false` when it cannot even start.
    fn open(&mut self, now: Instant) -> bool;
    /// Where the connection stands (after [`receive`](Self::receive) took what
    /// arrived).
    fn status(&mut self) -> LinkStatus;
    /// Ends the connection, after the bytes already sent.
    fn close(&mut self);
    /// Queues bytes for the broker; returns how many were taken (0: no room now).
    fn send(&mut self, bytes: &[u8]) -> usize;
    /// Whether [`send`](Self::send) is asked again at once for the rest when
    /// it took part of the bytes: a TCP socket takes one contiguous piece of
    /// its ring a call, and the room left may be a second piece (around the
    /// ring's end); a serial line's write, which waits for room in the UART,
    /// is asked again at the next poll.
    const SEND_AGAIN: bool;
    /// Hands what arrived to the session, as much as it takes now.
    fn receive<const SUBS: usize, const HELD: usize, const REQS: usize, F: Framer>(
        &mut self,
        now: Instant,
        session: &mut ClientSession<'_, SUBS, HELD, REQS, F>,
    );
}

/// The session, its transmit buffer, and whether the transport is open for the
/// current connection attempt.
pub(crate) struct Engine<'a, F, const SUBS: usize, const HELD: usize, const REQS: usize> {
    pub(crate) session: ClientSession<'a, SUBS, HELD, REQS, F>,
    tx: &'a mut [u8],
    /// Bytes `tx[tx_start..tx_end]` are written by the session, not yet taken by
    /// the transport.
    tx_start: usize,
    tx_end: usize,
    open: bool,
}

impl<'a, F: Framer, const SUBS: usize, const HELD: usize, const REQS: usize>
    Engine<'a, F, SUBS, HELD, REQS>
{
    /// A session whose frames fit the buffers: the largest frame it accepts is
    /// lowered to what `rx` holds, the largest it produces to what `tx` holds.
    /// Built in `slot` (see [`Session::new_in`]); returns it and `rx`, for the
    /// transport. On error nothing is written.
    pub(crate) fn new_in<'s>(
        slot: &'s mut MaybeUninit<Self>,
        mut config: Config,
        framer: F,
        buffers: Buffers<'a>,
    ) -> Result<(&'s mut Self, &'a mut [u8]), BufferError> {
        let framing = framer.framing();
        buffers.check(framing)?;
        let Buffers {
            outbox,
            inbox,
            rx,
            tx,
        } = buffers;
        config.limits.max_frame = config
            .limits
            .max_frame
            .min(largest_frame(framing, rx.len()));
        config.max_frame_out = config.max_frame_out.min(largest_frame(framing, tx.len()));
        let _ = Self::FIELDS;
        let p = slot.as_mut_ptr();
        // SAFETY: each field is written once through a raw pointer into `slot`
        // (the session in place, viewed as the `MaybeUninit` it still is),
        // every field is (`FIELDS`), and only then is `slot` taken as
        // initialised.
        let engine = unsafe {
            let session = &mut *addr_of_mut!((*p).session)
                .cast::<MaybeUninit<ClientSession<'a, SUBS, HELD, REQS, F>>>();
            ClientSession::new_in(session, config, framer, outbox, inbox);
            addr_of_mut!((*p).tx).write(tx);
            addr_of_mut!((*p).tx_start).write(0);
            addr_of_mut!((*p).tx_end).write(0);
            addr_of_mut!((*p).open).write(false);
            slot.assume_init_mut()
        };
        Ok((engine, rx))
    }

    /// Names every field: adding one stops this from compiling until
    /// [`new_in`](Self::new_in) writes it.
    const FIELDS: fn(Self) = |engine| {
        let Engine {
            session: _,
            tx: _,
            tx_start: _,
            tx_end: _,
            open: _,
        } = engine;
    };

    /// One round: what the application's commands queued goes out first (a
    /// transmitted ack frees the held slot a refused delivery waits for), then
    /// input and transport state into the session, timers, and again the
    /// transport actions the session's state calls for and its output. Returns
    /// whether bytes were handed to the transport.
    pub(crate) fn drive<L: Link>(&mut self, now: Instant, link: &mut L) -> bool {
        let mut wrote = self.settle(now, link);
        match self.session.state() {
            State::Connecting if self.open => match link.status() {
                LinkStatus::Up => self.session.handle_connected(now),
                LinkStatus::Down => self.lost(now, link),
                LinkStatus::Opening => {}
            },
            State::Handshaking | State::Connected | State::Closing => {
                link.receive(now, &mut self.session);
                if link.status() == LinkStatus::Down {
                    debug!("transport lost");
                    self.lost(now, link);
                }
            }
            _ => {}
        }
        if self.session.poll_timeout().is_some_and(|at| at <= now) {
            self.session.handle_timeout(now);
        }
        wrote |= self.settle(now, link);
        wrote
    }

    /// Writes what the session has to send and acts on its state (open the
    /// transport to connect, close it when the connection is over), until
    /// neither changes anything more.
    fn settle<L: Link>(&mut self, now: Instant, link: &mut L) -> bool {
        let mut wrote = false;
        loop {
            wrote |= self.transmit(now, link);
            match self.session.state() {
                State::Connecting if !self.open => {
                    self.clear_tx();
                    self.open = true;
                    if !link.open(now) {
                        debug!("transport cannot start");
                        self.lost(now, link);
                    } else if link.status() == LinkStatus::Up {
                        self.session.handle_connected(now);
                    }
                }
                // `transmit` wrote the error frame, if any: the end.
                State::Disconnecting => self.lost(now, link),
                State::Idle | State::Backoff | State::Closed if self.open => {
                    link.close();
                    self.open = false;
                    self.clear_tx();
                }
                _ => return wrote,
            }
        }
    }

    /// The connection is over (or never started): close the transport, then
    /// tell the session, which schedules a reconnect (or stays closed).
    fn lost<L: Link>(&mut self, now: Instant, link: &mut L) {
        link.close();
        self.open = false;
        self.clear_tx();
        self.session.handle_disconnected(now);
    }

    // Out of line: inlined at its four callers it was 20 bytes more.
    #[inline(never)]
    fn clear_tx(&mut self) {
        self.tx_start = 0;
        self.tx_end = 0;
    }

    /// Moves the session's output into the transport until one of them has
    /// nothing more or no room.
    fn transmit<L: Link>(&mut self, now: Instant, link: &mut L) -> bool {
        let mut wrote = false;
        loop {
            if let Some(pending) = self.tx.get(self.tx_start..self.tx_end)
                && !pending.is_empty()
            {
                let n = link.send(pending).min(pending.len());
                wrote |= n > 0;
                self.tx_start += n;
                if self.tx_start < self.tx_end {
                    if n > 0 && L::SEND_AGAIN {
                        continue;
                    }
                    return wrote;
                }
            }
            self.clear_tx();
            match self.session.poll_transmit(now, self.tx) {
                Some(n) => self.tx_end = n,
                None => return wrote,
            }
        }
    }
}

#[cfg(test)]
mod tests;

/// An mq client on a microcontroller: the session, its buffers and a transport
/// `T`. Use it as [`TcpClient`](crate::TcpClient) (over smoltcp) or
/// [`SerialClient`](crate::SerialClient) (over a UART); see the crate docs for
/// the loop that runs it.
///
/// The commands below return at once; what they queue goes out at the next
/// `poll`, so call `poll` after issuing them. `SUBS` bounds the subscriptions,
/// `HELD` the QoS 1 deliveries the application holds unacked at once, `REQS`
/// the requests waiting for their reply (0 if the board makes none).
pub struct Client<
    'a,
    T: Transport,
    const SUBS: usize = 8,
    const HELD: usize = 32,
    const REQS: usize = 4,
> {
    pub(crate) engine: Engine<'a, T::Framer, SUBS, HELD, REQS>,
    pub(crate) transport: T,
}

impl<'a, T: Transport, const SUBS: usize, const HELD: usize, const REQS: usize>
    Client<'a, T, SUBS, HELD, REQS>
{
    /// A client built in `slot`: the engine in place (see
    /// [`Engine::new_in`]), then the transport `transport` makes of the receive
    /// buffer. On error nothing is written.
    pub(crate) fn new_in_with<'s>(
        slot: &'s mut MaybeUninit<Self>,
        config: Config,
        buffers: Buffers<'a>,
        transport: impl FnOnce(&'a mut [u8]) -> T,
    ) -> Result<&'s mut Self, BufferError> {
        let _ = Self::FIELDS;
        let p = slot.as_mut_ptr();
        // SAFETY: as in `Engine::new_in`: both fields written through raw
        // pointers into `slot` (the engine only when it succeeded, and then
        // the transport), then `slot` is initialised.
        unsafe {
            let engine = &mut *addr_of_mut!((*p).engine)
                .cast::<MaybeUninit<Engine<'a, T::Framer, SUBS, HELD, REQS>>>();
            let (_, rx) = Engine::new_in(engine, config, T::FRAMER, buffers)?;
            addr_of_mut!((*p).transport).write(transport(rx));
            Ok(slot.assume_init_mut())
        }
    }

    /// [`new_in_with`](Self::new_in_with), returning the client by value.
    pub(crate) fn new_with(
        config: Config,
        buffers: Buffers<'a>,
        transport: impl FnOnce(&'a mut [u8]) -> T,
    ) -> Result<Self, BufferError> {
        let mut slot = MaybeUninit::uninit();
        Self::new_in_with(&mut slot, config, buffers, transport)?;
        // SAFETY: `new_in_with` succeeded: it initialised the slot.
        Ok(unsafe { slot.assume_init() })
    }

    /// Names every field: adding one stops this from compiling until
    /// [`new_in_with`](Self::new_in_with) writes it.
    const FIELDS: fn(Self) = |client| {
        let Client {
            engine: _,
            transport: _,
        } = client;
    };

    /// Starts the session: the transport opens at the next `poll`, then
    /// `Hello`, `Welcome` ([`Event::Connected`](crate::Event::Connected)).
    /// After a lost connection the client reconnects by itself, with backoff,
    /// resuming the session; call this again only after
    /// [`Event::Closed`](crate::Event::Closed).
    pub fn connect(&mut self, now: Instant) {
        self.engine.session.connect(now);
    }

    /// Ends the session: sends `Close` after what is queued, then
    /// [`Event::Closed`](crate::Event::Closed); no reconnecting. The outbox and
    /// subscriptions are kept for a later [`connect`](Self::connect).
    pub fn close(&mut self, now: Instant) {
        self.engine.session.close(now);
    }

    /// Queues a message for `topic`. QoS 0 leaves once written; QoS 1 stays in
    /// the outbox until the broker stored it
    /// ([`Event::Published`](crate::Event::Published)) and is resent after
    /// every reconnect. Messages larger than a frame go as fragments.
    pub fn publish(
        &mut self,
        now: Instant,
        topic: &str,
        payload: &[u8],
        opts: &PublishOptions<'_>,
    ) -> Result<PublishId, PublishError> {
        self.engine.session.publish(now, topic, payload, opts)
    }

    /// Subscribes to `filter`; the broker's answer comes as
    /// [`Event::Subscribed`](crate::Event::Subscribed) or
    /// [`Event::SubscribeRejected`](crate::Event::SubscribeRejected). A
    /// persistent session keeps it across reconnects.
    pub fn subscribe(
        &mut self,
        now: Instant,
        filter: &str,
        opts: &SubscribeOptions<'_>,
    ) -> Result<SubId, SubscribeError> {
        self.engine.session.subscribe(now, filter, opts)
    }

    /// Ends a subscription ([`Event::Unsubscribed`](crate::Event::Unsubscribed)
    /// follows when the broker knew it).
    pub fn unsubscribe(&mut self, now: Instant, sub: SubId) -> Result<(), UnsubscribeError> {
        self.engine.session.unsubscribe(now, sub)
    }

    /// Sends a request to `topic` and waits for its reply: the client sets the
    /// reply-to topic (its own, subscribed the first time) and a fresh
    /// correlation id. The outcome comes as [`Event::Reply`](crate::Event::Reply)
    /// (acknowledged by the client) or
    /// [`Event::RequestFailed`](crate::Event::RequestFailed); at most `REQS`
    /// requests wait at once.
    pub fn request(
        &mut self,
        now: Instant,
        topic: &str,
        payload: &[u8],
        opts: &RequestOptions<'_>,
    ) -> Result<RequestId, RequestError> {
        self.engine.session.request(now, topic, payload, opts)
    }

    /// Answers a request: publishes `payload` to its reply-to topic with its
    /// correlation id. Copy the address out of the delivery with
    /// [`ReplyAddress::of`]`(&delivery.meta)`, let the event go, then reply.
    pub fn reply(
        &mut self,
        now: Instant,
        to: &ReplyAddress,
        payload: &[u8],
        opts: &PublishOptions<'_>,
    ) -> Result<PublishId, PublishError> {
        self.engine.session.reply(now, to, payload, opts)
    }

    /// Acknowledges a delivery (QoS 1: the broker forgets the message; QoS 0:
    /// nothing to do). Take the id from the event, let the event go, then ack.
    pub fn ack(&mut self, id: DeliveryId) -> Result<(), AckError> {
        self.engine.session.ack(id)
    }

    /// Refuses a delivery: `requeue` has the broker deliver it again, otherwise
    /// it is dead-lettered.
    pub fn nack(&mut self, id: DeliveryId, requeue: bool) -> Result<(), AckError> {
        self.engine.session.nack(id, requeue)
    }

    /// Widens a subscription's credit window by `credit` deliveries.
    pub fn grant_credit(&mut self, sub: SubId, credit: u32) -> Result<(), CreditError> {
        self.engine.session.grant_credit(sub, credit)
    }

    /// Where the session is: connecting, connected, backing off, closed, ...
    pub fn state(&self) -> State {
        self.engine.session.state()
    }

    /// True between the broker's `Welcome` and the end of the connection.
    pub fn is_connected(&self) -> bool {
        self.engine.session.is_connected()
    }

    /// The session's counters.
    pub fn stats(&self) -> Stats {
        self.engine.session.stats()
    }

    /// The session, for its other getters (outbox use, limits, ...).
    pub fn session(&self) -> &ClientSession<'a, SUBS, HELD, REQS, T::Framer> {
        &self.engine.session
    }
}
