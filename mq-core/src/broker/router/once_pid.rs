//! The packet ids exactly-once deliveries (MQTT QoS 2) go out under, kept so
//! that a delivery sent again after a restart has the id it had: a client
//! holding the message until PUBREL by that id recognises it, and a client
//! holding it by another would hand it over twice.
//!
//! The codec gives a delivery the id its message id gives (`take_pid`) when
//! it is free: that needs no record. Else it takes another, and for a
//! persistent session the id is recorded (`OncePid`, naming the
//! subscription and message) and the PUBLISH waits until that is stored;
//! the id stays taken until the delivery ends (`Ack`, or `OnceDelivered` and
//! then `OnceCompleted`) or its subscription does (`Unsubscribe`), and a
//! resumed session sends it under that id again. Message ids give only the
//! lower half of the ids and the others come from the upper half, so that a
//! delivery waiting to go out again (the client may hold it by its own id,
//! and after a restart the broker cannot know whether it went out) finds
//! its id not taken by another that went first.
//!
//! A `$share` group member's delivery is recorded the same way, by the
//! member's subscription: the message stays in the group's queue, and comes
//! back to the session under that id when the group gives it to the session
//! again (after a restart the group's queue is restored, and a member that
//! reconnects may get it; a member that left gave it back, to go to another
//! member first). What ends it is the group's: its `GroupAck`, which does
//! not name the member, so it frees the ids any member recorded for the
//! message (the last to get it may not be the one that recorded one), and
//! `OnceDelivered` naming the member that received it.
//!
//! The log stays consistent when a crash cuts it: an id freed by a record
//! (`OnceCompleted`, the `Ack` or `Unsubscribe` ending a recorded id) is
//! not taken again until that record is stored, so every record or PUBLISH
//! reusing it comes after the record that freed it, and a restored log
//! never shows one id in two deliveries.

use super::{Pending, Router};
use crate::broker::ConnId;
use crate::broker::record::Record;
use crate::broker::slab::Key;

impl Router {
    /// Whether packet id `pid` is not free for a delivery to `conn`'s
    /// session, though its connection may not know it: the session has an
    /// exactly-once delivery with it not completed (received, PUBREL sent or
    /// still to send: after a reconnect it goes out once its record is
    /// stored), or recorded for another delivery, or a record that freed it
    /// is not stored yet.
    pub(crate) fn releasing(&self, conn: ConnId, pid: u16) -> bool {
        let Some(s) = self.links.session(conn).and_then(|k| self.sessions.get(k)) else {
            return false;
        };
        s.delivered_once.contains(&pid)
            || s.once_pids.contains_key(&pid)
            || s.once_freed
                .get(&pid)
                .is_some_and(|&t| !self.store.is_persisted(Some(t)))
    }

    /// The packet id recorded for `conn`'s delivery `tag`, with whether the
    /// record is stored: only then may the delivery go out, and `conn` is
    /// woken then (it may be a new connection of the session).
    pub(crate) fn once_pid(&mut self, conn: ConnId, tag: u64) -> Option<(u16, bool)> {
        let s = self
            .links
            .session(conn)
            .and_then(|k| self.sessions.get(k))?;
        if s.once_pids.is_empty() {
            return None;
        }
        let f = s.inflight.get(tag)?;
        let sub = self.subs.get(f.sub)?.id;
        let msg = f.msg.id;
        let (pid, token) = s
            .once_pids
            .iter()
            .find(|&(_, &(s, m, _))| (s, m) == (sub, msg))
            .map(|(&pid, &(_, _, token))| (pid, token))?;
        let stored = self.store.is_persisted(Some(token));
        if !stored {
            self.wake_once_stored(conn, token);
        }
        Some((pid, stored))
    }

    /// Lists `conn` for writing once the record with `token` is stored.
    fn wake_once_stored(&mut self, conn: ConnId, token: u64) {
        let wake = Pending::Wake { token, conn };
        if !matches!(self.pending.back(), Some(Pending::Wake { token: t, conn: c }) if (*t, *c) == (token, conn))
        {
            self.pending.push_back(wake);
        }
    }

    /// `conn`'s exactly-once delivery `tag` takes packet id `pid`, not its
    /// message's own: recorded for a persistent session (a fan-out
    /// subscription's or a group member's). Whether it may go out now; if
    /// not, `conn` is woken once the record is stored.
    pub(crate) fn record_once_pid(&mut self, conn: ConnId, tag: u64, pid: u16) -> bool {
        let Some(session) = self.links.session(conn) else {
            return true;
        };
        let Some(s) = self.sessions.get(session) else {
            return true;
        };
        let Some(f) = s.inflight.get(tag) else {
            return true;
        };
        if !s.persistent {
            return true;
        }
        // A group member's too: its subscription's id names it.
        let Some(sub) = self.subs.get(f.sub).map(|sub| sub.id) else {
            return true;
        };
        let msg = f.msg.id;
        let client = s.client.clone();
        let token = self.emit(&Record::OncePid {
            client: &client,
            pid,
            sub,
            msg,
        });
        if let Some(s) = self.sessions.get_mut(session)
            && s.once_pids.insert(pid, (sub, msg, token)).is_none()
        {
            self.recorded_pids += 1;
        }
        self.wake_once_stored(conn, token);
        false
    }

    /// The session's subscription `sub` is done with message `msg` (the
    /// record saying so has `token`): a packet id recorded for it is free
    /// once that is stored.
    pub(super) fn once_pid_ended(&mut self, session: Key, sub: u32, msg: u64, token: u64) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if s.once_pids.is_empty() {
            return;
        }
        let Some(pid) = s
            .once_pids
            .iter()
            .find(|&(_, &(s, m, _))| (s, m) == (sub, msg))
            .map(|(&pid, _)| pid)
        else {
            return;
        };
        s.once_pids.remove(&pid);
        self.recorded_pids = self.recorded_pids.saturating_sub(1);
        self.once_freed(session, pid, token);
    }

    /// Group `g` is done with message `msg` (the `GroupAck` saying so has
    /// `token`; `None` when restoring it): a packet id a member recorded
    /// for it is free once that is stored. Any member may have one, not
    /// only the last to get it: a member that left gave it back to the
    /// group.
    pub(super) fn once_pids_group_ended(&mut self, g: Key, msg: u64, token: Option<u64>) {
        // At every ack of a durable group: no walk while no id is recorded.
        if self.recorded_pids == 0 {
            return;
        }
        let Some(group) = self.groups.get(g) else {
            return;
        };
        let mut ended = alloc::vec::Vec::new();
        for &k in &group.members {
            if let Some(sub) = self.subs.get(k)
                && self
                    .sessions
                    .get(sub.session)
                    .is_some_and(|s| !s.once_pids.is_empty())
            {
                ended.push((sub.session, sub.id));
            }
        }
        for (session, sub) in ended {
            match token {
                Some(token) => self.once_pid_ended(session, sub, msg, token),
                None => {
                    if let Some(s) = self.sessions.get_mut(session) {
                        let before = s.once_pids.len();
                        s.once_pids.retain(|_, &mut (s, m, _)| (s, m) != (sub, msg));
                        let gone = before - s.once_pids.len();
                        self.recorded_pids = self.recorded_pids.saturating_sub(gone);
                    }
                }
            }
        }
    }

    /// The session's subscription `sub` is gone (the record saying so has
    /// `token`; `None` when restoring it): the packet ids recorded for its
    /// deliveries are free once that is stored.
    pub(super) fn once_pids_unsubscribed(&mut self, session: Key, sub: u32, token: Option<u64>) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if s.once_pids.is_empty() {
            return;
        }
        let pids: alloc::vec::Vec<u16> = (s.once_pids.iter())
            .filter(|&(_, &(s, _, _))| s == sub)
            .map(|(&pid, _)| pid)
            .collect();
        for pid in &pids {
            s.once_pids.remove(pid);
        }
        self.recorded_pids = self.recorded_pids.saturating_sub(pids.len());
        if let Some(token) = token {
            for pid in pids {
                self.once_freed(session, pid, token);
            }
        }
    }

    /// `pid` was freed by the record with `token`: not taken again before
    /// it is stored.
    pub(super) fn once_freed(&mut self, session: Key, pid: u16, token: u64) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        let store = &self.store;
        s.once_freed
            .retain(|_, &mut t| !store.is_persisted(Some(t)));
        s.once_freed.insert(pid, token);
    }

    /// How many recorded packet ids are counted (for tests).
    #[cfg(test)]
    pub(crate) fn recorded_pids(&self) -> usize {
        self.recorded_pids
    }

    /// Restores a record of `client`'s session: delivery `(sub, msg)` went
    /// out under `pid`.
    pub(super) fn restore_once_pid(&mut self, client: &str, pid: u16, sub: u32, msg: u64) {
        if let Some(&k) = self.by_client.get(client)
            && let Some(s) = self.sessions.get_mut(k)
            && s.once_pids.insert(pid, (sub, msg, 0)).is_none()
        {
            self.recorded_pids += 1;
        }
    }
}
