//! Removing the catalog's rows of nodes whose lease expired: a node that
//! left without deregistering (killed, its machine gone) stays listed,
//! expired, under its id, and ids that never come back (desktop peers)
//! would pile up. Every node does it now and then, after a heartbeat that
//! renewed its lease; several doing it at once is harmless.
//!
//! It removes node rows only: an away peer's offline queue and the interest
//! of its sessions stay in the catalog, keyed by recipient and session, until
//! the peer (or any node) takes them. A node whose own expired row was
//! removed hears [`Error::LeaseExpired`](mq_catalog::Error::LeaseExpired) at
//! its next heartbeat and registers again, as it would have anyway; one
//! whose newer incarnation expired and was removed too hears the same
//! rather than [`Error::Fenced`](mq_catalog::Error::Fenced): nobody holds
//! that incarnation any more.

use super::Node;
use crate::metrics::CatalogCall;

/// How many renewed leases apart a node reaps: the first renewal, then every
/// this many (once a minute at the default heartbeat of a second).
pub(super) const REAP_EVERY: u64 = 60;

impl Node {
    /// Reaps the expired nodes if it is time to (see the module docs). A
    /// failure is counted and logged, and the reap done again at the next
    /// heartbeat.
    pub(super) async fn reap_now_and_then(&mut self) {
        let due = self.renewals_to_reap == 0;
        self.renewals_to_reap = self.renewals_to_reap.saturating_sub(1);
        if !due {
            return;
        }
        match self.catalog.reap_expired().await {
            Ok(reaped) => {
                self.renewals_to_reap = REAP_EVERY - 1;
                if reaped > 0 {
                    tracing::debug!(reaped, "removed the catalog's expired nodes");
                }
            }
            Err(e) => {
                self.control.catalog_metrics().failed(CatalogCall::Reap);
                tracing::warn!(error = %e, "cannot remove the catalog's expired nodes");
            }
        }
    }
}
