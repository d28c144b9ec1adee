//! Which peers a node links to, and when: the node's side of the catalog.
//!
//! The adapter reads the catalog's live nodes and hands them to
//! [`Roster::handle_live`]; it reports each link's transport closing (or
//! failing to connect) with [`Roster::handle_link_closed`], a link that came
//! up with [`Roster::handle_link_up`], and fires [`Roster::handle_timeout`]
//! at [`Roster::poll_timeout`]. After each of those it drains
//! [`Roster::poll_action`]: connect a link to a peer (then call
//! [`Broker::connect_link`](crate::broker::Broker::connect_link) on the
//! stream, and tell the broker the peer is live:
//! [`Broker::node_live`](crate::broker::Broker::node_live)), or treat a peer
//! whose lease expired as away
//! ([`Broker::node_away`](crate::broker::Broker::node_away): its messages go
//! to the catalog).
//!
//! The decisions: one link to every live peer but this node; a peer that
//! registered again (a new incarnation, or a new address) is connected
//! afresh at once; a link that closed while its peer is live is connected
//! again after an exponential backoff with jitter, reset once a link came
//! up; a peer the catalog no longer lists is away.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use core::time::Duration;

use crate::client::backoff::Backoff;
use crate::time::Instant;

/// What the adapter of a node does next (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterAction {
    /// Open a transport to `addr` and make it a link to `peer`; a link to
    /// `peer` the adapter still drives is superseded (drop it).
    Connect {
        /// The peer's node id.
        peer: String,
        /// Where it listens, as it registered.
        addr: String,
    },
    /// The peer's lease expired: close its link, and tell the broker it is
    /// away (`Broker::node_away`).
    Forget {
        /// The peer's node id.
        peer: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Known from before a restart, not seen in the catalog yet.
    Idle,
    /// A transport is being opened, or the link is up.
    Connecting,
    Up,
    /// Closed; connect again at this time.
    Waiting(Instant),
}

struct PeerState {
    incarnation: u64,
    addr: String,
    link: Link,
    backoff: Backoff,
}

/// The peers of one node and the state of its link to each (see the module
/// docs).
pub struct Roster {
    node: String,
    min: Duration,
    max: Duration,
    seed: u64,
    peers: BTreeMap<String, PeerState>,
    actions: VecDeque<RosterAction>,
}

impl Roster {
    /// The roster of node `node`: links closed while their peer is live are
    /// connected again after `min`, doubling up to `max` (±25 % jitter drawn
    /// from `seed`).
    pub fn new(node: &str, min: Duration, max: Duration, seed: u64) -> Roster {
        Roster {
            node: node.into(),
            min,
            max: max.max(min),
            seed,
            peers: BTreeMap::new(),
            actions: VecDeque::new(),
        }
    }

    /// The catalog's live nodes now, as (id, incarnation, address): this
    /// node among them is skipped.
    pub fn handle_live<'a>(&mut self, live: impl IntoIterator<Item = (&'a str, u64, &'a str)>) {
        let mut seen = BTreeMap::new();
        for (id, incarnation, addr) in live {
            if id != self.node {
                seen.insert(id, (incarnation, addr));
            }
        }
        let gone: alloc::vec::Vec<String> = self
            .peers
            .keys()
            .filter(|p| !seen.contains_key(p.as_str()))
            .cloned()
            .collect();
        for peer in gone {
            self.peers.remove(&peer);
            self.actions.push_back(RosterAction::Forget { peer });
        }
        for (id, (incarnation, addr)) in seen {
            if let Some(p) = self.peers.get(id)
                && p.incarnation == incarnation
                && p.addr == addr
                && p.link != Link::Idle
            {
                continue;
            }
            self.seed = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            self.peers.insert(
                id.into(),
                PeerState {
                    incarnation,
                    addr: addr.into(),
                    link: Link::Connecting,
                    backoff: Backoff::new(self.seed),
                },
            );
            self.actions.push_back(RosterAction::Connect {
                peer: id.into(),
                addr: addr.into(),
            });
        }
    }

    /// The peers this node knew before it started (their link sessions came
    /// back from its store): each is linked once the catalog lists it, and
    /// away from the first [`handle_live`](Self::handle_live) that does
    /// not, so a peer that expired while this node was down does not keep
    /// its outbox here waiting for a link for ever.
    pub fn handle_known<'a>(&mut self, peers: impl IntoIterator<Item = &'a str>) {
        for id in peers {
            if id == self.node || self.peers.contains_key(id) {
                continue;
            }
            self.seed = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let state = PeerState {
                incarnation: 0,
                addr: String::new(),
                link: Link::Idle,
                backoff: Backoff::new(self.seed),
            };
            self.peers.insert(id.into(), state);
        }
    }

    /// The link to `peer` carried its peer's `Welcome` (or at least
    /// connected): failures before it no longer lengthen the backoff.
    pub fn handle_link_up(&mut self, peer: &str) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.link = Link::Up;
            p.backoff.reset();
        }
    }

    /// The link to `peer` closed, or could not be opened.
    pub fn handle_link_closed(&mut self, now: Instant, peer: &str) {
        if let Some(p) = self.peers.get_mut(peer) {
            let delay = p.backoff.next_delay(self.min, self.max);
            p.link = Link::Waiting(now + delay);
        }
    }

    /// Time passed: links whose backoff ran out are connected again.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (id, p) in &mut self.peers {
            if matches!(p.link, Link::Waiting(at) if at <= now) {
                p.link = Link::Connecting;
                self.actions.push_back(RosterAction::Connect {
                    peer: id.clone(),
                    addr: p.addr.clone(),
                });
            }
        }
    }

    /// The next thing to do, until `None`.
    pub fn poll_action(&mut self) -> Option<RosterAction> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|p| match p.link {
                Link::Waiting(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// The peers it links to, by id.
    pub fn peers(&self) -> impl Iterator<Item = &str> {
        self.peers.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn drain(r: &mut Roster) -> Vec<RosterAction> {
        core::iter::from_fn(|| r.poll_action()).collect()
    }

    fn connect(peer: &str, addr: &str) -> RosterAction {
        RosterAction::Connect {
            peer: peer.into(),
            addr: addr.into(),
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn links_every_live_peer_but_itself_and_forgets_those_gone() {
        let mut r = Roster::new("a", 100 * MS, 1000 * MS, 1);
        r.handle_live([("a", 1, "h:1"), ("b", 2, "h:2"), ("c", 3, "h:3")]);
        assert_eq!(drain(&mut r), [connect("b", "h:2"), connect("c", "h:3")]);
        // Listed again unchanged: nothing to do.
        r.handle_live([("a", 1, "h:1"), ("b", 2, "h:2"), ("c", 3, "h:3")]);
        assert_eq!(drain(&mut r), []);
        r.handle_live([("a", 1, "h:1"), ("c", 3, "h:3")]);
        assert_eq!(drain(&mut r), [RosterAction::Forget { peer: "b".into() }]);
        assert_eq!(r.peers().collect::<Vec<_>>(), ["c"]);
    }

    #[test]
    fn peers_known_from_before_a_restart_are_linked_or_forgotten_by_the_catalog() {
        let mut r = Roster::new("a", 100 * MS, 1000 * MS, 1);
        r.handle_known(["a", "b", "c"]);
        assert_eq!(drain(&mut r), [], "nothing before the catalog speaks");
        assert_eq!(r.poll_timeout(), None);
        r.handle_live([("a", 9, "h:1"), ("b", 2, "h:2")]);
        assert_eq!(
            drain(&mut r),
            [
                RosterAction::Forget { peer: "c".into() },
                connect("b", "h:2")
            ]
        );
    }

    #[test]
    fn a_new_incarnation_or_address_is_connected_at_once() {
        let mut r = Roster::new("a", 100 * MS, 1000 * MS, 1);
        r.handle_live([("b", 2, "h:2")]);
        drain(&mut r);
        r.handle_live([("b", 5, "h:2")]);
        assert_eq!(drain(&mut r), [connect("b", "h:2")]);
        r.handle_live([("b", 5, "h:9")]);
        assert_eq!(drain(&mut r), [connect("b", "h:9")]);
    }

    #[test]
    fn a_closed_link_is_connected_again_after_a_growing_backoff() {
        let t0 = Instant::from_millis(1000);
        let mut r = Roster::new("a", 100 * MS, 400 * MS, 7);
        r.handle_live([("b", 2, "h:2")]);
        drain(&mut r);
        assert_eq!(r.poll_timeout(), None);
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..4 {
            r.handle_link_closed(now, "b");
            let at = r.poll_timeout().expect("a retry is planned");
            delays.push(at - now);
            r.handle_timeout(Instant::from_micros(at.as_micros() - 1000));
            assert_eq!(drain(&mut r), [], "not before its time");
            r.handle_timeout(at);
            assert_eq!(drain(&mut r), [connect("b", "h:2")]);
            now = at;
        }
        // 100, 200, 400, 400 ms, each within ±25 %.
        for (d, base) in delays.iter().zip([100u64, 200, 400, 400]) {
            let ms = d.as_millis() as u64;
            assert!(ms >= base * 3 / 4 && ms <= base * 5 / 4, "{delays:?}");
        }
        // Up again: the next failure waits the minimum.
        r.handle_link_up("b");
        r.handle_link_closed(now, "b");
        let d = r.poll_timeout().unwrap() - now;
        assert!(d <= 125 * MS, "{d:?}");
        // A peer gone while its link waits: no retry.
        r.handle_live([]);
        assert_eq!(drain(&mut r), [RosterAction::Forget { peer: "b".into() }]);
        assert_eq!(r.poll_timeout(), None);
    }
}
