//! Offline queues: what a node does for a peer that is away (its lease in
//! the catalog ran out), and with what the catalog kept for it.
//!
//! **Handing on.** A peer the adapter reports away ([`Broker::node_away`]:
//! the roster's `Forget`) keeps its link session here, with its interest and
//! outbox. It leaves each group that others serve (they take its jobs); of a
//! group it alone served it stays the member, so the group's messages are
//! kept for it rather than dropped with the group. Each message in its
//! outbox or in a group it alone serves here (marked with the group, see
//! [`OfflineItem::origin`]), and each new one its interest matches,
//! becomes an [`OfflineItem`] the adapter takes with
//! [`Broker::poll_offline`] and stores in the catalog's queue of the
//! recipient (idempotent on the origin: this node, its run and the message's
//! id). Only QoS 1 messages are handed on: a QoS 0 one in the outbox of a
//! peer away is dropped (at most once; its id is not logged, so a restart
//! could give it to a QoS 1 message the catalog would take for a copy). The
//! item stays in the outbox (in flight, still counted against the outbox's
//! bound, still in the write-ahead log) until the adapter reports it stored
//! ([`Broker::handle_offline_stored`]); only then is it acked out of the
//! outbox. So a QoS 1 message is acknowledged to its publisher once it is in
//! the log, and leaves the log only once it is in the catalog: durable in one
//! place or the other at every moment. A failed store
//! ([`Broker::handle_offline_failed`]: the catalog cannot be reached) puts
//! the item back at the front of the outbox, and the peer's items are
//! offered again after [`OFFLINE_RETRY`]; while that lasts the outbox fills,
//! and once it is full its overflow policy applies to new publishes (by
//! default they are refused with `QueueFull`). A full catalog queue of the
//! peer ([`Broker::handle_offline_full`]) sheds the item instead, counted in
//! `offline_dropped`: a node that never comes back must not hold back this
//! node's publishers. A peer whose interest leaves the catalog (an operator
//! forgot it) is forgotten here too ([`Broker::handle_catalog_listing`]).
//! A peer that links again ([`Broker::node_live`], or its link session
//! resumed) is served over its link again; items handed on meanwhile may
//! reach it both ways, and its node drops the second copy.
//!
//! **Peers live but out of reach.** With [`Config::link_grace`] a live
//! peer whose link session has had no connection for the grace (a
//! partition, a firewall one way) is handed on in the same way and leaves
//! the groups others serve (`router/unreachable.rs`); only its link back
//! ends that (`node_live` does not: it is live all along), and since it
//! drains its queue, a full catalog queue of it keeps the item here, as a
//! failed store does, rather than dropping it. The grace starts when the
//! link session loses its connection, or, for a peer not linked since this
//! node started, at the first listing or the catalog's interest or
//! `node_live`; a restart starts it again. It counts as away in
//! [`MeshStats::away`](super::MeshStats::away) and [`Broker::away_nodes`],
//! and in `unreachable` once each time.
//!
//! [`Config::link_grace`]: super::super::Config::link_grace
//!
//! **Interest of peers not linked.** A node that is not linked to a peer
//! (it started after the peer died, or the peer has not linked to it yet, or
//! is down with its lease still running) learns the peer's interest from the
//! catalog, where each node writes what it declares on its links, its
//! groups included ([`Broker::declared_interest`]): the adapter hands the
//! interest of every
//! node that is not live to [`Broker::set_away_interest`], and of every
//! other node to [`Broker::set_live_interest`], which make (and store) the
//! peer's link session and outbox here as if it had linked, until its link
//! declares for itself; what they match waits in the outbox for the link,
//! or goes to the catalog while the peer is away. They only add interest: a
//! filter wrongly withdrawn would lose messages, one wrongly kept only
//! carries some more until the peer's next link snapshot. A node that
//! started does not acknowledge its clients' QoS 1 publishes before its
//! first listing ([`Config::await_catalog`]): until then it does not know
//! what those peers want; nor, if it restarted, within the same wait, before
//! each live peer has declared its interest on its link again (what a peer
//! declared just before a crash may be neither in this node's store nor in
//! the catalog yet: `router/catalog_wait.rs`). A link that connected but
//! has not sent its snapshot yet counts as not linked here: a node that
//! restarted may have lost what the peer declared before (its records were
//! not durable yet), and its first listing may come before the snapshot.
//!
//! [`Config::await_catalog`]: super::super::Config::await_catalog
//!
//! **Draining.** A node reads its own queue from the catalog (at start, when
//! it registers again, and now and then while the queue is not empty) and
//! hands each message to [`Broker::deliver_offline`], which publishes it to
//! the local subscribers as a link's delivery: the one-hop rule applies, and
//! the deduplication key is the one its origin's link would have used (the
//! origin node, the topic, the message id there), so a message that came both
//! over a link and from the catalog is delivered once. The adapter removes
//! it from the catalog only once [`Broker::is_offline_stored`] says the local
//! publish is in the store.
//!
//! **Order.** Items are handed on in outbox order, and the catalog keeps a
//! recipient's queue in enqueue order: an adapter that stores one item after
//! the other and drains in queue order keeps the order per publisher and
//! topic along the catalog path. Along the link path too, for the outbox:
//! a peer's outbox does not deliver on its link while items handed on are
//! not answered, and those the catalog did not store go out first, in
//! outbox order (a group's jobs are not held so: newer ones may go out on
//! the link while older ones are on their way to the catalog). Across
//! paths it does not hold: messages a publisher's node forwards over the
//! link once the peer is back may overtake older ones still waiting in the
//! catalog.
//!
//! **A group's job twice.** A catalog call whose outcome is unknown (it
//! timed out after its commit) is answered as failed, and its group jobs
//! go back to their group; so do those on their way to the catalog when
//! the peer's session ends here (forgotten, replaced, expired) while the
//! call may still store them. A member here that joined meanwhile gets the
//! job, and the peer drains the catalog's copy too. Two members of one
//! group then each get it once, as at-least-once allows; a fan-out
//! message is deduplicated at the peer as usual.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use super::super::Broker;
use super::super::Map;
use super::super::queue::Queued;
use super::super::slab::Key;
use super::super::timers::Target;
use crate::time::Instant;

mod origin;
pub(crate) use origin::split_offline_origin;

/// How long after a failed store the items of that peer are offered again.
pub const OFFLINE_RETRY: Duration = Duration::from_secs(1);

/// How many items an adapter hands on to the catalog in one batch, and at
/// most how many messages of its own queue it reads in one page
/// ([`CatalogRound::next_page`](super::CatalogRound::next_page), smaller when
/// the deduplication window is). Batches follow one another while they come
/// full, and pages while each was full and taken, for up to half a
/// heartbeat ([`hand_on_again`](super::hand_on_again),
/// [`CatalogRound::drain_again`](super::CatalogRound::drain_again)), so a
/// backlog (or a slow catalog) never holds back the heartbeat that renews
/// the node's lease, its links, or its shutdown.
pub const OFFLINE_BATCH: usize = 256;

/// A message for a peer that is away, to store in the catalog's queue of
/// `recipient` (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineItem {
    /// The peer's node id: the catalog queue to store it in.
    pub recipient: String,
    /// The message's id at this node: with this node's id and `epoch`, its
    /// origin (the catalog's idempotence key, the recipient's deduplication
    /// key). Only QoS 1 messages are handed on, whose ids a durable store
    /// never hands out twice; a memory store starts again at 1, under a new
    /// epoch (the adapter adds its registration's incarnation to the
    /// catalog's key too).
    pub id: u64,
    /// The epoch of this node's store (see [`crate::wire::mesh`]).
    pub epoch: u64,
    /// The topic.
    pub topic: String,
    /// Its encoded [`Meta`](crate::wire::Meta) (headers, priority, ...), as
    /// [`Broker::deliver_offline`] takes it back.
    pub meta: Vec<u8>,
    /// The payload.
    pub payload: Vec<u8>,
    /// How long it may still wait, when it has a TTL (at least 1 ms).
    pub ttl: Option<Duration>,
    /// The group (filter, name) it is a job of, when it is not for the
    /// peer's fan-out subscriptions: a group only the peer serves.
    pub group: Option<(String, String)>,
}

impl OfflineItem {
    /// The origin to file it under in the catalog, this node being `node`
    /// (with `id`, the catalog's idempotence key, and what
    /// [`OfflineMessage::origin`] hands back): `node` and its epoch for the
    /// peer's fan-out subscriptions, and the group too for a group's job,
    /// so a message that is both is kept twice.
    pub fn origin(&self, node: &str) -> String {
        let group = self.group.as_ref().map(|(f, n)| (f.as_str(), n.as_str()));
        origin::offline_origin((node, self.epoch), group)
    }
}

/// A message from the catalog's queue of this node, to publish locally.
#[derive(Debug, Clone, Copy)]
pub struct OfflineMessage<'a> {
    /// Its origin in the catalog ([`OfflineItem::origin`]: the node it was
    /// published at, and the group whose job it is, if any).
    pub origin: &'a str,
    /// Its id there ([`OfflineItem::id`]).
    pub id: u64,
    /// The topic.
    pub topic: &'a str,
    /// Its encoded meta ([`OfflineItem::meta`]).
    pub meta: &'a [u8],
    /// The payload.
    pub payload: &'a [u8],
}

/// Why [`Broker::deliver_offline`] did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OfflineError {
    /// Its meta is not an encoded meta, or its origin not an origin
    /// ([`OfflineItem::origin`]): leave it in the catalog, it is not this
    /// node's to drop.
    Malformed,
    /// This node refuses it now (its store or a local queue is full, or it
    /// is shutting down): leave it in the catalog and try again later.
    Refused,
    /// This node will never take it (larger than its `max_message`, or a
    /// topic it refuses): remove it from the catalog, as a link's delivery
    /// of it would be dead-lettered, and go on with the next ones. Counted
    /// in `offline_rejected`.
    Rejected,
}

impl fmt::Display for OfflineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OfflineError::Malformed => "the offline message's meta or origin is malformed",
            OfflineError::Refused => "the node refuses the message now (store or a queue full)",
            OfflineError::Rejected => {
                "the node will never take the message (too large, or its topic)"
            }
        })
    }
}

impl core::error::Error for OfflineError {}

/// What [`Broker::deliver_offline`] hands back: ask
/// [`Broker::is_offline_stored`] with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineTicket(pub(crate) u64);

impl OfflineTicket {
    /// The store token it waits for: stored once
    /// [`Broker::persisted_token`] reaches it.
    pub fn token(self) -> u64 {
        self.0
    }
}

/// One peer this node hands messages on for, or still waits to hear about.
#[derive(Default)]
pub(crate) struct AwayPeer {
    /// Away: its outbox goes to the catalog (else only items handed on
    /// before it came back are left).
    pub away: bool,
    /// Items handed to the adapter, by message id (one at a time per id:
    /// a message both in the outbox and a group's waits), with their queue
    /// (the outbox, or a group only the peer serves).
    pub handed: BTreeMap<u64, (Target, Queued)>,
    /// Items the catalog did not store, still in flight: back to their
    /// queue's front together, in order, when they are offered again.
    pub failed: Vec<(Target, Queued)>,
    /// After a failed store: nothing more is offered before this.
    pub retry_at: Option<Instant>,
    /// Away because its link stayed down (`Config::link_grace`), not because
    /// its lease expired: only its link back ends that.
    pub unreachable: bool,
}

/// The peers away, by their link session.
#[derive(Default)]
pub(crate) struct Away {
    pub peers: Map<Key, AwayPeer>,
    /// The peer whose items were handed on last, and how many in a row:
    /// after a batch's worth ([`OFFLINE_BATCH`]) the next peer's turn.
    pub turn: Option<(Key, usize)>,
    /// The nodes the catalog listed interest of last time (see
    /// [`Broker::handle_catalog_listing`]).
    pub listed: alloc::collections::BTreeSet<String>,
    /// Away nodes no longer listed whose messages are still being handed
    /// on, each with the id of the first message published after it began
    /// to leave: forgotten at a listing once nothing older is left for it.
    pub leaving: alloc::collections::BTreeMap<String, u64>,
    /// Whether the broker has had a listing (see `Config::await_catalog`).
    pub had_listing: bool,
    /// The live peers' snapshots the first listing still waits for.
    pub snapshots_due: crate::broker::router::SnapshotsDue,
    /// Peers' link sessions without a connection, since when (see
    /// `Config::link_grace`).
    pub unlinked: Map<Key, Instant>,
}

/// The node's side of the offline queues (see the module docs).
impl Broker {
    /// Node `peer`'s lease expired: close its link if one is still open,
    /// leave the groups others serve, and from now on hand what its outbox
    /// holds, and what its interest matches, to the adapter as
    /// [`OfflineItem`]s. Returns whether this node knew the peer.
    pub fn node_away(&mut self, now: Instant, peer: &str) -> bool {
        self.router.node_away(peer, now)
    }

    /// Node `peer` is live again (the catalog lists it): its outbox waits
    /// for its link, as before it went away.
    pub fn node_live(&mut self, now: Instant, peer: &str) {
        self.router.node_live(peer, now);
    }

    /// The interest node `peer`, which is not live, wrote to the catalog,
    /// as (filter, group): its link session here (made and stored, with its
    /// outbox, when this node has none) gets these filters besides those it
    /// has, and joins these groups (filter, name) it is not a member of (a
    /// membership made so waits, not active, for the peer's link to join
    /// the group under the same id, as a resumed one does), and the peer
    /// is away (leaving the groups others serve). Nothing is withdrawn: what the peer declared on its link may
    /// be newer than what it wrote to the catalog, and its next link
    /// snapshot withdraws what it no longer wants. A peer whose link is
    /// connected and has sent its snapshot on it declares its own interest:
    /// this does nothing then. One whose snapshot has not come yet gets
    /// these filters (this node may have restarted without what it
    /// declared, and acks publishes once it has had a listing), but is not
    /// made away; its snapshot withdraws what it does not name. Filters
    /// that are not valid are skipped and counted as protocol errors.
    pub fn set_away_interest(
        &mut self,
        now: Instant,
        peer: &str,
        interest: &[(&str, Option<&str>)],
    ) {
        self.router.catalog_interest(peer, interest, true, now);
    }

    /// The interest node `peer`, which is live, wrote to the catalog: while
    /// its link to this node has not declared its interest (it has not
    /// linked yet, or not sent its snapshot since it connected, or it is
    /// down with its lease still running), its link session here
    /// (made and stored, with its outbox, when this node has none) gets
    /// these filters besides those it has, so what they match waits in its
    /// outbox for its link, or for the catalog should its lease run out
    /// ([`node_away`](Self::node_away)). As
    /// [`set_away_interest`](Self::set_away_interest), it only adds, and
    /// does nothing while the link is connected and has sent its snapshot;
    /// the peer is not away.
    pub fn set_live_interest(
        &mut self,
        now: Instant,
        peer: &str,
        interest: &[(&str, Option<&str>)],
    ) {
        self.router.catalog_interest(peer, interest, false, now);
    }

    /// The next message to store in the catalog for a peer that is away,
    /// until `None`. Call it after every drive of the broker, or at least
    /// now and then (a failed store is retried only when asked).
    pub fn poll_offline(&mut self, now: Instant) -> Option<OfflineItem> {
        self.router.poll_offline(now)
    }

    /// The catalog stored the item `id` for `recipient`: it leaves the
    /// outbox (its ack is recorded).
    pub fn handle_offline_stored(&mut self, now: Instant, recipient: &str, id: u64) {
        self.router.offline_stored(recipient, id, now);
    }

    /// The catalog did not store the item (it cannot be reached, or did not
    /// answer): it goes back to the front of its queue (the outbox, or the
    /// group it came from), with the others that failed, in order, to be
    /// offered again after [`OFFLINE_RETRY`]. A full queue is
    /// [`handle_offline_full`](Self::handle_offline_full).
    pub fn handle_offline_failed(&mut self, now: Instant, recipient: &str, id: u64) {
        self.router.offline_failed(recipient, id, now);
    }

    /// The catalog's queue of `recipient` is full. While the peer is away
    /// the item is dropped (acked out of the outbox) and counted in
    /// [`MeshStats::offline_dropped`](super::MeshStats::offline_dropped),
    /// as a slow consumer's overflow is shed: a node that does not come
    /// back must not hold back this node's publishers with an outbox that
    /// fills and refuses them. A peer back meanwhile gets it on its link;
    /// a group's job goes back to its group when a member here joined it
    /// meanwhile.
    pub fn handle_offline_full(&mut self, now: Instant, recipient: &str, id: u64) {
        self.router.offline_full(recipient, id, now);
    }

    /// What became of the item `id` for `recipient` (see
    /// [`HandOn`](super::HandOn)): [`handle_offline_stored`](Self::handle_offline_stored),
    /// [`handle_offline_full`](Self::handle_offline_full) or
    /// [`handle_offline_failed`](Self::handle_offline_failed).
    pub fn handle_offline_handed(
        &mut self,
        now: Instant,
        recipient: &str,
        id: u64,
        handed: super::Handed,
    ) {
        match handed {
            super::Handed::Stored => self.handle_offline_stored(now, recipient, id),
            super::Handed::Full => self.handle_offline_full(now, recipient, id),
            super::Handed::Failed => self.handle_offline_failed(now, recipient, id),
        }
    }

    /// The nodes whose interest the catalog lists now (`listed`), and those
    /// that are live but this one (`live`: `Listing::live_peers` of
    /// [`CatalogRound::listing`](super::CatalogRound::listing); a node
    /// that restarted waits for each of them to link, see
    /// [`Config::await_catalog`](super::super::Config::await_catalog));
    /// call it after each successful read of the
    /// catalog's interest. A peer that is away, not live, and was listed
    /// the last time but is not now had its interest removed (an operator
    /// forgot it, the catalog's `forget_node`, or the catalog lost its
    /// rows): it gets nothing new (its interest here is withdrawn), what
    /// was kept for it still goes to its catalog queue, and it is forgotten
    /// ([`forget_node`](Broker::forget_node)) at the first listing that
    /// finds nothing left for it and it still not listed (forgotten at
    /// once, a catalog that lost its rows would lose those messages too). A
    /// group it alone serves here keeps it until the jobs the group had
    /// when it began to leave are handed on as well; the group's newer jobs
    /// go with it when it is forgotten, as they did before. A peer never listed in this run is kept: it may have
    /// died before it wrote its interest; and a restarted node cannot tell
    /// that from a peer forgotten before it started. What it keeps for such a peer goes to
    /// the peer's catalog queue until that is full, and is then dropped
    /// ([`handle_offline_full`](Self::handle_offline_full)), so it never
    /// holds publishers back. Call it after handing the listing's interest
    /// to [`set_away_interest`](Self::set_away_interest) and
    /// [`set_live_interest`](Self::set_live_interest): the first call
    /// releases the publishes held until then.
    pub fn handle_catalog_listing(&mut self, now: Instant, listed: &[&str], live: &[&str]) {
        self.router.catalog_listing(listed, live, now);
    }

    /// Publishes a message the catalog kept for this node to its local
    /// subscribers, as its origin's link would have (one hop, the same
    /// deduplication): to the fan-out subscriptions, or, for a group's job
    /// (its origin names the group), to that group. A job whose group has
    /// no member here any more (its members were not persistent and went
    /// with a crash, or all left) reaches no one, as a group's jobs go with
    /// its last member. Remove it from the catalog once
    /// [`is_offline_stored`](Self::is_offline_stored) says so.
    pub fn deliver_offline(
        &mut self,
        now: Instant,
        m: &OfflineMessage<'_>,
    ) -> Result<OfflineTicket, OfflineError> {
        self.router.deliver_offline(m, now)
    }

    /// Whether what [`deliver_offline`](Self::deliver_offline) published
    /// (or found published already) is in the store.
    pub fn is_offline_stored(&self, ticket: OfflineTicket) -> bool {
        self.router.store.is_persisted(Some(ticket.0))
    }

    /// What this node declares on its links, for the catalog: its local
    /// fan-out interest (filter, `None`) and its groups (filter, name),
    /// sorted, each once.
    pub fn declared_interest(&self) -> Vec<(String, Option<String>)> {
        let mut out: Vec<(String, Option<String>)> = (self.router.mesh.local_interest())
            .map(|(f, g)| (String::from(f), g.map(String::from)))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The peers this node treats as away, by node id.
    pub fn away_nodes(&self) -> Vec<String> {
        self.router.away_nodes()
    }
}
