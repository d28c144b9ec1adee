//! The router's part of the mesh (see `broker::mesh`): local interest as
//! subscriptions come and go, peers' interest as they declare it, and which
//! peers' outboxes a message goes to.

use alloc::string::String;
use alloc::vec::Vec;

use super::{Router, Subscription};
use crate::broker::ConnId;
use crate::broker::auth::Permissions;
use crate::broker::command::{Output, Via};
use crate::broker::mesh::Mesh;
use crate::broker::record::{Record, RecordError};
use crate::broker::slab::{Key, Slab};
use crate::broker::timers::Target;
use crate::time::Instant;
use crate::topic::{Filter, Topic};
use crate::wire::Reason;
use crate::wire::mesh::{Interest, LINK_PREFIX, NODE_PREFIX};

impl Router {
    /// Whether `session` is a peer node's link session (its subscription is
    /// that peer's outbox).
    pub(super) fn is_peer_session(&self, session: Key) -> bool {
        self.sessions
            .get(session)
            .is_some_and(|s| s.client.starts_with(NODE_PREFIX))
    }

    /// Whether connection `conn`, holding `perms`, may take `client_id`:
    /// `$link.<peer>` is the local session of a link this node opened, never
    /// a connection's; `$node.<id>` is a peer node's link session (its
    /// outbox), which a connection takes only when auth is open or its
    /// credentials grant node links: a subscribe permission covering
    /// `$node.<id>` (`$node.>` for every node, `$node.{client_id}`-style
    /// patterns work too; `>` does not cover it).
    pub(super) fn may_take_client_id(
        &self,
        conn: ConnId,
        client_id: &str,
        perms: &Permissions,
    ) -> Result<(), &'static str> {
        if client_id.starts_with(LINK_PREFIX) != self.mesh.is_link(conn) {
            return Err("client ids $link.* are reserved for node links");
        }
        if client_id.starts_with(NODE_PREFIX)
            && !self.cfg.auth.is_open()
            && !Filter::new(client_id).is_ok_and(|f| perms.may_subscribe(f))
        {
            return Err("not permitted to link as a node");
        }
        Ok(())
    }

    /// A subscription to `filter` (a member of `group`) appeared (`add`) or
    /// went: a local one changes the interest this node declares on its links.
    pub(super) fn mesh_subscription(
        &mut self,
        filter: &str,
        outbox: bool,
        group: Option<&str>,
        add: bool,
    ) {
        if outbox {
            self.mesh.outbox_changed(add);
            return;
        }
        if self.mesh.local_changed(filter, group, add) {
            let links: Vec<_> = self.mesh.links().collect();
            for conn in links {
                self.links.wake(conn);
            }
        }
    }

    /// Keeps, among `targets`, what a message from `via` may go to: from a
    /// client, the outboxes of the peers whose interest `topic` matches (and
    /// every local queue); from a link, local queues only (the one-hop rule):
    /// the fan-out subscriptions, or the one group it was forwarded for.
    pub(super) fn mesh_route(&mut self, topic: Topic<'_>, via: Via<'_>, targets: &mut Vec<Target>) {
        let subs = &self.subs;
        let is_outbox = |k: &Key| subs.get(*k).is_some_and(|s| s.outbox);
        match via {
            Via::Client => Self::keep_wanted(subs, &mut self.mesh, topic, targets),
            Via::Link => targets.retain(|t| matches!(t, Target::Sub(k) if !is_outbox(k))),
            Via::LinkGroup { filter, group } => targets.retain(|t| {
                matches!(t, Target::Group(g) if self
                    .groups
                    .get(*g)
                    .is_some_and(|x| x.filter == filter && x.name == group))
            }),
        }
    }

    /// Keeps, among `targets` of a client's message to `topic`, every local
    /// queue and the outboxes of the peers whose interest matches `topic`.
    /// (An associated function, so a caller may hold a topic's state.)
    pub(super) fn keep_wanted(
        subs: &Slab<Subscription>,
        mesh: &mut Mesh,
        topic: Topic<'_>,
        targets: &mut Vec<Target>,
    ) {
        if !mesh.has_outboxes() {
            return;
        }
        let wanted = mesh.wanted_by(topic);
        targets.retain(|t| match t {
            Target::Sub(k) => subs
                .get(*k)
                .is_none_or(|s| !s.outbox || wanted.contains(&s.session)),
            Target::Group(_) => true,
        });
    }

    /// Whether subscription `sub` is a peer's (its outbox, or its membership
    /// of a group).
    pub(super) fn is_outbox(&self, sub: Key) -> bool {
        self.subs.get(sub).is_some_and(|s| s.outbox)
    }

    /// Whether a group has a local member that can take a message now
    /// (connected, active, with credit): then it picks no peer's. One that
    /// is away or busy does not hold the group's messages back from peers'
    /// live members.
    pub(super) fn has_local_member(&self, members: &[Key]) -> bool {
        members
            .iter()
            .any(|&m| !self.is_outbox(m) && self.can_take(m))
    }

    /// Whether local group `name` of `filter` has a member that is
    /// connected and active: a job forwarded for it is stored here (a busy
    /// member takes it once it has credit); else the link hands it back.
    pub(crate) fn has_live_member(&self, filter: &str, name: &str) -> bool {
        let key = (String::from(filter), String::from(name));
        let Some(g) = self
            .group_by_name
            .get(&key)
            .and_then(|&g| self.groups.get(g))
        else {
            return false;
        };
        g.members.iter().any(|&m| {
            let sub = self.subs.get(m).filter(|s| !s.outbox && s.active);
            sub.and_then(|s| self.sessions.get(s.session))
                .is_some_and(|s| s.conn.is_some())
        })
    }

    /// Counts an admitted message: forwarded to the outboxes among
    /// `targets`, or received over a link.
    pub(super) fn mesh_count(&mut self, via: Via<'_>, targets: &[Target]) {
        let from_link = via != Via::Client;
        if from_link {
            self.mesh.stats.received += 1;
        }
        if self.mesh.has_outboxes() {
            let outboxes = targets
                .iter()
                .filter(
                    |t| matches!(t, Target::Sub(k) if self.subs.get(*k).is_some_and(|s| s.outbox)),
                )
                .count();
            self.mesh.stats.forwarded += outboxes as u64;
        }
    }

    /// A peer declared interest on its link session.
    pub(super) fn peer_interest(
        &mut self,
        conn: ConnId,
        session: Key,
        now: Instant,
        interest: Interest<'_>,
    ) {
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        if !s.client.starts_with(NODE_PREFIX) {
            // Only node links declare interest; a client's is its subscriptions.
            self.stats.protocol_errors += 1;
            return;
        }
        let (client, persistent) = (s.client.clone(), s.persistent);
        let record = |held: bool| persistent.then_some(held);
        match interest {
            Interest::Begin => self.mesh.peer_begin(session),
            Interest::Add(f) => {
                if let Ok(filter) = Filter::new(f)
                    && self.mesh.peer_add(session, filter)
                    && let Some(held) = record(true)
                {
                    self.emit(&Record::Interest {
                        client: &client,
                        filter: f,
                        held,
                    });
                }
            }
            Interest::Remove(f) => self.peer_withdraw(session, &client, persistent, f),
            Interest::End => {
                for f in self.mesh.peer_end(session, conn) {
                    self.peer_withdraw(session, &client, persistent, &f);
                }
                self.drop_stale_groups(conn, session, now);
                if self.mesh.peer_declared_on(session) == Some(conn)
                    && let Some(peer) = client.strip_prefix(NODE_PREFIX)
                {
                    self.snapshot_not_due(peer, now);
                }
            }
        }
    }

    /// The peer's snapshot did not repeat these group memberships (they
    /// stayed inactive since it resumed the session): it has no members left.
    fn drop_stale_groups(&mut self, conn: ConnId, session: Key, now: Instant) {
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        let stale: Vec<u32> = s
            .subs
            .iter()
            .filter(|(_, k)| {
                let sub = self.subs.get(**k);
                sub.is_some_and(|x| x.group.is_some() && !x.active)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in stale {
            self.unsubscribe(conn, session, now, id);
        }
    }

    pub(super) fn peer_withdraw(&mut self, session: Key, client: &str, persistent: bool, f: &str) {
        if let Ok(filter) = Filter::new(f)
            && self.mesh.peer_remove(session, filter)
            && persistent
        {
            self.emit(&Record::Interest {
                client,
                filter: f,
                held: false,
            });
        }
    }

    /// Applies a stored `Record::Interest`.
    pub(super) fn restore_interest(
        &mut self,
        client: &str,
        filter: &str,
        held: bool,
    ) -> Result<(), RecordError> {
        let Ok(f) = Filter::new(filter) else {
            return Err(RecordError::Malformed);
        };
        let session = match self.by_client.get(client) {
            Some(&k) => k,
            None => self.create_session(client, true, false),
        };
        match held {
            true => self.mesh.peer_add(session, f),
            false => self.mesh.peer_remove(session, f),
        };
        Ok(())
    }

    /// What the peer whose link session is `$node.<peer>` declared.
    pub(crate) fn peer_filters(&self, peer: &str) -> Vec<String> {
        self.peer_session(peer)
            .map(|k| self.mesh.peer_filters(k).map(String::from).collect())
            .unwrap_or_default()
    }

    /// The groups (filter, name) the peer's link session is a member of.
    pub(crate) fn peer_groups(&self, peer: &str) -> Vec<(String, String)> {
        let Some(s) = self.peer_session(peer).and_then(|k| self.sessions.get(k)) else {
            return Vec::new();
        };
        let groups = s.subs.values().filter_map(|&k| self.subs.get(k)?.group);
        let groups = groups.filter_map(|g| self.groups.get(g));
        groups.map(|g| (g.filter.clone(), g.name.clone())).collect()
    }

    /// Forgets node `peer`: its link session with its outbox, interest and
    /// group memberships. True when there was one.
    pub(crate) fn forget_node(&mut self, peer: &str, now: Instant) -> bool {
        let Some(session) = self.peer_session(peer) else {
            return false;
        };
        if let Some(conn) = self.sessions.get(session).and_then(|s| s.conn) {
            self.end_with(conn, now, Output::Close(Reason::Normal));
        }
        self.destroy_session(session, true, now);
        self.snapshot_not_due(peer, now);
        true
    }

    pub(super) fn peer_session(&self, peer: &str) -> Option<Key> {
        let mut client = String::from(NODE_PREFIX);
        client.push_str(peer);
        self.by_client.get(&client).copied()
    }
}
