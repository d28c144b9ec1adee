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

/// What a publisher held past its deadline hears of publish `id`.
fn timed_out(id: u32) -> [Got; 1] {
    [Got::PubReject {
        id,
        reason: Reason::Timeout,
    }]
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
    h.b.set_live_interest(h.now, "b", &[("t.>", None)]);
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
    assert_eq!(h.take(p), timed_out(1));
}

#[test]
fn a_live_peer_not_linked_gets_its_catalog_interest_kept_in_its_outbox() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.b.set_live_interest(h.now, "b", &[("t", None)]);
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
    h.b.set_live_interest(h.now, "b", &[("t", None)]);
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
    h.b.set_live_interest(h.now, "b", &[("u", None)]);
    assert_eq!(h.b.peer_interest("b"), ["t"]);
    assert!(h.b.away_nodes().is_empty());
}

/// A node's whose queues hold two messages and block their publishers for
/// 2 s, waiting `wait` for its first listing: a subscriber's queue is full
/// (its credit took the first of three QoS 0 publishes, which the catalog
/// does not hold), and a QoS 1 publish waits for the listing.
fn full_queue_before_the_listing(wait: Duration) -> (H, ConnId) {
    let mut h = H::new(Config {
        await_catalog: Some(wait),
        ..small_queue(Overflow::Block {
            deadline: Duration::from_secs(2),
        })
    });
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("s", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 1);
    for i in 1..=3u8 {
        h.publish(p, u32::from(i), "t", QoS::AtMostOnce, &[i]);
    }
    assert_eq!(payloads(&h.deliveries(s)), [[1u8]]);
    h.publish(p, 4, "t", QoS::AtLeastOnce, b"4");
    assert!(h.b.input_blocked(p), "held for the listing");
    (h, p)
}

#[test]
fn a_full_queue_holds_a_publish_its_own_time_after_the_catalog_wait() {
    let (mut h, p) = full_queue_before_the_listing(Duration::from_secs(5));
    // The listing comes just before the catalog's deadline: the full queue
    // holds the publish its whole 2 s from now, not what was left of the 5.
    h.advance(Duration::from_millis(4_900));
    h.b.handle_catalog_listing(h.now, &[], &[]);
    h.drain();
    h.advance(Duration::from_millis(1_999));
    assert!(h.take(p).is_empty());
    assert!(h.b.input_blocked(p), "still held for the queue");
    h.advance(Duration::from_millis(1));
    assert_eq!(h.take(p), timed_out(4));
}

#[test]
fn a_long_catalog_wait_does_not_lengthen_a_full_queue_hold() {
    let (mut h, p) = full_queue_before_the_listing(Duration::from_secs(30));
    // The listing comes at once: the full queue holds the publish 2 s, not
    // until the catalog's deadline 30 s away.
    h.b.handle_catalog_listing(h.now, &[], &[]);
    h.drain();
    assert!(h.b.input_blocked(p), "held for the queue");
    h.advance(Duration::from_secs(2));
    assert_eq!(h.take(p), timed_out(4));
    assert!(!h.b.input_blocked(p));
}

#[test]
fn the_first_listing_neither_frees_nor_lengthens_a_full_queue_hold() {
    let (mut h, p) = full_queue_before_the_listing(Duration::from_secs(5));
    let (q, _) = h.connect("pub0", SessionMode::Clean);
    // QoS 0 does not wait for the catalog: this one waits for the queue.
    h.publish(q, 1, "t", QoS::AtMostOnce, b"0");
    assert!(h.b.input_blocked(q), "held for the queue");
    // The listing offers every held publish again: the queue is still full,
    // so it stays held, until its own deadline.
    h.advance(Duration::from_millis(1_500));
    h.b.handle_catalog_listing(h.now, &[], &[]);
    h.drain();
    assert!(h.b.input_blocked(q), "still held for the queue");
    h.advance(Duration::from_millis(500));
    assert!(!h.b.input_blocked(q), "let go at its deadline");
    assert!(h.b.input_blocked(p), "the other's queue wait began later");
}

#[test]
fn a_peer_linked_before_its_snapshot_gets_its_catalog_interest() {
    // The peer's link is up, its snapshot not yet in, when the first
    // listing comes and releases the publishes (this node starts on an
    // empty store: it waits for no peer's snapshot).
    let mut h = H::new(node());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (n, _) = h.connect("$node.b", SessionMode::Resume);
    h.subscribe(n, 1, ">", None, 8);
    h.b.set_live_interest(h.now, "b", &[("t", None)]);
    h.b.handle_catalog_listing(h.now, &["b"], &["b"]);
    h.drain();
    assert_eq!(h.b.peer_interest("b"), ["t"]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    assert_eq!(acked(&h.take(p)), [1]);
    assert_eq!(payloads(&h.deliveries(n)), [b"x"], "forwarded to the peer");
    // Not away while linked; its snapshot is the newest word.
    h.b.set_away_interest(h.now, "b", &[("t", None)]);
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
    h.b.set_live_interest(h.now, "b", &[("t", None)]);
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
    h.b.set_live_interest(h.now, "b", &[("t", None), ("u", None)]);
    assert_eq!(
        h.b.peer_interest("b"),
        ["t", "u"],
        "kept until the snapshot ends"
    );
    h.send_all(n, [Frame::Interest(Interest::End)]);
    assert_eq!(h.b.peer_interest("b"), ["u"]);
}

#[test]
fn an_end_without_a_begin_completes_no_snapshot() {
    let mut h = H::new(Config::default());
    let (n, _) = h.connect("$node.b", SessionMode::Resume);
    h.subscribe(n, 1, ">", None, 8);
    h.send_all(n, [Frame::Interest(Interest::End)]);
    // No snapshot came on this link: the catalog's word still counts.
    h.b.set_live_interest(h.now, "b", &[("t", None)]);
    assert_eq!(h.b.peer_interest("b"), ["t"]);
}

/// Node `b` linked and declared `t`; this node crashed before that
/// declaration was durable and restarted: a publisher, and `b` live in the
/// first listing with nothing in the catalog yet.
fn restarted_without_b_s_interest() -> (H, ConnId) {
    let mut h = H::new(node());
    let n = peer_links(&mut h, "b", &[]);
    let durable = h.records.len();
    h.send(n, Frame::Interest(Interest::Add("t")));
    assert_eq!(h.b.peer_interest("b"), ["t"]);
    let mut r = H::restored_from(node(), &h.records[..durable]);
    assert!(r.b.peer_interest("b").is_empty(), "lost with the crash");
    let (p, _) = r.connect("pub", SessionMode::Clean);
    r.b.handle_catalog_listing(r.now, &[], &["b"]);
    r.drain();
    (r, p)
}

#[test]
fn after_a_restart_the_first_listing_waits_for_a_live_peer_s_snapshot() {
    let (mut r, p) = restarted_without_b_s_interest();
    r.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    assert!(r.take(p).is_empty(), "not acked for nobody");
    // b links again and declares its whole interest: the publish is its.
    let n = peer_links(&mut r, "b", &["t"]);
    assert_eq!(acked(&r.take(p)), [1]);
    assert_eq!(payloads(&r.deliveries(n)), [b"x"]);
}

#[test]
fn a_live_peer_that_does_not_link_is_waited_for_no_longer_than_the_wait() {
    let (mut r, p) = restarted_without_b_s_interest();
    r.advance(Duration::from_secs(1));
    r.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    r.advance(Duration::from_millis(3_999));
    assert!(r.take(p).is_empty());
    // Five seconds after the listing: what the catalog says goes.
    r.advance(Duration::from_millis(1));
    assert_eq!(acked(&r.take(p)), [1]);
    assert_eq!(outbox(&r, "b"), (0, 0));
}

#[test]
fn a_publish_held_before_the_listing_goes_on_when_the_wait_for_a_peer_ends() {
    let mut h = H::new(node());
    let n = peer_links(&mut h, "b", &[]);
    h.b.handle_closed(n, h.now);
    let mut r = H::restored_from(node(), &h.records);
    let (p, _) = r.connect("pub", SessionMode::Clean);
    r.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    r.advance(Duration::from_secs(1));
    r.b.handle_catalog_listing(r.now, &[], &["b"]);
    r.drain();
    r.advance(Duration::from_millis(3_999));
    assert!(r.take(p).is_empty(), "b may still link");
    // Its own deadline: the listing came, so the catalog's word goes.
    r.advance(Duration::from_millis(1));
    assert_eq!(acked(&r.take(p)), [1]);
}

#[test]
fn a_restarted_node_waits_for_a_live_peer_it_has_no_record_of() {
    // b linked for the first time just before the crash: not even its
    // session was durable. Any record makes this a restart.
    let mut h = H::new(node());
    let (s, _) = h.connect("s", SessionMode::Resume);
    h.subscribe(s, 1, "u", None, 8);
    let mut r = H::restored_from(node(), &h.records);
    let (p, _) = r.connect("pub", SessionMode::Clean);
    r.b.handle_catalog_listing(r.now, &[], &["b"]);
    r.drain();
    r.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    assert!(r.take(p).is_empty());
    let n = peer_links(&mut r, "b", &["t"]);
    assert_eq!(acked(&r.take(p)), [1]);
    assert_eq!(payloads(&r.deliveries(n)), [b"x"]);
}
