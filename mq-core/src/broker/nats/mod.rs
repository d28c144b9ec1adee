//! One connection's side of the NATS client protocol: the third codec in
//! front of the router, beside the mq wire protocol's (`conn`) and MQTT's
//! (`mqtt`).
//!
//! A [`NatsConn`] splits the byte stream into operations with the
//! [`nats`](crate::nats) codec, checks what depends on the connection's state
//! (authorization, the subscriptions' sids, verbose and pedantic mode),
//! turns operations into router [`Command`](super::command::Command)s and
//! the router's outputs into `MSG`/`HMSG`, `+OK` and `-ERR`. Files:
//!
//! - this one: the connection's state, input, keepalive and closing;
//! - `ops`: what each client operation does;
//! - `headers`: `NATS/1.0` header blocks to mq headers and back;
//! - `write`: bytes out, in the order the client caused them.
//!
//! # How NATS maps onto the router
//!
//! - A connection is a router session that is not persistent, with a client
//!   id of its own (`nats-{micros}-{conn}`). It opens at `CONNECT`, or at the
//!   first other operation of a client that sends none (a person with
//!   telnet), unless the broker requires a token: then anything but `CONNECT`
//!   first is `-ERR 'Authorization Violation'`.
//! - `auth_token` (else `pass`, else `user`) is the mq token; its topic
//!   permissions apply to `PUB` and `SUB`.
//! - Subjects are mq topics as they are: both are dot-separated tokens, and
//!   `*` and `>` mean the same in both. A subject mq cannot take (a byte
//!   outside visible ASCII, over 255 bytes or 32 tokens) is
//!   `-ERR 'Invalid Subject'` (`SUB`) or `-ERR 'Invalid Publish Subject'`
//!   (`PUB`); mq's system topics (`$...`) cannot be published to.
//! - Messages are QoS 0. A reply subject is mq's reply-to; header blocks
//!   are mq headers (a status line is the headers `nats:status` and
//!   `nats:description`).
//! - A queue group is the mq group of the same name on the subscription's
//!   filter; `UNSUB sid max` ends the subscription after `max` messages in
//!   all.
//! - A request (`PUB` with a reply subject) nobody is subscribed to is
//!   answered with `HMSG reply sid 16 16` / `NATS/1.0 503` on the client's
//!   own subscription to the reply subject, when the client's `CONNECT` said
//!   `headers` and `no_responders`.
//! - Keepalive: after `Config::limits.keepalive_ms` without input the broker
//!   sends `PING`; after two unanswered it ends the connection with
//!   `-ERR 'Stale Connection'`.

mod headers;
mod ops;
mod write;

use alloc::borrow::Cow;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::ConnId;
use super::Map;
use super::router::Router;
use super::timers::Timer;
use crate::nats::{Limits, Op, Parsed};
use crate::time::Instant;

/// Unanswered `PING`s before the connection counts as stale (nats-server's
/// default `max_pings_out`).
const MAX_PINGS_OUT: u8 = 2;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No session yet: `CONNECT`, or (without auth) any operation, opens it.
    Fresh,
    Open,
    /// Ending: what is queued is written, then the transport closes.
    Closing,
}

/// What the client asked for in `CONNECT` (nats-server's defaults until then).
/// `pedantic` is not kept: subjects are always checked strictly, as mq
/// topics are.
#[derive(Debug, Clone, Copy)]
struct Opts {
    verbose: bool,
    echo: bool,
    headers: bool,
    no_responders: bool,
}

/// Something the codec itself sends (not an answer of the router's).
#[derive(Debug)]
enum Ctrl {
    Info,
    Ok,
    Ping,
    Pong,
    Err(Cow<'static, str>),
    /// `HMSG reply sid 16 16` with `NATS/1.0 503`: a request nobody took.
    NoResponders {
        sid: String,
        reply: String,
    },
}

/// A control operation, written once the router outputs queued before it
/// (`after` of them counted from the connection's start) are out, so that
/// the client sees answers in the order it caused them.
#[derive(Debug)]
struct Queued {
    after: u64,
    ctrl: Ctrl,
}

/// One `SUB` of the client.
#[derive(Debug)]
struct Sub {
    sid: String,
    subject: String,
    /// `UNSUB sid max`: end it after this many messages in all.
    max: Option<u64>,
    delivered: u64,
}

pub(crate) struct NatsConn {
    phase: Phase,
    opts: Opts,
    /// Unconsumed bytes after the last `input`.
    leftover: usize,
    last_rx: Instant,
    keepalive: Option<Duration>,
    pings_out: u8,
    /// Slot of the connection's timer (the auth deadline, or keepalive).
    timer: Option<Instant>,
    ctrl: VecDeque<Queued>,
    /// Router outputs written (or dropped) since the start.
    outputs_done: u64,
    /// The `-ERR` text that ends the connection, once what is queued is out.
    last: Option<Cow<'static, str>>,
    close_event_sent: bool,
    /// The client's subscriptions by router id, and router ids by sid.
    subs: Map<u32, Sub>,
    by_sid: Map<String, u32>,
    next_sub: u32,
    limits: Limits,
    auth_required: bool,
    /// Headers built for an inbound publish, and a block built for an
    /// outbound message.
    scratch: Vec<u8>,
    block: Vec<u8>,
    /// An operation too large for one transmit buffer, and how much is out.
    spill: super::spill::Spill,
}

impl NatsConn {
    pub(crate) fn new(id: ConnId, now: Instant, r: &mut Router) -> Self {
        let keepalive = match r.cfg.limits.keepalive_ms {
            0 => None,
            ms => Some(Duration::from_millis(u64::from(ms))),
        };
        let mut c = NatsConn {
            phase: Phase::Fresh,
            opts: Opts {
                verbose: true,
                echo: true,
                headers: false,
                no_responders: false,
            },
            leftover: 0,
            last_rx: now,
            keepalive,
            pings_out: 0,
            timer: None,
            ctrl: VecDeque::new(),
            outputs_done: 0,
            last: None,
            close_event_sent: false,
            subs: Map::default(),
            by_sid: Map::default(),
            next_sub: 1,
            limits: Limits {
                max_control_line: crate::nats::MAX_CONTROL_LINE,
                max_payload: max_payload(r),
            },
            auth_required: !r.cfg.auth.tokens.is_empty(),
            scratch: Vec::new(),
            block: Vec::new(),
            spill: super::spill::Spill::default(),
        };
        r.stats.connections_total += 1;
        r.stats.nats_connections_total += 1;
        c.send(id, Ctrl::Info, r);
        // With auth, CONNECT must come within the handshake timeout; without,
        // a person at a terminal may take their time (keepalive still runs).
        let first = match c.auth_required {
            true => Some(now + r.cfg.handshake_timeout),
            false => c.keepalive.map(|k| now + k),
        };
        r.timers.reset(&mut c.timer, Timer::Conn(id), first);
        c
    }

    /// Bytes arrived (see `Broker::handle_input`); returns how many were consumed.
    pub(crate) fn input(
        &mut self,
        id: ConnId,
        now: Instant,
        bytes: &[u8],
        r: &mut Router,
    ) -> usize {
        if bytes.len() > self.leftover {
            self.last_rx = now;
            self.pings_out = 0;
        }
        let mut used = 0;
        let used = loop {
            if self.phase == Phase::Closing {
                break bytes.len();
            }
            if r.input_blocked(id) {
                break used;
            }
            match Op::parse(&bytes[used..], self.limits) {
                Ok(Parsed::Op(op, n)) => {
                    used += n;
                    self.on_op(id, now, op, r);
                }
                Ok(Parsed::Incomplete(_)) => break used,
                Err(e) => {
                    r.stats.protocol_errors += 1;
                    self.close(id, now, Cow::Borrowed(e.server_text()), r);
                    break bytes.len();
                }
            }
        };
        self.leftover = bytes.len() - used;
        used
    }

    /// Queues a control operation after the router outputs queued so far.
    fn send(&mut self, id: ConnId, ctrl: Ctrl, r: &mut Router) {
        let queued = r.links.get(id).map_or(0, |l| l.out.len() as u64);
        self.ctrl.push_back(Queued {
            after: self.outputs_done + queued,
            ctrl,
        });
        r.links.wake(id);
    }

    /// `+OK` in verbose mode.
    fn ok(&mut self, id: ConnId, r: &mut Router) {
        if self.opts.verbose {
            self.send(id, Ctrl::Ok, r);
        }
    }

    /// An `-ERR` that leaves the connection open.
    fn error(&mut self, id: ConnId, text: impl Into<Cow<'static, str>>, r: &mut Router) {
        self.send(id, Ctrl::Err(text.into()), r);
    }

    /// The connection's timer fired: the auth deadline, or keepalive.
    pub(crate) fn on_timer(&mut self, id: ConnId, now: Instant, r: &mut Router) {
        self.timer = None;
        match self.phase {
            Phase::Fresh if self.auth_required => {
                self.close(id, now, Cow::Borrowed("Authentication Timeout"), r);
            }
            Phase::Fresh | Phase::Open => {
                let Some(ka) = self.keepalive else { return };
                let due = self.last_rx + ka * (u32::from(self.pings_out) + 1);
                if now < due {
                    return r.timers.set(&mut self.timer, Timer::Conn(id), due);
                }
                if self.pings_out >= MAX_PINGS_OUT {
                    return self.close(id, now, Cow::Borrowed("Stale Connection"), r);
                }
                self.pings_out += 1;
                self.send(id, Ctrl::Ping, r);
                r.timers.set(&mut self.timer, Timer::Conn(id), now + ka);
            }
            Phase::Closing => {}
        }
    }

    /// Ends the connection with `-ERR 'text'` after what is queued for it.
    fn close(&mut self, id: ConnId, now: Instant, text: Cow<'static, str>, r: &mut Router) {
        if self.phase == Phase::Closing {
            return;
        }
        r.end_conn(id, now);
        self.phase = Phase::Closing;
        self.last = Some(text);
        r.timers.stop(&mut self.timer, Timer::Conn(id));
        r.links.wake(id);
    }

    /// Its transport is gone: its timer goes too.
    pub(crate) fn closed(&mut self, id: ConnId, r: &mut Router) {
        r.timers.stop(&mut self.timer, Timer::Conn(id));
    }

    /// Bytes were written (keepalive counts only what the client sends).
    pub(crate) fn wrote(&mut self, _now: Instant) {}
}

/// The largest payload (headers included) a client may publish, as `INFO`
/// announces it: the broker's largest frame (1 MiB by default, nats-server's
/// default too), or its largest message when that is smaller. A NATS
/// operation is not fragmented: the whole of it is held while it arrives.
fn max_payload(r: &Router) -> usize {
    (r.cfg.limits.max_frame.max(512) as usize).min(r.cfg.max_message)
}
