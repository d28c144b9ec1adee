//! CONNECT: the session, its limits and will as a router `Connect`, and the
//! CONNACK that answers it.

use alloc::format;
use core::time::Duration;

use super::{Last, MqttConn, Phase, props};
use crate::broker::ConnId;
use crate::broker::command::{self, Command, Outcome};
use crate::broker::router::Router;
use crate::broker::timers::Timer;
use crate::mqtt::topic::{MQ_BUF_LEN, to_mq_topic};
use crate::mqtt::{Answer, Connect, ReasonCode, V3Refusal, Version};
use crate::time::Instant;
use crate::wire::Reason;

/// The longest client id the router takes.
const MAX_CLIENT_ID: usize = 128;

impl MqttConn {
    pub(super) fn on_connect(&mut self, id: ConnId, now: Instant, c: Connect<'_>, r: &mut Router) {
        self.version = c.version;
        self.decoder.set_version(c.version);
        let v5 = c.version == Version::V5;
        self.problem_info = c.properties.request_problem_info != Some(false);
        if let Some(max) = c.properties.maximum_packet_size {
            self.peer_max_packet = max.get();
        }
        if c.properties.auth_method.is_some() {
            // No extended authentication here: user name and password only.
            return self.refuse(id, now, ReasonCode::BadAuthenticationMethod, r);
        }
        let assigned;
        let client_id = if c.client_id.is_empty() {
            assigned = format!("mq-auto-{}-{}", now.as_micros(), id.0);
            self.assigned_id = Some(assigned.clone());
            assigned.as_str()
        } else {
            c.client_id
        };
        if client_id.len() > MAX_CLIENT_ID || client_id.bytes().any(|b| !(0x21..=0x7e).contains(&b))
        {
            return self.refuse(id, now, ReasonCode::ClientIdentifierNotValid, r);
        }
        let token = match (c.password, c.username) {
            (Some(p), _) => match core::str::from_utf8(p) {
                Ok(p) => Some(p),
                Err(_) => return self.refuse(id, now, ReasonCode::BadUserNameOrPassword, r),
            },
            (None, u) => u,
        };
        let expiry = c.properties.session_expiry.unwrap_or(0);
        let persistent = if v5 { expiry > 0 } else { !c.clean_start };
        let credit = c
            .properties
            .receive_maximum
            .map_or(u32::from(u16::MAX), |m| u32::from(m.get()));
        // The will: its topic mapped, its properties as metadata.
        let mut topic_buf = [0u8; MQ_BUF_LEN];
        let mut reply_buf = [0u8; MQ_BUF_LEN];
        let mut headers = core::mem::take(&mut self.scratch);
        let mut will = None;
        if let Some(w) = &c.will {
            let Ok(topic) = to_mq_topic(w.topic, &mut topic_buf) else {
                self.scratch = headers;
                return self.refuse(id, now, ReasonCode::TopicNameInvalid, r);
            };
            let Ok(meta) = props::meta_in(&w.properties, w.qos, &mut reply_buf, &mut headers)
            else {
                self.scratch = headers;
                return self.refuse(id, now, ReasonCode::TopicNameInvalid, r);
            };
            will = Some(command::Will {
                publish: command::Publish {
                    id: 0,
                    topic: topic.as_str(),
                    qos: props::router_qos(w.qos),
                    dedup: None,
                    meta,
                    payload: w.payload,
                    retain: w.retain,
                    once: None,
                    via: command::Via::Client,
                },
                delay: Duration::from_secs(u64::from(w.properties.will_delay.unwrap_or(0))),
            });
        }
        let connect = command::Connect {
            client_id,
            persistent,
            token,
            default_credit: credit,
            resume: !c.clean_start,
            keep_subscriptions: true,
            ack_deadlines: false,
            expiry: (v5 && persistent && expiry != u32::MAX)
                .then(|| Duration::from_secs(u64::from(expiry))),
            will,
            no_local: false,
        };
        let outcome = r.handle(id, now, Command::Connect(connect));
        self.scratch = headers;
        if let Outcome::Refused(reason, _) = outcome {
            let code = Answer::ConnAck.code(reason);
            return self.refuse_reason(id, now, reason, code, r);
        }
        self.phase = Phase::Open;
        self.handshake_deadline = None;
        self.keepalive = (c.keep_alive > 0).then(|| Duration::from_secs(u64::from(c.keep_alive)));
        let next = self.keepalive.map(|ka| self.last_rx + ka * 3 / 2);
        r.timers.reset(&mut self.timer, Timer::Conn(id), next);
    }

    /// Refuses the CONNECT with `code` (MQTT 5), or 3.1.1's nearest return
    /// code, and closes.
    fn refuse(&mut self, id: ConnId, now: Instant, code: ReasonCode, r: &mut Router) {
        let reason = match code {
            ReasonCode::BadUserNameOrPassword => Reason::BadToken,
            ReasonCode::NotAuthorized => Reason::NotAuthorized,
            ReasonCode::TopicNameInvalid => Reason::InvalidTopic,
            ReasonCode::ClientIdentifierNotValid => Reason::IdInUse,
            _ => Reason::ProtocolViolation,
        };
        self.refuse_reason(id, now, reason, code, r);
    }

    fn refuse_reason(
        &mut self,
        id: ConnId,
        now: Instant,
        reason: Reason,
        code: ReasonCode,
        r: &mut Router,
    ) {
        let last = match self.version {
            Version::V5 => Last::ConnAck(code, reason.as_str()),
            _ => match Answer::ConnAck.v3(reason) {
                V3Refusal::ConnAck(rc) => Last::ConnAck(rc.to_reason(), ""),
                _ => Last::Silent,
            },
        };
        self.close(id, now, last, r);
    }
}
