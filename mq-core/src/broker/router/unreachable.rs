//! Peers that are live but out of reach (`Config::link_grace`): a link
//! session without a connection for longer than the grace has what its peer
//! wants handed to the catalog, as a peer away has (`broker::mesh::offline`),
//! and leaves the groups others serve. Only its link back ends that: the
//! adapter's word that the peer is live (`Broker::node_live`, said each time
//! it tries to connect) does not, since the peer never stopped being live.

use super::Router;
use crate::broker::mesh::link::OUTBOX_SUB;
use crate::broker::slab::Key;
use crate::time::Instant;
use crate::wire::mesh::NODE_PREFIX;

impl Router {
    /// Session `session` lost its connection: a peer's link session starts
    /// its grace.
    pub(super) fn link_down(&mut self, session: Key, now: Instant) {
        if self.cfg.link_grace.is_none() {
            return;
        }
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        if s.client.starts_with(NODE_PREFIX) && s.subs.contains_key(&OUTBOX_SUB) {
            // A link that came up and fell again since the last look keeps
            // its first time down: a flapping link is still out of reach.
            self.not_linked_yet(session, now);
        }
    }

    /// A live peer's link session known here that has no connection: its
    /// grace starts now unless it started already.
    pub(super) fn not_linked_yet(&mut self, session: Key, now: Instant) {
        if self.cfg.link_grace.is_some() {
            self.mesh.away.unlinked.entry(session).or_insert(now);
        }
    }

    /// The live peers `live` (node ids) whose link session known here has
    /// no connection (not linked since this node started) get their grace
    /// from now, unless it started already.
    pub(super) fn live_not_linked(&mut self, live: &[&str], now: Instant) {
        for &n in live {
            let session = self.peer_session(n);
            let unlinked = |k: &Key| self.sessions.get(*k).is_some_and(|s| s.conn.is_none());
            if let Some(k) = session.filter(unlinked) {
                self.not_linked_yet(k, now);
            }
        }
    }

    /// The peers whose link stayed down past the grace are handed on; those
    /// linked again are dropped from the watch.
    pub(super) fn hand_on_unreachable(&mut self, now: Instant) {
        let Some(grace) = self.cfg.link_grace else {
            return;
        };
        if self.mesh.away.unlinked.is_empty() {
            return;
        }
        let mut due = alloc::vec::Vec::new();
        let sessions = &self.sessions;
        self.mesh.away.unlinked.retain(|&k, &mut since| {
            let Some(s) = sessions.get(k) else {
                return false;
            };
            if s.conn.is_some() {
                return false;
            }
            if now < since + grace {
                return true;
            }
            due.push(k);
            false
        });
        for session in due {
            let p = self.mesh.away.peers.entry(session).or_default();
            if p.away {
                continue;
            }
            p.away = true;
            p.unreachable = true;
            self.mesh.stats.unreachable += 1;
            self.leave_groups(session, now);
        }
    }
}
