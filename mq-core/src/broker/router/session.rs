//! Sessions: opening one on a connection (with takeover and resume), detaching
//! it when the connection ends, and ending it.

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{Pending, PendingWill, Router, Session};
use crate::broker::ConnId;
use crate::broker::auth::{Credentials, Permissions};
use crate::broker::command::{Connect, Outcome, Output};
use crate::broker::queue::Queued;
use crate::broker::record::Record;
use crate::broker::slab::Key;
use crate::broker::timers::{Target, Timer};
use crate::time::Instant;
use crate::topic::Topic;
use crate::wire::Reason;
use crate::wire::mesh::NODE_PREFIX;

const MAX_CLIENT_ID: usize = 128;

impl Router {
    pub(super) fn connect(&mut self, conn: ConnId, now: Instant, c: Connect<'_>) -> Outcome {
        if self.shutting_down {
            return Outcome::Refused(Reason::ShuttingDown, "shutting down");
        }
        if c.client_id.is_empty()
            || c.client_id.len() > MAX_CLIENT_ID
            || c.client_id.bytes().any(|b| !(0x21..=0x7e).contains(&b))
        {
            return Outcome::Refused(Reason::ProtocolViolation, "invalid client id");
        }
        let identity = self.links.get(conn).and_then(|l| l.identity.as_deref());
        let creds = Credentials {
            client_id: c.client_id,
            token: c.token,
            identity,
        };
        // A link this node opened publishes what its peer forwards: the
        // node's own session (the peer checked the link's credentials).
        let perms = match self.mesh.is_link(conn) {
            true => Some(Permissions::all()),
            false => self.cfg.auth.authorize(&creds),
        };
        let Some(perms) = perms else {
            self.stats.auth_failures += 1;
            return Outcome::Refused(Reason::BadToken, "unknown token or identity");
        };
        if let Err(text) = self.may_take_client_id(conn, c.client_id, &perms) {
            self.stats.auth_failures += 1;
            return Outcome::Refused(Reason::NotAuthorized, text);
        }
        if let Some(w) = &c.will {
            match Topic::new(w.publish.topic) {
                Err(_) => return Outcome::Refused(Reason::InvalidTopic, "invalid will topic"),
                Ok(t) if w.publish.topic.starts_with('$') || !perms.may_publish(t) => {
                    self.stats.auth_failures += 1;
                    return Outcome::Refused(Reason::NotAuthorized, "will topic not permitted");
                }
                Ok(_) => {}
            }
        }
        let mut session_present = false;
        if let Some(&existing) = self.by_client.get(c.client_id) {
            // Take over from a connection still attached to the session.
            if let Some(old) = self.sessions.get(existing).and_then(|s| s.conn) {
                self.end_with(
                    old,
                    now,
                    Output::Error(Reason::SessionTakenOver, "session taken over"),
                );
            }
            let persistent = self.sessions.get(existing).is_some_and(|s| s.persistent);
            if c.resume && persistent {
                session_present = true;
                self.session_back(existing);
            } else {
                self.destroy_session(existing, true, now);
            }
        }
        let session = match self.by_client.get(c.client_id) {
            Some(&k) if session_present => k,
            _ => self.create_session(c.client_id, c.persistent, true),
        };
        let s = self
            .sessions
            .get_mut(session)
            .expect("session just found or made");
        s.conn = Some(conn);
        s.perms = perms;
        s.default_credit = c.default_credit;
        s.ack_deadlines = c.ack_deadlines;
        s.no_local = c.no_local;
        s.expiry = c.expiry;
        s.will = c.will.as_ref().map(PendingWill::new);
        // A resumed persistent session the client now wants clean (MQTT 5:
        // no session expiry) ends with this connection.
        if session_present && !c.persistent {
            s.persistent = false;
            let client = s.client.clone();
            self.emit(&Record::SessionEnd { client: &client });
        }
        let Some(s) = self.sessions.get(session) else {
            return Outcome::Done;
        };
        // Credit windows restart with the connection: nothing is in flight. A
        // resumed subscription delivers again once the client re-asserts it
        // (unless its protocol keeps subscriptions).
        for &sub in s.subs.values() {
            if let Some(sub) = self.subs.get_mut(sub) {
                sub.credit = sub.window;
                sub.active = !session_present || c.keep_subscriptions;
            }
        }
        if let Some(link) = self.links.get_mut(conn) {
            link.session = Some(session);
            link.token = c.token.map(ToOwned::to_owned);
        }
        // A node link files what it receives under this node's epoch.
        let epoch = match c.client_id.starts_with(NODE_PREFIX) {
            true => self.store.epoch.get(),
            false => 0,
        };
        let connected = Output::Connected {
            session_present,
            epoch,
        };
        self.send(conn, connected);
        if session_present {
            self.release_again(conn, session);
        }
        self.pump_session(session, now);
        Outcome::Done
    }

    pub(super) fn create_session(&mut self, client: &str, persistent: bool, record: bool) -> Key {
        let key = self.sessions.insert(Session {
            client: client.to_owned(),
            persistent,
            conn: None,
            perms: Permissions::all(),
            default_credit: self.cfg.limits.credit,
            subs: BTreeMap::new(),
            next_tag: 1,
            inflight: Default::default(),
            cursors: BTreeMap::new(),
            timer: None,
            ack_deadlines: true,
            expiry: None,
            expiry_timer: None,
            will: None,
            once: Default::default(),
            delivered_once: Default::default(),
            once_pids: Default::default(),
            once_freed: Default::default(),
            no_local: false,
        });
        self.by_client.insert(client.to_owned(), key);
        if persistent && record {
            self.emit(&Record::SessionOpen { client });
        }
        key
    }

    /// Removes a session with its subscriptions; in-flight group deliveries go
    /// back to their groups.
    pub(super) fn destroy_session(&mut self, session: Key, record: bool, now: Instant) {
        self.requeue_inflight(session, now);
        self.return_handed(session, now);
        // The session ends: a will still waiting for its delay goes out now.
        let will = self.take_will(session);
        let Some(mut s) = self.sessions.remove(session) else {
            return;
        };
        self.timers.stop(&mut s.timer, Timer::Session(session));
        self.timers
            .stop(&mut s.expiry_timer, Timer::Expiry(session));
        self.by_client.remove(&s.client);
        self.mesh.forget_peer(session);
        for (_, sub) in s.subs {
            self.remove_subscription(sub, now);
        }
        if s.persistent && record {
            self.emit(&Record::SessionEnd { client: &s.client });
        }
        if let Some(w) = will {
            self.publish_will(w, now);
        }
    }

    /// The connection is ending (its codec closes it, the client left, or its
    /// transport is gone): its session is detached — a persistent one keeps
    /// its in-flight deliveries for later, a clean one is discarded — and its
    /// deliveries not yet written go back. Answers already queued are still
    /// written; nothing more is queued for it.
    pub(crate) fn end_conn(&mut self, conn: ConnId, now: Instant) {
        let Some(link) = self.links.get_mut(conn) else {
            return;
        };
        link.closing = true;
        link.out.retain(|o| !matches!(o, Output::Deliver(_)));
        let Some(session) = link.session.take() else {
            return;
        };
        self.forget_conn(conn);
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if s.conn != Some(conn) {
            return;
        }
        s.conn = None;
        self.link_down(session, now);
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        if s.persistent {
            self.requeue_inflight(session, now);
            self.session_away(session, now);
        } else {
            self.destroy_session(session, false, now);
        }
    }

    /// Ends the connection with `last` as the final thing written to it.
    pub(crate) fn end_with(&mut self, conn: ConnId, now: Instant, last: Output) {
        self.end_conn(conn, now);
        if let Some(link) = self.links.get_mut(conn) {
            link.out.push_back(last);
        }
        self.links.wake(conn);
    }

    /// A serial line starts a new connection: what the old one had not
    /// written yet is dropped, and the line is open for a new session.
    pub(crate) fn restart_conn(&mut self, conn: ConnId, now: Instant) {
        self.end_conn(conn, now);
        if let Some(link) = self.links.get_mut(conn) {
            link.out.clear();
            link.closing = false;
        }
    }

    /// The connection's transport is gone.
    pub(crate) fn conn_gone(&mut self, conn: ConnId, now: Instant) {
        self.end_conn(conn, now);
        self.links.remove(conn);
        self.unpark(conn);
    }

    /// Answers still waiting for the store will never reach `conn` (a serial
    /// line reuses its id for the next connection, which must not get them).
    fn forget_conn(&mut self, conn: ConnId) {
        for p in &mut self.pending {
            match p {
                Pending::Release { acks, .. } => acks.retain(|(c, _)| *c != conn),
                Pending::Reply { conn: c, .. } => {
                    if *c == Some(conn) {
                        *c = None;
                    }
                }
                // Waking a connection for nothing is harmless.
                Pending::Wake { .. } => {}
            }
        }
        self.unpark(conn);
    }

    /// Closes every connection with `ShuttingDown`; sessions stay stored.
    pub(crate) fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        let ids: Vec<ConnId> = self.links.ids().collect();
        for conn in ids {
            if !self.links.get(conn).is_some_and(|l| l.closing) {
                self.end_with(conn, now, Output::Close(Reason::ShuttingDown));
            }
        }
    }

    /// Puts a session's in-flight deliveries back into their queues, oldest first.
    pub(super) fn requeue_inflight(&mut self, session: Key, now: Instant) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        self.timers.stop(&mut s.timer, Timer::Session(session));
        let mut by_target: BTreeMap<Target, Vec<Queued>> = BTreeMap::new();
        for f in s.inflight.drain() {
            self.stats.current_inflight = self.stats.current_inflight.saturating_sub(1);
            let avoid = matches!(f.target, Target::Group(_)).then_some(f.sub);
            by_target.entry(f.target).or_default().push(Queued {
                msg: f.msg,
                attempt: f.attempt,
                avoid,
                retained: false,
            });
        }
        for (target, items) in by_target {
            let mut keep = Vec::with_capacity(items.len());
            for q in items {
                if let Some(queue) = self.queue_mut(target) {
                    queue.end_inflight(q.msg.payload_len);
                }
                if q.attempt >= self.cfg.max_attempts {
                    self.finish(target, &q.msg);
                    self.dead_letter(now, &q.msg);
                } else {
                    keep.push(q);
                }
            }
            self.stats.current_queued += keep.len() as u64;
            if let Some(queue) = self.queue_mut(target) {
                queue.requeue_front(keep);
            }
            self.pump(target, now);
        }
    }

    /// Whether the session `conn` carries is persistent.
    pub(crate) fn session_persistent(&self, conn: ConnId) -> bool {
        self.links
            .session(conn)
            .and_then(|k| self.sessions.get(k))
            .is_some_and(|s| s.persistent)
    }

    /// Whether a session is stored for `client_id`.
    pub(crate) fn has_session(&self, client_id: &str) -> bool {
        self.by_client.contains_key(client_id)
    }
}
