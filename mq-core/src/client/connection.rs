//! The connection lifecycle: connecting, the handshake, keepalive, timeouts,
//! reconnecting with backoff, closing. [`Connection`] holds the state of the
//! current connection and the timers; the `Session` methods here move it
//! through [`State`] and clean up what a connection leaves behind.

use core::ptr::addr_of_mut;

use crate::framing::Framer;
use heapless::{Deque, Vec};

use super::backoff::Backoff;
use super::event::Note;
use super::{Backpressure, Session, State};
use crate::time::Instant;
use crate::wire::{Limits, PROTOCOL_VERSION, Reason, Welcome};

/// Pongs owed to the broker.
const PONGS: usize = 4;

/// Where the session is in its connection lifecycle, and the connection's
/// timers and pending control frames.
#[derive(Debug)]
pub(super) struct Connection {
    pub(super) state: State,
    /// Counts connections; a held delivery's tag is valid only in its epoch.
    pub(super) epoch: u32,
    /// The broker's limits from the last `Welcome`.
    pub(super) broker: Option<Limits>,
    /// The keepalive interval in force, in microseconds.
    keepalive: Option<u64>,
    /// Connect timeout (connecting, handshaking) or reconnect time (backoff).
    pub(super) deadline: Option<Instant>,
    pub(super) last_tx: Instant,
    pub(super) last_rx: Instant,
    pub(super) hello_pending: bool,
    pub(super) ping_pending: Option<u64>,
    ping_counter: u64,
    pub(super) pongs: Deque<u64, PONGS>,
    pub(super) error_pending: Option<Reason>,
    pub(super) close_pending: bool,
    /// The reason `Disconnected` was emitted with on this connection.
    pub(super) reported: Option<Reason>,
    connects: u64,
    backoff: Backoff,
}

/// The options of a [`Connection`] that [`Connection::init_on_zeros`] leaves
/// as zeros are `None` as zeros: evaluated for each target the crate builds
/// for (their layout is the compiler's), and an error to compile otherwise.
const NONE_IS_ZEROS: () = {
    // SAFETY: evaluated at compile time, where an invalid value is an error.
    unsafe {
        assert!(core::mem::zeroed::<Option<Limits>>().is_none());
        assert!(core::mem::zeroed::<Option<u64>>().is_none());
        assert!(core::mem::zeroed::<Option<Instant>>().is_none());
        assert!(core::mem::zeroed::<Instant>().as_micros() == 0);
    }
};

/// What keepalive asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keepalive {
    Fine,
    Dead,
}

impl Connection {
    // Devices build it in place instead (`init_on_zeros`).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(super) fn new(seed: u64) -> Self {
        Connection {
            state: State::Idle,
            epoch: 0,
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
            connects: 0,
            backoff: Backoff::new(seed),
        }
    }

    /// [`new`](Self::new) into a slot whose bytes are all zero: only the
    /// fields whose initial value is not all zeros are written (the state,
    /// the two `Option<Reason>`s, whose `None` is a spare value of the
    /// reason's tag, and the backoff's generator). The others are integers,
    /// `false`, `Instant::ZERO`, an empty deque (its indices 0) and options
    /// whose `None` is zeros ([`NONE_IS_ZEROS`] checks that on each target).
    /// Devices build the session in a zeroed slot, where these stores are
    /// code that writes what is there.
    ///
    /// # Safety
    ///
    /// `slot` is valid for writes and aligned, and every byte of it is zero.
    #[cfg_attr(feature = "alloc", allow(dead_code))]
    pub(super) unsafe fn init_on_zeros(slot: *mut Self, seed: u64) {
        let () = NONE_IS_ZEROS;
        // SAFETY: the zero fields are valid as they are; the others are
        // written through raw pointers into `slot`.
        unsafe {
            addr_of_mut!((*slot).state).write(State::Idle);
            addr_of_mut!((*slot).error_pending).write(None);
            addr_of_mut!((*slot).reported).write(None);
            addr_of_mut!((*slot).backoff).write(Backoff::new(seed));
        }
    }

    /// Whether the broker may have our `Hello` (an error frame makes sense).
    fn hello_sent(&self) -> bool {
        self.state == State::Connected || (self.state == State::Handshaking && !self.hello_pending)
    }

    /// When a timer of the connection fires next.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Backoff | State::Connecting | State::Handshaking => self.deadline,
            State::Connected => self.keepalive.map(|ka| {
                let dead = self.last_rx.saturating_add_micros(ka.saturating_mul(3) / 2);
                if self.ping_pending.is_none() {
                    dead.min(self.last_tx.saturating_add_micros(ka / 2))
                } else {
                    dead
                }
            }),
            _ => None,
        }
    }

    /// Keepalive at `now`: the broker is dead after 1.5 intervals of silence; a
    /// ping is queued after half an interval without sending.
    fn keepalive(&mut self, now: Instant) -> Keepalive {
        let Some(ka) = self.keepalive else {
            return Keepalive::Fine;
        };
        if now >= self.last_rx.saturating_add_micros(ka.saturating_mul(3) / 2) {
            return Keepalive::Dead;
        }
        if self.ping_pending.is_none() && now >= self.last_tx.saturating_add_micros(ka / 2) {
            self.ping_counter = self.ping_counter.wrapping_add(1);
            self.ping_pending = Some(self.ping_counter);
        }
        Keepalive::Fine
    }

    /// `Welcome` arrived: connected with the broker's limits; the keepalive in
    /// force is the smaller non-zero one of the two.
    fn welcomed(&mut self, now: Instant, limits: Limits, keepalive_ms: u32) {
        self.state = State::Connected;
        self.broker = Some(limits);
        self.keepalive = match (keepalive_ms, limits.keepalive_ms) {
            (0, 0) => None,
            (0, ms) | (ms, 0) => Some(ms),
            (a, b) => Some(a.min(b)),
        }
        .map(|ms| u64::from(ms) * 1000);
        self.deadline = None;
        self.last_rx = now;
        self.backoff.reset();
    }

    /// Forgets the connection's pending frames and timers.
    fn reset(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.pongs.clear();
        self.ping_pending = None;
        self.hello_pending = false;
        self.error_pending = None;
        self.close_pending = false;
        self.keepalive = None;
        self.deadline = None;
    }
}

impl<B, const SUBS: usize, const HELD: usize, const REQS: usize, F: Framer>
    Session<B, SUBS, HELD, REQS, F>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    /// The transport to the broker is up: `Hello` is queued.
    pub fn handle_connected(&mut self, now: Instant) {
        match self.conn.state {
            State::Connecting => {}
            State::Idle | State::Backoff => self.begin_attempt(now),
            _ => {
                warn!("handle_connected in state {}", self.conn.state);
                return;
            }
        }
        debug!("transport up, sending hello");
        self.conn.state = State::Handshaking;
        self.conn.hello_pending = true;
        self.conn.last_tx = now;
        self.conn.last_rx = now;
    }

    /// The transport is gone (closed by either side, or it never came up). Emits
    /// `Disconnected` unless the session already did for this connection, then
    /// schedules a reconnect with backoff; after [`close`](Self::close) emits
    /// `Closed` instead.
    pub fn handle_disconnected(&mut self, now: Instant) {
        match self.conn.state {
            State::Idle | State::Backoff | State::Closed => return,
            State::Closing => return self.closed(),
            State::Connecting | State::Handshaking | State::Connected | State::Disconnecting => {}
        }
        let reason = match self.conn.reported {
            Some(reason) => reason,
            None => {
                self.push_event(Note::Disconnected(Reason::Normal));
                Reason::Normal
            }
        };
        self.end_connection();
        if matches!(
            reason,
            Reason::BadToken | Reason::UnsupportedVersion | Reason::SessionTakenOver
        ) {
            debug!("broker refused the session for good: {}", reason);
            self.conn.state = State::Closed;
            self.push_event(Note::Closed);
            return;
        }
        let delay = self
            .conn
            .backoff
            .next_delay_micros(self.config.reconnect_min, self.config.reconnect_max);
        self.conn.state = State::Backoff;
        self.conn.deadline = Some(now.saturating_add_micros(delay));
    }

    /// Time passed: reconnects after backoff, sends keepalive pings, detects a dead
    /// broker or a handshake that takes too long, fails requests whose timeout
    /// passed. Call it at
    /// [`poll_timeout`](Self::poll_timeout) (calling it early is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_requests(now);
        let due = self.conn.deadline.is_some_and(|d| now >= d);
        let dead =
            self.conn.state == State::Connected && self.conn.keepalive(now) == Keepalive::Dead;
        match self.conn.state {
            State::Backoff if due => self.emit_connect(now),
            State::Connecting | State::Handshaking if due => {
                debug!("no welcome in time");
                self.stats.timeouts += 1;
                self.end_with(Reason::Timeout, None);
            }
            State::Connected if dead => {
                debug!("keepalive timeout");
                self.stats.timeouts += 1;
                self.end_with(Reason::KeepaliveTimeout, None);
            }
            _ => {}
        }
    }

    /// Starts the session (or restarts it after `Closed`): emits
    /// [`Event::Connect`]. Does nothing in any other state.
    ///
    /// [`Event::Connect`]: super::Event::Connect
    pub fn connect(&mut self, now: Instant) {
        if matches!(self.conn.state, State::Idle | State::Closed) {
            self.emit_connect(now);
        }
    }

    /// Ends the session: sends `Close { Normal }` if a connection is up, then emits
    /// [`Event::Closed`] once `poll_transmit` has written it (at once otherwise).
    /// The session does not reconnect. The outbox, subscriptions and held
    /// deliveries are kept for a later [`connect`](Self::connect).
    ///
    /// [`Event::Closed`]: super::Event::Closed
    pub fn close(&mut self, _now: Instant) {
        match self.conn.state {
            State::Closing | State::Closed => {}
            State::Connected | State::Handshaking if !self.conn.hello_pending => {
                self.conn.state = State::Closing;
                self.conn.close_pending = true;
            }
            _ => self.closed(),
        }
    }

    /// The session is closed for good: emits `Closed`.
    // Out of line on devices: inlined at its three callers.
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(super) fn closed(&mut self) {
        self.end_connection();
        self.conn.state = State::Closed;
        self.push_event(Note::Closed);
    }

    fn begin_attempt(&mut self, now: Instant) {
        self.conn.reported = None;
        self.conn.deadline =
            (!self.config.connect_timeout.is_zero()).then(|| now + self.config.connect_timeout);
    }

    fn emit_connect(&mut self, now: Instant) {
        if self.conn.connects > 0 {
            self.stats.reconnects += 1;
        }
        self.conn.connects += 1;
        self.begin_attempt(now);
        self.conn.state = State::Connecting;
        self.push_event(Note::Connect);
    }

    /// The connection must end: emits `Disconnected { reason }` and, when `error`
    /// is set and the broker has our `Hello`, sends an `ErrorFrame` first.
    /// Out of line on devices, as [`violation`](Self::violation) is.
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(super) fn end_with(&mut self, reason: Reason, error: Option<Reason>) {
        self.conn.error_pending = error.filter(|_| self.conn.hello_sent());
        self.conn.state = State::Disconnecting;
        self.conn.reported = Some(reason);
        self.push_event(Note::Disconnected(reason));
    }

    /// The broker sent bad input: the connection ends with an `ErrorFrame`.
    /// Out of line on devices: inlined, it was copied to each of the receive
    /// path's checks.
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(super) fn violation(&mut self, reason: Reason) {
        warn!("bad input from the broker: {}", reason);
        self.stats.protocol_errors += 1;
        self.end_with(reason, Some(reason));
    }

    /// Forgets everything that belonged to the connection.
    fn end_connection(&mut self) {
        self.conn.reset();
        self.held.connection_lost();
        self.abandon_fragments();
        self.requests_after_connection(self.clean_session());
    }

    pub(super) fn on_welcome(&mut self, now: Instant, w: &Welcome) -> Result<(), Backpressure> {
        if self.conn.state != State::Handshaking {
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
        if !self.events.room(1 + forgotten) && !self.events.is_empty() {
            return Err(Backpressure::Events);
        }
        debug!("welcome, session present: {}", w.session_present);
        self.conn
            .welcomed(now, w.limits, self.config.limits.keepalive_ms);
        self.outbox.rewind();
        self.held.resume(w.session_present);
        if !w.session_present {
            // Replies to what went out before cannot come.
            self.requests_after_connection(true);
        }
        self.push_event(Note::Connected(w.session_present));
        let mut removed: Vec<u32, SUBS> = Vec::new();
        self.subs
            .on_welcome(w.session_present, Self::REQUESTS, |id| {
                let _ = removed.push(id);
            });
        for id in removed {
            self.push_event(Note::Unsubscribed(id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::debug_on_zeros;

    #[test]
    fn init_on_zeros_is_new() {
        for seed in [0, 1, 0x1234_5678_9abc_def0] {
            // SAFETY: `init_on_zeros` writes what is not zeros.
            let on_zeros = unsafe {
                debug_on_zeros(|slot: *mut Connection| Connection::init_on_zeros(slot, seed))
            };
            assert_eq!(on_zeros, alloc::format!("{:?}", Connection::new(seed)));
        }
    }
}
