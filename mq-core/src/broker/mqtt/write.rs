//! Packets out: the codec's own packets, the router's outputs as packets
//! (deliveries as PUBLISH with a packet id for QoS 1 and 2), then the final
//! packet of a connection the codec ends. A packet larger than the caller's
//! buffer is encoded aside once and handed out over several calls.

use super::inbound::QOS2_ID;
use super::subscriptions::granted;
use super::{Ctrl, Last, MqttConn, Phase, props};
use crate::broker::ConnId;
use crate::broker::command::{Delivery, Output};
use crate::broker::conn::After;
use crate::broker::router::Router;
use crate::broker::spill::{self, Settled, Spill, Tx};
use crate::broker::timers::Timer;
use crate::mqtt::topic::{MQTT_BUF_LEN, to_mqtt_topic};
use crate::mqtt::{
    Ack, Answer, ConnAck, Disconnect, List, Packet, PacketId, Properties, Publish, QoS, QosPid,
    ReasonCode, SubAck, UnsubAck, Version,
};
use crate::time::Instant;
use crate::topic::Topic;
use crate::wire;

/// Encodes `packet` into `tx`; false when it does not fit (nothing written).
/// A packet larger than an empty buffer goes to `spill`.
fn put(spill: &mut Spill, version: Version, packet: &Packet<'_>, tx: &mut Tx<'_>) -> bool {
    let len = packet.encoded_len(version);
    spill.put(tx, len, |buf| packet.encode(version, buf).is_ok())
}

impl MqttConn {
    /// Writes as many whole packets as fit into `buf`; returns the bytes written.
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
        'out: loop {
            while let Some(c) = self.ctrl.pop_front() {
                if !self.put_ctrl(&c, &mut tx) {
                    self.ctrl.push_front(c);
                    break 'out;
                }
            }
            let Some(out) = r.links.get_mut(id).and_then(|l| l.out.pop_front()) else {
                break;
            };
            if let Err(out) = self.put_output(id, now, out, &mut tx, &mut settled, r) {
                if let Some(l) = r.links.get_mut(id) {
                    l.out.push_front(out);
                }
                break;
            }
        }
        let queued = r.links.get(id).is_some_and(|l| !l.out.is_empty());
        if self.phase == Phase::Closing
            && !queued
            && self.ctrl.is_empty()
            && let Some(last) = self.last
            && self.put_last(last, &mut tx)
        {
            self.last = None;
        }
        settled.apply(id, now, r);
        tx.pos
    }

    /// What the connection is now, after a write.
    pub(crate) fn after_write(&mut self, id: ConnId, r: &Router) -> After {
        let closing = self.phase == Phase::Closing;
        let pending =
            !self.ctrl.is_empty() || self.spill.pending() || (closing && self.last.is_some());
        spill::after_write(id, r, pending, closing, &mut self.close_event_sent)
    }

    /// A packet fitted to the client's maximum packet size (reason strings
    /// and user properties dropped first); `None` when it cannot fit.
    fn fitted<'a>(&self, p: Packet<'a>) -> Option<Packet<'a>> {
        match self.version {
            Version::V5 => p.fit(self.version, self.peer_max_packet).ok(),
            _ => Some(p),
        }
    }

    fn put_ctrl(&mut self, c: &Ctrl, tx: &mut Tx<'_>) -> bool {
        let v5 = self.version == Version::V5;
        let packet = match c {
            Ctrl::PingResp => Packet::PingResp,
            Ctrl::PubRel(pid) => Packet::PubRel(Ack::new(*pid)),
            Ctrl::PubAck { pid, qos2, reason } => {
                let ack = Ack {
                    packet_id: *pid,
                    reason: if v5 { *reason } else { ReasonCode::Success },
                    properties: Properties::EMPTY,
                };
                match qos2 {
                    true => Packet::PubRec(ack),
                    false => Packet::PubAck(ack),
                }
            }
            Ctrl::Ack(e) if e.unsubscribe => Packet::UnsubAck(UnsubAck {
                packet_id: e.pid,
                properties: Properties::EMPTY,
                reasons: if v5 { List::new(&e.codes) } else { List::EMPTY },
            }),
            Ctrl::Ack(e) => Packet::SubAck(SubAck {
                packet_id: e.pid,
                properties: Properties::EMPTY,
                reasons: List::new(&e.codes),
            }),
        };
        match self.fitted(packet) {
            Some(p) => put(&mut self.spill, self.version, &p, tx),
            None => true,
        }
    }

    /// Writes one router output; gives it back when it does not fit.
    fn put_output(
        &mut self,
        id: ConnId,
        now: Instant,
        out: Output,
        tx: &mut Tx<'_>,
        settled: &mut Settled,
        r: &mut Router,
    ) -> Result<(), Output> {
        let version = self.version;
        let packet = match &out {
            Output::Deliver(_) => {
                let Output::Deliver(dv) = out else {
                    unreachable!()
                };
                return self
                    .put_delivery(id, dv, now, tx, settled, r)
                    .map_err(Output::Deliver);
            }
            Output::Connected {
                session_present, ..
            } => {
                let limits = r.cfg.limits;
                let ack = connack(
                    version,
                    self.assigned_id.as_deref(),
                    *session_present,
                    limits,
                );
                if put(&mut self.spill, version, &Packet::ConnAck(ack), tx) {
                    return Ok(());
                }
                return Err(out);
            }
            Output::PubAck { id: rid, .. } => {
                let Some(pid) = PacketId::new(*rid as u16) else {
                    return Ok(());
                };
                match rid & QOS2_ID {
                    0 => Packet::PubAck(Ack::new(pid)),
                    _ => Packet::PubRec(Ack::new(pid)),
                }
            }
            Output::PubReject { id: rid, reason } => {
                self.answer_refusal(id, now, *rid, *reason, r);
                return Ok(());
            }
            Output::SubAck { sub } => {
                self.sub_answered(*sub, None);
                return Ok(());
            }
            Output::SubReject { sub, reason } => {
                self.sub_answered(*sub, Some(*reason));
                return Ok(());
            }
            Output::UnsubAck { sub } => {
                self.unsub_answered(*sub);
                return Ok(());
            }
            Output::Released { pid } => {
                let Some(pid) = PacketId::new(*pid) else {
                    return Ok(());
                };
                Packet::PubComp(Ack::new(pid))
            }
            Output::PubRel { pid } => {
                let Some(pid) = self.release_again(*pid) else {
                    return Ok(());
                };
                Packet::PubRel(Ack::new(pid))
            }
            // MQTT has no admin requests.
            Output::AdminAnswer { .. } => return Ok(()),
            Output::Error(reason, text) => {
                self.router_ended(id, *reason, text, r);
                return Ok(());
            }
            Output::Close(reason) => {
                self.router_ended(id, *reason, reason.as_str(), r);
                return Ok(());
            }
        };
        if put(&mut self.spill, version, &packet, tx) {
            Ok(())
        } else {
            Err(out)
        }
    }

    /// The router ended the connection (takeover, shutdown): a DISCONNECT
    /// with its reason in MQTT 5, then close.
    fn router_ended(
        &mut self,
        id: ConnId,
        reason: wire::Reason,
        text: &'static str,
        r: &mut Router,
    ) {
        self.phase = Phase::Closing;
        self.last = Some(self.disconnect(Answer::Disconnect.code(reason), text));
        r.timers.stop(&mut self.timer, Timer::Conn(id));
        if let Some(l) = r.links.get_mut(id) {
            l.out.clear();
        }
    }

    /// Writes a delivery as a PUBLISH; gives it back when it does not fit
    /// (or its packet id must wait: see `delivery_pid`).
    fn put_delivery(
        &mut self,
        id: ConnId,
        dv: Delivery,
        now: Instant,
        tx: &mut Tx<'_>,
        settled: &mut Settled,
        r: &mut Router,
    ) -> Result<(), Delivery> {
        let version = self.version;
        let v5 = version == Version::V5;
        let view = dv.msg.view();
        let mut topic_buf = [0u8; MQTT_BUF_LEN];
        let mut reply_buf = [0u8; MQTT_BUF_LEN];
        let topic = Topic::new(view.topic)
            .ok()
            .and_then(|t| to_mqtt_topic(t, &mut topic_buf).ok());
        let hdr = props::headers_out(view.meta.headers, v5);
        let qos = match dv.qos {
            wire::QoS::AtMostOnce => QoS::AtMostOnce,
            wire::QoS::AtLeastOnce if hdr.qos2 => granted(dv.sub),
            wire::QoS::AtLeastOnce => granted(dv.sub).min(QoS::AtLeastOnce),
        }
        .max(match dv.qos {
            wire::QoS::AtMostOnce => QoS::AtMostOnce,
            wire::QoS::AtLeastOnce => QoS::AtLeastOnce,
        });
        let discard = |settled: &mut Settled| match qos {
            QoS::AtMostOnce => *settled.credit.entry(dv.sub).or_default() += 1,
            _ => settled.acks.push(dv.tag),
        };
        // A topic MQTT has no name for never reaches an MQTT client.
        let Some(topic) = topic else {
            discard(settled);
            return Ok(());
        };
        let remaining = dv.msg.expires_at.map(|at| {
            let left = at.saturating_duration_since(now).as_millis().div_ceil(1000);
            u32::try_from(left).unwrap_or(u32::MAX).max(1)
        });
        let properties = match v5 {
            true => props::properties_out(&view.meta, &hdr, remaining, &mut reply_buf),
            false => Properties::EMPTY,
        };
        let mut publish = Publish {
            dup: dv.attempt > 1 && qos != QoS::AtMostOnce,
            qos: match qos {
                QoS::AtMostOnce => QosPid::AtMostOnce,
                QoS::AtLeastOnce => QosPid::AtLeastOnce(PacketId::MIN),
                QoS::ExactlyOnce => QosPid::ExactlyOnce(PacketId::MIN),
            },
            retain: dv.retained,
            topic,
            properties,
            payload: view.payload,
        };
        let len = Packet::Publish(publish).encoded_len(version);
        if len > self.peer_max_packet as usize {
            // MQTT 5: a packet over the client's maximum is not sent, and
            // counts as delivered.
            discard(settled);
            return Ok(());
        }
        if tx.pos > 0 && len > tx.buf.len() - tx.pos {
            return Err(dv);
        }
        if qos != QoS::AtMostOnce {
            let qos2 = qos == QoS::ExactlyOnce;
            let Some(pid) = self.delivery_pid(id, dv.tag, dv.msg.id, qos2, r) else {
                return Err(dv);
            };
            publish.qos = match qos {
                QoS::ExactlyOnce => QosPid::ExactlyOnce(pid),
                _ => QosPid::AtLeastOnce(pid),
            };
        } else {
            *settled.credit.entry(dv.sub).or_default() += 1;
        }
        put(&mut self.spill, version, &Packet::Publish(publish), tx);
        Ok(())
    }

    /// The final packet; false when it does not fit yet.
    fn put_last(&mut self, last: Last, tx: &mut Tx<'_>) -> bool {
        let reason_string =
            |text: &'static str| (self.problem_info && !text.is_empty()).then_some(text);
        let packet = match last {
            Last::Silent => return true,
            Last::ConnAck(code, text) => {
                let mut properties = Properties::EMPTY;
                if self.version == Version::V5 {
                    properties.reason_string = reason_string(text);
                }
                Packet::ConnAck(ConnAck {
                    session_present: false,
                    reason: code,
                    properties,
                })
            }
            Last::Disconnect(code, text) => {
                let mut properties = Properties::EMPTY;
                properties.reason_string = reason_string(text);
                Packet::Disconnect(Disconnect {
                    reason: code,
                    properties,
                })
            }
        };
        match self.fitted(packet) {
            Some(p) => put(&mut self.spill, self.version, &p, tx),
            None => true,
        }
    }
}

/// The CONNACK accepting a connection.
fn connack<'a>(
    version: Version,
    assigned: Option<&'a str>,
    session_present: bool,
    limits: wire::Limits,
) -> ConnAck<'a> {
    let mut properties = Properties::EMPTY;
    if version == Version::V5 {
        properties.assigned_client_id = assigned;
        properties.maximum_packet_size = core::num::NonZeroU32::new(limits.max_frame.max(512));
        properties.topic_alias_maximum = Some(super::TOPIC_ALIAS_MAX);
        properties.retain_available = Some(true);
        properties.wildcard_subscription_available = Some(true);
        properties.shared_subscription_available = Some(true);
        properties.subscription_ids_available = Some(false);
    }
    ConnAck {
        session_present,
        reason: ReasonCode::Success,
        properties,
    }
}
