//! What a client sends once its session is open: publishes (topic aliases,
//! properties, QoS 2's packet ids), the acknowledgements of the broker's
//! deliveries, PUBREL, PINGREQ and DISCONNECT.

use alloc::borrow::ToOwned;

use super::{Ctrl, MqttConn, OutFlight, Phase, TOPIC_ALIAS_MAX, props};
use crate::broker::ConnId;
use crate::broker::command::{self, Command};
use crate::broker::router::Router;
use crate::broker::timers::Timer;
use crate::mqtt::topic::{MQ_BUF_LEN, to_mq_topic};
use crate::mqtt::{Ack, Answer, Packet, Publish, QoS, QosPid, ReasonCode, V3Refusal, Version};
use crate::time::Instant;
use crate::wire::Reason;

/// A QoS 2 publish's id for the router: the packet id with this bit (QoS 1:
/// the packet id alone; QoS 0: 0).
pub(super) const QOS2_ID: u32 = 1 << 16;

/// The packet ids message ids give deliveries (`take_pid`): 1 to this; the
/// others are above.
pub(super) const OWN_IDS: u16 = u16::MAX / 2;

impl MqttConn {
    pub(super) fn on_session_packet(
        &mut self,
        id: ConnId,
        now: Instant,
        p: Packet<'_>,
        r: &mut Router,
    ) {
        match p {
            Packet::Publish(p) => self.on_publish(id, now, p, r),
            Packet::PubAck(a) => self.settled(id, now, a, false, r),
            Packet::PubRec(a) => self.settled(id, now, a, true, r),
            Packet::PubComp(a) => {
                let pid = a.packet_id.get();
                if self.outbound.get(&pid).is_some_and(|f| f.released) {
                    self.outbound.remove(&pid);
                    r.handle(id, now, Command::Complete { pid });
                }
            }
            Packet::PubRel(a) => {
                r.handle(
                    id,
                    now,
                    Command::Release {
                        pid: a.packet_id.get(),
                    },
                );
            }
            Packet::Subscribe(s) => self.on_subscribe(id, now, s, r),
            Packet::Unsubscribe(u) => self.on_unsubscribe(id, now, u, r),
            Packet::PingReq => {
                self.ctrl.push_back(Ctrl::PingResp);
                r.links.wake(id);
            }
            Packet::Disconnect(d) => {
                if self.version == Version::V5
                    && d.properties.session_expiry.is_some_and(|e| e > 0)
                    && !r.session_persistent(id)
                {
                    return self.violation(id, now, "session expiry set after 0", r);
                }
                let publish_will = d.reason == ReasonCode::DisconnectWithWillMessage;
                r.handle(id, now, Command::Disconnect { publish_will });
                self.phase = Phase::Closing;
                self.last = None;
                r.timers.stop(&mut self.timer, Timer::Conn(id));
                r.links.wake(id);
            }
            Packet::Auth(_) => self.violation(id, now, "no extended authentication", r),
            Packet::Connect(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => self.violation(id, now, "unexpected packet", r),
        }
        r.links.wake(id);
    }

    fn on_publish(&mut self, id: ConnId, now: Instant, p: Publish<'_>, r: &mut Router) {
        if !p.properties.subscription_ids.is_empty() {
            return self.violation(id, now, "subscription identifier from a client", r);
        }
        // Topic aliases (MQTT 5): set with a topic, used without one.
        let mut aliased = None;
        if let Some(alias) = p.properties.topic_alias {
            let slot = usize::from(alias.get()) - 1;
            if alias.get() > TOPIC_ALIAS_MAX || self.version != Version::V5 {
                r.stats.protocol_errors += 1;
                let last = self.disconnect(ReasonCode::TopicAliasInvalid, "topic alias invalid");
                return self.close(id, now, last, r);
            }
            if self.aliases.len() <= slot {
                self.aliases.resize(slot + 1, None);
            }
            if p.topic.is_empty() {
                match &self.aliases[slot] {
                    Some(t) => aliased = Some(t.clone()),
                    None => return self.violation(id, now, "unknown topic alias", r),
                }
            } else {
                self.aliases[slot] = Some(p.topic.to_owned());
            }
        }
        let mqtt_topic = aliased.as_deref().unwrap_or(p.topic);
        let (pid, rid) = match p.qos {
            QosPid::AtMostOnce => (None, 0),
            QosPid::AtLeastOnce(pid) => (Some(pid), u32::from(pid.get())),
            QosPid::ExactlyOnce(pid) => (Some(pid), u32::from(pid.get()) | QOS2_ID),
        };
        let qos = p.qos.qos();
        let mut topic_buf = [0u8; MQ_BUF_LEN];
        let mut reply_buf = [0u8; MQ_BUF_LEN];
        let mut headers = core::mem::take(&mut self.scratch);
        let mapped = to_mq_topic(mqtt_topic, &mut topic_buf).and_then(|t| {
            Ok((
                t,
                props::meta_in(&p.properties, qos, &mut reply_buf, &mut headers)?,
            ))
        });
        match mapped {
            Ok((topic, meta)) => {
                let publish = command::Publish {
                    id: rid,
                    topic: topic.as_str(),
                    qos: props::router_qos(qos),
                    dedup: None,
                    meta,
                    payload: p.payload,
                    retain: p.retain,
                    once: (qos == QoS::ExactlyOnce).then_some(rid as u16),
                    via: command::Via::Client,
                };
                r.handle(id, now, Command::Publish(publish));
            }
            Err(_) => {
                r.stats.rejected += 1;
                if pid.is_some() {
                    self.answer_refusal(id, now, rid, Reason::InvalidTopic, r);
                }
            }
        }
        self.scratch = headers;
    }

    /// Answers a refused publish with router id `rid`: PUBACK or PUBREC with
    /// the reason (MQTT 5); 3.1.1 acknowledges it (dropped) or closes.
    pub(super) fn answer_refusal(
        &mut self,
        id: ConnId,
        now: Instant,
        rid: u32,
        reason: Reason,
        r: &mut Router,
    ) {
        let Some(pid) = crate::mqtt::PacketId::new(rid as u16) else {
            return;
        };
        let qos2 = rid & QOS2_ID != 0;
        let code = match self.version {
            Version::V5 => Answer::PubAck.code(reason),
            _ => match Answer::PubAck.v3(reason) {
                V3Refusal::Acknowledge => ReasonCode::Success,
                _ => {
                    let last = self.disconnect(ReasonCode::UnspecifiedError, "");
                    return self.close(id, now, last, r);
                }
            },
        };
        self.ctrl.push_back(Ctrl::PubAck {
            pid,
            qos2,
            reason: code,
        });
        r.links.wake(id);
    }

    /// PUBACK, or PUBREC (`qos2`), of a delivery.
    fn settled(&mut self, id: ConnId, now: Instant, a: Ack<'_>, qos2: bool, r: &mut Router) {
        let pid = a.packet_id.get();
        let Some(f) = self.outbound.get_mut(&pid) else {
            // PUBREC for an id this connection does not know: say so.
            if qos2 {
                self.ctrl.push_back(Ctrl::PubRel(a.packet_id));
            }
            return;
        };
        if f.released {
            return;
        }
        let tag = f.tag;
        if qos2 && !a.reason.is_error() {
            // PUBREL comes from the router once the receipt is stored.
            f.released = true;
            r.handle(id, now, Command::AckOnce { tag, pid });
        } else {
            self.outbound.remove(&pid);
            r.handle(id, now, Command::Ack { tag });
        }
    }

    /// A resumed session's delivery awaiting PUBCOMP: its id stays taken.
    pub(super) fn release_again(&mut self, pid: u16) -> Option<crate::mqtt::PacketId> {
        self.outbound.insert(
            pid,
            OutFlight {
                tag: 0,
                released: true,
            },
        );
        crate::mqtt::PacketId::new(pid)
    }

    /// The packet id for delivery `tag` of message `msg` (`qos2`: exactly
    /// once); `None` while it must wait (no id free, or its id's record not
    /// stored: the router wakes the connection then). An exactly-once
    /// delivery takes the id recorded for it if there is one (sent before a
    /// restart under it); one that takes an id not its message's own has it
    /// recorded first (see the router's `once_pid`), so that it is sent
    /// again under it after a restart too.
    pub(super) fn delivery_pid(
        &mut self,
        id: ConnId,
        tag: u64,
        msg: u64,
        qos2: bool,
        r: &mut Router,
    ) -> Option<crate::mqtt::PacketId> {
        if qos2 && let Some((pid, stored)) = r.once_pid(id, tag) {
            match self.outbound.get(&pid) {
                // Still another delivery's on this connection until its
                // acknowledgement, which wakes the connection.
                Some(f) if f.tag != tag => return None,
                Some(_) => {}
                None => {
                    self.outbound.insert(
                        pid,
                        OutFlight {
                            tag,
                            released: false,
                        },
                    );
                }
            }
            return stored.then(|| crate::mqtt::PacketId::new(pid)).flatten();
        }
        let (pid, preferred) = self.take_pid(tag, msg, |p| r.releasing(id, p))?;
        if qos2 && !preferred && !r.record_once_pid(id, tag, pid.get()) {
            return None;
        }
        Some(pid)
    }

    /// Takes a packet id for a delivery of message `msg`, with whether it is
    /// the one the message id gives: that one when it is free, so that a
    /// delivery sent again after a reconnect or a restart has the id it had
    /// (a client holding a QoS 2 message until PUBREL recognises it, and
    /// never mistakes another message for it) without a record; else the
    /// next free one (recorded for QoS 2: `delivery_pid`). `None` while all
    /// are in use. An id the session still has in an exactly-once delivery,
    /// or freed by a record not stored yet (`releasing`), is not free,
    /// though this connection may not know it: after a reconnect its PUBREL
    /// waits for the store, and a client that holds the message until
    /// PUBREL takes another one with its id for it.
    ///
    /// Message ids give the lower half of the ids ([`OWN_IDS`]), the others
    /// come from the upper half: a message waiting to go out again (after a
    /// reconnect, or a restart that may not know it went out) finds its own
    /// id free, not taken by another delivery that went first; the client
    /// may hold it by that id.
    fn take_pid(
        &mut self,
        tag: u64,
        msg: u64,
        releasing: impl Fn(u16) -> bool,
    ) -> Option<(crate::mqtt::PacketId, bool)> {
        if self.outbound.len() >= usize::from(u16::MAX) {
            return None;
        }
        let own = (msg % u64::from(OWN_IDS)) as u16 + 1;
        let mut preferred = Some(own);
        // The preferred id, then every other id once at most (all may be
        // taken by deliveries in flight and ones the session still releases).
        for _ in 0..=u16::MAX - OWN_IDS {
            let pid = match preferred.take() {
                Some(p) => p,
                None => {
                    let p = self.next_pid;
                    self.next_pid = self.next_pid.checked_add(1).unwrap_or(OWN_IDS + 1);
                    p
                }
            };
            if let Some(p) = crate::mqtt::PacketId::new(pid)
                && !self.outbound.contains_key(&pid)
                && !releasing(pid)
            {
                self.outbound.insert(
                    pid,
                    OutFlight {
                        tag,
                        released: false,
                    },
                );
                return Some((p, pid == own));
            }
        }
        None
    }
}
