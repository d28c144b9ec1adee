//! The node's lease: renewed every heartbeat, registered again when it ran
//! out, and what a heartbeat answered [`Error::Fenced`] means.
//!
//! A register whose reply is lost (a timeout, a cut connection) may still
//! have committed: the catalog then lists a newer incarnation of this node
//! that nobody holds, and the next heartbeat is answered Fenced. Taken at
//! its word, that would stop the node (and `mqd`) for a catalog blip. So
//! after such a register the node is *unsure*, and a Fenced is first checked
//! against the catalog's live nodes, at each heartbeat, the links staying as
//! they are meanwhile:
//!
//! - the node's newer incarnation is renewed (its lease's end moves, or
//!   another incarnation is listed): a real process holds it, a newer self,
//!   and this one is fenced and stops, as always;
//! - its lease runs out unrenewed (the node is no longer listed): nobody held
//!   it, it was this node's own lost register; the node registers again;
//! - otherwise it looks again at the next heartbeat; so too while the
//!   node's row cannot be read (`Nodes::unreadable` names its id): such a
//!   row tells neither that the newer incarnation is renewed nor that it
//!   lapsed.
//!
//! A true newer self renews its lease within the lease, so an unsure old one
//! never fences it off: the old one registers again only over an incarnation
//! whose lease lapsed unrenewed (a process that let its lease lapse is
//! fenced by a newer registration in any case). And only a register of its
//! own whose reply it lost makes a node unsure, once per such register, so
//! two processes with the same id do not take turns.

use std::collections::HashSet;
use std::time::SystemTime;

use mq_catalog::{Error, Nodes, Registration};

use super::Node;
use crate::metrics::CatalogCall;

/// A register whose reply was lost: what the catalog listed of this node's
/// newer incarnation when first looked at (`None`: not yet looked at).
#[derive(Debug, Default)]
pub(super) struct Unsure {
    seen: Option<(u64, SystemTime)>,
}

/// What an unsure node makes of a Fenced.
enum Check {
    /// A real process holds the newer incarnation.
    Fenced,
    /// Nobody held it: register again.
    Lapsed,
    /// Look again at the next heartbeat.
    Wait,
}

impl Node {
    /// Renews the lease and reads the live nodes. Fails only when fenced.
    pub(super) async fn renew(&mut self) -> Result<(), Error> {
        match (self.catalog)
            .heartbeat(&self.registration, self.opts.lease)
            .await
        {
            Ok(()) => self.unsure = None,
            Err(e @ Error::Fenced { .. }) => {
                match self.check_fence().await {
                    Check::Fenced => {}
                    Check::Lapsed => {
                        tracing::warn!(
                            node = %self.opts.id,
                            error = %e,
                            "the newer incarnation was this node's lost register: registering again"
                        );
                        self.register_again().await;
                        return Ok(());
                    }
                    Check::Wait => return Ok(()),
                }
                self.control.catalog_metrics().fenced();
                tracing::error!(
                    node = %self.opts.id,
                    error = %e,
                    "a newer incarnation of this node registered: this one stops linking"
                );
                return Err(e);
            }
            Err(Error::LeaseExpired { .. }) => {
                self.register_again().await;
                return Ok(());
            }
            Err(e) => {
                self.control
                    .catalog_metrics()
                    .failed(CatalogCall::Heartbeat);
                tracing::warn!(error = %e, "heartbeat failed; links stay as they are");
                return Ok(());
            }
        }
        if let Some((listed, own_unreadable)) = self.list_live().await {
            // A node whose row cannot be read is not live to this one
            // (no link, its interest kept as an away node's) until the
            // row can be read again: that node writes it anew (below).
            if own_unreadable {
                // The heartbeat just renewed it under this process's
                // incarnation, and renews only the expiry: a register
                // writes all of it (the peers link to the new
                // incarnation).
                tracing::warn!(
                    node = %self.opts.id,
                    "this node's own row in the catalog cannot be read: registering again"
                );
                self.register_again().await;
            }
            let live = listed.nodes;
            self.roster.handle_live(
                live.iter()
                    .map(|n| (n.id.as_str(), n.incarnation, n.addr.as_str())),
            );
            let live: HashSet<String> = live.into_iter().map(|n| n.id).collect();
            // Before the roster's links: what waited in the catalog
            // comes first.
            self.sync_catalog(&live).await;
        }
        self.reap_now_and_then().await;
        Ok(())
    }

    /// Registers under a new incarnation; when the reply is lost, the node
    /// is unsure whether it did (see the module docs).
    async fn register_again(&mut self) {
        self.unsure = None;
        match self.register().await {
            Ok(r) => {
                self.control.catalog_metrics().registered_again();
                tracing::warn!(
                    node = %self.opts.id,
                    incarnation = r.incarnation,
                    "the lease had expired: registered again"
                );
                self.registration = r;
            }
            Err(e) => {
                self.control.catalog_metrics().failed(CatalogCall::Register);
                tracing::warn!(error = %e, "cannot register again (it may have been done)");
                self.unsure = Some(Unsure::default());
            }
        }
    }

    async fn register(&self) -> Result<Registration, Error> {
        let registered = (self.catalog)
            .register(&self.opts.id, &self.addr, self.opts.lease)
            .await;
        #[cfg(test)]
        if registered.is_ok() && super::tests::lose_reply(&self.opts.catalog) {
            return Err(Error::Unavailable {
                backend: self.catalog.backend(),
                detail: "the reply was lost (a test)".into(),
            });
        }
        registered
    }

    /// The live nodes, their unreadable rows reported, and whether this
    /// node's own row is among those; `None` when the listing failed
    /// (counted and logged).
    async fn list_live(&mut self) -> Option<(Nodes, bool)> {
        match self.catalog.live_nodes().await {
            Ok(listed) => {
                (self.unreadable).nodes(&listed.unreadable, self.control.catalog_metrics());
                let own = listed.unreadable.iter().any(|u| u.id == self.opts.id);
                Some((listed, own))
            }
            Err(e) => {
                self.control.catalog_metrics().failed(CatalogCall::Read);
                tracing::warn!(error = %e, "cannot read the live nodes");
                None
            }
        }
    }

    /// Whether a Fenced is to be believed (see the module docs).
    async fn check_fence(&mut self) -> Check {
        if self.unsure.is_none() {
            return Check::Fenced;
        }
        // A live row of this node's id that cannot be read says neither
        // whether the newer incarnation is renewed nor that it lapsed: as
        // when the listing fails, look again at the next heartbeat (taking
        // it for lapsed would register over a newer self that may be real).
        let Some((listed, false)) = self.list_live().await else {
            return Check::Wait;
        };
        let Some(unsure) = &mut self.unsure else {
            return Check::Fenced;
        };
        let Some(newer) = listed.nodes.iter().find(|n| n.id == self.opts.id) else {
            return Check::Lapsed;
        };
        let now = (newer.incarnation, newer.lease_expires);
        match unsure.seen {
            None => {
                unsure.seen = Some(now);
                Check::Wait
            }
            Some(seen) if seen == now => Check::Wait,
            Some(_) => Check::Fenced,
        }
    }
}
