//! What the catalog says of the peers, for the router (see
//! `broker::mesh::offline`): the interest and groups each peer wrote of
//! itself, made the peer's link session's here while its link has not
//! declared its own, and which peers are listed at all.

use alloc::string::String;
use alloc::vec::Vec;

use super::Router;
use super::subscribe::valid_group_name;
use crate::broker::mesh::link::{OUTBOX_SUB, link_credit};
use crate::broker::record::Record;
use crate::broker::slab::Key;
use crate::broker::timers::Target;
use crate::time::Instant;
use crate::topic::Filter;
use crate::wire::QoS;
use crate::wire::mesh::{NODE_PREFIX, free_group_sub};

impl Router {
    /// Adds `interest` (filter, group), from the catalog, to the interest
    /// and groups of node `peer`, unless its link is connected and declared
    /// its interest (a whole snapshot) since; and, when `away` (it is not
    /// live) and not linked, marks it away.
    pub(crate) fn catalog_interest(
        &mut self,
        peer: &str,
        interest: &[(&str, Option<&str>)],
        away: bool,
        now: Instant,
    ) {
        let mut client = String::from(NODE_PREFIX);
        client.push_str(peer);
        let session = match self.by_client.get(&client) {
            Some(&k) => k,
            None => self.create_session(&client, true, true),
        };
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        let linked = s.conn.is_some();
        if linked && s.conn == self.mesh.peer_declared_on(session) {
            // Its link declared its interest since it connected: newer.
            return;
        }
        // A link that connected but has not finished its snapshot yet (this
        // node may have restarted without the peer's interest, or with an
        // old one) gets the catalog's too: else what this node acks meanwhile
        // misses the peer. The snapshot withdraws what it does not name.
        if !s.subs.contains_key(&OUTBOX_SUB) {
            // This node's own; the peer's link asks for its own when it
            // re-asserts the outbox.
            let credit = link_credit(&self.cfg);
            let filter = Filter::new(">").expect("`>` is a filter");
            self.add_subscription(
                session,
                OUTBOX_SUB,
                filter,
                None,
                QoS::AtLeastOnce,
                credit,
                None,
            );
            self.emit(&Record::Subscribe {
                client: &client,
                sub: OUTBOX_SUB,
                filter: ">",
                group: None,
                qos: QoS::AtLeastOnce,
                credit,
            });
        }
        // Only added: what the peer declared on its link may be newer than
        // what it wrote to the catalog, and a filter wrongly withdrawn loses
        // messages, one wrongly kept only carries some more. Its next link
        // snapshot withdraws what it no longer wants.
        let leaving = away && !linked;
        for &(f, group) in interest {
            let Ok(filter) = Filter::new(f) else {
                self.stats.protocol_errors += 1;
                continue;
            };
            if let Some(name) = group {
                self.catalog_group(session, &client, filter, name, leaving);
            } else if self.mesh.peer_add_listed(session, filter) {
                self.emit(&Record::Interest {
                    client: &client,
                    filter: f,
                    held: true,
                });
            }
        }
        if leaving {
            self.lease_expired(session, peer, now);
        } else if !linked {
            self.not_linked_yet(session, now);
        }
    }

    /// Peer session `session` (`client`) joins group `name` of `filter`
    /// from the catalog, unless it is a member: under the id its link
    /// would first try ([`free_group_sub`] past the ids it holds), and
    /// not active, as a resumed membership waits for its link to join
    /// again (its snapshot's end drops it if the link does not). A peer
    /// `away` does not join a group others serve: it would leave it at once
    /// (see `leave_groups`), at every listing.
    fn catalog_group(
        &mut self,
        session: Key,
        client: &str,
        filter: Filter<'_>,
        name: &str,
        away: bool,
    ) {
        if !valid_group_name(name) {
            self.stats.protocol_errors += 1;
            return;
        }
        let key = (String::from(filter.as_str()), String::from(name));
        let served = (self.group_by_name.get(&key)).and_then(|&g| self.groups.get(g));
        if away && served.is_some_and(|g| !g.members.is_empty()) {
            return;
        }
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        let member = s.subs.values().any(|&k| {
            let g = self.subs.get(k).and_then(|x| x.group);
            g.and_then(|g| self.groups.get(g))
                .is_some_and(|g| g.filter == filter.as_str() && g.name == name)
        });
        if member {
            return;
        }
        let id = free_group_sub(filter.as_str(), name, |id| s.subs.contains_key(&id));
        let credit = link_credit(&self.cfg);
        let qos = QoS::AtLeastOnce;
        let key = self.add_subscription(session, id, filter, Some(name), qos, credit, None);
        if let Some(sub) = self.subs.get_mut(key) {
            sub.active = false;
        }
        self.emit(&Record::Subscribe {
            client,
            sub: id,
            filter: filter.as_str(),
            group: Some(name),
            qos,
            credit,
        });
    }

    /// Forgets the away peers whose interest left the catalog, once what
    /// was kept for them is handed on (see `Broker::handle_catalog_listing`).
    pub(crate) fn catalog_listing(&mut self, listed: &[&str], live: &[&str], now: Instant) {
        let leaving = core::mem::take(&mut self.mesh.away.leaving);
        let mut gone: Vec<String> = (self.mesh.away.listed.iter().chain(leaving.keys()))
            .filter(|n| !listed.contains(&n.as_str()) && !live.contains(&n.as_str()))
            .filter(|n| {
                (self.peer_session(n))
                    .and_then(|s| self.mesh.away.peers.get(&s))
                    .is_some_and(|p| p.away)
            })
            .cloned()
            .collect();
        gone.sort_unstable();
        gone.dedup();
        for node in gone {
            let since = leaving.get(&node).copied().unwrap_or(self.next_msg);
            self.leave_mesh(node, since, now);
        }
        self.mesh.away.listed = listed.iter().map(|&n| String::from(n)).collect();
        if !self.mesh.away.had_listing {
            self.first_listing(live, now);
        }
    }

    /// Node `peer`, away, is no longer listed: forgotten when nothing
    /// published before `since` is left for it here, else its interest is
    /// withdrawn and it waits (`leaving`) until that has gone to its
    /// catalog queue.
    fn leave_mesh(&mut self, peer: String, since: u64, now: Instant) {
        let Some(session) = self.peer_session(&peer) else {
            return;
        };
        if !self.keeps_for(session, since) {
            self.forget_node(&peer, now);
            return;
        }
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        let (client, persistent) = (s.client.clone(), s.persistent);
        let filters: Vec<String> = self.mesh.peer_filters(session).map(String::from).collect();
        for f in filters {
            self.peer_withdraw(session, &client, persistent, &f);
        }
        self.mesh.away.leaving.insert(peer, since);
    }

    /// Whether anything waits for peer session `session` here: handed on
    /// and not answered, in its outbox (which takes nothing new once its
    /// interest is withdrawn), or published before `since` in a group it
    /// alone serves (which goes on taking jobs: those newer are not waited
    /// for, or a busy group would keep it for ever).
    fn keeps_for(&self, session: Key, since: u64) -> bool {
        let in_flight = (self.mesh.away.peers.get(&session))
            .is_some_and(|p| !p.handed.is_empty() || !p.failed.is_empty());
        in_flight
            || (self.hand_on_queues(session).into_iter()).any(|t| {
                let Some(q) = self.queue(t) else {
                    return false;
                };
                match t {
                    Target::Sub(_) => q.occupancy() > 0,
                    Target::Group(_) => {
                        let mut older = false;
                        q.for_each_waiting(&mut |x| older |= x.msg.id < since);
                        older
                    }
                }
            })
    }
}
