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

/// Peer `a`'s link down for its 2 s grace, then a publish for it: handed
/// on as one item (its id).
fn handed_on_past_the_grace() -> (H, ConnId, u64) {
    let (mut h, p) = link_down(Some(Duration::from_secs(2)));
    h.advance(Duration::from_secs(2));
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    let items = poll_all(&mut h);
    assert_eq!(items.len(), 1);
    (h, p, items[0].id)
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
    let (mut h, p, id) = handed_on_past_the_grace();
    h.b.handle_offline_stored(h.now, "a", id);
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
    h.b.set_live_interest(h.now, "b", &[("t", None)]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    assert!(poll_all(&mut h).is_empty());
    h.advance(Duration::from_secs(2));
    assert_eq!(poll_all(&mut h).len(), 1);
}

#[test]
fn a_full_queue_of_a_peer_out_of_reach_keeps_the_message_here() {
    let (mut h, _, id) = handed_on_past_the_grace();
    // It drains its queue: what does not fit now waits, not dropped.
    h.b.handle_offline_full(h.now, "a", id);
    h.drain();
    assert_eq!(h.b.mesh_stats().offline_dropped, 0);
    assert_eq!(outbox(&h, "a"), (0, 1), "kept, offered again later");
    h.advance(Duration::from_secs(1));
    assert_eq!(poll_all(&mut h).len(), 1);
}

#[test]
fn a_flapping_link_keeps_its_first_time_down() {
    let (mut h, p) = link_down(Some(Duration::from_secs(2)));
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    h.advance(Duration::from_secs(1));
    // Up and down again between two looks.
    let (n, _) = h.connect("$node.a", SessionMode::Resume);
    h.b.handle_closed(n, h.now);
    h.advance(Duration::from_secs(1));
    assert!(!poll_all(&mut h).is_empty());
}

#[test]
fn a_live_peer_the_adapter_tries_to_link_gets_its_grace() {
    // Restored with its outbox; no catalog rows, so only node_live says it.
    let (h, _) = link_down(Some(Duration::from_secs(2)));
    let mut r = H::restored_from(h.b.config().clone(), &h.records);
    let (p, _) = r.connect("pub", SessionMode::Clean);
    r.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    r.b.node_live(r.now, "a");
    r.advance(Duration::from_secs(2));
    assert_eq!(poll_all(&mut r).len(), 1);
}
