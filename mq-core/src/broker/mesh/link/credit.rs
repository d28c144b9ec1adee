//! How much a node lets a peer have unacknowledged on its link.

use crate::broker::Config;
use crate::broker::mesh::OFFLINE_BATCH;

/// The credit a node grants each subscription of its link to a peer (the
/// outbox, and each group it joined there): how many deliveries the peer may
/// have unacknowledged on it, derived from this node's deduplication window.
///
/// The invariant: what can be delivered again and is filed under one
/// producer is never more than the window, so a redelivery of what was
/// stored here (after a link drop, a restart of either node, or a catalog
/// page read again) is recognised as a duplicate. A link's deliveries are
/// filed by [`mesh_producer`](crate::wire::mesh::mesh_producer): the peer,
/// the topic and the group, so the outbox and each group subscription fill
/// windows of their own, each with at most its
/// credit outstanding (acks go back in the order the publishes are stored;
/// after a drop the peer delivers what was in flight again, first). The
/// outbox's producer is shared with the catalog's queue of this node
/// ([`Broker::deliver_offline`](crate::broker::Broker::deliver_offline) files a
/// message as its origin's link would), whose adapter has up to one page of
/// [`OFFLINE_BATCH`] stored and not yet removed from the catalog. So the
/// credit is the window less that page, at least 1, at most `max_credit`: a
/// window of `OFFLINE_BATCH` or less leaves a link one delivery at a time
/// (and the catalog's page alone then exceeds it).
pub(crate) fn link_credit(cfg: &Config) -> u32 {
    let room = cfg.dedup_window.saturating_sub(OFFLINE_BATCH);
    let room = u32::try_from(room).unwrap_or(u32::MAX);
    room.min(cfg.max_credit).max(1)
}
