//! The node's round with the catalog after each heartbeat, as decisions an
//! adapter carries out (see [`offline`](super::offline) for what the broker
//! does with them).
//!
//! [`CatalogRound`] holds what lasts from one round to the next (this node's
//! interest as last written, where the next page of its queue starts);
//! [`HandOn`] follows one batch of items handed on. A round, in this order:
//!
//! 1. Read the catalog's interest rows and live nodes. On success, hand
//!    [`CatalogRound::listing`]'s `away` interest to
//!    [`Broker::set_away_interest`] and its `live` interest to
//!    [`Broker::set_live_interest`], node by node, then its `listed` (with
//!    the live nodes) to [`Broker::handle_catalog_listing`]: in that order,
//!    as the first listing releases the publishes held for it.
//! 2. Unless the broker has stopped, ask it for its
//!    [`declared_interest`](Broker::declared_interest) and write what
//!    [`CatalogRound::write_interest`] says (the rows read, or `None` when the
//!    read failed): each (filter, group) of `add` as a row of
//!    [`row_session`](CatalogRound::row_session) of its group, then each of
//!    `remove`, stopping at the first error; report it with
//!    [`CatalogRound::handle_interest_written`].
//! 3. Take up to [`OFFLINE_BATCH`](super::OFFLINE_BATCH) items from
//!    [`Broker::poll_offline`] into a [`HandOn`], store each it gives out in
//!    its recipient's catalog queue (or each run for one recipient in one
//!    call) and report what became of it, then hand its results to
//!    [`Broker::handle_offline_handed`]; again while [`hand_on_again`] says
//!    so.
//! 4. Read the page [`CatalogRound::next_page`] asks for from this node's
//!    queue, [`deliver_offline`](Broker::deliver_offline) each message, wait
//!    until those taken are stored ([`Broker::is_offline_stored`]), then ack
//!    in the catalog what [`CatalogRound::handle_page`] says, and report
//!    that with [`CatalogRound::handle_acked`]; again while
//!    [`CatalogRound::drain_again`] says so.
//!
//! What fails is done again at a later round: nothing leaves the outbox or
//! the catalog unless it is stored on the other side.
//!
//! [`Broker::handle_catalog_listing`]: crate::broker::Broker::handle_catalog_listing
//! [`Broker::set_away_interest`]: crate::broker::Broker::set_away_interest
//! [`Broker::set_live_interest`]: crate::broker::Broker::set_live_interest
//! [`Broker::poll_offline`]: crate::broker::Broker::poll_offline
//! [`Broker::handle_offline_handed`]: crate::broker::Broker::handle_offline_handed
//! [`Broker::is_offline_stored`]: crate::broker::Broker::is_offline_stored
//! [`Broker`]: crate::broker::Broker

mod drain;
mod hand_on;
mod interest;
#[cfg(test)]
mod tests;

pub use drain::PageRequest;
pub use hand_on::{HandOn, Handed, RUN_BYTES, hand_on_again};
pub use interest::{InterestRow, InterestWrite, Listing, PeerInterest};

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;

use super::link::offline_page;
#[cfg(doc)]
use crate::broker::Broker;
use crate::broker::Config;
use crate::wire::mesh::NODE_PREFIX;

/// One node's side of its rounds with the catalog (see the module docs).
#[derive(Debug, Clone)]
pub struct CatalogRound {
    node: String,
    /// `$node.<node>`: the session its interest is written under.
    session: String,
    /// This node's interest as last written, as (filter, group) (`None`: as
    /// the catalog lists it).
    written: Option<BTreeSet<(String, Option<String>)>>,
    /// What the write under way makes of it, if it succeeds.
    writing: Option<BTreeSet<(String, Option<String>)>>,
    /// Where the next page of this node's queue starts (`None`: its head).
    drain_after: Option<u64>,
    /// Where the page after the one being acked starts, if the ack succeeds.
    acking_after: Option<u64>,
    /// How many messages a page holds at most.
    page: usize,
}

impl CatalogRound {
    /// The rounds of node `node`, whose broker runs with `cfg`: its pages
    /// are no larger than the deduplication window leaves beside its links'
    /// credit (at most [`OFFLINE_BATCH`](super::OFFLINE_BATCH)), so a page
    /// read again after a failure is still recognised as duplicates.
    pub fn new(node: &str, cfg: &Config) -> CatalogRound {
        CatalogRound {
            node: String::from(node),
            session: format!("{NODE_PREFIX}{node}"),
            written: None,
            writing: None,
            drain_after: None,
            acking_after: None,
            page: offline_page(cfg),
        }
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The session this node's interest is written under: its link session
    /// id, `$node.<id>`.
    pub fn session(&self) -> &str {
        &self.session
    }
}
