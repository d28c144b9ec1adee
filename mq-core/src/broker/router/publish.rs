//! Publishing: admission (validation, permissions, dedup, room in every
//! matching queue). Publishers held by full queues or the catalog's first
//! listing are in `parked.rs`, new messages numbered in `numbering.rs`, and
//! admitted ones released once stored in `release.rs`.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use super::{Holds, Pending, Router};
use crate::broker::ConnId;
use crate::broker::command::{Outcome, Output, Publish, Via};
use crate::broker::config::Overflow;
use crate::broker::dedup::Seen;
use crate::broker::slab::Key;
use crate::broker::timers::Target;
use crate::time::Instant;
use crate::topic::Topic;
use crate::wire::{self, QoS, Reason};

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
            Some(deadline) => self.park(conn, p, holds, deadline),
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
        // subscription index stays the same; a client's, with the peers'
        // outboxes their interest wants, while that stays the same too.
        let mut targets = self.spare_targets.take();
        let found = self.topics.find_mut(p.topic);
        let slot = found.as_ref().map(|(slot, _)| *slot);
        let (topic, routed) = match found {
            Some((_, t)) => {
                let topic = Topic::known(p.topic);
                let generation = self.index.generation();
                if t.routes_at != Some(generation) {
                    t.routes.clear();
                    let routes = &mut t.routes;
                    self.index.for_each_match(topic, |x| routes.push(*x));
                    t.routes_at = Some(generation);
                }
                let for_client = p.via == Via::Client && self.mesh.has_outboxes();
                if for_client {
                    let at = (generation, self.mesh.interest_generation());
                    if t.client_routes_at != Some(at) {
                        t.client_routes.clone_from(&t.routes);
                        let routes = &mut t.client_routes;
                        Self::keep_wanted(&self.subs, &mut self.mesh, topic, routes);
                        t.client_routes_at = Some(at);
                    }
                    targets.extend_from_slice(&t.client_routes);
                } else {
                    targets.extend_from_slice(&t.routes);
                }
                (topic, for_client)
            }
            None => {
                let Ok(topic) = Topic::new(p.topic) else {
                    self.refuse(from, p, Reason::InvalidTopic);
                    return None;
                };
                self.index.for_each_match(topic, |x| targets.push(*x));
                (topic, false)
            }
        };
        // Peers' outboxes: only what their interest wants, and nothing that
        // came over a link (the one-hop rule).
        if !routed {
            self.mesh_route(topic, p.via, &mut targets);
        }
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
        let mut gone = false;
        for &t in &targets {
            let Some(q) = self.queue_mut(t) else {
                gone = true;
                continue;
            };
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
        // QoS 0 into a full queue that refuses: dropped for that queue only.
        // Only a queue found full above can be (shedding made one refuse);
        // a target without a queue goes too.
        if full_reject || full_block.is_some() || gone {
            let before = targets.len();
            targets.retain(|&t| {
                self.queue(t)
                    .is_some_and(|q| !(q.refuses_when_full() && q.is_full_for(size)))
            });
            self.stats.dropped += (before - targets.len()) as u64;
        }
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
}
