//! SUBSCRIBE and UNSUBSCRIBE as router subscriptions, and the SUBACK or
//! UNSUBACK once the router answered every filter of the packet.
//!
//! A filter's router subscription ids come from the filter itself (see
//! [`sub_id`]), so a resumed session needs nothing stored beyond the router's
//! subscriptions. Subscribing again to a filter with another QoS replaces the
//! subscription: the ids of the other QoS are unsubscribed first (their
//! UNSUBACKs dropped).

use alloc::vec;
use alloc::vec::Vec;

use super::{Ctrl, MqttConn};
use crate::broker::ConnId;
use crate::broker::command::{self, Command, SendRetained};
use crate::broker::router::Router;
use crate::mqtt::topic::{MQ_BUF_LEN, MqttFilter, to_mq_filter, to_mq_group};
use crate::mqtt::{
    Answer, PacketId, QoS, ReasonCode, RetainHandling, Subscribe, Unsubscribe, Version,
};
use crate::time::Instant;
use crate::wire::{Reason, Start};

/// A SUBSCRIBE or UNSUBSCRIBE waiting for the router.
#[derive(Debug)]
pub(crate) struct AckEntry {
    pub pid: PacketId,
    pub unsubscribe: bool,
    /// One code per filter, in order.
    pub codes: Vec<ReasonCode>,
    /// Router subscription ids not answered yet, with their filter's index.
    awaiting: Vec<(u32, usize)>,
}

/// The router subscription id of an MQTT filter (with its `$share/` prefix):
/// a 28-bit FNV-1a hash of the filter, then the granted QoS (2 bits), then
/// whether it is the parent level of a filter ending in `/#` (1 bit).
pub(crate) fn sub_id(filter: &str, qos: QoS, parent: bool) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in filter.as_bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h & 0x0FFF_FFFF) << 3 | (qos as u32) << 1 | u32::from(parent)
}

/// The QoS granted to the subscription with this router id.
pub(crate) fn granted(sub: u32) -> QoS {
    QoS::from_bits(((sub >> 1) & 3) as u8).unwrap_or(QoS::AtMostOnce)
}

const ALL_QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

impl MqttConn {
    pub(super) fn on_subscribe(
        &mut self,
        id: ConnId,
        now: Instant,
        s: Subscribe<'_>,
        r: &mut Router,
    ) {
        let mut entry = AckEntry {
            pid: s.packet_id,
            unsubscribe: false,
            codes: Vec::new(),
            awaiting: Vec::new(),
        };
        for (index, sub) in s.subscriptions.iter().enumerate() {
            let qos = sub.options.qos;
            entry.codes.push(ReasonCode::granted(qos));
            let mut filter_buf = [0u8; MQ_BUF_LEN];
            let mut group_buf = [0u8; MQ_BUF_LEN];
            let mapped = MqttFilter::parse(sub.filter).and_then(|f| {
                let group = match f.share {
                    Some(g) => Some(to_mq_group(g, &mut group_buf)?),
                    None => None,
                };
                Ok((to_mq_filter(f.filter, &mut filter_buf)?, group))
            });
            let Ok((mq, group)) = mapped else {
                entry.codes[index] = self.sub_failure(Reason::InvalidFilter);
                continue;
            };
            // Another QoS's subscription to the same filter is replaced.
            for other in ALL_QOS.into_iter().filter(|&q| q != qos) {
                for parent in [false, true] {
                    let old = sub_id(sub.filter, other, parent);
                    *self.swallow.entry(old).or_default() += 1;
                    r.handle(id, now, Command::Unsubscribe { sub: old });
                }
            }
            let retained = match (self.version, sub.options.retain_handling) {
                (Version::V5, RetainHandling::DoNotSend) => SendRetained::Never,
                (Version::V5, RetainHandling::SendAtNewSubscribe) => SendRetained::IfNew,
                _ => SendRetained::Always,
            };
            let filters = [Some((mq.filter, false)), mq.parent.map(|p| (p, true))];
            for (filter, parent) in filters.into_iter().flatten() {
                let rid = sub_id(sub.filter, qos, parent);
                entry.awaiting.push((rid, index));
                let cmd = command::Subscribe {
                    sub: rid,
                    filter: filter.as_str(),
                    group,
                    start: Start::New,
                    qos: super::props::router_qos(qos),
                    credit: 0,
                    retained,
                };
                r.handle(id, now, Command::Subscribe(cmd));
            }
        }
        self.queue_ack(entry);
    }

    pub(super) fn on_unsubscribe(
        &mut self,
        id: ConnId,
        now: Instant,
        u: Unsubscribe<'_>,
        r: &mut Router,
    ) {
        let mut entry = AckEntry {
            pid: u.packet_id,
            unsubscribe: true,
            codes: vec![ReasonCode::Success; u.filters.len()],
            awaiting: Vec::new(),
        };
        for (index, filter) in u.filters.iter().enumerate() {
            if MqttFilter::parse(filter).is_err() {
                entry.codes[index] = ReasonCode::TopicFilterInvalid;
                continue;
            }
            for qos in ALL_QOS {
                for parent in [false, true] {
                    let rid = sub_id(filter, qos, parent);
                    entry.awaiting.push((rid, index));
                    r.handle(id, now, Command::Unsubscribe { sub: rid });
                }
            }
        }
        self.queue_ack(entry);
    }

    /// Lists the entry, or queues its answer when nothing is awaited.
    fn queue_ack(&mut self, entry: AckEntry) {
        if entry.awaiting.is_empty() {
            self.ctrl.push_back(Ctrl::Ack(entry));
        } else {
            self.acks.push(entry);
        }
    }

    /// The SUBACK code for a refused filter: 3.1.1 says every failure as 0x80.
    fn sub_failure(&self, reason: Reason) -> ReasonCode {
        match self.version {
            Version::V5 => Answer::SubAck.code(reason),
            _ => ReasonCode::UnspecifiedError,
        }
    }

    /// The router answered a subscription (`refused`: with this reason). A
    /// refused parent level of a filter ending in `/#` (a token may permit
    /// `a.>` but not `a`) leaves the filter granted for the levels below.
    pub(super) fn sub_answered(&mut self, sub: u32, refused: Option<Reason>) {
        let parent = sub & 1 == 1;
        let code = refused
            .filter(|_| !parent)
            .map(|reason| self.sub_failure(reason));
        self.answered(false, sub, code);
    }

    /// The router answered an unsubscription.
    pub(super) fn unsub_answered(&mut self, sub: u32) {
        if let Some(n) = self.swallow.get_mut(&sub) {
            *n -= 1;
            if *n == 0 {
                self.swallow.remove(&sub);
            }
            return;
        }
        self.answered(true, sub, None);
    }

    fn answered(&mut self, unsubscribe: bool, sub: u32, code: Option<ReasonCode>) {
        let Some(i) = self.acks.iter().position(|e| {
            e.unsubscribe == unsubscribe && e.awaiting.iter().any(|&(s, _)| s == sub)
        }) else {
            return;
        };
        let e = &mut self.acks[i];
        if let Some(pos) = e.awaiting.iter().position(|&(s, _)| s == sub) {
            let (_, index) = e.awaiting.swap_remove(pos);
            if let Some(code) = code {
                e.codes[index] = code;
            }
        }
        if e.awaiting.is_empty() {
            let e = self.acks.remove(i);
            self.ctrl.push_back(Ctrl::Ack(e));
        }
    }
}
