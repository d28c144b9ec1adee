//! A live peer out of reach (`Config::link_grace`): its link stays down, its
//! lease runs, and what it wants goes to the catalog rather than filling its
//! outbox (see `router/unreachable.rs`).

use super::mesh::peer_links;
use super::offline::{outbox, poll_all};
use super::*;

/// Peer `a` with interest in `t`, its link just closed; a publisher.
fn link_down(grace: Option<Duration>) -> (H, ConnId) {
    let mut h = H::new(Config {
        link_grace: grace,
        ..Config::default()
    });
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let n = peer_links(&mut h, "a", &["t"]);
    h.b.handle_closed(n, h.now);
    (h, p)
}

#[test]
fn a_live_peer_whose_link_stays_down_past_the_grace_is_handed_on() {
    let (mut h, p) = link_down(Some(Duration::from_secs(2)));
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    h.advance(Duration::from_millis(1_999));
    assert!(
        poll_all(&mut h).is_empty(),
        "within the grace: the outbox waits"
    );
    h.advance(Duration::from_millis(1));
    let items = poll_all(&mut h);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].recipient, "a");
    assert_eq!(h.b.away_nodes(), ["a"]);
    assert_eq!(h.b.mesh_stats().unreachable, 1);
    // The adapter says it is live (it tries to link): still out of reach.
    h.b.node_live(h.now, "a");
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"2");
    assert_eq!(poll_all(&mut h).len(), 1, "the catalog still carries");
    assert_eq!(h.b.away_nodes(), ["a"]);
}

#[test]
fn an_unreachable_peer_s_link_back_takes_its_outbox_again() {
    let (mut h, p) = link_down(Some(Duration::from_secs(2)));
    h.advance(Duration::from_secs(2));
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    let items = poll_all(&mut h);
    assert_eq!(items.len(), 1);
    h.b.handle_offline_stored(h.now, "a", items[0].id);
    h.drain();
    assert_eq!(outbox(&h, "a"), (0, 0));
    let (n, present) = h.connect("$node.a", SessionMode::Resume);
    assert!(present);
    h.subscribe(n, 1, ">", None, 64);
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"2");
    assert!(poll_all(&mut h).is_empty());
    assert_eq!(payloads(&h.deliveries(n)), [b"2"]);
    assert!(h.b.away_nodes().is_empty());
    // Down again: a new grace.
    h.b.handle_closed(n, h.now);
    h.publish(p, 3, "t", QoS::AtLeastOnce, b"3");
    h.advance(Duration::from_millis(1_999));
    assert!(poll_all(&mut h).is_empty());
    h.advance(Duration::from_millis(1));
    // What the link had not acked, and what came since.
    let got: Vec<Vec<u8>> = poll_all(&mut h).into_iter().map(|i| i.payload).collect();
    assert_eq!(got, [b"2", b"3"]);
    assert_eq!(h.b.mesh_stats().unreachable, 2);
}

#[test]
fn without_a_grace_a_live_peer_s_outbox_waits_for_its_link() {
    let (mut h, p) = link_down(None);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    h.advance(Duration::from_secs(3600));
    assert!(poll_all(&mut h).is_empty());
    assert_eq!(outbox(&h, "a"), (1, 0));
}

#[test]
fn a_live_peer_known_from_the_catalog_that_never_links_is_handed_on() {
    let mut h = H::new(Config {
        link_grace: Some(Duration::from_secs(2)),
        ..Config::default()
    });
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.b.set_live_interest(h.now, "b", &["t"]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    assert!(poll_all(&mut h).is_empty());
    h.advance(Duration::from_secs(2));
    assert_eq!(poll_all(&mut h).len(), 1);
}
