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
/// message as its origin's link would), whose adapter has up to one page
/// ([`offline_page`]) stored and not yet removed from the catalog. So the
/// credit is the window less [`OFFLINE_BATCH`], at least 1, at most
/// `max_credit`: a window of `OFFLINE_BATCH` or less leaves a link one
/// delivery at a time, and the page what is left of the window.
pub(crate) fn link_credit(cfg: &Config) -> u32 {
    let room = cfg.dedup_window.saturating_sub(OFFLINE_BATCH);
    let room = u32::try_from(room).unwrap_or(u32::MAX);
    room.min(cfg.max_credit).max(1)
}

/// How many messages of its catalog queue a node drains at once: what the
/// window leaves beside the outbox's credit ([`link_credit`]), at most
/// [`OFFLINE_BATCH`], at least 1 (a window of 1 cannot hold both).
pub(crate) fn offline_page(cfg: &Config) -> usize {
    let credit = usize::try_from(link_credit(cfg)).unwrap_or(usize::MAX);
    cfg.dedup_window
        .saturating_sub(credit)
        .clamp(1, OFFLINE_BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dedup_window: usize, max_credit: u32) -> Config {
        Config {
            dedup_window,
            max_credit,
            ..Config::default()
        }
    }

    #[test]
    fn a_large_window_drains_whole_batches() {
        assert_eq!(offline_page(&config(4096, 65_535)), OFFLINE_BATCH);
        assert_eq!(offline_page(&config(300, 10)), OFFLINE_BATCH);
    }

    #[test]
    fn a_window_of_a_batch_or_less_drains_what_the_credit_leaves() {
        assert_eq!(link_credit(&config(100, 65_535)), 1);
        assert_eq!(offline_page(&config(100, 65_535)), 99);
        assert_eq!(
            offline_page(&config(OFFLINE_BATCH, 65_535)),
            OFFLINE_BATCH - 1
        );
        assert_eq!(offline_page(&config(1, 65_535)), 1);
    }

    #[test]
    fn the_credit_and_the_page_fit_the_window() {
        for window in 2..2 * OFFLINE_BATCH + 2 {
            for max_credit in [1, 8, 300, 65_535] {
                let cfg = config(window, max_credit);
                let credit = link_credit(&cfg) as usize;
                assert!(
                    credit + offline_page(&cfg) <= window,
                    "{window} {max_credit}"
                );
            }
        }
    }
}
