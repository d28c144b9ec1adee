//! The mesh: a node is a [`Broker`](super::Broker) plus links to other nodes.
//!
//! The wire rules are in [`crate::wire::mesh`]. Here is what a node decides,
//! all of it in the core (the adapter only moves bytes, and says when a link's
//! transport is up or gone):
//!
//! - **Local interest**, reference counted: a filter counts once however many
//!   local fan-out subscriptions hold it (persistent sessions that are away
//!   included, so their messages keep coming), a group (filter, name) once
//!   however many local members it has, and each 0→1 or 1→0 change is
//!   declared on every link this node opened ([`Broker::connect_link`]); a
//!   link that (re)connects declares the whole set first.
//!   Subscriptions of peers' link sessions are not local interest.
//! - **Peers' interest**: what each peer declared on its link to us, kept
//!   with the peer's persistent `$node.<id>` session and stored as
//!   `Record::Interest`, so a restarted node still forwards while its peers
//!   are away.
//! - **Forwarding**: a message a local client publishes goes into the outbox
//!   (the link session's queue) of every peer whose interest it matches; one
//!   that arrived over a link goes to local subscribers only (the one-hop
//!   rule), so a full mesh neither loops nor duplicates. The outbox is an
//!   ordinary durable queue: bounded, stored, redelivered after a reconnect.
//! - **Groups**: a peer with local members of a group joins this node's
//!   group with its link session. A group picks among its local members
//!   while it has any, and among the peers' link sessions only when it has
//!   none, so exactly one node serves each message, local members first.
//!   (A group message that came over a link and finds no local member any
//!   more may thus go one hop further, to a node that has members.)
//! - **Arrival**: [`link`] is the codec of a link this node opened: it
//!   publishes what the peer delivers to the local subscribers, with a
//!   deduplication key from the peer's node, the topic and the message's
//!   id there (what its outbox deliveries carry as `seq`), and acks each
//!   delivery only once that publish is stored.
//!
//! - **Away peers and offline queues** ([`offline`]): a peer whose lease
//!   expired keeps its interest and outbox here, and what its outbox holds
//!   goes to its offline queue in the catalog, leaving the log only once
//!   stored there; a node not linked to a peer (away or live) learns its
//!   interest from the catalog, and holds its clients' QoS 1 publishes
//!   until it has read that once; a node drains its own queue as if its
//!   messages came over their origins' links.
//!
//! What the adapter of a node does: for each peer it knows (from the
//! catalog), connect a TCP stream to it, call [`Broker::connect_link`] and
//! drive the connection as any other, and connect again when it closes;
//! accept the peers' links as ordinary mq connections; call
//! [`Broker::node_away`] when a peer's lease expired and
//! [`Broker::node_live`] when it is listed again; and move offline items
//! and interest between the broker and the catalog (see [`offline`]), with
//! `Config::await_catalog` set.
//! [`Broker::forget_node`] drops a peer with everything kept for it.
//!
//! [`Roster`] makes the decisions of that loop: which peers to link to, when
//! to connect again, which are away; [`CatalogRound`] those of its round
//! with the catalog after each heartbeat.
//!
//! [`Broker::connect_link`]: super::Broker::connect_link
//! [`Broker::forget_node`]: super::Broker::forget_node
//! [`Broker::node_away`]: super::Broker::node_away
//! [`Broker::node_live`]: super::Broker::node_live

mod catalog_round;
pub(crate) mod link;
pub(crate) mod offline;
mod roster;

pub use catalog_round::{
    CatalogRound, HandOn, Handed, InterestRow, InterestWrite, Listing, PageRequest, PeerInterest,
    RUN_BYTES, hand_on_again,
};
pub use offline::{
    OFFLINE_BATCH, OFFLINE_RETRY, OfflineError, OfflineItem, OfflineMessage, OfflineTicket,
};
pub use roster::{Roster, RosterAction};

use alloc::borrow::ToOwned;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use super::slab::Key;
use super::{AcceptError, Broker, Codec, ConnId, Map};
use crate::time::Instant;
use crate::topic::{Filter, SubscriptionIndex, Topic};

/// The node's side of the broker: its links, and its peers.
impl Broker {
    /// A transport this node connected to node `peer` (a TCP stream) is up:
    /// the connection is a node link (see [`crate::wire::mesh`]) on which
    /// this node, `node`, receives what its local sessions want of the
    /// peer's messages. Drive it exactly as an accepted connection
    /// (`handle_input`, `poll_transmit`, `handle_closed`); when it closes,
    /// connect again. Open one to every peer, as each peer opens one to this
    /// node: what this node's clients publish reaches the peer's sessions
    /// over the peer's link. Node ids are printable ASCII without spaces, up
    /// to 100 bytes. The link presents `token` to the peer, whose auth (when
    /// not open) must grant node links: the token's subscribe permissions
    /// must cover `$node.<node>` (e.g. `$node.>`; `>` does not) besides `>`;
    /// this node's own auth does not apply to what the link publishes here.
    pub fn connect_link(
        &mut self,
        now: Instant,
        node: &str,
        peer: &str,
        token: Option<&str>,
    ) -> Result<ConnId, AcceptError> {
        let id = self.open_conn()?;
        let link = link::LinkConn::new(id, now, (node, peer), token, &mut self.router);
        self.conns.insert(id, Codec::Link(link));
        Ok(id)
    }

    /// What the mesh did (see [`connect_link`](Self::connect_link)).
    pub fn mesh_stats(&self) -> MeshStats {
        let mesh = &self.router.mesh;
        MeshStats {
            away: mesh.away.peers.values().filter(|p| p.away).count() as u64,
            ..mesh.stats
        }
    }

    /// The filters node `peer` declared on its link to this node (stored
    /// with its link session, so they outlive the link).
    pub fn peer_interest(&self, peer: &str) -> Vec<String> {
        self.router.peer_filters(peer)
    }

    /// Forgets node `peer` for good: its link session, with the outbox of
    /// messages waiting for it (dropped), its interest and its group
    /// memberships, so it gets no more traffic (a group it served is served
    /// by others). A link of it still open is closed. Returns whether this
    /// node knew it. For a peer whose lease expired, use
    /// [`node_away`](Self::node_away), which keeps its messages.
    pub fn forget_node(&mut self, now: Instant, peer: &str) -> bool {
        self.router.forget_node(peer, now)
    }

    /// The groups (filter, name) node `peer` joined on its link to this node.
    pub fn peer_groups(&self, peer: &str) -> Vec<(String, String)> {
        self.router.peer_groups(peer)
    }
}

/// What the mesh did, for metrics and the simulation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeshStats {
    /// Links this node opened that are connected now.
    pub links: u64,
    /// Messages put into peers' outboxes (one per peer).
    pub forwarded: u64,
    /// Messages that arrived over links and were new.
    pub received: u64,
    /// Messages that arrived over links again and were dropped as duplicates.
    pub deduplicated: u64,
    /// Peers away now (lease expired, or out of reach past the link grace),
    /// whose outboxes go to the catalog.
    pub away: u64,
    /// Messages for peers that are away, stored in the catalog (one per peer).
    pub offline_stored: u64,
    /// Messages from this node's catalog queue published here (new or not).
    pub offline_drained: u64,
    /// Messages for peers that are away dropped because the catalog's queue
    /// of the peer was full (one per peer).
    pub offline_dropped: u64,
    /// Messages from this node's catalog queue it will never take (too
    /// large, a topic it refuses), dropped from the queue.
    pub offline_rejected: u64,
    /// Live peers whose link stayed down past `Config::link_grace`, handed
    /// on to the catalog as if away.
    ///
    /// [`Config::link_grace`]: super::Config::link_grace
    pub unreachable: u64,
}

/// One peer's declared interest.
#[derive(Default)]
struct Peer {
    filters: BTreeSet<String>,
    /// During a snapshot: the filters it has not named again yet.
    stale: Option<BTreeSet<String>>,
    /// The connection of its link session on which it last completed a
    /// snapshot: while that one is connected, what it declared is the
    /// newest word on its interest.
    declared_on: Option<ConnId>,
}

/// A change of local interest still to declare on one link.
pub(crate) struct Change {
    pub filter: String,
    /// A group's membership (its name) rather than a filter's interest.
    pub group: Option<String>,
    pub add: bool,
}

#[derive(Default)]
pub(crate) struct Mesh {
    /// (Filter, group) -> local subscriptions holding it (fan-out ones: no group).
    local: BTreeMap<(String, Option<String>), u32>,
    /// The links this node opened, with the changes each still has to declare.
    links: Map<ConnId, VecDeque<Change>>,
    /// Peers' interest, by their link session.
    peers: Map<Key, Peer>,
    /// Every peer's filters, to the peer's link session.
    index: SubscriptionIndex<Key>,
    /// Peers' outbox subscriptions.
    outboxes: usize,
    /// [`wanted_by`](Self::wanted_by)'s answer, its allocation kept for the
    /// next publish.
    wanted: Vec<Key>,
    /// Peers away, whose outboxes go to the catalog.
    pub away: offline::Away,
    pub stats: MeshStats,
}

impl Mesh {
    // ------------------------------------------------------- local interest

    /// A local subscription to `filter` (a member of `group`) appeared
    /// (`add`) or went: true when that changed the interest to declare,
    /// which is then queued on every link.
    pub(crate) fn local_changed(&mut self, filter: &str, group: Option<&str>, add: bool) -> bool {
        let key = (filter.to_owned(), group.map(ToOwned::to_owned));
        let changed = if add {
            let n = self.local.entry(key.clone()).or_insert(0);
            *n += 1;
            *n == 1
        } else {
            match self.local.get_mut(&key) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    self.local.remove(&key);
                    true
                }
                None => false,
            }
        };
        if changed {
            for pending in self.links.values_mut() {
                pending.push_back(Change {
                    filter: key.0.clone(),
                    group: key.1.clone(),
                    add,
                });
            }
        }
        changed
    }

    /// The links with changes to declare.
    pub(crate) fn links(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.links.keys().copied()
    }

    /// The filters and groups local subscriptions hold now.
    pub(crate) fn local_interest(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.local.keys().map(|(f, g)| (f.as_str(), g.as_deref()))
    }

    /// A link this node opened: it declares changes from now on.
    pub(crate) fn open_link(&mut self, conn: ConnId) {
        self.links.insert(conn, VecDeque::new());
    }

    /// The link's session is open: it declares the whole interest now, which
    /// makes the changes queued so far moot.
    pub(crate) fn link_up(&mut self, conn: ConnId) {
        if let Some(pending) = self.links.get_mut(&conn) {
            pending.clear();
        }
        self.stats.links += 1;
    }

    pub(crate) fn close_link(&mut self, conn: ConnId, was_up: bool) {
        self.links.remove(&conn);
        if was_up {
            self.stats.links = self.stats.links.saturating_sub(1);
        }
    }

    /// Whether `conn` is a link this node opened.
    pub(crate) fn is_link(&self, conn: ConnId) -> bool {
        self.links.contains_key(&conn)
    }

    pub(crate) fn next_change(&mut self, conn: ConnId) -> Option<Change> {
        self.links.get_mut(&conn)?.pop_front()
    }

    pub(crate) fn has_changes(&self, conn: ConnId) -> bool {
        self.links.get(&conn).is_some_and(|p| !p.is_empty())
    }

    // ------------------------------------------------------ peers' interest

    /// A snapshot of the peer's interest starts.
    pub(crate) fn peer_begin(&mut self, peer: Key) {
        let p = self.peers.entry(peer).or_default();
        p.stale = Some(p.filters.clone());
    }

    /// The peer wants `filter`: true when that is new.
    pub(crate) fn peer_add(&mut self, peer: Key, filter: Filter<'_>) -> bool {
        let p = self.peers.entry(peer).or_default();
        if let Some(stale) = p.stale.as_mut() {
            stale.remove(filter.as_str());
        }
        if !p.filters.insert(filter.as_str().to_owned()) {
            return false;
        }
        self.index.insert(filter, peer);
        true
    }

    /// The catalog says the peer wants `filter`: true when that is new. A
    /// snapshot under way still withdraws it unless it names it.
    pub(crate) fn peer_add_listed(&mut self, peer: Key, filter: Filter<'_>) -> bool {
        let p = self.peers.entry(peer).or_default();
        if !p.filters.insert(filter.as_str().to_owned()) {
            return false;
        }
        if let Some(stale) = p.stale.as_mut() {
            stale.insert(filter.as_str().to_owned());
        }
        self.index.insert(filter, peer);
        true
    }

    /// The connection on which the peer last completed a snapshot.
    pub(crate) fn peer_declared_on(&self, peer: Key) -> Option<ConnId> {
        self.peers.get(&peer).and_then(|p| p.declared_on)
    }

    /// The peer no longer wants `filter`: true when it did.
    pub(crate) fn peer_remove(&mut self, peer: Key, filter: Filter<'_>) -> bool {
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        if !p.filters.remove(filter.as_str()) {
            return false;
        }
        self.index.remove(filter, &peer);
        true
    }

    /// The peer's snapshot on connection `conn` is complete: the filters it
    /// did not name again. An end without a begin completes nothing.
    pub(crate) fn peer_end(&mut self, peer: Key, conn: ConnId) -> Vec<String> {
        let p = self.peers.entry(peer).or_default();
        let Some(stale) = p.stale.take() else {
            return Vec::new();
        };
        p.declared_on = Some(conn);
        stale.into_iter().collect()
    }

    /// The peer's link session is gone for good.
    pub(crate) fn forget_peer(&mut self, peer: Key) {
        self.away.peers.remove(&peer);
        let Some(p) = self.peers.remove(&peer) else {
            return;
        };
        for f in &p.filters {
            if let Ok(filter) = Filter::new(f) {
                self.index.remove(filter, &peer);
            }
        }
    }

    pub(crate) fn peer_filters(&self, peer: Key) -> impl Iterator<Item = &str> {
        self.peers
            .get(&peer)
            .into_iter()
            .flat_map(|p| p.filters.iter().map(String::as_str))
    }

    /// A peer's outbox subscription appeared (`add`) or went.
    pub(crate) fn outbox_changed(&mut self, add: bool) {
        match add {
            true => self.outboxes += 1,
            false => self.outboxes = self.outboxes.saturating_sub(1),
        }
    }

    /// Whether any subscription is a peer's outbox (else routing skips the mesh).
    pub(crate) fn has_outboxes(&self) -> bool {
        self.outboxes > 0
    }

    /// A number that changes whenever a peer's interest does: what
    /// [`wanted_by`](Self::wanted_by) said for a topic holds while it stays
    /// the same.
    pub(crate) fn interest_generation(&self) -> u64 {
        self.index.generation()
    }

    /// The link sessions of the peers whose interest `topic` matches.
    pub(crate) fn wanted_by(&mut self, topic: Topic<'_>) -> &[Key] {
        let out = &mut self.wanted;
        out.clear();
        self.index.for_each_match(topic, |&k| {
            if !out.contains(&k) {
                out.push(k);
            }
        });
        out
    }
}
