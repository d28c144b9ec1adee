//! Rebuilding the router from stored records, in the order they were written.

use alloc::borrow::ToOwned;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use super::retention::SWEEP_INTERVAL;
use super::{Router, Slot};
use crate::broker::command::Via;
use crate::broker::message::{Message, Msg, tail_offsets};
use crate::broker::queue::Queued;
use crate::broker::record::{MessageRecord, Record, RecordError};
use crate::time::Instant;
use crate::topic::{Filter, Topic};

impl Router {
    /// See [`Broker::restore`](crate::broker::Broker::restore).
    pub(crate) fn restore(&mut self, now: Instant, bytes: &[u8]) -> Result<(), RecordError> {
        self.mesh.away.snapshots_due.restarted = true;
        let record = Record::decode(bytes)?;
        self.store.epoch.restored(match record {
            Record::StoreEpoch { epoch } => Some(epoch),
            _ => None,
        });
        match record {
            record @ (Record::Message(m)
            | Record::MessageOnce { message: m, .. }
            | Record::Forwarded { message: m, .. }) => {
                let Ok(topic) = Topic::new(m.topic) else {
                    return Err(RecordError::Malformed);
                };
                // Ids only grow in a log: a lower one was restored already (a store
                // that wrote a record again, or one a snapshot also holds).
                if m.id < self.next_msg {
                    return Ok(());
                }
                let (msg, slot) = self.restored_message(topic, &m, Arc::from(bytes));
                if let Record::MessageOnce { client, pid, .. } = record
                    && let Some(&k) = self.by_client.get(client)
                    && let Some(s) = self.sessions.get_mut(k)
                {
                    s.once.insert(pid);
                }
                if let Some(d) = m.dedup {
                    let link = matches!(record, Record::Forwarded { .. });
                    self.dedup.record((link, d.producer), d.seq, m.seq);
                }
                self.retain(&msg, slot, now);
                if msg.is_expired(now) {
                    return Ok(());
                }
                let mut targets = Vec::new();
                self.index.for_each_match(topic, |t| targets.push(*t));
                let via = match record {
                    Record::Forwarded { group: None, .. } => Via::Link,
                    Record::Forwarded {
                        group: Some((filter, group)),
                        ..
                    } => Via::LinkGroup { filter, group },
                    _ => Via::Client,
                };
                self.mesh_route(topic, via, &mut targets);
                for t in targets {
                    if let Some(q) = self.queue_mut(t) {
                        q.push_restored(Queued {
                            msg: msg.clone(),
                            attempt: 0,
                            avoid: None,
                            retained: false,
                        });
                        self.stats.current_queued += 1;
                    }
                }
                if msg.expires_at.is_some() {
                    self.schedule_sweep(now + SWEEP_INTERVAL);
                }
            }
            Record::SessionOpen { client } => {
                if !self.by_client.contains_key(client) {
                    self.create_session(client, true, false);
                }
            }
            Record::SessionEnd { client } => {
                if let Some(&k) = self.by_client.get(client) {
                    self.destroy_session(k, false, now);
                }
            }
            Record::Subscribe {
                client,
                sub,
                filter,
                group,
                qos,
                credit,
            } => {
                let Ok(f) = Filter::new(filter) else {
                    return Err(RecordError::Malformed);
                };
                let session = match self.by_client.get(client) {
                    Some(&k) => k,
                    None => self.create_session(client, true, false),
                };
                if self
                    .sessions
                    .get(session)
                    .is_some_and(|s| !s.subs.contains_key(&sub))
                {
                    self.add_subscription(session, sub, f, group, qos, credit, None);
                }
            }
            Record::Unsubscribe { client, sub } => {
                if let Some(&session) = self.by_client.get(client)
                    && let Some(key) = self
                        .sessions
                        .get_mut(session)
                        .and_then(|s| s.subs.remove(&sub))
                {
                    self.remove_subscription(key, now);
                    self.once_pids_unsubscribed(session, sub, None);
                }
            }
            Record::Ack { client, sub, msg } => self.restore_ack(client, sub, msg),
            Record::Interest {
                client,
                filter,
                held,
            } => self.restore_interest(client, filter, held)?,
            Record::SeqReserve { topic, until } => {
                let Ok(topic) = Topic::new(topic) else {
                    return Err(RecordError::Malformed);
                };
                let (_, t) = self.topic_state(None, topic);
                t.next_seq = t.next_seq.max(until);
                t.reserved_until = t.reserved_until.max(until);
                t.synced_until = t.synced_until.max(until);
                // A topic of QoS 0 messages comes back by this record alone.
                self.may_forget(topic.as_str(), now);
            }
            Record::Purge { topic, before } => self.restore_purge(topic, before, now),
            Record::DeleteTopic { topic } => self.restore_delete(topic, now),
            Record::NextId { next } => self.next_msg = self.next_msg.max(next),
            Record::StoreEpoch { .. } => {}
            // Not into `next_msg`: the messages of the block follow.
            Record::IdReserve { until } => self.ids_restored = self.ids_restored.max(until),
            Record::SeqFloor { until } => self.seq_floor = self.seq_floor.max(until),
            Record::OncePid {
                client,
                pid,
                sub,
                msg,
            } => self.restore_once_pid(client, pid, sub, msg),
            Record::DedupMark {
                producer,
                seq,
                topic_seq,
            } => self.dedup.record((false, producer), seq, topic_seq),
            Record::LinkDedupMark {
                producer,
                seq,
                topic_seq,
            } => self.dedup.record((true, producer), seq, topic_seq),
            Record::Retain(m) => {
                let Ok(topic) = Topic::new(m.topic) else {
                    return Err(RecordError::Malformed);
                };
                let (msg, _) = self.restored_message(topic, &m, Record::Message(m).encode_shared());
                if !msg.is_expired(now) {
                    self.restore_retained(msg);
                }
                self.may_forget(topic.as_str(), now);
            }
            Record::Unretain { topic } => {
                self.retained.remove(topic);
                self.stats.current_retained_slots = self.retained.len() as u64;
            }
            Record::OnceReceived { client, pid } => {
                if let Some(&k) = self.by_client.get(client)
                    && let Some(s) = self.sessions.get_mut(k)
                {
                    s.once.insert(pid);
                }
            }
            Record::OnceDelivered {
                client,
                pid,
                sub,
                msg,
            } => {
                if let Some(&k) = self.by_client.get(client)
                    && let Some(s) = self.sessions.get_mut(k)
                {
                    s.delivered_once.insert(pid);
                }
                self.restore_ack(client, sub, msg);
            }
            Record::OnceCompleted { client, pid } => {
                if let Some(&k) = self.by_client.get(client)
                    && let Some(s) = self.sessions.get_mut(k)
                {
                    s.delivered_once.remove(&pid);
                }
            }
            Record::OnceReleased { client, pid } => {
                if let Some(&k) = self.by_client.get(client)
                    && let Some(s) = self.sessions.get_mut(k)
                {
                    s.once.remove(&pid);
                }
            }
            Record::GroupAck { filter, group, msg } => {
                let key = (filter.to_owned(), group.to_owned());
                let Some(&g) = self.group_by_name.get(&key) else {
                    return Ok(());
                };
                if let Some(group) = self.groups.get_mut(g)
                    && group.queue.remove_id(msg).is_some()
                {
                    self.stats.current_queued = self.stats.current_queued.saturating_sub(1);
                }
                self.once_pids_group_ended(g, msg, None);
            }
        }
        Ok(())
    }

    /// A stored message as the router holds it (`record`: its encoding as a
    /// `Record::Message`), and where its topic is; ids and the topic's
    /// sequence continue after it.
    fn restored_message(
        &mut self,
        topic: Topic<'_>,
        m: &MessageRecord<'_>,
        record: Arc<[u8]>,
    ) -> (Msg, Slot) {
        self.next_msg = self.next_msg.max(m.id + 1);
        let (slot, t) = self.topic_state(None, topic);
        t.next_seq = t.next_seq.max(m.seq + 1);
        t.since_id = t.since_id.min(m.id);
        let published_at = Instant::from_micros(m.published_us);
        let (meta_at, payload_at) = tail_offsets(&record, &m.meta, m.payload.len());
        let msg = Arc::new(Message {
            meta_at,
            payload_at,
            id: m.id,
            seq: m.seq,
            topic: t.name.clone(),
            qos: m.qos,
            published_at,
            expires_at: m
                .meta
                .ttl_ms
                .map(|ms| published_at + Duration::from_millis(u64::from(ms))),
            priority: m.meta.priority,
            publisher: None,
            payload_len: m.payload.len(),
            record,
        });
        (msg, slot)
    }

    /// A subscription of `client` is done with message `msg` (a group
    /// member's: its group is), and a packet id recorded for it is free.
    fn restore_ack(&mut self, client: &str, sub: u32, msg: u64) {
        let Some(s) = self
            .by_client
            .get(client)
            .and_then(|&s| self.sessions.get_mut(s))
        else {
            return;
        };
        if !s.once_pids.is_empty() {
            let before = s.once_pids.len();
            s.once_pids.retain(|_, &mut (s, m, _)| (s, m) != (sub, msg));
            let gone = before - s.once_pids.len();
            self.recorded_pids = self.recorded_pids.saturating_sub(gone);
        }
        let Some(key) = s.subs.get(&sub).copied() else {
            return;
        };
        if let Some(g) = self.subs.get(key).and_then(|s| s.group) {
            if let Some(group) = self.groups.get_mut(g)
                && group.queue.remove_id(msg).is_some()
            {
                self.stats.current_queued = self.stats.current_queued.saturating_sub(1);
            }
            return;
        }
        let session = self.subs.get(key).map(|s| s.session);
        let removed = self.subs.get_mut(key).and_then(|s| s.queue.remove_id(msg));
        if let (Some(session), Some(q)) = (session, removed) {
            self.stats.current_queued = self.stats.current_queued.saturating_sub(1);
            self.advance_cursor(session, key, &q.msg);
        }
    }
}
