//! What a node does with the catalog's listing (see `broker::mesh::offline`):
//! the interest of live peers not linked to it, and its clients' QoS 1
//! publishes held until its first listing (`Config::await_catalog`).

use super::mesh::peer_links;
use super::offline::{outbox, poll_all, restored};
use super::*;
use crate::wire::mesh::Interest;

/// A node's: publishes wait up to 5 s for its first listing.
fn node() -> Config {
    Config {
        await_catalog: Some(Duration::from_secs(5)),
        ..Config::default()
    }
}

fn acked(got: &[Got]) -> Vec<u32> {
    (got.iter())
        .filter_map(|g| match g {
            Got::PubAck { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

#[test]
fn a_publish_before_the_first_listing_waits_and_goes_where_it_says() {
    let mut h = H::new(node());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("s", SessionMode::Resume);
    h.subscribe(s, 1, "t.>", None, 8);
    h.publish(p, 1, "t.1", QoS::AtLeastOnce, b"early");
    assert_eq!(acked(&h.take(p)), [] as [u32; 0], "not before the listing");
    assert!(h.deliveries(s).is_empty());
    h.b.set_live_interest(h.now, "b", &["t.>"]);
    h.b.handle_catalog_listing(h.now, &["b"], &["b"]);
    h.drain();
    assert_eq!(acked(&h.take(p)), [1]);
    assert_eq!(payloads(&h.deliveries(s)), [b"early"]);
    assert_eq!(outbox(&h, "b"), (1, 0), "kept for the peer it lists");
    // Only the first listing is waited for.
    h.publish(p, 2, "t.2", QoS::AtLeastOnce, b"later");
    assert_eq!(acked(&h.take(p)), [2]);
}

#[test]
fn a_publish_held_past_its_deadline_is_refused() {
    let mut h = H::new(node());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    h.advance(Duration::from_millis(4_999));
    assert!(h.take(p).is_empty());
    h.advance(Duration::from_millis(1));
    let timeout = Reason::Timeout;
    assert_eq!(
        h.take(p),
        [Got::PubReject {
            id: 1,
            reason: timeout
        }]
    );
}

#[test]
fn a_live_peer_not_linked_gets_its_catalog_interest_kept_in_its_outbox() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.b.set_live_interest(h.now, "b", &["t"]);
    h.drain();
    assert!(h.b.away_nodes().is_empty(), "live: not away");
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    h.publish(p, 2, "u", QoS::AtLeastOnce, b"not wanted");
    assert!(poll_all(&mut h).is_empty(), "it waits for the link");
    assert_eq!(outbox(&h, "b"), (1, 0));
    assert_eq!(outbox(&restored(&h), "b"), (1, 0));
    // Its link comes up: it takes the outbox.
    let (n, present) = h.connect("$node.b", SessionMode::Resume);
    assert!(present);
    h.subscribe(n, 1, ">", None, 8);
    assert_eq!(payloads(&h.deliveries(n)), [b"x"]);
}

#[test]
fn a_live_peer_not_linked_whose_lease_runs_out_gets_its_outbox_in_the_catalog() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.b.set_live_interest(h.now, "b", &["t"]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    assert!(h.b.node_away(h.now, "b"));
    let items = poll_all(&mut h);
    let got: Vec<&[u8]> = items.iter().map(|i| i.payload.as_slice()).collect();
    assert_eq!(got, [b"x"]);
}

#[test]
fn live_interest_does_not_override_a_linked_peer() {
    let mut h = H::new(Config::default());
    let _n = peer_links(&mut h, "b", &["t"]);
    h.b.set_live_interest(h.now, "b", &["u"]);
    assert_eq!(h.b.peer_interest("b"), ["t"]);
    assert!(h.b.away_nodes().is_empty());
}

#[test]
fn a_peer_linked_before_its_snapshot_gets_its_catalog_interest() {
    // This node restarted without what the peer declared (its records were
    // not durable yet); the peer's link is back, its snapshot not yet, when
    // the first listing comes and releases the publishes.
    let mut h = H::new(node());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (n, _) = h.connect("$node.b", SessionMode::Resume);
    h.subscribe(n, 1, ">", None, 8);
    h.b.set_live_interest(h.now, "b", &["t"]);
    h.b.handle_catalog_listing(h.now, &["b"], &["b"]);
    h.drain();
    assert_eq!(h.b.peer_interest("b"), ["t"]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    assert_eq!(acked(&h.take(p)), [1]);
    assert_eq!(payloads(&h.deliveries(n)), [b"x"], "forwarded to the peer");
    // Not away while linked; its snapshot is the newest word.
    h.b.set_away_interest(h.now, "b", &["t"]);
    assert!(h.b.away_nodes().is_empty());
    let frames = [
        Frame::Interest(Interest::Begin),
        Frame::Interest(Interest::Add("u")),
        Frame::Interest(Interest::End),
    ];
    h.send_all(n, frames);
    assert_eq!(
        h.b.peer_interest("b"),
        ["u"],
        "what the snapshot does not name goes"
    );
    h.b.set_live_interest(h.now, "b", &["t"]);
    assert_eq!(h.b.peer_interest("b"), ["u"], "declared since it connected");
}

#[test]
fn catalog_interest_given_during_a_snapshot_goes_unless_the_snapshot_names_it() {
    let mut h = H::new(Config::default());
    let (n, _) = h.connect("$node.b", SessionMode::Resume);
    h.subscribe(n, 1, ">", None, 8);
    let begin = [
        Frame::Interest(Interest::Begin),
        Frame::Interest(Interest::Add("u")),
    ];
    h.send_all(n, begin);
    h.b.set_live_interest(h.now, "b", &["t", "u"]);
    assert_eq!(
        h.b.peer_interest("b"),
        ["t", "u"],
        "kept until the snapshot ends"
    );
    h.send_all(n, [Frame::Interest(Interest::End)]);
    assert_eq!(h.b.peer_interest("b"), ["u"]);
}
