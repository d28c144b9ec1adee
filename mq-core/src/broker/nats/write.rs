//! Bytes out: control operations and the router's outputs in the order the
//! client caused them (`+OK` before the `MSG` its `PUB` produced, `PONG`
//! after the `+OK` of a `SUB` sent before the `PING`), then the final
//! `-ERR` of a connection the codec ends. An operation larger than the
//! caller's buffer is encoded aside once and handed out over several calls.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

use super::{Ctrl, NatsConn, Phase, headers};
use crate::broker::ConnId;
use crate::broker::command::{Delivery, Output};
use crate::broker::conn::After;
use crate::broker::router::Router;
use crate::broker::spill::{self, Settled, Spill, Tx};
use crate::broker::timers::Timer;
use crate::nats::{Message, Op, ServerInfo};
use crate::time::Instant;
use crate::wire::{QoS, Reason};

/// The header block of a no-responders message.
const NO_RESPONDERS: &[u8] = b"NATS/1.0 503\r\n\r\n";

/// Encodes `op` into `tx`; false when it does not fit (nothing written). An
/// operation larger than an empty buffer goes to `spill`.
fn put(spill: &mut Spill, op: &Op<'_>, tx: &mut Tx<'_>) -> bool {
    spill.put(tx, op.encoded_len(), |buf| op.encode(buf).is_ok())
}

/// A delivery written or dropped: NATS has no acknowledgement, so a QoS 1
/// one is acked, a QoS 0 one returns its credit.
fn done(settled: &mut Settled, dv: &Delivery) {
    match dv.qos {
        QoS::AtMostOnce => *settled.credit.entry(dv.sub).or_default() += 1,
        QoS::AtLeastOnce => settled.acks.push(dv.tag),
    }
}

impl NatsConn {
    /// Writes as many whole operations as fit into `buf`; returns the bytes
    /// written.
    pub(crate) fn write(
        &mut self,
        id: ConnId,
        now: Instant,
        buf: &mut [u8],
        r: &mut Router,
    ) -> usize {
        let mut tx = Tx { buf, pos: 0 };
        if self.spill.pending() && !self.spill.drain(&mut tx) {
            return tx.pos;
        }
        let mut settled = Settled::default();
        // Subscriptions that reached their `UNSUB` maximum.
        let mut ended = Vec::new();
        loop {
            let outputs = r.links.get(id).map_or(0, |l| l.out.len());
            if let Some(q) = self.ctrl.front()
                && (q.after <= self.outputs_done || outputs == 0)
            {
                let q = self.ctrl.pop_front().expect("front exists");
                if !self.put_ctrl(id, &q.ctrl, &mut tx) {
                    self.ctrl.push_front(q);
                    break;
                }
                continue;
            }
            let Some(out) = r.links.get_mut(id).and_then(|l| l.out.pop_front()) else {
                break;
            };
            match self.put_output(id, out, &mut tx, &mut settled, &mut ended, r) {
                Ok(()) => self.outputs_done += 1,
                Err(out) => {
                    if let Some(l) = r.links.get_mut(id) {
                        l.out.push_front(out);
                    }
                    break;
                }
            }
        }
        let queued = r.links.get(id).is_some_and(|l| !l.out.is_empty());
        if self.phase == Phase::Closing
            && !queued
            && self.ctrl.is_empty()
            && let Some(text) = &self.last
        {
            let op = Op::Err(text);
            if put(&mut self.spill, &op, &mut tx) {
                self.last = None;
            }
        }
        settled.apply(id, now, r);
        for rid in ended {
            self.forget(id, now, rid, r);
        }
        tx.pos
    }

    /// What the connection is now, after a write.
    pub(crate) fn after_write(&mut self, id: ConnId, r: &Router) -> After {
        let closing = self.phase == Phase::Closing;
        let pending =
            !self.ctrl.is_empty() || self.spill.pending() || (closing && self.last.is_some());
        spill::after_write(id, r, pending, closing, &mut self.close_event_sent)
    }

    fn put_ctrl(&mut self, id: ConnId, c: &Ctrl, tx: &mut Tx<'_>) -> bool {
        let info;
        let op = match c {
            Ctrl::Info => {
                info = server_info(id, self.limits.max_payload, self.auth_required);
                Op::Info(&info)
            }
            Ctrl::Ok => Op::Ok,
            Ctrl::Ping => Op::Ping,
            Ctrl::Pong => Op::Pong,
            Ctrl::Err(text) => Op::Err(text),
            Ctrl::NoResponders { sid, reply } => Op::Msg {
                sid,
                msg: Message {
                    subject: reply,
                    reply: None,
                    headers: Some(NO_RESPONDERS),
                    payload: &[],
                },
            },
        };
        put(&mut self.spill, &op, tx)
    }

    /// Writes one router output; gives it back when it does not fit.
    fn put_output(
        &mut self,
        id: ConnId,
        out: Output,
        tx: &mut Tx<'_>,
        settled: &mut Settled,
        ended: &mut Vec<u32>,
        r: &mut Router,
    ) -> Result<(), Output> {
        let op = match &out {
            Output::Deliver(_) => {
                let Output::Deliver(dv) = out else {
                    unreachable!()
                };
                return self
                    .put_delivery(dv, tx, settled, ended)
                    .map_err(Output::Deliver);
            }
            Output::SubAck { .. } if self.opts.verbose => Op::Ok,
            Output::SubReject { sub, reason } => {
                let Some(s) = self.subs.remove(sub) else {
                    return Ok(());
                };
                self.by_sid.remove(&s.sid);
                let text = sub_refusal(*reason, &s.subject);
                let op = Op::Err(&text);
                return match put(&mut self.spill, &op, tx) {
                    true => Ok(()),
                    false => {
                        self.by_sid.insert(s.sid.clone(), *sub);
                        self.subs.insert(*sub, s);
                        Err(out)
                    }
                };
            }
            Output::Error(_, text) => {
                self.router_ended(id, Some(Cow::Borrowed(*text)), r);
                return Ok(());
            }
            Output::Close(_) => {
                self.router_ended(id, None, r);
                return Ok(());
            }
            // QoS 0 publishes are not answered; the rest is MQTT's.
            _ => return Ok(()),
        };
        match put(&mut self.spill, &op, tx) {
            true => Ok(()),
            false => Err(out),
        }
    }

    /// The router ended the connection (shutdown): close, with `-ERR` when
    /// there is something to say.
    fn router_ended(&mut self, id: ConnId, text: Option<Cow<'static, str>>, r: &mut Router) {
        self.phase = Phase::Closing;
        self.last = text;
        r.timers.stop(&mut self.timer, Timer::Conn(id));
        if let Some(l) = r.links.get_mut(id) {
            l.out.clear();
        }
    }

    /// Writes a delivery as `MSG` or `HMSG`; gives it back when it does not
    /// fit.
    fn put_delivery(
        &mut self,
        dv: Delivery,
        tx: &mut Tx<'_>,
        settled: &mut Settled,
        ended: &mut Vec<u32>,
    ) -> Result<(), Delivery> {
        let Some(sub) = self.subs.get(&dv.sub) else {
            // Unsubscribed meanwhile.
            done(settled, &dv);
            return Ok(());
        };
        let view = dv.msg.view();
        let block = match self.opts.headers {
            true => headers::to_nats(view.meta.headers, &mut self.block),
            false => None,
        };
        let op = Op::Msg {
            sid: &sub.sid,
            msg: Message {
                subject: view.topic,
                reply: view.meta.reply_to,
                headers: block,
                payload: view.payload,
            },
        };
        if !put(&mut self.spill, &op, tx) {
            return Err(dv);
        }
        done(settled, &dv);
        if self.count_delivery(dv.sub) {
            ended.push(dv.sub);
        }
        Ok(())
    }
}

/// The `-ERR` for a refused `SUB`, as nats-server words it.
fn sub_refusal(reason: Reason, subject: &str) -> String {
    match reason {
        Reason::NotAuthorized => {
            alloc::format!("Permissions Violation for Subscription to \"{subject}\"")
        }
        Reason::LimitReached => String::from("Maximum Subscriptions Exceeded"),
        Reason::InvalidFilter => String::from("Invalid Subject"),
        other => alloc::format!("Subscription to \"{subject}\" refused: {}", other.as_str()),
    }
}

/// The JSON of the `INFO` a connection starts with.
fn server_info(id: ConnId, max_payload: usize, auth_required: bool) -> String {
    let mut s = String::new();
    let info = ServerInfo {
        server_id: "mqd",
        server_name: "mqd",
        version: env!("CARGO_PKG_VERSION"),
        max_payload,
        auth_required,
        client_id: id.0,
    };
    let _ = info.write_json(&mut s);
    s
}
