//! Frames out: the codec's own frames, then the router's outputs for the
//! connection, then the final frame of a connection the codec ends.

use super::{Conn, Ctrl, Phase, Proto};
use crate::broker::ConnId;
use crate::broker::command::Delivery;
use crate::broker::command::Output;
use crate::broker::links::Link;
use crate::broker::router::Router;
use crate::broker::stats::Stats;
use crate::broker::timers::Timer;
use crate::framing::serial::DELIMITER;
use crate::framing::{Framing, stream};
use crate::time::Instant;
use crate::wire::deliver::EncodedDeliver;
use crate::wire::fragment::{FragmentError, Fragmenter};
use crate::wire::v2::WelcomeV2;
use crate::wire::{self, Deliver, ErrorFrame, Frame, Limits, PROTOCOL_VERSION, Welcome};

/// What the connection is after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// More to write (list it again).
    More,
    /// Nothing to write for now.
    Idle,
    /// Ended and flushed: close the transport (a stream, or a serial line the
    /// broker is done with).
    Close,
    /// A serial line's connection ended and was flushed: the line is idle.
    LineIdle,
}

impl Conn {
    /// Writes as many whole frames as fit into `buf`; returns the bytes written.
    pub(crate) fn write(&mut self, id: ConnId, buf: &mut [u8], r: &mut Router) -> usize {
        let Router {
            links,
            cfg,
            stats,
            timers,
            ..
        } = r;
        let Some(link) = links.get_mut(id) else {
            return 0;
        };
        let p = &mut self.proto;
        let mut pos = 0;
        if p.delimiter
            && (!p.ctrl.is_empty() || !link.out.is_empty())
            && let Some(b) = buf.first_mut()
        {
            *b = DELIMITER;
            pos = 1;
            p.delimiter = false;
        }
        while let Some(&ctrl) = p.ctrl.front() {
            match p.encode(&ctrl_frame(ctrl), &mut buf[pos..]) {
                Some(n) => pos += n,
                None if pos > 0 => return pos,
                // Cannot fit even alone in the caller's buffer: dropped.
                None => {}
            }
            p.ctrl.pop_front();
        }
        let ended = p.write_outputs(link, cfg.limits, buf, &mut pos, stats);
        if ended {
            p.phase = Phase::Closing;
            timers.stop(&mut p.timer, Timer::Conn(id));
        }
        if p.phase == Phase::Closing
            && link.out.is_empty()
            && let Some(last) = p.last
        {
            match p.encode(&ctrl_frame(last), &mut buf[pos..]) {
                Some(n) => pos += n,
                None if pos > 0 => return pos,
                None => {}
            }
            p.last = None;
        }
        pos
    }

    /// What the connection is now, after a write (see [`After`]).
    pub(crate) fn after_write(&mut self, id: ConnId, r: &Router) -> After {
        let p = &mut self.proto;
        let queued = r.links.get(id).is_some_and(|l| !l.out.is_empty());
        if queued || !p.ctrl.is_empty() || (p.phase == Phase::Closing && p.last.is_some()) {
            return After::More;
        }
        if p.phase != Phase::Closing || p.close_event_sent {
            return After::Idle;
        }
        if p.framing == crate::framing::Framing::Serial && !r.shutting_down {
            return After::LineIdle;
        }
        p.close_event_sent = true;
        After::Close
    }

    /// Makes the serial line idle after its connection ended (see `After`).
    pub(crate) fn line_idle(&mut self, id: ConnId, now: Instant, r: &mut Router) {
        self.proto.restart_line(id, now, r);
    }
}

impl Proto {
    /// Encodes one frame in the connection's framing; `None` when it does not
    /// fit.
    fn encode(&self, frame: &Frame<'_>, buf: &mut [u8]) -> Option<usize> {
        self.framing.encode(frame, self.peer.max_frame, buf).ok()
    }

    /// Writes the router's outputs; true when one of them ended the connection.
    fn write_outputs(
        &mut self,
        link: &mut Link,
        limits: Limits,
        buf: &mut [u8],
        pos: &mut usize,
        stats: &mut Stats,
    ) -> bool {
        while let Some(out) = link.out.front() {
            let (frame, ends) = match *out {
                Output::Deliver(_) => match self.write_delivery(link, buf, pos, stats) {
                    true => continue,
                    false => return false,
                },
                Output::Connected {
                    session_present,
                    epoch,
                } => {
                    let welcome = Welcome {
                        version: self.version,
                        session_present,
                        limits,
                        epoch,
                    };
                    if self.version == PROTOCOL_VERSION {
                        (Frame::Welcome(welcome), false)
                    } else {
                        // An older client's: without the epoch (see `wire::v2`).
                        let tag = Frame::Welcome(welcome).tag();
                        let fields = WelcomeV2::from(welcome);
                        let max = self.peer.max_frame;
                        let n = self
                            .framing
                            .encode_fields(tag, &fields, max, &mut buf[*pos..]);
                        if !placed(n.ok(), pos) {
                            return false;
                        }
                        link.out.pop_front();
                        continue;
                    }
                }
                Output::PubAck { id, seq, duplicate } => {
                    let ack = wire::PubAck { id, seq, duplicate };
                    if self.framing != Framing::Stream {
                        (Frame::PubAck(ack), false)
                    } else {
                        // One per QoS 1 publish: by its own encoder.
                        let tag = Frame::PubAck(ack).tag();
                        let max = self.peer.max_frame;
                        let n = stream::encode_fields(tag, &ack, max, &mut buf[*pos..]);
                        if !placed(n.ok(), pos) {
                            return false;
                        }
                        link.out.pop_front();
                        continue;
                    }
                }
                Output::PubReject { id, reason } => {
                    (Frame::PubReject(wire::PubReject { id, reason }), false)
                }
                Output::SubAck { sub } => (Frame::SubAck(wire::SubAck { sub }), false),
                Output::SubReject { sub, reason } => {
                    (Frame::SubReject(wire::SubReject { sub, reason }), false)
                }
                Output::UnsubAck { sub } => (Frame::UnsubAck(wire::UnsubAck { sub }), false),
                // The mq protocol has no exactly-once publishes.
                Output::Released { .. } | Output::PubRel { .. } => {
                    link.out.pop_front();
                    continue;
                }
                Output::AdminAnswer { id, ref reply } => {
                    // Leave room for the frame's own fields and framing.
                    let room = (self.peer.max_frame as usize)
                        .min(buf.len())
                        .saturating_sub(32);
                    let body = reply.encode_within(room);
                    let frame = Frame::AdminAnswer(wire::AdminAnswer { id, body: &body });
                    if !placed(self.encode(&frame, &mut buf[*pos..]), pos) {
                        return false;
                    }
                    link.out.pop_front();
                    continue;
                }
                Output::Error(code, text) => (Frame::Error(ErrorFrame { code, text }), true),
                Output::Close(reason) => (
                    Frame::Close(wire::Close {
                        reason,
                        text: reason.as_str(),
                    }),
                    true,
                ),
            };
            if !placed(self.encode(&frame, &mut buf[*pos..]), pos) {
                return false;
            }
            link.out.pop_front();
            if ends {
                link.out.clear();
                return true;
            }
        }
        false
    }

    /// Writes the delivery at the front of the queue, whole or its next
    /// fragments; true when it is done with for now (written, or dropped as
    /// unsendable), false when the buffer is full.
    fn write_delivery(
        &mut self,
        link: &mut Link,
        buf: &mut [u8],
        pos: &mut usize,
        stats: &mut Stats,
    ) -> bool {
        let Some(Output::Deliver(dv)) = link.out.front() else {
            return true;
        };
        if self.deliver_offset == 0
            && self.framing == Framing::Stream
            && let Some(done) = self.write_whole_delivery(dv, &mut buf[*pos..], *pos == 0)
        {
            match done {
                Some(n) => {
                    *pos += n;
                    link.out.pop_front();
                    return true;
                }
                None => return false,
            }
        }
        let view = dv.msg.view();
        let frames = Fragmenter::deliver(Deliver {
            sub: dv.sub,
            topic: view.topic,
            seq: dv.seq,
            tag: dv.tag,
            attempt: dv.attempt,
            qos: dv.qos,
            meta: view.meta,
            fragment: None,
            payload: view.payload,
        });
        let room = &mut buf[*pos..];
        let max_frame = self.peer.max_frame;
        // A message the peer takes whole goes whole: into this buffer, or into
        // the next one; it is cut to fit a buffer only when none would hold it.
        if self.deliver_offset == 0
            && let Some(whole) = frames.next(0, max_frame as usize).filter(|p| p.last)
        {
            let len = whole.encoded_len;
            match self
                .framing
                .encode_sized(&whole.frame, len, max_frame, room)
            {
                Ok(n) => {
                    *pos += n;
                    link.out.pop_front();
                    return true;
                }
                Err(_) if *pos > 0 => return false,
                Err(_) => {}
            }
        }
        match frames.encode_next(self.deliver_offset, max_frame, self.framing, room) {
            Ok(w) => {
                *pos += w.len;
                self.deliver_offset = w.end;
                if w.last {
                    self.deliver_offset = 0;
                    link.out.pop_front();
                }
                true
            }
            Err(FragmentError::BufferTooSmall) if *pos > 0 => false,
            // Not one payload byte fits next to its headers, within the peer's
            // maximum frame (or the caller's buffer): it can never be sent.
            Err(_) => {
                stats.protocol_errors += 1;
                self.deliver_offset = 0;
                link.out.pop_front();
                true
            }
        }
    }
}

impl Proto {
    /// A delivery the peer takes whole, over a stream, written straight from
    /// the message's encoded record ([`EncodedDeliver`]): `None` when it
    /// does not go whole (fragments, by the general way), `Some(None)` when
    /// it waits for the next buffer, `Some(Some(n))` when written.
    fn write_whole_delivery(
        &self,
        dv: &Delivery,
        room: &mut [u8],
        empty: bool,
    ) -> Option<Option<usize>> {
        let (meta, payload) = dv.msg.encoded_tail();
        let frame = EncodedDeliver {
            sub: dv.sub,
            topic: &dv.msg.topic,
            seq: dv.seq,
            tag: dv.tag,
            attempt: dv.attempt,
            qos: dv.qos,
            meta,
            payload,
        };
        let len = frame.encoded_len();
        if len > self.peer.max_frame as usize {
            return None;
        }
        let prefix = stream::prefix_len(len);
        if prefix + len > room.len() {
            // Into the next buffer; cut to fit only a buffer that holds
            // nothing else (by the general way).
            return (!empty).then_some(None);
        }
        stream::write_prefix(len as u32, &mut room[..prefix]);
        frame.encode_exact(&mut room[prefix..prefix + len]);
        Some(Some(prefix + len))
    }
}

fn ctrl_frame(ctrl: Ctrl) -> Frame<'static> {
    match ctrl {
        Ctrl::Ping(n) => Frame::Ping(n),
        Ctrl::Pong(n) => Frame::Pong(n),
        Ctrl::Error(code, text) => Frame::Error(ErrorFrame { code, text }),
    }
}

/// Counts a frame of `n` bytes written at `pos`; `None`, it did not fit.
/// False when it must wait for room (something is written before it);
/// one that does not fit an empty buffer never will, and is dropped.
fn placed(n: Option<usize>, pos: &mut usize) -> bool {
    match n {
        Some(n) => {
            *pos += n;
            true
        }
        None => *pos == 0,
    }
}
