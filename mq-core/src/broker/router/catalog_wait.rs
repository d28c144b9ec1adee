//! A node that starts holds its clients' QoS 1 publishes until it knows what
//! its peers want (`Config::await_catalog`): the catalog's first listing,
//! and then the link snapshot of each peer that listing says is live.
//!
//! The listing alone is not enough after a crash: a peer may have declared
//! interest on its link just before it, while the records of that interest
//! were not durable yet here, and before the peer's next round wrote it to
//! the catalog. The restarted node would acknowledge publishes that interest
//! wants and keep them for nobody. So a node that restarted (its store
//! brought records back) waits, after its first listing, for the link
//! snapshot of each peer the listing says is live; what it acknowledges
//! after that snapshot reaches the peer. A node that starts on an empty
//! store has told nobody anything: peers declared nothing to it. A live
//! peer that does not link within the wait (a partition, or a peer that
//! dies) is waited for no longer: its interest is then what the catalog
//! says, and a publish held that long goes on (one held past its own
//! deadline before the listing came is refused, as before).

use alloc::string::String;
use alloc::vec::Vec;

use super::Router;
use crate::broker::ConnId;
use crate::broker::command::{Publish, Via};
use crate::broker::slab::Key;
use crate::time::Instant;
use crate::wire::{QoS, Reason};

/// What the first listing still waits for.
#[derive(Default)]
pub(crate) struct SnapshotsDue {
    /// The store brought records back: this node restarted.
    pub(crate) restarted: bool,
    /// The live peers (node ids) that have not completed a snapshot on a
    /// link since this node started.
    peers: Vec<String>,
    /// When the wait for them ends.
    until: Option<Instant>,
}

impl Router {
    /// Whether a publish from `from` waits (see the module docs): `Some`
    /// instant to hold it until, or `Some(None)` when it was held long
    /// enough and is refused; `None` when it goes on. `deadline` is set
    /// when it first holds the publish.
    pub(super) fn await_catalog(
        &mut self,
        from: Option<(ConnId, Key)>,
        p: &Publish<'_>,
        now: Instant,
        deadline: &mut Option<Instant>,
    ) -> Option<Option<Instant>> {
        let hold = self.cfg.await_catalog?;
        let client = from.is_some() && p.via == Via::Client;
        if !client || p.qos != QoS::AtLeastOnce || self.interest_known(now) {
            return None;
        }
        let deadline = *deadline.get_or_insert(now + hold);
        if now < deadline {
            let due = self.mesh.away.snapshots_due.until;
            return Some(Some(due.map_or(deadline, |u| u.min(deadline))));
        }
        if self.mesh.away.had_listing {
            // Its whole wait went to peers that did not link: the catalog's
            // word on them goes.
            return None;
        }
        if let Some((conn, _)) = from {
            self.reject_publish(conn, p.id, p.qos, Reason::Timeout);
        }
        Some(None)
    }

    /// Whether the first listing came and every live peer's snapshot since
    /// (or the wait for them is over).
    fn interest_known(&self, now: Instant) -> bool {
        let due = &self.mesh.away.snapshots_due;
        self.mesh.away.had_listing && (due.peers.is_empty() || due.until.is_some_and(|u| now >= u))
    }

    /// The catalog's first listing: `live` are the live nodes other than
    /// this one. The publishes held go on once those peers have declared
    /// their interest on their links, if this node restarted.
    pub(super) fn first_listing(&mut self, live: &[&str], now: Instant) {
        self.mesh.away.had_listing = true;
        let peers: Vec<String> = match self.mesh.away.snapshots_due.restarted {
            true => (live.iter())
                .filter(|n| {
                    let session = self.peer_session(n);
                    session.is_none_or(|k| self.mesh.peer_declared_on(k).is_none())
                })
                .map(|&n| String::from(n))
                .collect(),
            false => Vec::new(),
        };
        self.live_not_linked(live, now);
        let wait = self.cfg.await_catalog.unwrap_or_default();
        let due = &mut self.mesh.away.snapshots_due;
        (due.peers, due.until) = (peers, Some(now + wait));
        self.retry_all_parked(now);
    }

    /// Peer `peer` (its node id) completed a snapshot, or is away or
    /// forgotten: the first listing waits for it no longer.
    pub(super) fn snapshot_not_due(&mut self, peer: &str, now: Instant) {
        let due = &mut self.mesh.away.snapshots_due;
        let before = due.peers.len();
        due.peers.retain(|p| p != peer);
        if due.peers.len() < before && due.peers.is_empty() {
            self.retry_all_parked(now);
        }
    }
}
