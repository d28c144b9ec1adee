//! The router's part of the mesh (see `broker::mesh`): local interest as
//! subscriptions come and go, peers' interest as they declare it, and which
//! peers' outboxes a message goes to.

use alloc::string::String;
use alloc::vec::Vec;

use super::Router;
use crate::broker::record::{Record, RecordError};
use crate::broker::slab::Key;
use crate::broker::timers::Target;
use crate::topic::{Filter, Topic};
use crate::wire::mesh::{Interest, NODE_PREFIX};

impl Router {
    /// Whether `session` is a peer node's link session (its subscription is
    /// that peer's outbox).
    pub(super) fn is_peer_session(&self, session: Key) -> bool {
        self.sessions
            .get(session)
            .is_some_and(|s| s.client.starts_with(NODE_PREFIX))
    }

    /// A subscription to `filter` appeared (`add`) or went: a local fan-out
    /// one changes the interest this node declares on its links.
    pub(super) fn mesh_subscription(&mut self, filter: &str, outbox: bool, group: bool, add: bool) {
        if outbox {
            self.mesh.outbox_changed(add);
            return;
        }
        if group {
            return;
        }
        if self.mesh.local_changed(filter, add) {
            let links: Vec<_> = self.mesh.links().collect();
            for conn in links {
                self.links.wake(conn);
            }
        }
    }

    /// Keeps, among `targets`, the outboxes of the peers whose interest
    /// `topic` matches, and none for a message that came over a link (the
    /// one-hop rule).
    pub(super) fn mesh_route(&self, topic: Topic<'_>, from_link: bool, targets: &mut Vec<Target>) {
        if !self.mesh.has_outboxes() {
            return;
        }
        let wanted = match from_link {
            true => Vec::new(),
            false => self.mesh.wanted_by(topic),
        };
        targets.retain(|t| match t {
            Target::Sub(k) => self
                .subs
                .get(*k)
                .is_none_or(|s| !s.outbox || wanted.contains(&s.session)),
            Target::Group(_) => true,
        });
    }

    /// Counts an admitted message: forwarded to the outboxes among
    /// `targets`, or received over a link.
    pub(super) fn mesh_count(&mut self, from_link: bool, targets: &[Target]) {
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
    pub(super) fn peer_interest(&mut self, session: Key, interest: Interest<'_>) {
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
                for f in self.mesh.peer_end(session) {
                    self.peer_withdraw(session, &client, persistent, &f);
                }
            }
        }
    }

    fn peer_withdraw(&mut self, session: Key, client: &str, persistent: bool, f: &str) {
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
        let mut client = String::from(NODE_PREFIX);
        client.push_str(peer);
        self.by_client
            .get(&client)
            .map(|&k| self.mesh.peer_filters(k).map(String::from).collect())
            .unwrap_or_default()
    }
}
