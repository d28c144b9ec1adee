//! An operator's requests (see `broker::admin`): listing topics, sessions and
//! messages, and the durable purge and delete, applied the same way live and
//! when their records are restored.

use alloc::string::String;
use alloc::vec::Vec;

use super::{Pending, Router};
use crate::broker::ConnId;
use crate::broker::admin::{
    AdminReply, AdminRequest, MessageInfo, MessageList, SessionInfo, SubscriptionInfo, TopicInfo,
};
use crate::broker::command::Output;
use crate::broker::message::Msg;
use crate::broker::record::Record;
use crate::broker::slab::Key;
use crate::broker::timers::Target;
use crate::time::Instant;
use crate::topic::Topic;
use crate::wire::Reason;

/// Which messages of a topic a purge or delete removes.
#[derive(Clone, Copy)]
pub(super) struct Cut<'a> {
    topic: &'a str,
    /// Sequence numbers below this one (`u64::MAX` for a delete).
    before: u64,
}

impl Cut<'_> {
    fn takes(&self, msg: &Msg) -> bool {
        *msg.topic == *self.topic && msg.seq < self.before
    }
}

/// What a cut removed.
#[derive(Default)]
struct Removed {
    retained: u64,
    queued: u64,
}

impl Router {
    /// `Command::Admin` from `conn`: refused unless its token has the admin
    /// permission; a purge or delete is answered once its record is stored.
    pub(super) fn admin_command(
        &mut self,
        conn: ConnId,
        session: Key,
        now: Instant,
        id: u32,
        request: &AdminRequest<'_>,
    ) {
        if !self.sessions.get(session).is_some_and(|s| s.perms.admin) {
            self.stats.auth_failures += 1;
            let reply = AdminReply::refused(
                Reason::NotAuthorized,
                "this token may not manage the broker (give it admin = true)",
            );
            self.send(conn, Output::AdminAnswer { id, reply });
            return;
        }
        let (reply, token) = self.admin(now, request);
        self.send_once_stored(conn, token, Output::AdminAnswer { id, reply });
    }

    /// Answers `req`; a purge or delete is also recorded, and the token of its
    /// record returned (answer only once it is stored).
    pub(crate) fn admin(
        &mut self,
        now: Instant,
        req: &AdminRequest<'_>,
    ) -> (AdminReply, Option<u64>) {
        match *req {
            AdminRequest::Topics => (
                AdminReply::Topics {
                    topics: self.topic_infos(),
                    truncated: false,
                },
                None,
            ),
            AdminRequest::Sessions => (
                AdminReply::Sessions {
                    sessions: self.session_infos(),
                    truncated: false,
                },
                None,
            ),
            AdminRequest::Messages {
                topic,
                from,
                limit,
                max_payload,
            } => (self.message_list(topic, from, limit, max_payload), None),
            AdminRequest::Purge { topic, before } => {
                if let Err(refused) = self.known_topic(topic) {
                    return (refused, None);
                }
                let token = self.emit(&Record::Purge { topic, before });
                let r = self.cut(Cut { topic, before }, now);
                let reply = AdminReply::Purged {
                    retained: r.retained,
                    queued: r.queued,
                };
                (reply, Some(token))
            }
            AdminRequest::DeleteTopic { topic } => {
                if let Err(refused) = self.known_topic(topic) {
                    return (refused, None);
                }
                let token = self.emit(&Record::DeleteTopic { topic });
                let r = self.delete_topic(topic, now);
                let reply = AdminReply::Deleted {
                    retained: r.retained,
                    queued: r.queued,
                };
                (reply, Some(token))
            }
        }
    }

    fn known_topic(&self, topic: &str) -> Result<(), AdminReply> {
        if Topic::new(topic).is_err() {
            return Err(AdminReply::refused(
                Reason::InvalidTopic,
                "not a valid topic name (dot-separated tokens, no wildcards)",
            ));
        }
        if !self.topics.contains_key(topic) && !self.retained.contains_key(topic) {
            return Err(AdminReply::refused(Reason::UnknownId, "no such topic"));
        }
        Ok(())
    }

    /// Every topic, by name.
    fn topic_infos(&self) -> Vec<TopicInfo> {
        let mut out: Vec<TopicInfo> = self
            .topics
            .values()
            .map(|t| {
                let mut subscribers = 0u32;
                if let Ok(topic) = Topic::new(&t.name) {
                    self.index.for_each_match(topic, |_| subscribers += 1);
                }
                TopicInfo {
                    name: String::from(&*t.name),
                    first_seq: t.retained.front().map_or(0, |m| m.seq),
                    last_seq: t.next_seq - 1,
                    retained: t.retained.len() as u64,
                    retained_bytes: t.retained_bytes as u64,
                    subscribers,
                    messages_in: t.messages_in,
                    bytes_in: t.bytes_in,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Every session, by client id.
    fn session_infos(&self) -> Vec<SessionInfo> {
        let mut out: Vec<SessionInfo> = self
            .sessions
            .iter()
            .map(|(_, s)| SessionInfo {
                client: s.client.clone(),
                connected: s.conn.is_some(),
                persistent: s.persistent,
                inflight: s.inflight.values().count() as u64,
                subscriptions: s
                    .subs
                    .iter()
                    .filter_map(|(&id, &k)| {
                        let sub = self.subs.get(k)?;
                        let group = sub
                            .group
                            .and_then(|g| self.groups.get(g))
                            .map(|g| g.name.clone());
                        let q = self.queue(self.target_of(k))?;
                        Some(SubscriptionInfo {
                            id,
                            filter: sub.filter.clone(),
                            group,
                            waiting: q.waiting() as u64,
                            inflight: q.inflight() as u64,
                            dead_lettered: q.dead_lettered,
                        })
                    })
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| a.client.cmp(&b.client));
        out
    }

    fn message_list(&self, topic: &str, from: u64, limit: u32, max_payload: u32) -> AdminReply {
        if let Err(refused) = self.known_topic(topic) {
            return refused;
        }
        let Some(t) = self.topics.get(topic) else {
            // Only a retained slot (MQTT): nothing kept for replay.
            return AdminReply::Messages(MessageList {
                topic: String::from(topic),
                total: 0,
                messages: Vec::new(),
            });
        };
        let start = t.retained.partition_point(|m| m.seq < from);
        let messages = t
            .retained
            .range(start..)
            .take(limit as usize)
            .map(|m| {
                let view = m.view();
                let n = view.payload.len().min(max_payload as usize);
                MessageInfo {
                    seq: m.seq,
                    id: m.id,
                    published_us: m.published_at.as_micros(),
                    qos: m.qos,
                    priority: m.priority,
                    size: m.payload_len as u64,
                    payload: view.payload[..n].to_vec(),
                }
            })
            .collect();
        AdminReply::Messages(MessageList {
            topic: String::from(topic),
            total: t.retained.len() as u64,
            messages,
        })
    }

    /// Removes `topic` (see `broker::admin`).
    fn delete_topic(&mut self, topic: &str, now: Instant) -> Removed {
        let removed = self.cut(
            Cut {
                topic,
                before: u64::MAX,
            },
            now,
        );
        self.topics.remove(topic);
        if self.retained.remove(topic).is_some() {
            self.stats.current_retained_slots = self.retained.len() as u64;
        }
        // Pending retained publishes of the topic must not fill the slot again.
        for p in self.pending.iter_mut() {
            if let Pending::Release { msg, retain, .. } = p
                && *msg.topic == *topic
            {
                *retain = false;
            }
        }
        for s in self.sessions.iter_mut() {
            for per_topic in s.cursors.values_mut() {
                per_topic.remove(topic);
            }
        }
        removed
    }

    /// Removes the messages `cut` takes from the topic's retention, from every
    /// queue, from in flight and from what waits for the store.
    fn cut(&mut self, cut: Cut<'_>, now: Instant) -> Removed {
        let mut removed = Removed::default();
        if let Some(t) = self.topics.get_mut(cut.topic) {
            while t.retained.front().is_some_and(|m| cut.takes(m)) {
                let old = t.retained.pop_front().expect("non-empty");
                t.retained_bytes -= old.payload_len;
                removed.retained += 1;
            }
        }
        self.stats.current_retained -= removed.retained;
        self.may_forget(cut.topic, now);

        for t in self.all_targets() {
            if let Some(q) = self.queue_mut(t) {
                q.remove_where(|q| cut.takes(&q.msg), |_| removed.queued += 1);
            }
        }
        self.stats.current_queued -= removed.queued;

        let sessions: Vec<_> = self.sessions.iter().map(|(k, _)| k).collect();
        for session in sessions {
            let tags = match self.sessions.get(session) {
                Some(s) => s.inflight.tags_where(|f| cut.takes(&f.msg)),
                None => continue,
            };
            for tag in tags {
                if let Some(f) = self.end_delivery(session, tag) {
                    self.pump(f.target, now);
                }
            }
        }

        // Admitted and not yet stored: its record comes before the cut's, so
        // it is cut as it would be when the records are restored.
        let mut unreserve: Vec<(Target, usize)> = Vec::new();
        for p in self.pending.iter_mut() {
            if let Pending::Release {
                msg,
                targets,
                cut: c,
                ..
            } = p
                && cut.takes(msg)
            {
                *c = true;
                unreserve.extend(targets.drain(..).map(|t| (t, msg.payload_len)));
            }
        }
        for (t, size) in unreserve {
            if let Some(q) = self.queue_mut(t) {
                q.unreserve(size);
            }
        }
        self.retry_all_parked(now);
        removed
    }

    /// Restores a `Record::Purge`.
    pub(super) fn restore_purge(&mut self, topic: &str, before: u64, now: Instant) {
        self.cut(Cut { topic, before }, now);
    }

    /// Restores a `Record::DeleteTopic`.
    pub(super) fn restore_delete(&mut self, topic: &str, now: Instant) {
        self.delete_topic(topic, now);
    }
}
