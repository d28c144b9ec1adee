//! The router's part of the offline queues (see `broker::mesh::offline`):
//! peers away, their outboxes handed on to the catalog item by item, and
//! what the catalog kept for this node published as a link's delivery.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::{Holds, Router, queue_in};
use crate::broker::command::{Output, Publish, Via};
use crate::broker::mesh::link::OUTBOX_SUB;
use crate::broker::mesh::offline::{
    OfflineError, OfflineMessage, OfflineTicket, split_offline_origin,
};
use crate::broker::mesh::{OFFLINE_BATCH, OFFLINE_RETRY, OfflineItem};
use crate::broker::queue::Queued;
use crate::broker::record::Record;
use crate::broker::slab::Key;
use crate::broker::timers::Target;
use crate::time::Instant;
use crate::wire::mesh::{NODE_PREFIX, mesh_producer};
use crate::wire::{Dedup, Meta, QoS, Reason};

/// The shortest TTL an item is handed on with: catalogs keep TTLs in whole
/// milliseconds and refuse 0, which failed the whole call and the batch's
/// rest with it (a message with less left expires in the catalog instead).
const MIN_TTL: Duration = Duration::from_millis(1);

impl Router {
    /// Marks node `peer` away (see `Broker::node_away`).
    pub(crate) fn node_away(&mut self, peer: &str, now: Instant) -> bool {
        let Some(session) = self.peer_session(peer) else {
            return false;
        };
        if let Some(conn) = self.sessions.get(session).and_then(|s| s.conn) {
            self.end_with(conn, now, Output::Close(Reason::Normal));
        }
        self.lease_expired(session, peer, now);
        true
    }

    /// Peer `peer` (link session `session`, not linked) is not live: away,
    /// not only out of reach; it leaves the groups others serve, and the
    /// first listing waits for it no longer.
    pub(super) fn lease_expired(&mut self, session: Key, peer: &str, now: Instant) {
        self.leave_groups(session, now);
        let p = self.mesh.away.peers.entry(session).or_default();
        (p.away, p.unreachable) = (true, false);
        self.snapshot_not_due(peer, now);
    }

    /// A session away leaves each group others serve: they take its jobs.
    /// It stays the last member of a group it alone served, so the group's
    /// messages (those waiting, and those published meanwhile) are kept for
    /// it as for any member away, rather than dropped with the group (a
    /// peer's go to its catalog queue: `hand_on_queues`).
    pub(super) fn leave_groups(&mut self, session: Key, now: Instant) {
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        let (client, persistent) = (s.client.clone(), s.persistent);
        let served_by_others = |k: &Key| {
            let group = self.subs.get(*k).and_then(|x| x.group);
            group.is_some_and(|g| !self.served_only_by(g, session))
        };
        let groups: Vec<(u32, Key)> = (s.subs.iter())
            .filter(|(_, k)| served_by_others(k))
            .map(|(&id, &k)| (id, k))
            .collect();
        for (id, key) in groups {
            if let Some(s) = self.sessions.get_mut(session) {
                s.subs.remove(&id);
            }
            self.remove_subscription(key, now);
            if persistent {
                self.emit(&Record::Unsubscribe {
                    client: &client,
                    sub: id,
                });
            }
        }
    }

    /// Node `peer` is live: its outbox waits for its link again (unless
    /// the link stays down past `Config::link_grace`).
    pub(crate) fn node_live(&mut self, peer: &str, now: Instant) {
        let Some(session) = self.peer_session(peer) else {
            return;
        };
        self.not_away(session, now);
        if self.sessions.get(session).is_some_and(|s| s.conn.is_none()) {
            self.not_linked_yet(session, now);
        }
    }

    /// Its outbox waits for its link. While items handed on are not
    /// answered the outbox is held (`outbox_held`), so nothing newer
    /// overtakes them on the link; then what failed goes back to its front,
    /// in order, and out on the link when it is connected.
    fn not_away(&mut self, session: Key, now: Instant) {
        let linked = self.sessions.get(session).is_some_and(|s| s.conn.is_some());
        let peers = &mut self.mesh.away.peers;
        let Some(p) = peers.get_mut(&session) else {
            return;
        };
        if p.unreachable && !linked {
            // Live, but its link is still down: the catalog still carries.
            return;
        }
        p.away = false;
        p.unreachable = false;
        p.retry_at = None;
        if !p.handed.is_empty() {
            return;
        }
        self.requeue_failed(session, now);
        self.mesh.away.peers.remove(&session);
        // Its outbox, and the groups it alone serves, deliver on its link.
        for target in self.hand_on_queues(session) {
            self.pump(target, now);
        }
    }

    /// Whether `sub` is the outbox of a peer with items handed on or failed:
    /// its link waits for them, to keep the outbox's order.
    pub(super) fn outbox_held(&self, sub: Key) -> bool {
        if self.mesh.away.peers.is_empty() {
            return false;
        }
        let Some(s) = self.subs.get(sub).filter(|s| s.outbox) else {
            return false;
        };
        (self.mesh.away.peers.get(&s.session))
            .is_some_and(|p| !p.handed.is_empty() || !p.failed.is_empty())
    }

    /// A peer session ends (forgotten, replaced, expired): what is on its
    /// way to the catalog goes back to its queue, a group's jobs to the
    /// group (a member may have joined since), the outbox's to go with the
    /// session.
    pub(super) fn return_handed(&mut self, session: Key, now: Instant) {
        let Some(p) = self.mesh.away.peers.get_mut(&session) else {
            return;
        };
        let handed = core::mem::take(&mut p.handed);
        p.failed.extend(handed.into_values());
        self.requeue_failed(session, now);
    }

    /// The items the catalog did not store go back to the front of their
    /// queues (the outbox, groups only the peer serves), in order, and each
    /// queue is offered to its subscribers: a group may have gained a
    /// member here while they were away.
    pub(super) fn requeue_failed(&mut self, session: Key, now: Instant) {
        let Some(p) = self.mesh.away.peers.get_mut(&session) else {
            return;
        };
        let mut failed = core::mem::take(&mut p.failed);
        while let Some(&(target, _)) = failed.first() {
            let (items, rest): (Vec<_>, Vec<_>) =
                failed.into_iter().partition(|(t, _)| *t == target);
            failed = rest;
            let items: Vec<_> = items.into_iter().map(|(_, q)| q).collect();
            if let Some(queue) = self.queue_mut(target) {
                for q in &items {
                    queue.end_inflight(q.msg.payload_len);
                }
            }
            self.back_to_queue(target, items, now);
        }
    }

    /// Items no longer in flight go back to the front of queue `target`, in
    /// order, and the queue is offered to its subscribers.
    fn back_to_queue(&mut self, target: Target, items: Vec<Queued>, now: Instant) {
        let n = items.len() as u64;
        if let Some(queue) = self.queue_mut(target) {
            queue.requeue_front(items);
            self.stats.current_queued += n;
        }
        self.pump(target, now);
    }

    /// The next item to hand on for a peer that is away. Peers take turns,
    /// a batch's worth each (items of one peer in a row, stored in one
    /// catalog call): one whose outbox refills as fast as the catalog
    /// takes it does not keep the others' outboxes filling.
    pub(crate) fn poll_offline(&mut self, now: Instant) -> Option<OfflineItem> {
        self.hand_on_unreachable(now);
        let mut peers: Vec<Key> = self.mesh.away.peers.keys().copied().collect();
        peers.sort_unstable();
        if let Some((last, n)) = self.mesh.away.turn {
            let at = peers.partition_point(|&k| k < last);
            let done = n >= OFFLINE_BATCH && peers.get(at) == Some(&last);
            peers.rotate_left(at + usize::from(done));
        }
        for session in peers {
            if let Some(item) = self.next_offline(session, now) {
                let n = match self.mesh.away.turn {
                    Some((last, n)) if last == session && n < OFFLINE_BATCH => n + 1,
                    _ => 1,
                };
                self.mesh.away.turn = Some((session, n));
                return Some(item);
            }
        }
        None
    }

    fn next_offline(&mut self, session: Key, now: Instant) -> Option<OfflineItem> {
        let p = self.mesh.away.peers.get_mut(&session)?;
        if !p.away || p.retry_at.is_some_and(|at| at > now) {
            return None;
        }
        p.retry_at = None;
        if self.sessions.get(session)?.conn.is_some() {
            // It linked again: its link takes the outbox.
            self.not_away(session, now);
            return None;
        }
        self.requeue_failed(session, now);
        let s = self.sessions.get(session)?;
        let recipient = String::from(s.client.strip_prefix(NODE_PREFIX)?);
        for target in self.hand_on_queues(session) {
            if let Some(item) = self.next_offline_in(session, target, &recipient, now) {
                return Some(item);
            }
        }
        None
    }

    /// The queues handed on for peer session `session`: its outbox, then
    /// each group it alone serves here (a group others serve takes its
    /// jobs: it left those when it went away).
    pub(super) fn hand_on_queues(&self, session: Key) -> Vec<Target> {
        let Some(s) = self.sessions.get(session) else {
            return Vec::new();
        };
        let outbox = s.subs.get(&OUTBOX_SUB).map(|&k| Target::Sub(k));
        let mut queues: Vec<Target> = outbox.into_iter().collect();
        for &k in s.subs.values() {
            let Some(g) = self.subs.get(k).and_then(|x| x.group) else {
                continue;
            };
            let target = Target::Group(g);
            if self.served_only_by(g, session) && !queues.contains(&target) {
                queues.push(target);
            }
        }
        queues
    }

    /// Whether every member of group `g` here is a subscription of
    /// `session` (a session may hold more than one).
    fn served_only_by(&self, g: Key, session: Key) -> bool {
        self.groups.get(g).is_some_and(|group| {
            (group.members.iter()).all(|&m| self.subs.get(m).is_some_and(|x| x.session == session))
        })
    }

    /// The next item of queue `target` for the peer, if any may go now. A
    /// message in flight to the catalog from another of its queues waits
    /// for it (items are answered by id), and so does the rest of this one.
    fn next_offline_in(
        &mut self,
        session: Key,
        target: Target,
        recipient: &str,
        now: Instant,
    ) -> Option<OfflineItem> {
        let group = match target {
            Target::Group(g) => self
                .groups
                .get(g)
                .map(|g| (g.filter.clone(), g.name.clone())),
            Target::Sub(_) => None,
        };
        let epoch = self.store.epoch.get();
        loop {
            // The peer first: a message popped is always finished or kept.
            let p = self.mesh.away.peers.get_mut(&session)?;
            let queue = queue_in(&mut self.subs, &mut self.groups, target)?;
            let (q, was_waiting) = queue.pop(now, &self.topics)?;
            if was_waiting {
                self.stats.current_queued = self.stats.current_queued.saturating_sub(1);
            }
            if q.msg.is_expired(now) {
                self.stats.expired += 1;
                self.finish(target, &q.msg);
                continue;
            }
            if q.msg.qos == QoS::AtMostOnce {
                // At most once: its id is not logged, so a restart may give
                // it to a QoS 1 message, which the catalog (idempotent on
                // the id) would then take for a copy of this one.
                self.finish(target, &q.msg);
                continue;
            }
            if p.handed.contains_key(&q.msg.id) {
                queue.requeue_front(alloc::vec![q]);
                self.stats.current_queued += 1;
                return None;
            }
            let view = q.msg.view();
            let item = OfflineItem {
                recipient: String::from(recipient),
                id: q.msg.id,
                epoch,
                topic: String::from(view.topic),
                meta: q.msg.encoded_tail().0.to_vec(),
                payload: view.payload.to_vec(),
                // At least a millisecond: catalogs keep whole ones.
                ttl: (q.msg.expires_at).map(|at| (at - now).max(MIN_TTL)),
                group: group.clone(),
            };
            queue.mark_inflight(q.msg.payload_len);
            p.handed.insert(q.msg.id, (target, q));
            return Some(item);
        }
    }

    /// The catalog stored item `id` for `recipient`: it leaves its queue.
    pub(crate) fn offline_stored(&mut self, recipient: &str, id: u64, now: Instant) {
        let Some((session, target, q)) = self.take_handed(recipient, id) else {
            return;
        };
        self.mesh.stats.offline_stored += 1;
        self.finish(target, &q.msg);
        if self.mesh.away.peers.get(&session).is_some_and(|p| !p.away) {
            self.not_away(session, now);
        }
        self.retry_all_parked(now);
    }

    /// The catalog did not store item `id`: it goes back to the outbox's
    /// front (with the others that failed, in order) when the peer's items
    /// are offered again, or at once when the peer linked again.
    pub(crate) fn offline_failed(&mut self, recipient: &str, id: u64, now: Instant) {
        let Some(session) = self.peer_session(recipient) else {
            return;
        };
        let Some(p) = self.mesh.away.peers.get_mut(&session) else {
            return;
        };
        let Some(item) = p.handed.remove(&id) else {
            return;
        };
        // In the outbox's order, whatever the order of the reports.
        let at = p.failed.partition_point(|(_, q)| q.msg.id < item.1.msg.id);
        p.failed.insert(at, item);
        p.retry_at = Some(now + OFFLINE_RETRY);
        if !p.away {
            // Back on its link.
            self.not_away(session, now);
        }
    }

    /// The catalog's queue of `recipient` is full (see
    /// `Broker::handle_offline_full`).
    pub(crate) fn offline_full(&mut self, recipient: &str, id: u64, now: Instant) {
        // A peer only out of reach is live: it drains its queue, and what
        // does not fit waits here for room there or for its link.
        let away = (self.peer_session(recipient))
            .and_then(|s| self.mesh.away.peers.get(&s))
            .is_some_and(|p| p.away && !p.unreachable);
        if !away {
            self.offline_failed(recipient, id, now);
            return;
        }
        let Some((session, target, q)) = self.take_handed(recipient, id) else {
            return;
        };
        if let Target::Group(g) = target
            && !self.served_only_by(g, session)
        {
            // A member here joined the group meanwhile: it takes the job.
            self.back_to_queue(target, alloc::vec![q], now);
            return;
        }
        self.mesh.stats.offline_dropped += 1;
        self.finish(target, &q.msg);
        self.retry_all_parked(now);
    }

    /// Takes a handed item off its peer's list and out of its outbox's
    /// in-flight count.
    fn take_handed(&mut self, recipient: &str, id: u64) -> Option<(Key, Target, Queued)> {
        let session = self.peer_session(recipient)?;
        let (target, q) = self.mesh.away.peers.get_mut(&session)?.handed.remove(&id)?;
        if let Some(queue) = self.queue_mut(target) {
            queue.end_inflight(q.msg.payload_len);
        }
        Some((session, target, q))
    }

    /// Publishes a message from the catalog as its origin's link would have:
    /// to the fan-out subscriptions, or to the group whose job it is.
    pub(crate) fn deliver_offline(
        &mut self,
        m: &OfflineMessage<'_>,
        now: Instant,
    ) -> Result<OfflineTicket, OfflineError> {
        let meta = Meta::decode_from(m.meta).ok_or(OfflineError::Malformed)?;
        let (origin, group) = split_offline_origin(m.origin).ok_or(OfflineError::Malformed)?;
        // As the origin's link would have filed it.
        let p = Publish {
            id: 0,
            topic: m.topic,
            qos: QoS::AtLeastOnce,
            dedup: Some(Dedup {
                producer: mesh_producer(origin, m.topic, group),
                seq: m.id,
            }),
            meta,
            payload: m.payload,
            retain: false,
            once: None,
            via: match group {
                None => Via::Link,
                Some((filter, group)) => Via::LinkGroup { filter, group },
            },
        };
        self.unanswered_refusal = None;
        // No publisher to answer: it is stored once every record emitted
        // so far is (a duplicate's first copy included).
        self.admit(None, now, &p, &mut Holds::default());
        match self.unanswered_refusal.take() {
            None => {}
            // This node will never take it (as a link's delivery, it would
            // be dead-lettered): the catalog may drop it.
            Some(Reason::MessageTooLarge | Reason::InvalidTopic | Reason::NotAuthorized) => {
                self.mesh.stats.offline_rejected += 1;
                return Err(OfflineError::Rejected);
            }
            Some(_) => return Err(OfflineError::Refused),
        }
        self.mesh.stats.offline_drained += 1;
        Ok(OfflineTicket(self.store.last_token()))
    }

    /// The peers away, by node id.
    pub(crate) fn away_nodes(&self) -> Vec<String> {
        let away = self.mesh.away.peers.iter().filter(|(_, p)| p.away);
        away.filter_map(|(k, _)| self.sessions.get(*k))
            .filter_map(|s| s.client.strip_prefix(NODE_PREFIX).map(String::from))
            .collect()
    }
}
