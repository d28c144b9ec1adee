//! What each received frame means for the connection: the handshake, the
//! session's frames as router commands, fragments, keepalive and closing.

use alloc::vec::Vec;

use super::{Ctrl, Phase, Proto, initial_peer};
use crate::broker::ConnId;
use crate::broker::command::{self, Command, Outcome, OwnedPublish};
use crate::broker::keepalive::Dead;
use crate::broker::router::Router;
use crate::broker::timers::Timer;
use crate::framing::Framing;
use crate::time::Instant;
use crate::wire::mesh::{LINK_PREFIX, NODE_PREFIX};
use crate::wire::{
    AdminRequest, Frame, Hello, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, Publish, Reason,
    SessionMode,
};

impl Proto {
    pub(super) fn on_frame(&mut self, id: ConnId, now: Instant, frame: Frame<'_>, r: &mut Router) {
        if self.framing == Framing::Serial {
            if matches!(frame, Frame::Hello(_)) && self.phase != Phase::Idle {
                // A new connection on the same line.
                self.restart_line(id, now, r);
            }
            if self.phase == Phase::Idle {
                // Its first frame starts a line's connection; a Hello (the only
                // frame allowed first) is handled at once, so no handshake timer.
                self.phase = Phase::AwaitHello;
                r.stats.connections_total += 1;
            }
        }
        match (self.phase, frame) {
            (Phase::AwaitHello, Frame::Hello(h)) => self.on_hello(id, now, h, r),
            (Phase::AwaitHello, _) => self.violation(id, now, "expected hello", r),
            (Phase::Open, frame) => self.on_session_frame(id, now, frame, r),
            (Phase::Closing | Phase::Idle, _) => {}
        }
    }

    fn on_hello(&mut self, id: ConnId, now: Instant, h: Hello<'_>, r: &mut Router) {
        if let Err(text) = supported(&h) {
            let e = Ctrl::Error(Reason::UnsupportedVersion, text);
            return self.close(id, now, e, r);
        }
        if h.limits.max_frame < super::MIN_CLIENT_FRAME {
            let e = Ctrl::Error(Reason::LimitReached, "client max_frame below 512");
            return self.close(id, now, e, r);
        }
        let persistent = h.session == SessionMode::Resume;
        let connect = command::Connect::mq(h.client_id, persistent, h.token, h.limits.credit);
        if let Outcome::Refused(reason, text) = r.handle(id, now, Command::Connect(connect)) {
            return self.close(id, now, Ctrl::Error(reason, text), r);
        }
        self.phase = Phase::Open;
        self.peer = h.limits;
        self.version = h.version;
        self.handshake_deadline = None;
        let next = self
            .keepalive
            .start(r.cfg.limits.keepalive_ms, h.limits.keepalive_ms, now);
        r.timers.reset(&mut self.timer, Timer::Conn(id), next);
    }

    fn on_session_frame(&mut self, id: ConnId, now: Instant, frame: Frame<'_>, r: &mut Router) {
        let cmd = match frame {
            Frame::Publish(p) => return self.on_publish(id, now, p, r),
            Frame::Subscribe(s) => Command::Subscribe(command::Subscribe {
                sub: s.sub,
                filter: s.filter,
                group: s.group,
                start: s.start,
                qos: s.qos,
                credit: s.credit,
                retained: command::SendRetained::Never,
            }),
            Frame::Unsubscribe(u) => Command::Unsubscribe { sub: u.sub },
            Frame::Ack(a) => Command::Ack { tag: a.tag },
            Frame::AckMessage(a) => Command::AckMessage(a),
            Frame::Nack(n) => Command::Nack {
                tag: n.tag,
                requeue: n.requeue,
            },
            Frame::Credit(c) => Command::Credit {
                sub: c.sub,
                credit: c.credit,
            },
            Frame::Ping(n) => {
                self.ctrl.push_back(Ctrl::Pong(n));
                r.links.wake(id);
                return;
            }
            Frame::Admin(a) => match AdminRequest::decode(a.request) {
                Ok(request) => Command::Admin { id: a.id, request },
                Err(_) => return self.violation(id, now, "malformed admin request", r),
            },
            Frame::Pong(_) => return,
            Frame::Interest(i) => Command::Interest(i),
            Frame::Close(_) | Frame::Error(_) => {
                r.handle(
                    id,
                    now,
                    Command::Disconnect {
                        publish_will: false,
                    },
                );
                self.phase = Phase::Closing;
                r.timers.stop(&mut self.timer, Timer::Conn(id));
                r.links.wake(id);
                return;
            }
            Frame::Hello(_)
            | Frame::Welcome(_)
            | Frame::PubAck(_)
            | Frame::PubReject(_)
            | Frame::SubAck(_)
            | Frame::SubReject(_)
            | Frame::UnsubAck(_)
            | Frame::AdminAnswer(_)
            | Frame::Deliver(_) => return self.violation(id, now, "unexpected frame", r),
        };
        r.handle(id, now, cmd);
    }

    fn on_publish(&mut self, id: ConnId, now: Instant, p: Publish<'_>, r: &mut Router) {
        let whole = command::Publish {
            id: p.id,
            topic: p.topic,
            qos: p.qos,
            dedup: p.dedup,
            meta: p.meta,
            payload: p.payload,
            retain: false,
            once: None,
            via: command::Via::Client,
        };
        let max = r.cfg.max_message as u64;
        let at = match self
            .reassembler
            .accept(p.id.into(), p.fragment, p.payload.len(), max)
        {
            Ok(at) => at,
            Err(e) => return self.violation(id, now, e.as_str(), r),
        };
        if p.fragment.is_none() {
            // Whole: straight from the received bytes.
            r.handle_publish(id, now, &whole);
            return;
        }
        if at.first {
            let payload = match at.refused {
                true => Vec::new(),
                false => Vec::with_capacity(at.total as usize),
            };
            self.partial = Some(OwnedPublish::new(&whole, payload));
        }
        let Some(part) = self.partial.as_mut() else {
            return;
        };
        if !at.refused {
            part.payload.extend_from_slice(p.payload);
        }
        if at.last {
            let part = self.partial.take().expect("partial exists");
            let publish = part.as_publish();
            if at.refused {
                r.reject_publish(id, publish.id, publish.qos, Reason::MessageTooLarge);
            } else {
                r.handle_publish(id, now, &publish);
            }
        }
    }

    /// The connection's timer fired: the handshake deadline, or keepalive.
    pub(super) fn on_timer(&mut self, id: ConnId, now: Instant, r: &mut Router) {
        self.timer = None;
        match self.phase {
            Phase::AwaitHello => {
                if self.handshake_deadline.is_some_and(|d| d <= now) {
                    self.close(id, now, Ctrl::Error(Reason::Timeout, "no hello in time"), r);
                }
            }
            Phase::Open => self.keepalive(id, now, r),
            Phase::Idle | Phase::Closing => {}
        }
    }

    fn keepalive(&mut self, id: ConnId, now: Instant, r: &mut Router) {
        let beat = (self.keepalive).tick(now, &mut r.timers, &mut self.timer, Timer::Conn(id));
        match beat {
            Ok(None) => {}
            Ok(Some(n)) => {
                self.ctrl.push_back(Ctrl::Ping(n));
                r.links.wake(id);
            }
            Err(Dead) => {
                let e = Ctrl::Error(Reason::KeepaliveTimeout, "keepalive timeout");
                self.close(id, now, e, r);
            }
        }
    }

    /// A frame that is not allowed here: counted, answered with an error, closed.
    fn violation(&mut self, id: ConnId, now: Instant, text: &'static str, r: &mut Router) {
        r.stats.protocol_errors += 1;
        self.close(id, now, Ctrl::Error(Reason::ProtocolViolation, text), r);
    }

    /// Ends the connection with `last` as its final frame, after the answers
    /// already queued for it.
    pub(super) fn close(&mut self, id: ConnId, now: Instant, last: Ctrl, r: &mut Router) {
        if self.phase == Phase::Closing {
            return;
        }
        r.end_conn(id, now);
        self.phase = Phase::Closing;
        self.last = Some(last);
        self.partial = None;
        self.reassembler.reset();
        self.deliver_offset = 0;
        r.timers.stop(&mut self.timer, Timer::Conn(id));
        r.links.wake(id);
    }

    /// A serial line's connection is over (a new `Hello` arrived, or it ended
    /// and was flushed): the line is idle, its next output starts with a
    /// delimiter.
    pub(super) fn restart_line(&mut self, id: ConnId, now: Instant, r: &mut Router) {
        r.restart_conn(id, now);
        r.timers.stop(&mut self.timer, Timer::Conn(id));
        self.phase = Phase::Idle;
        self.peer = initial_peer(r);
        self.version = PROTOCOL_VERSION;
        self.keepalive.stop();
        self.handshake_deadline = None;
        self.ctrl.clear();
        self.last = None;
        self.deliver_offset = 0;
        self.partial = None;
        self.reassembler.reset();
        self.delimiter = true;
        self.close_event_sent = false;
    }
}

/// Whether the broker speaks `h`'s version to it: this build's, or an older
/// one it still serves to ordinary clients; a node link needs this build's
/// (its `Welcome` carries the epoch, which version 2's has no room for).
/// The refusals name the versions (static texts): a build that changes them
/// fails here until the texts say so too.
fn supported(h: &Hello<'_>) -> Result<(), &'static str> {
    let link = h.client_id.starts_with(NODE_PREFIX) || h.client_id.starts_with(LINK_PREFIX);
    match h.version {
        PROTOCOL_VERSION => Ok(()),
        MIN_PROTOCOL_VERSION..PROTOCOL_VERSION if link => {
            Err("node links need protocol version 3 (for the epoch)")
        }
        MIN_PROTOCOL_VERSION..PROTOCOL_VERSION => Ok(()),
        _ => Err("protocol versions 2 and 3 only"),
    }
}
const _: () = assert!(PROTOCOL_VERSION == 3 && MIN_PROTOCOL_VERSION == 2);
