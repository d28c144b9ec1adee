//! The durable state as records, for a store to compact its log into.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Pending, Router};
use crate::broker::Snapshot;
use crate::broker::message::Msg;
use crate::broker::queue::Queued;
use crate::broker::record::Record;
use crate::broker::timers::Target;
use crate::topic::Topic;
use crate::wire::QoS;

/// QoS 1 messages still needed, by id, with the durable queues holding them.
type Held = BTreeMap<u64, (Msg, Vec<Target>)>;

fn note(held: &mut Held, m: &Msg, holder: Option<Target>) {
    if m.qos == QoS::AtLeastOnce {
        let e = held.entry(m.id).or_insert_with(|| (m.clone(), Vec::new()));
        e.1.extend(holder);
    }
}

impl Router {
    /// See [`Broker::snapshot`](crate::broker::Broker::snapshot).
    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        if !self.store.is_drained() {
            return None;
        }
        let mut out: Vec<Arc<[u8]>> = Vec::new();
        let mut emit = |r: Record<'_>| out.push(r.encode_shared());
        // First, as in every log.
        emit(Record::StoreEpoch {
            epoch: self.store.epoch.get(),
        });
        // Sessions and subscriptions, so the messages below route to them.
        for (k, s) in self.sessions.iter().filter(|(_, s)| s.persistent) {
            emit(Record::SessionOpen { client: &s.client });
            for filter in self.mesh.peer_filters(k) {
                emit(Record::Interest {
                    client: &s.client,
                    filter,
                    held: true,
                });
            }
            for (&id, &k) in &s.subs {
                let Some(sub) = self.subs.get(k) else {
                    continue;
                };
                let group = sub
                    .group
                    .and_then(|g| self.groups.get(g))
                    .map(|g| g.name.as_str());
                emit(Record::Subscribe {
                    client: &s.client,
                    sub: id,
                    filter: &sub.filter,
                    group,
                    qos: sub.qos,
                    credit: sub.window,
                });
            }
            for &pid in &s.once {
                emit(Record::OnceReceived {
                    client: &s.client,
                    pid,
                });
            }
            for &pid in &s.delivered_once {
                emit(Record::OnceDelivered {
                    client: &s.client,
                    pid,
                    sub: 0,
                    msg: 0,
                });
            }
            for (&pid, &(sub, msg, _)) in &s.once_pids {
                emit(Record::OncePid {
                    client: &s.client,
                    pid,
                    sub,
                    msg,
                });
            }
        }

        if self.seq_floor > 0 {
            emit(Record::SeqFloor {
                until: self.seq_floor,
            });
        }
        for t in self.topics.values() {
            emit(Record::SeqReserve {
                topic: &t.name,
                until: t.next_seq.max(t.reserved_until),
            });
        }
        let held = self.held_messages();
        for (msg, holders) in held.values() {
            // A `MessageOnce` goes as a plain message: the ids still held
            // are `OnceReceived` records above.
            match Record::decode(&msg.record) {
                Ok(Record::MessageOnce { message, .. }) => {
                    out.push(Record::Message(message).encode_shared())
                }
                _ => out.push(msg.record.clone()),
            }
            // Restore routes the message to every matching durable queue: those
            // done with it get an ack right after.
            let Ok(topic) = Topic::new(&msg.topic) else {
                continue;
            };
            let mut matching = Vec::new();
            self.index.for_each_match(topic, |t| matching.push(*t));
            for t in matching {
                if holders.contains(&t) || !self.is_durable(t) {
                    continue;
                }
                if let Some(r) = self.ack_record(t, msg.id) {
                    out.push(r);
                }
            }
        }
        // After the messages: restoring one moves the next id past it.
        self.retained_records(&mut out);
        for ((link, producer), seq, topic_seq) in self.dedup.entries() {
            let record = match link {
                true => Record::LinkDedupMark {
                    producer,
                    seq,
                    topic_seq,
                },
                false => Record::DedupMark {
                    producer,
                    seq,
                    topic_seq,
                },
            };
            out.push(record.encode_shared());
        }
        // The ids this run may have handed out past the messages kept: a
        // compaction must not bring back a lower start.
        let reserved = self.ids_until.max(self.ids_restored);
        if reserved > 0 {
            out.push(Record::IdReserve { until: reserved }.encode_shared());
        }
        // Last: restore skips message records with ids below it.
        out.push(
            Record::NextId {
                next: self.next_msg,
            }
            .encode_shared(),
        );
        Some(Snapshot {
            records: out,
            upto: self.store.last_token(),
        })
    }

    /// What each durable queue still holds (waiting, in flight, or still to
    /// replay), and every QoS 1 message still needed at all.
    fn held_messages(&self) -> Held {
        let mut held = Held::new();
        let queue_holds = |target: Target, held: &mut Held| {
            let Some(q) = self.queue(target) else { return };
            q.for_each_waiting(&mut |x: &Queued| note(held, &x.msg, Some(target)));
            if let Some(replay) = &q.replay {
                replay.for_each_pending(&self.topics, |m| note(held, m, Some(target)));
            }
        };
        for (k, sub) in self.subs.iter() {
            if sub.group.is_none() && self.is_durable(Target::Sub(k)) {
                queue_holds(Target::Sub(k), &mut held);
            }
        }
        for (g, group) in self.groups.iter() {
            if group.durable {
                queue_holds(Target::Group(g), &mut held);
            }
        }
        for (_, s) in self.sessions.iter().filter(|(_, s)| s.persistent) {
            for f in s.inflight.values() {
                if self.is_durable(f.target) {
                    note(&mut held, &f.msg, Some(f.target));
                }
            }
        }
        // Handed to the catalog, not stored there yet: the outbox (or the
        // group) still owes them.
        for p in self.mesh.away.peers.values() {
            for (target, q) in p.handed.values().chain(&p.failed) {
                note(&mut held, &q.msg, Some(*target));
            }
        }
        // Admitted and still waiting for the store: owed to the queues chosen then.
        for p in &self.pending {
            if let Pending::Release {
                msg,
                targets,
                cut: false,
                ..
            } = p
            {
                note(&mut held, msg, None);
                for &t in targets.iter().filter(|&&t| self.is_durable(t)) {
                    note(&mut held, msg, Some(t));
                }
            }
        }
        for t in self.topics.values() {
            for m in &t.retained {
                note(&mut held, m, None);
            }
        }
        held
    }

    /// The record saying `target` is done with message `msg`.
    fn ack_record(&self, target: Target, msg: u64) -> Option<Arc<[u8]>> {
        Some(match target {
            Target::Sub(k) => {
                let sub = self.subs.get(k)?;
                let s = self.sessions.get(sub.session)?;
                Record::Ack {
                    client: &s.client,
                    sub: sub.id,
                    msg,
                }
                .encode_shared()
            }
            Target::Group(g) => {
                let group = self.groups.get(g)?;
                Record::GroupAck {
                    filter: &group.filter,
                    group: &group.name,
                    msg,
                }
                .encode_shared()
            }
        })
    }
}
