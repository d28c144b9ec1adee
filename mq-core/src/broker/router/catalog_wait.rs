//! A node that starts holds its clients' QoS 1 publishes until it knows what
//! its peers want (`Config::await_catalog`): the catalog's first listing,
//! and then the link snapshot of each peer that listing says is live.
//!
//! The listing alone is not enough after a crash: a peer may have declared
//! interest on its link just before it, while the records of that interest
//! were not durable yet here, and before the peer's next round wrote it to
//! the catalog. The restarted node would acknowledge publishes that interest
//! wants and keep them for nobody. So the first listing waits for the link
//! snapshot of each live peer this node knew before it started (its link
//! session restored from the store); what the node acknowledges after that
//! snapshot reaches the peer. A peer this node first heard of from the
//! catalog never declared anything to it. A live peer that does not link
//! within the wait (a partition, or a peer that dies) is waited for no
//! longer: its interest is then what the catalog says, as before.

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
    /// The link sessions of the peers listed live that have not completed
    /// a snapshot on a link since this node started.
    peers: Vec<Key>,
    /// When the wait for them ends.
    until: Option<Instant>,
    /// Before the first listing: the link sessions the catalog's interest
    /// made (peers this node did not know before it started).
    from_catalog: Vec<Key>,
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

    /// The catalog's first listing: `live` are the live nodes. The
    /// publishes held go on once the live peers known here have declared
    /// their interest on their links.
    pub(super) fn first_listing(&mut self, live: &[&str], now: Instant) {
        self.mesh.away.had_listing = true;
        let from_catalog = core::mem::take(&mut self.mesh.away.snapshots_due.from_catalog);
        let peers: Vec<Key> = (live.iter())
            .filter_map(|n| self.peer_session(n))
            .filter(|k| !from_catalog.contains(k))
            .filter(|&k| self.mesh.peer_declared_on(k).is_none())
            .collect();
        let wait = self.cfg.await_catalog.unwrap_or_default();
        self.mesh.away.snapshots_due = SnapshotsDue {
            peers,
            until: Some(now + wait),
            from_catalog: Vec::new(),
        };
        self.retry_all_parked(now);
    }

    /// The catalog's interest made link session `session` for a peer.
    pub(super) fn peer_from_catalog(&mut self, session: Key) {
        if !self.mesh.away.had_listing {
            self.mesh.away.snapshots_due.from_catalog.push(session);
        }
    }

    /// Peer `session` completed a snapshot, or is away or forgotten: the
    /// first listing waits for it no longer.
    pub(super) fn snapshot_not_due(&mut self, session: Key, now: Instant) {
        let due = &mut self.mesh.away.snapshots_due;
        let before = due.peers.len();
        due.peers.retain(|&k| k != session);
        if due.peers.len() < before && due.peers.is_empty() {
            self.retry_all_parked(now);
        }
    }
}
