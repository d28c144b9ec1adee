//! Subscriptions and groups: subscribing (with the start of a replay),
//! re-asserting a resumed subscription, unsubscribing, and credit.

use alloc::borrow::ToOwned;
use alloc::vec::Vec;

use super::{Group, Pending, Router, Subscription};
use crate::broker::ConnId;
use crate::broker::command::{Output, SendRetained, Subscribe};
use crate::broker::queue::{Queue, Queued};
use crate::broker::record::Record;
use crate::broker::replay::Replay;
use crate::broker::slab::Key;
use crate::broker::timers::{Target, Timer};
use crate::time::Instant;
use crate::topic::{Filter, Topic};
use crate::wire::{QoS, Reason, Start};

const MAX_GROUP_NAME: usize = 64;

/// Whether `name` may name a group: 1 to [`MAX_GROUP_NAME`] printable ASCII
/// bytes, no spaces.
pub(super) fn valid_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_GROUP_NAME
        && name.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

impl Router {
    pub(super) fn subscribe(&mut self, conn: ConnId, session: Key, now: Instant, s: Subscribe<'_>) {
        let reject = |r: &mut Self, reason| r.send(conn, Output::SubReject { sub: s.sub, reason });
        let Ok(filter) = Filter::new(s.filter) else {
            return reject(self, Reason::InvalidFilter);
        };
        if s.group.is_some_and(|g| !valid_group_name(g)) {
            return reject(self, Reason::InvalidFilter);
        }
        let Some(sess) = self.sessions.get(session) else {
            return;
        };
        // The credit it asks for: how many deliveries it may have unacked.
        let window = match s.credit {
            0 => sess.default_credit,
            c => c,
        }
        .clamp(1, self.cfg.max_credit);
        if let Some(&existing) = sess.subs.get(&s.sub) {
            let same = self.subs.get(existing).is_some_and(|x| {
                x.filter == s.filter
                    && x.group
                        .and_then(|g| self.groups.get(g))
                        .map(|g| g.name.as_str())
                        == s.group
            });
            return if same {
                if let Some(sub) = self.subs.get_mut(existing) {
                    sub.active = true;
                    // A node link's credit is what its receiver's dedup
                    // window allows now (see `link_credit`), which may
                    // differ from the stored subscription's (made by an
                    // older run, or here for a peer away).
                    if sub.outbox {
                        sub.credit = sub.credit.saturating_add(window).saturating_sub(sub.window);
                        sub.window = window;
                    }
                }
                // Its record may still wait for the store (an earlier subscribe
                // on a connection that dropped): answer once that is stored.
                let token = sess.persistent.then(|| self.store.last_token());
                self.send_once_stored(conn, token, Output::SubAck { sub: s.sub });
                let target = self.target_of(existing);
                if s.retained == SendRetained::Always && s.group.is_none() {
                    self.send_retained(existing, s.filter, now);
                }
                self.pump(target, now);
            } else {
                reject(self, Reason::IdInUse)
            };
        }
        if !sess.perms.may_subscribe(filter) {
            self.stats.auth_failures += 1;
            return reject(self, Reason::NotAuthorized);
        }
        if sess.subs.len() >= self.cfg.max_subscriptions {
            return reject(self, Reason::LimitReached);
        }
        let credit = window;
        let persistent = sess.persistent;
        let client = sess.client.clone();
        let key = self.add_subscription(
            session,
            s.sub,
            filter,
            s.group,
            s.qos,
            credit,
            Some(s.start),
        );
        let token = persistent.then(|| {
            self.emit(&Record::Subscribe {
                client: &client,
                sub: s.sub,
                filter: s.filter,
                group: s.group,
                qos: s.qos,
                credit,
            })
        });
        self.send_once_stored(conn, token, Output::SubAck { sub: s.sub });
        if s.retained != SendRetained::Never && s.group.is_none() {
            self.send_retained(key, s.filter, now);
        }
        let target = self.target_of(key);
        self.pump(target, now);
    }

    /// Adds a subscription (and its group when it is the first member). A
    /// `start` other than `New` makes a new queue replay retained messages.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_subscription(
        &mut self,
        session: Key,
        id: u32,
        filter: Filter<'_>,
        group: Option<&str>,
        qos: QoS,
        credit: u32,
        start: Option<Start>,
    ) -> Key {
        let limits = self.cfg.queue_for(filter);
        let persistent = self.sessions.get(session).is_some_and(|s| s.persistent);
        let outbox = self.is_peer_session(session);
        let existing_group = group.and_then(|name| {
            let k = (filter.as_str().to_owned(), name.to_owned());
            self.group_by_name.get(&k).copied()
        });
        // A new queue (the subscription's, or a new group's) starts with the replay.
        let mut replay = match existing_group {
            Some(_) => None,
            None => start.and_then(|start| self.replay_for(session, filter, start)),
        };
        let group_key = match (group, existing_group) {
            (None, _) => None,
            (Some(_), Some(g)) => Some(g),
            (Some(name), None) => {
                let mut queue = Queue::new(limits);
                queue.replay = replay.take();
                let g = self.groups.insert(Group {
                    filter: filter.as_str().to_owned(),
                    name: name.to_owned(),
                    members: Vec::new(),
                    next_member: 0,
                    queue,
                    durable: false,
                });
                self.group_by_name
                    .insert((filter.as_str().to_owned(), name.to_owned()), g);
                self.index.insert(filter, Target::Group(g));
                Some(g)
            }
        };
        let mut queue = Queue::new(limits);
        queue.replay = replay;
        let key = self.subs.insert(Subscription {
            session,
            id,
            filter: filter.as_str().to_owned(),
            group: group_key,
            qos,
            window: credit,
            credit,
            queue,
            active: true,
            outbox,
        });
        self.mesh_subscription(filter.as_str(), outbox, group, true);
        if let Some(s) = self.sessions.get_mut(session) {
            s.subs.insert(id, key);
        }
        match group_key {
            Some(g) => {
                let group = self.groups.get_mut(g).expect("group just found or made");
                group.members.push(key);
                group.durable |= persistent;
            }
            None => self.index.insert(filter, Target::Sub(key)),
        }
        key
    }

    /// A replay of what the topics matching `filter` retain, from `start`.
    fn replay_for(&self, session: Key, filter: Filter<'_>, start: Start) -> Option<Replay> {
        let cursors = self
            .sessions
            .get(session)
            .and_then(|s| s.cursors.get(filter.as_str()));
        if start == Start::New || (start == Start::Cursor && cursors.is_none()) {
            return None;
        }
        let mut topics = Vec::new();
        for t in self.topics.values() {
            let Ok(topic) = Topic::new(&t.name) else {
                continue;
            };
            let Some(first) = t.retained.front() else {
                continue;
            };
            if !filter.matches(topic) {
                continue;
            }
            let from = match start {
                Start::New => continue,
                Start::Seq(from) => from,
                Start::Last(n) => {
                    let skip = t.retained.len().saturating_sub(n as usize);
                    t.retained.get(skip).map_or(u64::MAX, |m| m.seq)
                }
                Start::Cursor => cursors
                    .and_then(|c| c.get(&t.name))
                    .map_or(first.seq, |&acked| acked + 1),
            };
            topics.push((t.name.clone(), from));
        }
        Replay::new(topics, self.next_msg, &self.topics)
    }

    pub(super) fn unsubscribe(&mut self, conn: ConnId, session: Key, now: Instant, id: u32) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        let Some(key) = s.subs.remove(&id) else {
            // Unknown id: acknowledge anyway, unsubscribing is idempotent.
            self.send(conn, Output::UnsubAck { sub: id });
            return;
        };
        let persistent = s.persistent;
        let client = s.client.clone();
        // In-flight deliveries of this subscription: group ones go back.
        let tags = s.inflight.tags_where(|f| f.sub == key);
        for tag in tags {
            let Some(f) = self.take_inflight(session, tag) else {
                continue;
            };
            if let Some(q) = self.queue_mut(f.target) {
                q.end_inflight(f.msg.payload_len);
            }
            if let Target::Group(_) = f.target {
                self.stats.current_queued += 1;
                if let Some(q) = self.queue_mut(f.target) {
                    q.requeue_front(alloc::vec![Queued {
                        msg: f.msg,
                        attempt: f.attempt,
                        avoid: None,
                        retained: false,
                    }]);
                }
            }
        }
        self.remove_subscription(key, now);
        if persistent {
            let token = self.emit(&Record::Unsubscribe {
                client: &client,
                sub: id,
            });
            self.once_pids_unsubscribed(session, id, Some(token));
            self.pending.push_back(Pending::Reply {
                token,
                conn: Some(conn),
                out: Output::UnsubAck { sub: id },
            });
        } else {
            self.send(conn, Output::UnsubAck { sub: id });
        }
    }

    /// Drops a subscription (and its group when it was the last member).
    pub(super) fn remove_subscription(&mut self, key: Key, now: Instant) {
        let Some(mut sub) = self.subs.remove(key) else {
            return;
        };
        let filter = Filter::new(&sub.filter).expect("stored filters are valid");
        let group = sub
            .group
            .and_then(|g| self.groups.get(g))
            .map(|g| g.name.clone());
        self.mesh_subscription(&sub.filter, sub.outbox, group.as_deref(), false);
        match sub.group {
            None => {
                self.index.remove(filter, &Target::Sub(key));
                self.drop_queue(Target::Sub(key), &mut sub.queue);
            }
            Some(g) => {
                let Some(group) = self.groups.get_mut(g) else {
                    return;
                };
                group.members.retain(|m| *m != key);
                if group.members.is_empty() {
                    let mut group = self.groups.remove(g).expect("group exists");
                    self.group_by_name
                        .remove(&(group.filter.clone(), group.name.clone()));
                    self.index.remove(filter, &Target::Group(g));
                    self.drop_queue(Target::Group(g), &mut group.queue);
                } else {
                    self.pump(Target::Group(g), now);
                }
            }
        }
    }

    /// A removed queue's waiting messages are gone, and so is its timer.
    fn drop_queue(&mut self, target: Target, queue: &mut Queue) {
        self.timers
            .stop(&mut queue.retry_timer, Timer::Retry(target));
        let dropped = queue.drain_waiting().count();
        self.stats.current_queued = self.stats.current_queued.saturating_sub(dropped as u64);
    }

    pub(super) fn credit(&mut self, session: Key, sub: u32, credit: u32, now: Instant) {
        let key = self
            .sessions
            .get(session)
            .and_then(|s| s.subs.get(&sub).copied());
        let Some(key) = key else { return };
        if let Some(s) = self.subs.get_mut(key) {
            s.credit = s.credit.saturating_add(credit).min(self.cfg.max_credit);
            let target = self.target_of(key);
            self.pump(target, now);
        }
    }
}
