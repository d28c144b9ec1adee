//! Rows of the catalog this node cannot decode (a field out of range, a QoS
//! a newer version wrote, a Redis hash evicted or missing a field): the catalog skips them and
//! names them; this logs each at error level the first time it is seen (not
//! at every heartbeat that sees it again) and counts them
//! (`mq_mesh_catalog_unreadable_total`).

use std::collections::HashSet;

use mq_catalog::{Unreadable, UnreadableInterest, UnreadableNode};

use crate::metrics::{CatalogMetrics, CatalogRow};

/// The most rows remembered as logged: when a new row finds it full the
/// memory starts again (and rows still there are logged and counted once
/// more). Ten times a queue's default bound, so a queue full of unreadable
/// rows is remembered whole (about 1 MB at most).
const REMEMBERED: usize = 100_000;

/// The unreadable rows seen so far.
#[derive(Default)]
pub(super) struct Reports {
    messages: HashSet<u64>,
    interests: HashSet<(String, String)>,
    nodes: HashSet<String>,
    /// Distinct rows of this node's offline queue found unreadable.
    messages_total: u64,
    /// Distinct interest rows found unreadable.
    interests_total: u64,
    /// Distinct live nodes' rows found unreadable.
    nodes_total: u64,
}

impl Reports {
    /// Reports the unreadable rows of a page of this node's queue.
    pub(super) fn messages(&mut self, rows: &[Unreadable], metrics: &CatalogMetrics) {
        for row in rows {
            if remember(&mut self.messages, row.id) {
                self.messages_total += 1;
                metrics.unreadable(CatalogRow::Message, 1);
                tracing::error!(
                    id = row.id,
                    reason = %row.reason,
                    unreadable_total = self.messages_total,
                    "a message in this node's offline queue cannot be read: skipped, \
                     left in the catalog (it counts towards the queue's bound)"
                );
            } else {
                tracing::debug!(id = row.id, "the unreadable offline message is still there");
            }
        }
    }

    /// Reports the unreadable rows of the interest listing.
    pub(super) fn interests(&mut self, rows: &[UnreadableInterest], metrics: &CatalogMetrics) {
        for row in rows {
            if remember(
                &mut self.interests,
                (row.session.clone(), row.filter.clone()),
            ) {
                self.interests_total += 1;
                metrics.unreadable(CatalogRow::Interest, 1);
                tracing::error!(
                    session = %row.session,
                    filter = %row.filter,
                    reason = %row.reason,
                    unreadable_total = self.interests_total,
                    "an interest row in the catalog cannot be read: skipped, left in the catalog"
                );
            }
        }
    }

    /// Reports the unreadable rows of the live nodes' listing (the whole
    /// of them, each time): those of the last listing are not reported
    /// again, and a row read again in between is, when unreadable later.
    pub(super) fn nodes(&mut self, rows: &[UnreadableNode], metrics: &CatalogMetrics) {
        for row in rows {
            if !self.nodes.contains(&row.id) {
                self.nodes_total += 1;
                metrics.unreadable(CatalogRow::Node, 1);
                tracing::error!(
                    node = %row.id,
                    reason = %row.reason,
                    unreadable_total = self.nodes_total,
                    "a live node's row in the catalog cannot be read: the node is taken as \
                     not live (no link to it) while it stays so; left in the catalog"
                );
            }
        }
        self.nodes = rows.iter().map(|r| r.id.clone()).collect();
    }
}

/// Remembers `row`: true when it is new. A row already remembered never
/// empties a full memory (else a queue of more unreadable rows than it holds
/// would be logged and counted again at every pass).
fn remember<T: Eq + std::hash::Hash>(seen: &mut HashSet<T>, row: T) -> bool {
    if seen.contains(&row) {
        return false;
    }
    if seen.len() >= REMEMBERED {
        seen.clear();
    }
    seen.insert(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_seen_again_is_not_counted_again_even_with_the_memory_full() {
        let metrics = CatalogMetrics::default();
        let rows: Vec<Unreadable> = (0..REMEMBERED as u64)
            .map(|id| Unreadable {
                id,
                reason: mq_catalog::Error::Malformed("test".into()),
            })
            .collect();
        let mut reports = Reports::default();
        reports.messages(&rows, &metrics);
        reports.messages(&rows, &metrics);
        assert_eq!(reports.messages_total, REMEMBERED as u64);
    }

    #[test]
    fn a_node_row_unreadable_again_after_it_was_read_is_counted_again() {
        let metrics = CatalogMetrics::default();
        let bad = [UnreadableNode {
            id: "b".into(),
            reason: mq_catalog::Error::Malformed("test".into()),
        }];
        let mut reports = Reports::default();
        reports.nodes(&bad, &metrics);
        reports.nodes(&bad, &metrics);
        assert_eq!(reports.nodes_total, 1);
        // Read again (registered anew), then damaged again.
        reports.nodes(&[], &metrics);
        reports.nodes(&bad, &metrics);
        assert_eq!(reports.nodes_total, 2);
        assert_eq!(metrics.unreadable_rows(CatalogRow::Node), 2);
    }
}
