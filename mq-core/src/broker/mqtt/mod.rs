//! One connection's side of MQTT 3.1.1 and 5: the second codec in front of the
//! router, beside the mq wire protocol's (`conn`).
//!
//! An [`MqttConn`] splits the byte stream into packets with the
//! [`mqtt`](crate::mqtt) codec (refusing one above the broker's maximum
//! packet size from its fixed header), checks what depends on the
//! connection's state (CONNECT first and once, the packets a client may send,
//! topic aliases, keep alive), turns packets into router
//! [`Command`](super::command::Command)s and the router's outputs into
//! packets. Protocol decisions are made here; delivery decisions (sessions,
//! queues, the retained slot, exactly-once ids, wills) are the router's.
//! Files:
//!
//! - this one: the connection's state, input, timers and closing;
//! - `connect`: CONNECT, its will and CONNACK;
//! - `inbound`: PUBLISH in (topic aliases, properties), the acknowledgements
//!   of both directions' QoS 1 and 2 exchanges, PINGREQ, DISCONNECT;
//! - `subscriptions`: SUBSCRIBE and UNSUBSCRIBE as router subscriptions, and
//!   their acknowledgements;
//! - `props`: message properties to mq's metadata and headers, and back;
//! - `write`: packets out (deliveries with packet ids, answers, the final
//!   packet), across several transmit buffers when one does not hold them.
//!
//! # How MQTT maps onto the router
//!
//! - A connection's session is the router session of its client id (one
//!   namespace with mq clients). MQTT 3.1.1's clean session 0, or MQTT 5's
//!   session expiry above 0, makes it persistent; clean start resumes a stored
//!   one; its subscriptions deliver at once after a resume; MQTT 5's session
//!   expiry ends a session away that long (while `mqd` runs).
//! - Username and password: the password is the mq token (the user name is
//!   not checked), or the user name when there is no password; its topic
//!   permissions apply to publishes, subscriptions and the will.
//! - A subscription is one router subscription, or two for a filter ending in
//!   `/#` (its parent level, and everything below it); its router id is a
//!   hash of the MQTT filter with the granted QoS and which of the two it is
//!   in the low bits, so a resumed session knows its subscriptions without
//!   storing anything more. `$share/{group}/{filter}` is the mq group.
//! - QoS 0 and 1 are mq's; QoS 2 is stored like QoS 1, its packet id kept by
//!   the router until PUBREL (PUBREC only once both are stored), and marked
//!   with the header `mqtt:qos` so that QoS 2 subscribers get it at QoS 2.
//!   Deliveries wait for PUBACK (or PUBREC) while the client is connected and
//!   are sent again, with DUP, after a reconnect; a QoS 2 one to a persistent
//!   session under the packet id it had, after a restart too (the router's
//!   `once_pid`).
//! - Properties: message expiry is the TTL (the remaining time is forwarded),
//!   response topic and correlation data are mq's reply-to and correlation,
//!   user properties are headers, content type and payload format are the
//!   headers `mqtt:content-type` and `mqtt:payload-format`; receive maximum
//!   is each subscription's credit.

mod connect;
mod inbound;
mod props;
mod subscriptions;
mod write;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::ConnId;
use super::Map;
use super::router::Router;
use super::timers::Timer;
use crate::mqtt::stream::{PacketDecoder, Split};
use crate::mqtt::{DecodeError, Packet, PacketId, PacketType, ReasonCode, Version};
use crate::time::Instant;

use subscriptions::AckEntry;

/// Topic aliases a client may set (MQTT 5).
const TOPIC_ALIAS_MAX: u16 = 64;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitConnect,
    Open,
    /// Ending: what is queued is written, then the transport closes.
    Closing,
}

/// A packet the codec itself sends (not an answer of the router's).
#[derive(Debug)]
enum Ctrl {
    PingResp,
    /// Outbound QoS 2, second step.
    PubRel(PacketId),
    /// An answer to a publish the codec refused itself (`qos2`: PUBREC).
    PubAck {
        pid: PacketId,
        qos2: bool,
        reason: ReasonCode,
    },
    /// A SUBACK or UNSUBACK whose filters are all answered.
    Ack(AckEntry),
}

/// The final packet of a connection the codec ends.
#[derive(Debug, Clone, Copy)]
enum Last {
    /// A refused CONNECT (in the connection's version).
    ConnAck(ReasonCode, &'static str),
    /// MQTT 5 DISCONNECT.
    Disconnect(ReasonCode, &'static str),
    /// Close without a word (3.1.1, or before a CONNECT).
    Silent,
}

/// A delivery sent at QoS 1 or 2 and not yet acknowledged.
struct OutFlight {
    tag: u64,
    /// QoS 2 after PUBREC: waiting for PUBCOMP.
    released: bool,
}

pub(crate) struct MqttConn {
    decoder: PacketDecoder,
    phase: Phase,
    version: Version,
    /// Unconsumed bytes after the last `input`.
    leftover: usize,
    keepalive: Option<Duration>,
    last_rx: Instant,
    handshake_deadline: Option<Instant>,
    /// Slot of the connection's timer (handshake or keep alive).
    timer: Option<Instant>,
    ctrl: VecDeque<Ctrl>,
    last: Option<Last>,
    close_event_sent: bool,
    /// The client's maximum packet size.
    peer_max_packet: u32,
    /// Reason strings may be sent (MQTT 5 request problem information).
    problem_info: bool,
    /// The client id the broker assigned, for CONNACK.
    assigned_id: Option<String>,
    /// Topic aliases the client set, by alias - 1.
    aliases: Vec<Option<String>>,
    /// Headers built for an inbound publish.
    scratch: Vec<u8>,
    /// Deliveries awaiting PUBACK, PUBREC or PUBCOMP, by packet id.
    outbound: Map<u16, OutFlight>,
    next_pid: u16,
    /// SUBSCRIBEs and UNSUBSCRIBEs waiting for the router's answers.
    acks: Vec<AckEntry>,
    /// UnsubAcks of the router to drop: replaced subscriptions.
    swallow: Map<u32, u32>,
    /// A packet too large for one transmit buffer, and how much of it is out.
    spill: super::spill::Spill,
}

impl MqttConn {
    pub(crate) fn new(id: ConnId, now: Instant, router: &mut Router) -> Self {
        let max = router.cfg.limits.max_frame.max(512);
        let mut c = MqttConn {
            decoder: PacketDecoder::new(Version::V5, max),
            phase: Phase::AwaitConnect,
            version: Version::V5,
            leftover: 0,
            keepalive: None,
            last_rx: now,
            handshake_deadline: None,
            timer: None,
            ctrl: VecDeque::new(),
            last: None,
            close_event_sent: false,
            peer_max_packet: crate::mqtt::MAX_PACKET_SIZE,
            problem_info: true,
            assigned_id: None,
            aliases: Vec::new(),
            scratch: Vec::new(),
            outbound: Map::default(),
            next_pid: inbound::OWN_IDS + 1,
            acks: Vec::new(),
            swallow: Map::default(),
            spill: super::spill::Spill::default(),
        };
        router.stats.connections_total += 1;
        router.stats.mqtt_connections_total += 1;
        let deadline = now + router.cfg.handshake_timeout;
        c.handshake_deadline = Some(deadline);
        router.timers.set(&mut c.timer, Timer::Conn(id), deadline);
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
        }
        let mut used = 0;
        let used = loop {
            if self.phase == Phase::Closing {
                break bytes.len();
            }
            if r.input_blocked(id) {
                break used;
            }
            let rest = &bytes[used..];
            // Whatever does not start with CONNECT is not MQTT: no need to
            // wait for the rest of it.
            if self.phase == Phase::AwaitConnect
                && rest
                    .first()
                    .is_some_and(|b| b >> 4 != PacketType::Connect as u8)
            {
                r.stats.protocol_errors += 1;
                self.close(id, now, Last::Silent, r);
                break bytes.len();
            }
            match self.decoder.split(rest) {
                Ok(Split::Whole(raw)) => {
                    used += raw.len();
                    self.on_raw(id, now, raw, r);
                }
                Ok(Split::Incomplete { .. }) => break used,
                Err(e) => {
                    self.decode_failed(id, now, e, rest, r);
                    break bytes.len();
                }
            }
        };
        self.leftover = bytes.len() - used;
        used
    }

    /// One whole packet's bytes.
    fn on_raw(&mut self, id: ConnId, now: Instant, raw: &[u8], r: &mut Router) {
        match Packet::decode(raw, self.version) {
            Ok(packet) => self.on_packet(id, now, packet, r),
            Err(e) => self.decode_failed(id, now, e, raw, r),
        }
    }

    fn on_packet(&mut self, id: ConnId, now: Instant, packet: Packet<'_>, r: &mut Router) {
        match (self.phase, packet) {
            (Phase::AwaitConnect, Packet::Connect(c)) => self.on_connect(id, now, c, r),
            // Anything before CONNECT: close without a word.
            (Phase::AwaitConnect, _) => {
                r.stats.protocol_errors += 1;
                self.close(id, now, Last::Silent, r);
            }
            (Phase::Open, p) if !p.packet_type().sent_by_client() => {
                self.violation(id, now, "packet only a server sends", r)
            }
            (Phase::Open, Packet::Connect(_)) => self.violation(id, now, "second CONNECT", r),
            (Phase::Open, p) => self.on_session_packet(id, now, p, r),
            (Phase::Closing, _) => {}
        }
    }

    /// Bytes that are not a packet the broker accepts.
    fn decode_failed(
        &mut self,
        id: ConnId,
        now: Instant,
        e: DecodeError,
        raw: &[u8],
        r: &mut Router,
    ) {
        r.stats.protocol_errors += 1;
        if self.phase == Phase::AwaitConnect {
            // A CONNECT that does not decode is answered in its own version
            // where it names one.
            let is_connect = raw
                .first()
                .is_some_and(|b| b >> 4 == PacketType::Connect as u8);
            let version = crate::mqtt::connect_version(raw)
                .ok()
                .filter(|_| is_connect);
            let last = match version {
                Some(v) => {
                    self.version = v;
                    match v {
                        Version::V5 => Last::ConnAck(e.reason_code(), e.as_str()),
                        _ => match e.v3_connack() {
                            Some(rc) => Last::ConnAck(rc.to_reason(), e.as_str()),
                            None => Last::Silent,
                        },
                    }
                }
                None if is_connect && e == DecodeError::UnsupportedProtocolVersion => {
                    // An unknown level: 3.1.1's answer is the one all read.
                    self.version = Version::V3_1_1;
                    Last::ConnAck(ReasonCode::UnsupportedProtocolVersion, e.as_str())
                }
                None => Last::Silent,
            };
            return self.close(id, now, last, r);
        }
        let last = self.disconnect(e.reason_code(), e.as_str());
        self.close(id, now, last, r);
    }

    /// The final packet for ending an open connection with `code`: a
    /// DISCONNECT in MQTT 5, nothing in 3.1.1.
    fn disconnect(&self, code: ReasonCode, text: &'static str) -> Last {
        match self.version {
            Version::V5 => Last::Disconnect(code, text),
            _ => Last::Silent,
        }
    }

    /// A packet not allowed here: counted, answered, closed.
    fn violation(&mut self, id: ConnId, now: Instant, text: &'static str, r: &mut Router) {
        r.stats.protocol_errors += 1;
        let last = self.disconnect(ReasonCode::ProtocolError, text);
        self.close(id, now, last, r);
    }

    /// The connection's timer fired: the CONNECT deadline, or keep alive.
    pub(crate) fn on_timer(&mut self, id: ConnId, now: Instant, r: &mut Router) {
        self.timer = None;
        match self.phase {
            Phase::AwaitConnect => {
                if self.handshake_deadline.is_some_and(|d| d <= now) {
                    self.close(id, now, Last::Silent, r);
                }
            }
            Phase::Open => {
                let Some(ka) = self.keepalive else { return };
                let due = self.last_rx + ka * 3 / 2;
                if now >= due {
                    let last = self.disconnect(ReasonCode::KeepAliveTimeout, "keep alive timeout");
                    return self.close(id, now, last, r);
                }
                r.timers.set(&mut self.timer, Timer::Conn(id), due);
            }
            Phase::Closing => {}
        }
    }

    /// Ends the connection with `last` as its final packet, after the answers
    /// already queued for it. The router detaches the session (and publishes
    /// its will, as the connection did not end with a normal DISCONNECT).
    fn close(&mut self, id: ConnId, now: Instant, last: Last, r: &mut Router) {
        if self.phase == Phase::Closing {
            return;
        }
        r.end_conn(id, now);
        self.phase = Phase::Closing;
        self.last = Some(last);
        r.timers.stop(&mut self.timer, Timer::Conn(id));
        r.links.wake(id);
    }

    /// Its transport is gone: its timer goes too.
    pub(crate) fn closed(&mut self, id: ConnId, r: &mut Router) {
        r.timers.stop(&mut self.timer, Timer::Conn(id));
    }

    /// Bytes were written (MQTT's keep alive counts only what the client
    /// sends).
    pub(crate) fn wrote(&mut self, _now: Instant) {}
}
