//! Publishing: admission (validation, permissions, dedup, room in every
//! matching queue), publishers held by full `Block` queues, and the release of
//! admitted messages once their records are stored.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use super::{Pending, Router, Slot, TopicState};
use crate::broker::ConnId;
use crate::broker::command::{Outcome, Output, OwnedPublish, Publish, Via};
use crate::broker::config::Overflow;
use crate::broker::dedup::Seen;
use crate::broker::message::{Message, Msg, tail_offsets};
use crate::broker::queue::{Offer, Queued};
use crate::broker::record::{MessageRecord, Record};
use crate::broker::slab::Key;
use crate::broker::timers::{Target, Timer};
use crate::time::Instant;
use crate::topic::Topic;
use crate::wire::{self, Meta, QoS, Reason};

/// Sequence numbers reserved per `SeqReserve` record.
const SEQ_BLOCK: u64 = 1 << 20;
/// How often expired messages are swept while some may expire.
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A publish held until its queues have room (or the catalog's first
/// listing came), or its deadline.
pub(crate) struct Parked {
    publish: OwnedPublish,
    holds: Holds,
    timer: Option<Instant>,
}

/// The deadlines of a held publish, one a reason it is held: the wait for
/// the catalog's first listing and the wait for room in a full queue each
/// have their whole time, so neither cuts the other short or lengthens it.
#[derive(Clone, Copy, Default)]
pub(super) struct Holds {
    /// Until the catalog's first listing (`Config::await_catalog`).
    pub(super) catalog: Option<Instant>,
    /// Until its full `Block` or `Pace` queues have room.
    pub(super) queue: Option<Instant>,
}

impl Router {
    pub(super) fn publish(
        &mut self,
        conn: ConnId,
        session: Key,
        now: Instant,
        p: &Publish<'_>,
    ) -> Outcome {
        if let Some(pid) = p.once
            && self.once_resend(conn, session, pid, p.id)
        {
            return Outcome::Done;
        }
        let mut holds = Holds::default();
        match self.admit(Some((conn, session)), now, p, &mut holds) {
            Some(deadline) => {
                let mut parked = Parked {
                    publish: OwnedPublish::new(p, p.payload.to_vec()),
                    holds,
                    timer: None,
                };
                self.timers
                    .set(&mut parked.timer, Timer::Parked(conn), deadline);
                self.parked.push((conn, parked));
                self.links.set_held(conn, true);
                Outcome::Held(deadline)
            }
            None => Outcome::Done,
        }
    }

    /// Refuses a publish (and answers it, unless it is QoS 0 without an id).
    pub(crate) fn reject_publish(&mut self, conn: ConnId, id: u32, qos: QoS, reason: Reason) {
        self.stats.rejected += 1;
        if qos == QoS::AtLeastOnce || id != 0 {
            self.send(conn, Output::PubReject { id, reason });
        }
    }

    /// Refuses a publish from `from` (a connection and its session), or a
    /// will's (`None`, which only counts).
    fn refuse(&mut self, from: Option<(ConnId, Key)>, p: &Publish<'_>, reason: Reason) {
        match from {
            Some((conn, _)) => self.reject_publish(conn, p.id, p.qos, reason),
            None => {
                self.stats.rejected += 1;
                self.unanswered_refusal = Some(reason);
            }
        }
    }

    /// Validates, deduplicates and admits a whole publish from a connection
    /// and its session (`from`), or a will (`None`: its permissions were
    /// checked when it was given, and nobody is answered). Returns the
    /// deadline to hold the publisher until, when a `Block` queue is full or
    /// the node awaits its first catalog listing (`Config::await_catalog`);
    /// `holds` keeps the deadline of each, set when it first held the publish.
    pub(super) fn admit(
        &mut self,
        from: Option<(ConnId, Key)>,
        now: Instant,
        p: &Publish<'_>,
        holds: &mut Holds,
    ) -> Option<Instant> {
        // Where it goes. A topic the broker knows was validated when it was
        // first published to, and its queues are remembered while the
        // subscription index stays the same.
        let mut targets = self.spare_targets.take();
        let found = self.topics.find_mut(p.topic);
        let slot = found.as_ref().map(|(slot, _)| *slot);
        let topic = match found {
            Some((_, t)) => {
                let generation = self.index.generation();
                if t.routes_at != Some(generation) {
                    t.routes.clear();
                    let routes = &mut t.routes;
                    self.index
                        .for_each_match(Topic::known(p.topic), |x| routes.push(*x));
                    t.routes_at = Some(generation);
                }
                targets.extend_from_slice(&t.routes);
                Topic::known(p.topic)
            }
            None => {
                let Ok(topic) = Topic::new(p.topic) else {
                    self.refuse(from, p, Reason::InvalidTopic);
                    return None;
                };
                self.index.for_each_match(topic, |x| targets.push(*x));
                topic
            }
        };
        // Peers' outboxes: only what their interest wants, and nothing that
        // came over a link (the one-hop rule).
        self.mesh_route(topic, p.via, &mut targets);
        let refusal = if p.topic.starts_with('$') {
            Some(Reason::NotAuthorized)
        } else if self.shutting_down {
            Some(Reason::ShuttingDown)
        } else if self.store.full && p.qos == QoS::AtLeastOnce {
            Some(Reason::StorageFull)
        } else if p.payload.len() > self.cfg.max_message {
            Some(Reason::MessageTooLarge)
        } else if let Some((_, session)) = from
            && !self
                .sessions
                .get(session)
                .is_some_and(|s| s.perms.may_publish(topic))
        {
            self.stats.auth_failures += 1;
            Some(Reason::NotAuthorized)
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.refuse(from, p, reason);
            return None;
        }
        let from_link = p.via != Via::Client;
        // Below the window a link's publish is stored (see `Seen::Below`).
        if let Some(d) = p.dedup
            && let Seen::Duplicate(seq) =
                (self.dedup.check((from_link, d.producer), d.seq)).below(!from_link)
        {
            self.stats.duplicates += 1;
            if from_link {
                self.mesh.stats.deduplicated += 1;
            }
            if p.qos == QoS::AtLeastOnce
                && let Some((conn, _)) = from
            {
                self.ack_duplicate(conn, p.id, (from_link, d), seq);
            }
            return None;
        }

        if let Some(held) = self.await_catalog(from, p, now, &mut holds.catalog) {
            return held;
        }
        // Whether every queue has room.
        let size = p.payload.len();
        let mut full_block: Option<Duration> = None;
        let mut full_reject = false;
        for &t in &targets {
            let Some(q) = self.queue_mut(t) else { continue };
            q.unshed_if_drained();
            if q.is_full_for(size) {
                if q.refuses_when_full() {
                    full_reject = true;
                } else if let Overflow::Block { deadline: hold } | Overflow::Pace { hold } =
                    q.limits.overflow
                {
                    full_block = Some(full_block.map_or(hold, |d| d.min(hold)));
                }
            }
        }
        if full_reject && p.qos == QoS::AtLeastOnce {
            self.refuse(from, p, Reason::QueueFull);
            return None;
        }
        if let Some(hold) = full_block {
            let deadline = *holds.queue.get_or_insert(now + hold);
            // A will is not held: nobody waits for it.
            if from.is_none() {
                self.refuse(from, p, Reason::Timeout);
                return None;
            }
            if now < deadline {
                return Some(deadline);
            }
            // Held long enough. The paced queues still full are slow
            // consumers': shed them, and go on as if they refused; a blocking
            // one refuses the publish.
            if self.shed_full_queues(&targets, size) {
                self.refuse(from, p, Reason::Timeout);
                return None;
            }
            if p.qos == QoS::AtLeastOnce {
                self.refuse(from, p, Reason::QueueFull);
                return None;
            }
        }

        // Admitted: number it, encode its record once, reserve room in its queues.
        // An exactly-once publish's record holds its packet id too.
        let once = match (p.once, from) {
            (Some(pid), Some((_, session))) => {
                let client = self.sessions.get(session).map(|s| s.client.clone());
                client.map(|c| (session, c, pid))
            }
            _ => None,
        };
        let once_record = once.as_ref().map(|(_, c, pid)| (c.as_str(), *pid));
        let (mut msg, reserved, slot) = self.new_message(
            now,
            (slot, topic),
            p.qos,
            p.dedup,
            p.meta,
            p.payload,
            once_record,
            p.via,
        );
        if let Some((conn, _)) = from
            && let Some(m) = Arc::get_mut(&mut msg)
        {
            m.publisher = Some(conn);
        }
        if let Some(d) = p.dedup {
            self.dedup.record((from_link, d.producer), d.seq, msg.seq);
        }
        self.stats.messages_in += 1;
        self.stats.bytes_in += size as u64;
        self.mesh_count(p.via, &targets);
        let before = targets.len();
        targets.retain(|&t| {
            // QoS 0 into a full queue that refuses: dropped for that queue only.
            self.queue(t)
                .is_some_and(|q| !(q.refuses_when_full() && q.is_full_for(size)))
        });
        self.stats.dropped += (before - targets.len()) as u64;
        self.reserve(&targets, size);
        let mut token = if p.qos == QoS::AtLeastOnce {
            Some(self.emit_shared(msg.record.clone()))
        } else {
            reserved
        };
        // Its other records come after the message's: it is released (and
        // answered) once the last of them is stored.
        if p.retain {
            token = Some(self.retain_record(&msg));
        }
        let once = once.map(|(session, _, pid)| {
            self.once_received(session, pid);
            (session, pid)
        });
        let mut acks = Vec::new();
        if let Some((conn, _)) = from
            && p.qos == QoS::AtLeastOnce
        {
            acks = self.spare_acks.take();
            acks.push((conn, p.id));
        }
        self.pending.push_back(Pending::Release {
            token,
            msg,
            slot,
            targets,
            acks,
            dedup: p.dedup.map(|d| (from_link, d)),
            retain: p.retain,
            once,
            cut: false,
        });
        self.release(now);
        None
    }

    /// Sheds the full [`Overflow::Pace`] queues among `targets` (a publisher
    /// was held for them long enough); true when a full `Block` queue remains.
    fn shed_full_queues(&mut self, targets: &[Target], size: usize) -> bool {
        let mut blocked = false;
        for &t in targets {
            let Some(q) = self.queue_mut(t) else { continue };
            if !q.is_full_for(size) {
                continue;
            }
            match q.limits.overflow {
                Overflow::Pace { .. } if !q.shed => {
                    q.shed = true;
                    self.stats.shed += 1;
                }
                Overflow::Block { .. } => blocked = true,
                _ => {}
            }
        }
        blocked
    }

    fn ack_duplicate(&mut self, conn: ConnId, id: u32, d: (bool, wire::Dedup), seq: Option<u64>) {
        // The original may still wait for the store: answer when it is released.
        for p in self.pending.iter_mut() {
            if let Pending::Release {
                dedup: Some(pd),
                acks,
                ..
            } = p
                && *pd == d
            {
                acks.push((conn, id));
                return;
            }
        }
        let seq = seq.unwrap_or(0);
        self.send(
            conn,
            Output::PubAck {
                id,
                seq,
                duplicate: true,
            },
        );
    }

    /// A new message on `topic`: its id, sequence number and record (with the
    /// client and packet id of an exactly-once publish). A QoS 0 message is
    /// not stored: so that its sequence number is never handed out again
    /// after a restart, one small record reserves a block of them, and its
    /// token is returned with the message when this one starts a block.
    /// `topic` comes with where its state was found, if it was; the message
    /// is returned with where it is.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_message(
        &mut self,
        now: Instant,
        (found, topic): (Option<Slot>, Topic<'_>),
        qos: QoS,
        dedup: Option<wire::Dedup>,
        meta: Meta<'_>,
        payload: &[u8],
        once: Option<(&str, u16)>,
        via: Via<'_>,
    ) -> (Msg, Option<u64>, Slot) {
        // A new topic's first id is this message's.
        let id = self.next_msg;
        let (slot, t) = self.topic_state(found, topic);
        let seq = t.next_seq;
        t.next_seq += 1;
        t.messages_in += 1;
        t.bytes_in += payload.len() as u64;
        let reserve = (qos == QoS::AtMostOnce && seq >= t.reserved_until).then(|| {
            t.reserved_until = seq + SEQ_BLOCK;
            t.reserved_until
        });
        let name = t.name.clone();
        self.next_msg += 1;
        let reserved = reserve.map(|until| {
            self.emit(&Record::SeqReserve {
                topic: &name,
                until,
            })
        });
        let message = MessageRecord {
            id,
            topic: topic.as_str(),
            seq,
            qos,
            published_us: now.as_micros(),
            dedup,
            meta,
            payload,
        };
        let record = match (once, via) {
            (Some((client, pid)), _) => Record::MessageOnce {
                client,
                pid,
                message,
            },
            (None, Via::Client) => Record::Message(message),
            (None, Via::Link) => Record::Forwarded {
                group: None,
                message,
            },
            (None, Via::LinkGroup { filter, group }) => Record::Forwarded {
                group: Some((filter, group)),
                message,
            },
        };
        // A spare message (and its record) is written over, not allocated.
        let mut spare = self.spare_msgs.take();
        let spare_record = spare
            .as_mut()
            .and_then(Arc::get_mut)
            .map(|m| core::mem::take(&mut m.record));
        let record = record.encode_reusing(spare_record);
        let (meta_at, payload_at) = tail_offsets(&record, &meta, payload.len());
        let message = Message {
            id,
            seq,
            meta_at,
            payload_at,
            topic: name,
            qos,
            published_at: now,
            expires_at: meta
                .ttl_ms
                .map(|ms| now + Duration::from_millis(u64::from(ms))),
            priority: meta.priority,
            payload_len: payload.len(),
            publisher: None,
            record,
        };
        let msg = match spare.as_mut().and_then(Arc::get_mut) {
            Some(m) => {
                *m = message;
                spare.expect("written over")
            }
            None => Arc::new(message),
        };
        (msg, reserved, slot)
    }

    /// The state of `topic`, made when it is new (one lookup either way, none
    /// when `found` says where it is), and where it is.
    pub(super) fn topic_state(
        &mut self,
        found: Option<Slot>,
        topic: Topic<'_>,
    ) -> (Slot, &mut TopicState) {
        let (retention, since_id) = (&self.cfg, self.next_msg);
        self.topics
            .get_or_insert_with(found, topic.as_str(), || TopicState {
                name: Arc::from(topic.as_str()),
                next_seq: 1,
                reserved_until: 0,
                retained: Default::default(),
                retained_bytes: 0,
                retention: retention.retention_for(topic),
                messages_in: 0,
                bytes_in: 0,
                since_id,
                routes: Vec::new(),
                routes_at: None,
            })
    }

    /// Offers the publish held for `conn` again: its deadline passed (`fired`:
    /// its timer fired, so the slot is stale).
    pub(super) fn retry_parked(&mut self, conn: ConnId, now: Instant, fired: bool) {
        let Some(i) = self.parked.iter().position(|(c, _)| *c == conn) else {
            return;
        };
        let (_, mut parked) = self.parked.remove(i);
        if fired {
            parked.timer = None;
        }
        self.offer_parked(conn, parked, now);
    }

    /// Offers every held publish again, in the order they were held: a
    /// message left a queue. Runs as a loop, not a recursion, when admitting
    /// one makes room for the next.
    pub(super) fn retry_all_parked(&mut self, now: Instant) {
        if self.parked.is_empty() {
            return;
        }
        if self.retrying {
            self.retry_again = true;
            return;
        }
        self.retrying = true;
        loop {
            self.retry_again = false;
            for (conn, parked) in core::mem::take(&mut self.parked) {
                self.offer_parked(conn, parked, now);
            }
            if !self.retry_again || self.parked.is_empty() {
                break;
            }
        }
        self.retrying = false;
    }

    /// Admits a held publish, refuses it (its deadline passed), or holds it
    /// again at the back of the line.
    fn offer_parked(&mut self, conn: ConnId, mut parked: Parked, now: Instant) {
        let admitted = match self.links.session(conn) {
            None => None,
            Some(session) => {
                let publish = parked.publish.as_publish();
                self.admit(Some((conn, session)), now, &publish, &mut parked.holds)
            }
        };
        match admitted {
            Some(deadline) => {
                self.timers
                    .set(&mut parked.timer, Timer::Parked(conn), deadline);
                self.parked.push((conn, parked));
            }
            None => {
                self.timers.stop(&mut parked.timer, Timer::Parked(conn));
                self.links.set_held(conn, false);
            }
        }
    }

    /// Forgets the publish held for `conn` (it went away).
    pub(super) fn unpark(&mut self, conn: ConnId) {
        if let Some(i) = self.parked.iter().position(|(c, _)| *c == conn) {
            let (_, mut parked) = self.parked.remove(i);
            self.timers.stop(&mut parked.timer, Timer::Parked(conn));
            self.links.set_held(conn, false);
        }
    }

    /// Releases, in order, every pending entry whose record is persisted.
    pub(super) fn release(&mut self, now: Instant) {
        while let Some(front) = self.pending.front() {
            if !self.store.is_persisted(front.token()) {
                break;
            }
            match self.pending.pop_front().expect("front exists") {
                Pending::Reply { conn, out, .. } => {
                    if let Some(conn) = conn {
                        self.send(conn, out);
                    }
                }
                Pending::Release {
                    msg,
                    slot,
                    targets,
                    acks,
                    retain,
                    cut,
                    ..
                } => {
                    for &(conn, id) in &acks {
                        let seq = msg.seq;
                        self.send(
                            conn,
                            Output::PubAck {
                                id,
                                seq,
                                duplicate: false,
                            },
                        );
                    }
                    if !cut {
                        self.retain(&msg, slot, now);
                    }
                    if retain {
                        self.set_retained(&msg);
                    }
                    for &t in &targets {
                        if let Some(q) = self.queue_mut(t) {
                            q.unreserve(msg.payload_len);
                        }
                        self.enqueue(t, msg.clone(), now);
                    }
                    self.spare_targets.give(targets);
                    self.spare_acks.give(acks);
                }
            }
        }
    }

    /// The store made every record up to `token` durable.
    pub(crate) fn persisted(&mut self, token: u64, now: Instant) {
        self.store.mark_persisted(token);
        self.release(now);
    }

    /// Holds room in each target queue for an admitted message until `release`
    /// offers it.
    pub(super) fn reserve(&mut self, targets: &[Target], size: usize) {
        for &t in targets {
            if let Some(q) = self.queue_mut(t) {
                q.reserve(size);
            }
        }
    }

    fn enqueue(&mut self, target: Target, msg: Msg, now: Instant) {
        let needs_sweep = msg.expires_at.is_some();
        let Some(queue) = self.queue_mut(target) else {
            return;
        };
        match queue.offer(Queued {
            msg,
            attempt: 0,
            avoid: None,
            retained: false,
        }) {
            Offer::Accepted => self.stats.current_queued += 1,
            Offer::DroppedOldest(old) => {
                self.stats.dropped += 1;
                self.finish(target, &old.msg);
            }
            Offer::Full(q) => {
                // Room was reserved at admission; only a queue whose limits
                // shrank since (a restart with a new configuration) drops it.
                self.stats.dropped += 1;
                self.finish(target, &q.msg);
            }
        }
        if needs_sweep {
            self.schedule_sweep(now + SWEEP_INTERVAL);
        }
        self.pump(target, now);
    }
}
