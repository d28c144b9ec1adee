//! What each operation a client sends does: `CONNECT` opens the session,
//! `PUB`/`HPUB` publish, `SUB`/`UNSUB` manage subscriptions, `PING` is
//! answered. Operations only a server sends are refused as nats-server
//! refuses them.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::ToString;

use super::{Ctrl, NatsConn, Phase, Sub, headers};
use crate::broker::ConnId;
use crate::broker::command::{self, Command, Outcome, SendRetained};
use crate::broker::router::Router;
use crate::broker::timers::Timer;
use crate::nats::{ConnectOptions, HeaderBlock, Message, Op};
use crate::time::Instant;
use crate::topic::{Filter, Topic};
use crate::wire::{Meta, QoS, Start};

impl NatsConn {
    pub(super) fn on_op(&mut self, id: ConnId, now: Instant, op: Op<'_>, r: &mut Router) {
        match op {
            Op::Connect(json) => self.on_connect(id, now, json, r),
            Op::Ping => self.send(id, Ctrl::Pong, r),
            Op::Pong => {}
            _ if !self.session(id, now, r) => {}
            Op::Pub(m) => self.on_pub(id, now, m, r),
            Op::Sub {
                subject,
                queue,
                sid,
            } => self.on_sub(id, now, subject, queue, sid, r),
            Op::Unsub { sid, max } => self.on_unsub(id, now, sid, max, r),
            Op::Info(_) | Op::Msg { .. } | Op::Ok | Op::Err(_) => {
                r.stats.protocol_errors += 1;
                self.close(id, now, Cow::Borrowed("Unknown Protocol Operation"), r);
            }
        }
    }

    /// True once the connection has a session: opened now, for a client that
    /// sends no `CONNECT`, when the broker needs no token.
    fn session(&mut self, id: ConnId, now: Instant, r: &mut Router) -> bool {
        match self.phase {
            Phase::Open => true,
            Phase::Closing => false,
            Phase::Fresh if self.auth_required => {
                r.stats.auth_failures += 1;
                self.close(id, now, Cow::Borrowed("Authorization Violation"), r);
                false
            }
            Phase::Fresh => self.open(id, now, None, r),
        }
    }

    fn on_connect(&mut self, id: ConnId, now: Instant, json: &str, r: &mut Router) {
        let Ok(o) = ConnectOptions::parse(json) else {
            r.stats.protocol_errors += 1;
            let text = "Invalid CONNECT: not a JSON object with fields of the right types";
            return self.close(id, now, Cow::Borrowed(text), r);
        };
        self.opts = super::Opts {
            verbose: o.verbose,
            echo: o.echo,
            headers: o.headers,
            no_responders: o.no_responders && o.headers,
        };
        // A second CONNECT changes the options only.
        if self.phase == Phase::Fresh && !self.open(id, now, o.secret(), r) {
            return;
        }
        self.ok(id, r);
    }

    /// Opens the router session with `token`; false when it is refused
    /// (the connection is closing then).
    fn open(&mut self, id: ConnId, now: Instant, token: Option<&str>, r: &mut Router) -> bool {
        let client_id = format!("nats-{}-{}", now.as_micros(), id.0);
        let connect = command::Connect {
            client_id: &client_id,
            persistent: false,
            token,
            default_credit: u32::from(u16::MAX),
            resume: false,
            keep_subscriptions: false,
            ack_deadlines: false,
            expiry: None,
            will: None,
            no_local: !self.opts.echo,
        };
        if let Outcome::Refused(..) = r.handle(id, now, Command::Connect(connect)) {
            self.close(id, now, Cow::Borrowed("Authorization Violation"), r);
            return false;
        }
        self.phase = Phase::Open;
        let next = self.keepalive.map(|k| self.last_rx + k);
        r.timers.reset(&mut self.timer, Timer::Conn(id), next);
        true
    }

    fn on_pub(&mut self, id: ConnId, now: Instant, m: Message<'_>, r: &mut Router) {
        let subject = m.subject;
        let topic = match Topic::new(subject) {
            Ok(t) if m.reply.is_none_or(|reply| Topic::new(reply).is_ok()) => t,
            _ => return self.error(id, "Invalid Publish Subject", r),
        };
        if subject.starts_with('$') || !r.may_publish(id, topic) {
            r.stats.auth_failures += 1;
            r.stats.rejected += 1;
            let text = format!("Permissions Violation for Publish to \"{subject}\"");
            return self.error(id, text, r);
        }
        let block = match m.headers.map(HeaderBlock::parse).transpose() {
            Ok(b) => b,
            Err(e) => {
                r.stats.rejected += 1;
                return self.error(id, format!("Invalid Headers: {e}"), r);
            }
        };
        self.ok(id, r);
        let nobody = m.reply.is_some() && self.opts.no_responders && !r.has_subscribers(topic);
        let mut scratch = core::mem::take(&mut self.scratch);
        let publish = command::Publish {
            id: 0,
            topic: subject,
            qos: QoS::AtMostOnce,
            dedup: None,
            meta: Meta {
                ttl_ms: None,
                priority: 0,
                reply_to: m.reply,
                correlation: None,
                headers: headers::to_mq(block.as_ref(), &mut scratch),
            },
            payload: m.payload,
            retain: false,
            once: None,
            via: command::Via::Client,
        };
        r.handle(id, now, Command::Publish(publish));
        self.scratch = scratch;
        if nobody && let Some(reply) = m.reply {
            self.no_responders(id, now, reply, r);
        }
    }

    /// Tells the client nobody took its request: `HMSG` with status 503 on
    /// its own subscription to the reply subject.
    fn no_responders(&mut self, id: ConnId, now: Instant, reply: &str, r: &mut Router) {
        let Ok(topic) = Topic::new(reply) else { return };
        let found = self.subs.iter().find(|(_, s)| {
            Filter::new(&s.subject).is_ok_and(|f| f.matches(topic))
                && s.max.is_none_or(|max| s.delivered < max)
        });
        let Some((&rid, sub)) = found else { return };
        let sid = sub.sid.clone();
        self.send(
            id,
            Ctrl::NoResponders {
                sid,
                reply: reply.to_string(),
            },
            r,
        );
        if self.count_delivery(rid) {
            self.forget(id, now, rid, r);
        }
    }

    fn on_sub(
        &mut self,
        id: ConnId,
        now: Instant,
        subject: &str,
        queue: Option<&str>,
        sid: &str,
        r: &mut Router,
    ) {
        if Filter::new(subject).is_err() {
            return self.error(id, "Invalid Subject", r);
        }
        if self.by_sid.contains_key(sid) {
            // nats-server keeps the first subscription of a sid.
            return self.ok(id, r);
        }
        let mut rid = self.next_sub;
        while rid == 0 || self.subs.contains_key(&rid) {
            rid = rid.wrapping_add(1);
        }
        self.next_sub = rid.wrapping_add(1);
        self.subs.insert(
            rid,
            Sub {
                sid: sid.to_string(),
                subject: subject.to_string(),
                max: None,
                delivered: 0,
            },
        );
        self.by_sid.insert(sid.to_string(), rid);
        // `+OK` or `-ERR` comes with the router's answer (see `write`).
        let cmd = command::Subscribe {
            sub: rid,
            filter: subject,
            group: queue,
            start: Start::New,
            qos: QoS::AtMostOnce,
            credit: 0,
            retained: SendRetained::Never,
        };
        r.handle(id, now, Command::Subscribe(cmd));
    }

    fn on_unsub(&mut self, id: ConnId, now: Instant, sid: &str, max: Option<u64>, r: &mut Router) {
        self.ok(id, r);
        let Some(&rid) = self.by_sid.get(sid) else {
            return;
        };
        let done = match (max, self.subs.get_mut(&rid)) {
            (Some(max), Some(s)) if s.delivered < max => {
                s.max = Some(max);
                false
            }
            _ => true,
        };
        if done {
            self.forget(id, now, rid, r);
        }
    }

    /// Ends subscription `rid`: the router's and the sid.
    pub(super) fn forget(&mut self, id: ConnId, now: Instant, rid: u32, r: &mut Router) {
        if let Some(s) = self.subs.remove(&rid) {
            self.by_sid.remove(&s.sid);
            r.handle(id, now, Command::Unsubscribe { sub: rid });
        }
    }

    /// A message went out on subscription `rid`; true when that was its last
    /// (`UNSUB sid max`), and it is to be ended.
    pub(super) fn count_delivery(&mut self, rid: u32) -> bool {
        let Some(s) = self.subs.get_mut(&rid) else {
            return false;
        };
        s.delivered += 1;
        s.max.is_some_and(|max| s.delivered >= max)
    }
}
