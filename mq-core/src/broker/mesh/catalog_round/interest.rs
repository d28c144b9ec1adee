//! This node's interest in the catalog, and what the catalog says of the
//! others'.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::CatalogRound;
use crate::wire::mesh::NODE_PREFIX;

/// One interest row of the catalog, borrowed from the adapter's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterestRow<'a> {
    /// The session it belongs to (a node's own: `$node.<node>`).
    pub session: &'a str,
    /// The node the session was last attached to.
    pub node: &'a str,
    /// The topic filter.
    pub filter: &'a str,
    /// The group, for a group subscription.
    pub group: Option<&'a str>,
}

/// A node, and the interest it wrote of itself as (filter, group): `None`
/// for its fan-out interest in the filter, a group's name for its
/// membership.
pub type PeerInterest<'a> = (&'a str, Vec<(&'a str, Option<&'a str>)>);

/// What the catalog's interest rows say (see [`CatalogRound::listing`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing<'a> {
    /// The nodes with interest listed, sorted, each once: for
    /// [`Broker::handle_catalog_listing`](crate::broker::Broker::handle_catalog_listing).
    pub listed: Vec<&'a str>,
    /// The interest each node that is not live wrote of itself, by node,
    /// sorted, as (filter, group) (`None`: its fan-out interest): for
    /// [`Broker::set_away_interest`](crate::broker::Broker::set_away_interest).
    pub away: Vec<PeerInterest<'a>>,
    /// The interest each other node that is live wrote of itself, likewise:
    /// for [`Broker::set_live_interest`](crate::broker::Broker::set_live_interest)
    /// (kept for it while it is not linked to this node).
    pub live: Vec<PeerInterest<'a>>,
    /// The live nodes but this one: the `live` of
    /// [`Broker::handle_catalog_listing`](crate::broker::Broker::handle_catalog_listing).
    pub live_peers: Vec<&'a str>,
}

/// The rows of this node's interest to write (see
/// [`CatalogRound::write_interest`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterestWrite {
    /// (Filter, group) rows to add, each under the session
    /// [`CatalogRound::row_session`] names: first.
    pub add: Vec<(String, Option<String>)>,
    /// Rows to remove, likewise: after those added.
    pub remove: Vec<(String, Option<String>)>,
}

impl InterestWrite {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

impl CatalogRound {
    /// The session a row of this node's interest is written under: its
    /// link session (`$node.<id>`) for its fan-out interest, that and the
    /// group's name, after a space, for a group (the catalog keeps one row
    /// per session and filter, and a node may have several groups of one
    /// filter besides its fan-out interest in it; node ids and group names
    /// have no spaces).
    pub fn row_session(&self, group: Option<&str>) -> String {
        row_session(&self.session, group)
    }

    /// What the catalog's interest `rows` say, with `live` its live nodes.
    /// The interest handed on is each node's own (the rows of its
    /// [`row_session`](Self::row_session)s), of every node but this one:
    /// `away` for the nodes not live, `live` for the others.
    pub fn listing<'a>(&self, rows: &[InterestRow<'a>], live: &[&'a str]) -> Listing<'a> {
        let listed: BTreeSet<&str> = rows.iter().map(|r| r.node).collect();
        let mut away: BTreeMap<&str, Vec<(&str, Option<&str>)>> = BTreeMap::new();
        let mut live_interest: BTreeMap<&str, Vec<(&str, Option<&str>)>> = BTreeMap::new();
        for r in rows {
            if r.node == self.node || !is_own_row(r) {
                continue;
            }
            let to = match live.contains(&r.node) {
                true => &mut live_interest,
                false => &mut away,
            };
            to.entry(r.node).or_default().push((r.filter, r.group));
        }
        Listing {
            listed: listed.into_iter().collect(),
            away: away.into_iter().collect(),
            live: live_interest.into_iter().collect(),
            live_peers: (live.iter().copied()).filter(|&n| n != self.node).collect(),
        }
    }

    /// What to write so the catalog lists this node's interest as
    /// `declared` (the broker's [`declared_interest`](crate::broker::Broker::declared_interest)):
    /// the difference from its rows in `rows`, as read this round, so rows
    /// the catalog lost (a Redis restarted without its data, a database
    /// restored from a backup) are written again; when they could not be
    /// read (`None`), the difference from what this node wrote last, or,
    /// before its first write and after a failed one, everything declared
    /// is added (which the catalog takes again without harm) and nothing
    /// removed. A broker
    /// that has stopped declares nothing: do not call this then, or the
    /// interest that keeps this node's messages would be removed.
    pub fn write_interest(
        &mut self,
        rows: Option<&[InterestRow<'_>]>,
        declared: &[(String, Option<String>)],
    ) -> InterestWrite {
        let declared: BTreeSet<(String, Option<String>)> = declared.iter().cloned().collect();
        let written: BTreeSet<(String, Option<String>)> = match (rows, &self.written) {
            (Some(rows), _) => (rows.iter())
                .filter(|r| r.node == self.node && is_own_row(r))
                .map(|r| (String::from(r.filter), r.group.map(String::from)))
                .collect(),
            (None, Some(w)) => w.clone(),
            (None, None) => BTreeSet::new(),
        };
        let write = InterestWrite {
            add: declared.difference(&written).cloned().collect(),
            remove: written.difference(&declared).cloned().collect(),
        };
        self.writing = Some(declared);
        write
    }

    /// The write [`write_interest`](Self::write_interest) asked for is done
    /// (`ok`), or stopped at an error: what the catalog lists is read again
    /// next time.
    pub fn handle_interest_written(&mut self, ok: bool) {
        let writing = self.writing.take();
        self.written = if ok { writing } else { None };
    }
}

/// `$node.<node>`, and ` <group>` for a group's row.
fn row_session(node_session: &str, group: Option<&str>) -> String {
    match group {
        None => String::from(node_session),
        Some(g) => format!("{node_session} {g}"),
    }
}

/// Whether `r` is a row a node wrote of its own interest.
fn is_own_row(r: &InterestRow<'_>) -> bool {
    let mut session = String::from(NODE_PREFIX);
    session.push_str(r.node);
    r.session == row_session(&session, r.group)
}
