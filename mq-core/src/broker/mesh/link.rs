//! The codec of a link this node opened to a peer (the connecting side; the
//! peer accepts it as any mq connection, see [`crate::wire::mesh`]).
//!
//! It is the client end of the mq protocol, inside the broker: it says
//! `Hello` as `$node.<node>`, subscribes to its outbox at the peer, declares
//! this node's interest (a snapshot after every `Welcome`, then each change),
//! and publishes every delivery to the local subscribers through a local
//! session `$link.<peer>`, whose publishes the router keeps off the other
//! links. A QoS 1 delivery is acked once its publish is stored (the router's
//! `PubAck`), and nacked for redelivery when this node refuses it.

mod acks;
mod credit;
mod encode;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::broker::ConnId;
use crate::broker::command::{self, Command, Outcome, Output, OwnedPublish, Via};
use crate::broker::conn::After;
use crate::broker::keepalive::{Dead, Keepalive};
use crate::broker::router::Router;
use crate::broker::timers::Timer;
use crate::framing::stream::{Decoded, StreamDecoder};
use crate::time::Instant;
use crate::wire::fragment::Reassembler;
use crate::wire::mesh::{
    Interest, LINK_PREFIX, free_group_sub, mesh_producer_from, mesh_producer_node,
};
use crate::wire::{self, Deliver, Frame, Limits, QoS, Reason};
use acks::Acks;
pub(crate) use credit::{link_credit, offline_page};
use encode::Unsent;

/// The outbox subscription's id at the peer.
pub(crate) const OUTBOX_SUB: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitWelcome,
    Open,
    /// Ending: what is queued is written, then the transport closes.
    Closing,
}

/// A frame the link sends.
enum Ctrl {
    Hello,
    Subscribe,
    Interest(Interest<'static>),
    Add(String),
    Remove(String),
    /// Join the group this node joined under this id (`joined`).
    Join(u32),
    Leave(u32),
    Ack(u64),
    /// Deliver it again later (`true`), or dead-letter it.
    Nack(u64, bool),
    Ping(u64),
    Pong(u64),
    Close(Reason, &'static str),
    Error(Reason, &'static str),
}

pub(crate) struct LinkConn {
    /// This node's id (its `Hello` says `$node.<node>`).
    node: String,
    /// What its `Hello` presents to the peer.
    token: Option<String>,
    peer: String,
    /// The part of the producer id its messages are filed under that names
    /// the peer and its store's epoch ([`mesh_producer_node`]): worked out
    /// when the link is made (epoch 0) and again at each `Welcome` (its
    /// epoch), not at each message.
    peer_producer: u64,
    phase: Phase,
    decoder: StreamDecoder,
    /// Unconsumed input after the last call (offering it again is not activity).
    leftover: usize,
    ctrl: VecDeque<Ctrl>,
    /// The final frame, once everything before it is written.
    last: Option<Ctrl>,
    close_event_sent: bool,
    /// Local publish id -> the peer's delivery tag it acks.
    acks: Acks,
    reassembler: Reassembler,
    /// The groups this node's link session joined at the peer, by sub id.
    joined: BTreeMap<u32, (String, String)>,
    /// A fragmented delivery being reassembled, with its tag; `None` when
    /// its first fragment was nacked and the rest is skipped.
    partial: Option<(u64, Option<OwnedPublish>)>,
    /// The limits its `Hello` announces.
    own: Limits,
    peer_max_frame: u32,
    keepalive: Keepalive,
    handshake_deadline: Option<Instant>,
    timer: Option<Instant>,
}

impl LinkConn {
    /// A link from `node` to `peer` whose transport just connected; its
    /// `Hello` presents `token`.
    pub(crate) fn new(
        id: ConnId,
        now: Instant,
        (node, peer): (&str, &str),
        token: Option<&str>,
        r: &mut Router,
    ) -> LinkConn {
        r.mesh.open_link(id);
        r.stats.connections_total += 1;
        let deadline = now + r.cfg.handshake_timeout;
        let mut link = LinkConn {
            node: String::from(node),
            token: token.map(String::from),
            peer: String::from(peer),
            peer_producer: mesh_producer_node((peer, 0)),
            phase: Phase::AwaitWelcome,
            decoder: StreamDecoder::new(r.cfg.limits.max_frame),
            leftover: 0,
            ctrl: VecDeque::from([Ctrl::Hello]),
            last: None,
            close_event_sent: false,
            acks: Acks::new(),
            joined: BTreeMap::new(),
            reassembler: Reassembler::new(),
            partial: None,
            own: Limits {
                max_frame: r.cfg.limits.max_frame,
                credit: link_credit(&r.cfg),
                keepalive_ms: r.cfg.limits.keepalive_ms,
            },
            peer_max_frame: 512,
            keepalive: Keepalive::new(now),
            handshake_deadline: Some(deadline),
            timer: None,
        };
        r.timers.set(&mut link.timer, Timer::Conn(id), deadline);
        r.links.wake(id);
        link
    }

    /// Whether its session is open (it counts as a link that is up).
    fn is_up(&self) -> bool {
        self.phase == Phase::Open
    }

    // ------------------------------------------------------------------ input

    pub(crate) fn input(
        &mut self,
        id: ConnId,
        now: Instant,
        bytes: &[u8],
        r: &mut Router,
    ) -> usize {
        if bytes.len() > self.leftover {
            self.keepalive.received(now);
        }
        let mut used = 0;
        loop {
            if self.phase == Phase::Closing {
                used = bytes.len();
                break;
            }
            if r.input_blocked(id) {
                break;
            }
            match self.decoder.decode(&bytes[used..]) {
                Ok(Decoded::Frame { frame, consumed }) => {
                    used += consumed;
                    self.on_frame(id, now, frame, r);
                }
                Ok(Decoded::Incomplete { .. }) => break,
                Err(_) => {
                    r.stats.protocol_errors += 1;
                    self.close(
                        id,
                        now,
                        Ctrl::Error(Reason::Malformed, "malformed frame"),
                        r,
                    );
                }
            }
        }
        self.leftover = bytes.len() - used;
        used
    }

    fn on_frame(&mut self, id: ConnId, now: Instant, frame: Frame<'_>, r: &mut Router) {
        match (self.phase, frame) {
            (Phase::AwaitWelcome, Frame::Welcome(w)) => {
                self.peer_producer = mesh_producer_node((&self.peer, w.epoch));
                self.on_welcome(id, now, w.limits, r);
            }
            (_, Frame::Error(_) | Frame::Close(_)) => {
                self.close(id, now, Ctrl::Close(Reason::Normal, "peer closed"), r);
            }
            (Phase::Open, Frame::Deliver(d)) => self.on_deliver(id, now, d, r),
            (Phase::Open, Frame::SubAck(_) | Frame::UnsubAck(_) | Frame::Pong(_)) => {}
            // A group's subscription refused (by the peer's auth or
            // limits): that group is served without this node.
            (Phase::Open, Frame::SubReject(s)) if s.sub != OUTBOX_SUB => {
                r.stats.protocol_errors += 1;
            }
            (Phase::Open, Frame::SubReject(_)) => {
                let e = Ctrl::Close(Reason::NotAuthorized, "outbox refused");
                self.close(id, now, e, r);
            }
            (Phase::Open, Frame::Ping(n)) => {
                self.ctrl.push_back(Ctrl::Pong(n));
                r.links.wake(id);
            }
            (Phase::Closing, _) => {}
            _ => {
                r.stats.protocol_errors += 1;
                let e = Ctrl::Error(Reason::ProtocolViolation, "unexpected frame on a node link");
                self.close(id, now, e, r);
            }
        }
    }

    /// The peer took the link: open the local session, subscribe to the
    /// outbox, declare the interest.
    fn on_welcome(&mut self, id: ConnId, now: Instant, peer: Limits, r: &mut Router) {
        let client = format!("{LINK_PREFIX}{}", self.peer);
        let connect = command::Connect::mq(&client, false, None, 0);
        if let Outcome::Refused(reason, text) = r.handle(id, now, Command::Connect(connect)) {
            return self.close(id, now, Ctrl::Close(reason, text), r);
        }
        self.phase = Phase::Open;
        self.handshake_deadline = None;
        self.peer_max_frame = peer.max_frame;
        r.mesh.link_up(id);
        self.ctrl.push_back(Ctrl::Subscribe);
        self.ctrl.push_back(Ctrl::Interest(Interest::Begin));
        let interest: Vec<(String, Option<String>)> = (r.mesh.local_interest())
            .map(|(f, g)| (String::from(f), g.map(String::from)))
            .collect();
        self.joined.clear();
        for (filter, group) in interest {
            self.declare(filter, group, true);
        }
        self.ctrl.push_back(Ctrl::Interest(Interest::End));
        let next = self
            .keepalive
            .start(self.own.keepalive_ms, peer.keepalive_ms, now);
        r.timers.reset(&mut self.timer, Timer::Conn(id), next);
        r.links.wake(id);
    }

    fn on_deliver(&mut self, id: ConnId, now: Instant, d: Deliver<'_>, r: &mut Router) {
        let max = r.cfg.max_message as u64;
        let at = match self
            .reassembler
            .accept(d.tag, d.fragment, d.payload.len(), max)
        {
            Ok(at) => at,
            Err(e) => {
                r.stats.protocol_errors += 1;
                return self.close(
                    id,
                    now,
                    Ctrl::Error(Reason::ProtocolViolation, e.as_str()),
                    r,
                );
            }
        };
        if d.fragment.is_some() && !at.first {
            // The first fragment decided what becomes of the message.
            return self.on_fragment(id, now, d.payload, at.refused, at.last, r);
        }
        let joined = match d.sub {
            OUTBOX_SUB => None,
            sub => match self.joined.get(&sub) {
                Some((f, g)) if r.has_live_member(f, g) => Some((f.clone(), g.clone())),
                // This node's last member left meanwhile (the peer has the
                // leave, or will have it first), or none is connected: a
                // member elsewhere takes it.
                // The rest of a fragmented one is skipped.
                _ => {
                    self.ctrl.push_back(Ctrl::Nack(d.tag, true));
                    r.links.wake(id);
                    if d.fragment.is_some() && !at.last {
                        self.partial = Some((d.tag, None));
                    }
                    return;
                }
            },
        };
        let group = joined.as_ref().map(|(f, g)| (f.as_str(), g.as_str()));
        let whole = command::Publish {
            id: 0,
            topic: d.topic,
            qos: d.qos,
            dedup: (d.qos == QoS::AtLeastOnce).then(|| wire::Dedup {
                producer: mesh_producer_from(self.peer_producer, d.topic, group),
                seq: d.seq,
            }),
            meta: d.meta,
            payload: d.payload,
            retain: false,
            once: None,
            via: match group {
                None => Via::Link,
                Some((filter, group)) => Via::LinkGroup { filter, group },
            },
        };
        if d.fragment.is_none() {
            return self.publish(id, now, d.tag, whole, r);
        }
        let payload = match at.refused {
            true => Vec::new(),
            false => Vec::with_capacity(at.total as usize),
        };
        let part = OwnedPublish::new(&whole, payload);
        self.partial = Some((d.tag, Some(part)));
        self.on_fragment(id, now, d.payload, at.refused, at.last, r);
    }

    /// A fragment of the message `partial` holds (or skips: `None`).
    fn on_fragment(
        &mut self,
        id: ConnId,
        now: Instant,
        bytes: &[u8],
        refused: bool,
        last: bool,
        r: &mut Router,
    ) {
        if let Some((_, Some(part))) = self.partial.as_mut()
            && !refused
        {
            part.payload.extend_from_slice(bytes);
        }
        if !last {
            return;
        }
        match self.partial.take() {
            // Too large for this node: the peer dead-letters it.
            Some((tag, Some(_))) if refused => {
                self.ctrl.push_back(Ctrl::Nack(tag, false));
                r.links.wake(id);
            }
            Some((tag, Some(part))) => self.publish(id, now, tag, part.as_publish(), r),
            // Nacked at its first fragment already.
            _ => {}
        }
    }

    /// Publishes a delivery to the local subscribers; a QoS 1 one is acked
    /// when the router answers its publish.
    fn publish(
        &mut self,
        id: ConnId,
        now: Instant,
        tag: u64,
        mut p: command::Publish<'_>,
        r: &mut Router,
    ) {
        if p.qos == QoS::AtLeastOnce {
            p.id = self.acks.insert(tag);
        }
        r.handle(id, now, Command::Publish(p));
    }

    // ----------------------------------------------------------------- timers

    pub(crate) fn on_timer(&mut self, id: ConnId, now: Instant, r: &mut Router) {
        self.timer = None;
        match self.phase {
            Phase::AwaitWelcome if self.handshake_deadline.is_some_and(|d| d <= now) => {
                self.close(
                    id,
                    now,
                    Ctrl::Error(Reason::Timeout, "no welcome in time"),
                    r,
                );
            }
            Phase::Open => self.keepalive(id, now, r),
            _ => {}
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

    // ---------------------------------------------------------------- closing

    /// Ends the link with `last` as its final frame.
    fn close(&mut self, id: ConnId, now: Instant, last: Ctrl, r: &mut Router) {
        if self.phase == Phase::Closing {
            return;
        }
        r.end_conn(id, now);
        if self.is_up() {
            r.mesh.close_link(id, true);
        }
        self.phase = Phase::Closing;
        self.last = Some(last);
        self.partial = None;
        self.reassembler.reset();
        self.acks.clear();
        r.timers.stop(&mut self.timer, Timer::Conn(id));
        r.links.wake(id);
    }

    /// Its transport is gone.
    pub(crate) fn closed(&mut self, id: ConnId, r: &mut Router) {
        r.mesh.close_link(id, self.is_up());
        r.timers.stop(&mut self.timer, Timer::Conn(id));
    }

    // ----------------------------------------------------------------- output

    /// Bytes were written at `now` (keepalive counts them).
    pub(crate) fn wrote(&mut self, now: Instant) {
        self.keepalive.sent(now);
    }

    /// Writes as many whole frames as fit into `buf`.
    pub(crate) fn write(&mut self, id: ConnId, buf: &mut [u8], r: &mut Router) -> usize {
        self.take_outputs(id, r);
        if self.phase == Phase::Open {
            while let Some(c) = r.mesh.next_change(id) {
                self.declare(c.filter, c.group, c.add);
            }
        }
        let mut pos = 0;
        while let Some(c) = self.ctrl.front() {
            match self.encode(c, &mut buf[pos..]) {
                Ok(n) => pos += n,
                // It waits for room: the next buffer.
                Err(Unsent::Wait) => return pos,
                Err(Unsent::Moot) => {}
                // Larger than the peer's maximum frame: it can never go.
                Err(Unsent::TooLarge) => r.stats.protocol_errors += 1,
            }
            self.ctrl.pop_front();
        }
        if self.phase == Phase::Closing
            && let Some(last) = self.last.take()
        {
            match self.encode(&last, &mut buf[pos..]) {
                Ok(n) => pos += n,
                Err(Unsent::Wait) => {
                    self.last = Some(last);
                    return pos;
                }
                Err(_) => {}
            }
        }
        pos
    }

    /// Queues the frame that declares (`add`) or withdraws interest in
    /// `filter`, or membership of `group`.
    fn declare(&mut self, filter: String, group: Option<String>, add: bool) {
        self.ctrl.push_back(match (group, add) {
            (None, true) => Ctrl::Add(filter),
            (None, false) => Ctrl::Remove(filter),
            (Some(group), true) => {
                let sub = self.group_id(&filter, &group);
                self.joined.insert(sub, (filter, group));
                Ctrl::Join(sub)
            }
            (Some(group), false) => {
                let Some(sub) = self.joined_as(&filter, &group) else {
                    return;
                };
                self.joined.remove(&sub);
                Ctrl::Leave(sub)
            }
        });
    }

    /// The id this link joined `group` of `filter` under.
    fn joined_as(&self, filter: &str, group: &str) -> Option<u32> {
        let mut ids = self.joined.iter();
        ids.find(|(_, (f, g))| f == filter && g == group)
            .map(|(&id, _)| id)
    }

    /// An id to join `group` of `filter` under: the one it has, or the
    /// first [`free_group_sub`] past the ids other groups hold (ids are
    /// this link's own: every `Welcome` joins its groups anew).
    fn group_id(&self, filter: &str, group: &str) -> u32 {
        if let Some(id) = self.joined_as(filter, group) {
            return id;
        }
        free_group_sub(filter, group, |id| self.joined.contains_key(&id))
    }

    /// The router's answers to the link's publishes become acks and nacks.
    fn take_outputs(&mut self, id: ConnId, r: &mut Router) {
        let Some(link) = r.links.get_mut(id) else {
            return;
        };
        let mut ended = None;
        while let Some(out) = link.out.pop_front() {
            match out {
                Output::PubAck { id, .. } => {
                    if let Some(tag) = self.acks.take(id) {
                        self.ctrl.push_back(Ctrl::Ack(tag));
                    }
                }
                Output::PubReject { id, .. } => {
                    if let Some(tag) = self.acks.take(id) {
                        self.ctrl.push_back(Ctrl::Nack(tag, true));
                    }
                }
                Output::Error(reason, text) => ended = Some(Ctrl::Error(reason, text)),
                Output::Close(reason) => ended = Some(Ctrl::Close(reason, "closing")),
                _ => {}
            }
        }
        if let Some(last) = ended
            && self.phase != Phase::Closing
        {
            // The router ended the session already: only the codec closes.
            r.mesh.close_link(id, self.is_up());
            self.phase = Phase::Closing;
            self.last = Some(last);
            r.timers.stop(&mut self.timer, Timer::Conn(id));
        }
    }

    /// What the link is after a write.
    pub(crate) fn after_write(&mut self, id: ConnId, r: &Router) -> After {
        let queued = r.links.get(id).is_some_and(|l| !l.out.is_empty());
        let changes = self.phase == Phase::Open && r.mesh.has_changes(id);
        if queued || changes || !self.ctrl.is_empty() || self.last.is_some() {
            return After::More;
        }
        if self.phase != Phase::Closing || self.close_event_sent {
            return After::Idle;
        }
        self.close_event_sent = true;
        After::Close
    }
}
