//! One connection's side of the mq wire protocol: the first codec in front of
//! the router.
//!
//! A [`Conn`] decodes the bytes its transport delivers (stream framing on TCP,
//! COBS + CRC on serial lines), runs the handshake and keepalive, reassembles
//! fragmented publishes, and hands the router [`Command`]s that borrow the
//! received bytes. In the other direction it writes the router's
//! [`Output`](super::command::Output)s as frames, fragmenting deliveries to the
//! peer's maximum frame. Files:
//!
//! - this one: input (both framings, held input) and the connection's state;
//! - `frames`: what each received frame means (handshake, session frames,
//!   fragments, keepalive, closing);
//! - `write`: frames out.
//!
//! # Serial lines
//!
//! A serial line has no connect and no close, so one `Conn` carries one
//! connection after another (see the protocol rules in [`crate::wire`]): an
//! idle line holds no connection and no handshake timer; its first frame starts
//! a connection (a `Hello`, or an error answer to anything else); a `Hello` on
//! a line whose connection already began ends that connection (its session is
//! detached as when a TCP client drops, and its unwritten output is dropped)
//! and starts a new one; when a connection ends the line goes idle again
//! rather than closing; and a lone delimiter precedes each new connection's
//! output, ending whatever partial frame the device's decoder holds.

mod frames;
mod write;

pub(crate) use write::After;

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use super::ConnId;
use super::command::OwnedPublish;
use super::keepalive::Keepalive;
use super::router::Router;
use super::timers::Timer;
use crate::framing::Framing;
use crate::framing::serial::{self, SerialDecoder};
use crate::framing::stream::{self, Decoded, StreamDecoder};
use crate::time::Instant;
use crate::wire::fragment::Reassembler;
use crate::wire::{Limits, PROTOCOL_VERSION, Reason};

/// The smallest frame limit a client may announce.
const MIN_CLIENT_FRAME: u32 = 512;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A serial line between connections.
    Idle,
    AwaitHello,
    Open,
    /// Ending: what is queued is written, then the transport closes (or the
    /// line goes idle).
    Closing,
}

/// A frame the codec itself sends (not an answer of the router's).
#[derive(Debug, Clone, Copy)]
enum Ctrl {
    Ping(u64),
    Pong(u64),
    Error(Reason, &'static str),
}

pub(crate) struct Conn {
    rx: Rx,
    proto: Proto,
}

/// Input decoding state, apart from the rest so a decoded frame (which borrows
/// the serial decoder) can be handled while it lives.
struct Rx {
    stream: StreamDecoder,
    serial: Option<SerialDecoder<Vec<u8>>>,
    /// Unconsumed bytes after the last `input`: offering more than these is
    /// activity, offering them again is not.
    leftover: usize,
}

struct Proto {
    framing: Framing,
    phase: Phase,
    /// The peer's limits (from its `Hello`).
    peer: Limits,
    /// The protocol version the connection speaks (its `Hello`'s): the
    /// `Welcome` is written as that version's (see `wire::v2`).
    version: u16,
    keepalive: Keepalive,
    handshake_deadline: Option<Instant>,
    /// Slot of the connection's timer (handshake or keepalive).
    timer: Option<Instant>,
    ctrl: VecDeque<Ctrl>,
    /// The final frame of a connection the codec ends.
    last: Option<Ctrl>,
    /// Payload bytes of the front delivery already written (fragments).
    deliver_offset: usize,
    /// Checks the fragments of incoming publishes.
    reassembler: Reassembler,
    /// A fragmented publish being reassembled (its headers from the first
    /// fragment; no payload when it is too large and will be refused).
    partial: Option<OwnedPublish>,
    /// A serial line's new connection: write a lone delimiter first.
    delimiter: bool,
    close_event_sent: bool,
}

impl Conn {
    /// A new connection (or serial line) in `framing`; `max_frame` is the
    /// broker's limit.
    pub(crate) fn new(id: ConnId, now: Instant, framing: Framing, router: &mut Router) -> Self {
        let max_frame = router.cfg.limits.max_frame;
        let serial = (framing == Framing::Serial)
            .then(|| SerialDecoder::new(vec![0; serial::max_framed_len(max_frame as usize)]));
        let mut proto = Proto {
            framing,
            phase: Phase::Idle,
            peer: initial_peer(router),
            version: PROTOCOL_VERSION,
            keepalive: Keepalive::new(now),
            handshake_deadline: None,
            timer: None,
            ctrl: VecDeque::new(),
            last: None,
            deliver_offset: 0,
            reassembler: Reassembler::new(),
            partial: None,
            // A line's first connection starts with a delimiter too: the
            // device may hold half a frame from before the broker started.
            delimiter: framing == Framing::Serial,
            close_event_sent: false,
        };
        if framing == Framing::Stream {
            proto.begin(id, now, router);
        }
        Conn {
            rx: Rx {
                stream: StreamDecoder::new(max_frame),
                serial,
                leftover: 0,
            },
            proto,
        }
    }

    /// Bytes arrived (see `Broker::handle_input`); returns how many were consumed.
    pub(crate) fn input(
        &mut self,
        id: ConnId,
        now: Instant,
        bytes: &[u8],
        router: &mut Router,
    ) -> usize {
        // Offering the same unconsumed bytes again is not activity.
        if bytes.len() > self.rx.leftover {
            self.proto.keepalive.received(now);
        }
        let used = match self.rx.serial.as_mut() {
            None => self
                .proto
                .stream_input(&self.rx.stream, id, now, bytes, router),
            Some(decoder) => self.proto.serial_input(decoder, id, now, bytes, router),
        };
        self.rx.leftover = bytes.len() - used;
        used
    }

    /// The connection's timer fired.
    pub(crate) fn on_timer(&mut self, id: ConnId, now: Instant, router: &mut Router) {
        self.proto.on_timer(id, now, router);
    }

    /// A serial line between connections (it counts as no connection).
    pub(crate) fn is_idle(&self) -> bool {
        self.proto.phase == Phase::Idle
    }

    /// Bytes were written to the transport at `now` (keepalive counts them).
    pub(crate) fn wrote(&mut self, now: Instant) {
        self.proto.keepalive.sent(now);
    }

    /// Its transport is gone: its timer goes too.
    pub(crate) fn closed(&mut self, id: ConnId, router: &mut Router) {
        router.timers.stop(&mut self.proto.timer, Timer::Conn(id));
    }
}

/// What a peer may send before its `Hello` says otherwise.
fn initial_peer(router: &Router) -> Limits {
    Limits {
        max_frame: MIN_CLIENT_FRAME,
        credit: router.cfg.limits.credit,
        keepalive_ms: 0,
    }
}

impl Proto {
    /// A connection begins: it owes a `Hello` within the handshake timeout.
    fn begin(&mut self, id: ConnId, now: Instant, router: &mut Router) {
        self.phase = Phase::AwaitHello;
        router.stats.connections_total += 1;
        let deadline = now + router.cfg.handshake_timeout;
        self.handshake_deadline = Some(deadline);
        router
            .timers
            .set(&mut self.timer, Timer::Conn(id), deadline);
    }

    fn stream_input(
        &mut self,
        decoder: &StreamDecoder,
        id: ConnId,
        now: Instant,
        bytes: &[u8],
        router: &mut Router,
    ) -> usize {
        let mut used = 0;
        loop {
            if self.phase == Phase::Closing {
                return bytes.len();
            }
            if router.input_blocked(id) {
                return used;
            }
            match decoder.decode(&bytes[used..]) {
                Ok(Decoded::Frame { frame, consumed }) => {
                    used += consumed;
                    self.on_frame(id, now, frame, router);
                }
                Ok(Decoded::Incomplete { .. }) => return used,
                Err(e) => {
                    router.stats.protocol_errors += 1;
                    let last = match e {
                        stream::StreamError::FrameTooLarge { .. } => {
                            Ctrl::Error(Reason::FrameTooLarge, "frame exceeds the broker's maximum")
                        }
                        _ => Ctrl::Error(Reason::Malformed, "malformed frame"),
                    };
                    self.close(id, now, last, router);
                    return bytes.len();
                }
            }
        }
    }

    /// Decodes serial frames while the router can take them; stops before a
    /// frame when the connection must wait (the rest stays unconsumed).
    fn serial_input(
        &mut self,
        decoder: &mut SerialDecoder<Vec<u8>>,
        id: ConnId,
        now: Instant,
        bytes: &[u8],
        router: &mut Router,
    ) -> usize {
        let mut used = 0;
        while let Some(rest) = bytes.get(used..).filter(|rest| !rest.is_empty()) {
            if router.input_blocked(id) {
                break;
            }
            let (n, out) = decoder.feed(rest);
            used += n.max(1);
            match out {
                Some(Ok(frame)) => self.on_frame(id, now, frame, router),
                // A frame lost within a connection would let the next ones
                // overtake it: the connection ends, as a broken stream would.
                Some(Err(_)) if self.phase == Phase::Open => {
                    router.stats.protocol_errors += 1;
                    let e = Ctrl::Error(Reason::Malformed, "damaged frame on the serial line");
                    self.close(id, now, e, router);
                }
                // Noise on an idle or ending line: counted by the decoder.
                Some(Err(_)) | None => {}
            }
        }
        used.min(bytes.len())
    }
}
