//! Offline queues: what must not be lost or reordered (QoS 0 ids that a
//! restart hands out again, a group whose members went away, a peer gone
//! for good, the order of a peer back on its link, a drained message
//! refused for good).

use super::mesh::peer_links;
use super::offline::restored;
use super::*;

fn poll_all(h: &mut H) -> Vec<OfflineItem> {
    let now = h.now;
    core::iter::from_fn(|| h.b.poll_offline(now)).collect()
}

/// Peer `a` linked with interest in `t`, then its link closed; a publisher.
fn away_peer(cfg: Config) -> (H, ConnId) {
    let mut h = H::new(cfg);
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let n = peer_links(&mut h, "a", &["t"]);
    h.b.handle_closed(n, h.now);
    h.drain();
    (h, p)
}

#[test]
fn a_qos0_message_is_not_handed_to_the_catalog() {
    // Its id is not logged: after a restart a QoS 1 message may get it, and
    // the catalog (idempotent on the id) would take that one for a copy.
    let (mut h, p) = away_peer(Config::default());
    h.b.node_away(h.now, "a");
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"m1");
    h.publish(p, 0, "t", QoS::AtMostOnce, b"q");
    let items = poll_all(&mut h);
    let got: Vec<&[u8]> = items.iter().map(|i| i.payload.as_slice()).collect();
    assert_eq!(got, [&b"m1"[..]]);
    for i in &items {
        h.b.handle_offline_stored(h.now, "a", i.id);
    }
    h.drain();
    let mut h2 = restored(&h);
    h2.b.node_away(h2.now, "a");
    let (p2, _) = h2.connect("pub", SessionMode::Clean);
    h2.publish(p2, 2, "t", QoS::AtLeastOnce, b"m2");
    let again = poll_all(&mut h2);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].payload, b"m2");
    assert!(
        items.iter().all(|i| i.id != again[0].id),
        "an id handed to the catalog is not handed out again"
    );
}

#[test]
fn a_group_whose_only_member_went_away_keeps_its_messages() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let n = peer_links(&mut h, "b", &[]);
    h.subscribe(n, 0x8000_0001, "t", Some("g"), 8);
    h.b.handle_closed(n, h.now);
    h.drain();
    for id in 1..=3 {
        h.publish(p, id, "t", QoS::AtLeastOnce, b"job");
    }
    h.b.node_away(h.now, "b");
    h.b.set_away_interest(h.now, "b", &[]);
    h.drain();
    h.publish(p, 4, "t", QoS::AtLeastOnce, b"job");
    assert_eq!(h.b.peer_groups("b").len(), 1, "the group's last member");
    // Waiting for it, after a restart too, and delivered when it is back.
    let mut h2 = restored(&h);
    for h in [&mut h, &mut h2] {
        let (n, _) = h.connect("$node.b", SessionMode::Resume);
        h.subscribe(n, 0x8000_0001, "t", Some("g"), 8);
        assert_eq!(h.deliveries(n).len(), 4);
    }
}

#[test]
fn an_away_peer_leaves_a_group_others_serve() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (w, _) = h.connect("w", SessionMode::Resume);
    h.subscribe(w, 1, "t", Some("g"), 8);
    let n = peer_links(&mut h, "b", &[]);
    h.subscribe(n, 0x8000_0001, "t", Some("g"), 8);
    h.b.node_away(h.now, "b");
    h.drain();
    assert!(h.b.peer_groups("b").is_empty());
    assert!(restored(&h).b.peer_groups("b").is_empty());
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"job");
    assert_eq!(h.deliveries(w).len(), 1);
}

/// The outbox of peer `node` at `h`: (waiting, in flight).
fn outbox(h: &H, node: &str) -> (usize, usize) {
    let owner = alloc::format!("$node.{node}");
    h.b.queues()
        .iter()
        .find(|q| q.owner == owner)
        .map_or((0, 0), |q| (q.waiting, q.inflight))
}

#[test]
fn a_full_catalog_queue_of_an_away_peer_drops_the_item_and_refuses_no_publisher() {
    let (mut h, p) = away_peer(small_queue(Overflow::RejectNew));
    h.b.node_away(h.now, "a");
    for round in 0..3u32 {
        h.take(p);
        h.publish(p, 2 * round + 1, "t", QoS::AtLeastOnce, b"1");
        h.publish(p, 2 * round + 2, "t", QoS::AtLeastOnce, b"2");
        assert!(
            !(h.take(p).iter()).any(|g| matches!(g, Got::PubReject { .. })),
            "round {round}: a publisher is never refused for a node away"
        );
        for i in poll_all(&mut h) {
            h.b.handle_offline_full(h.now, "a", i.id);
        }
        h.drain();
        assert_eq!(outbox(&h, "a"), (0, 0));
    }
    assert_eq!(h.b.mesh_stats().offline_dropped, 6);
    assert_eq!(outbox(&restored(&h), "a"), (0, 0), "acked out of the log");
}

#[test]
fn a_full_catalog_queue_of_a_peer_back_sends_the_item_on_its_link() {
    let (mut h, p) = away_peer(Config::default());
    h.b.node_away(h.now, "a");
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    let item = poll_all(&mut h).pop().unwrap();
    h.b.node_live(h.now, "a");
    let (n, _) = h.connect("$node.a", SessionMode::Resume);
    h.subscribe(n, 1, ">", None, 8);
    h.b.handle_offline_full(h.now, "a", item.id);
    h.drain();
    assert_eq!(payloads(&h.deliveries(n)), [b"x"]);
    assert_eq!(h.b.mesh_stats().offline_dropped, 0);
}

#[test]
fn a_node_whose_interest_left_the_catalog_is_forgotten() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.b.set_away_interest(h.now, "c", &[("t", None)]);
    h.b.handle_catalog_listing(h.now, &["c"], &[]);
    // Never listed in this run (it died before it wrote its interest): kept.
    let n = peer_links(&mut h, "d", &["t"]);
    h.b.handle_closed(n, h.now);
    h.b.node_away(h.now, "d");
    h.drain();
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    assert_eq!(outbox(&h, "c"), (1, 0));
    // Live (it restarted and wrote nothing yet): kept.
    h.b.handle_catalog_listing(h.now, &[], &["c"]);
    assert_eq!(outbox(&h, "c"), (1, 0));
    h.b.handle_catalog_listing(h.now, &["c"], &[]);
    // Gone from the catalog: nothing new for it, and what was kept for it
    // still goes to its catalog queue (the catalog may have lost its rows).
    h.b.handle_catalog_listing(h.now, &[], &[]);
    h.drain();
    assert!(h.b.peer_interest("c").is_empty());
    assert!(restored(&h).b.peer_interest("c").is_empty());
    assert_eq!(outbox(&h, "c"), (1, 0));
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"y");
    assert_eq!(outbox(&h, "c"), (1, 0), "nothing new");
    let items = poll_all(&mut h);
    let got: Vec<(&str, &[u8])> = (items.iter())
        .map(|i| (i.recipient.as_str(), i.payload.as_slice()))
        .collect();
    assert_eq!(got, [("c", &b"x"[..]), ("d", &b"x"[..]), ("d", &b"y"[..])]);
    // Not stored yet: a listing keeps it.
    h.b.handle_catalog_listing(h.now, &[], &[]);
    let mut away = h.b.away_nodes();
    away.sort();
    assert_eq!(away, ["c", "d"]);
    for i in &items {
        h.b.handle_offline_stored(h.now, &i.recipient, i.id);
    }
    h.drain();
    // Nothing left for it: forgotten at the next listing.
    h.b.handle_catalog_listing(h.now, &[], &[]);
    h.drain();
    assert_eq!(h.b.away_nodes(), ["d"]);
    assert!(h.b.queues().iter().all(|q| q.owner != "$node.c"));
    assert_eq!(h.b.mesh_stats().offline_stored, 3);
}

#[test]
fn a_node_whose_interest_left_the_catalog_with_nothing_kept_is_forgotten_at_once() {
    let mut h = H::new(Config::default());
    h.b.set_away_interest(h.now, "c", &[("t", None)]);
    h.b.handle_catalog_listing(h.now, &["c"], &[]);
    h.b.handle_catalog_listing(h.now, &[], &[]);
    h.drain();
    assert!(h.b.away_nodes().is_empty());
    assert!(h.b.queues().iter().all(|q| q.owner != "$node.c"));
}

#[test]
fn a_leaving_node_alone_in_a_busy_group_is_forgotten_once_the_older_jobs_are_handed_on() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.b.set_away_interest(h.now, "c", &[("t", Some("g"))]);
    h.b.handle_catalog_listing(h.now, &["c"], &[]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"before");
    h.b.handle_catalog_listing(h.now, &[], &[]);
    // A job for the group between each round: the older one still goes on.
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"after");
    let items = poll_all(&mut h);
    let got: Vec<&[u8]> = items.iter().map(|i| i.payload.as_slice()).collect();
    assert_eq!(got, [&b"before"[..], &b"after"[..]]);
    for i in &items {
        h.b.handle_offline_stored(h.now, &i.recipient, i.id);
    }
    h.publish(p, 3, "t", QoS::AtLeastOnce, b"later");
    h.drain();
    h.b.handle_catalog_listing(h.now, &[], &[]);
    h.drain();
    assert!(h.b.away_nodes().is_empty(), "forgotten with the newer job");
    assert!(h.b.queues().iter().all(|q| q.owner != "$node.c"));
}

#[test]
fn a_node_listed_again_while_leaving_is_kept_with_its_interest() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.b.set_away_interest(h.now, "c", &[("t", None)]);
    h.b.handle_catalog_listing(h.now, &["c"], &[]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    h.b.handle_catalog_listing(h.now, &[], &[]);
    assert!(h.b.peer_interest("c").is_empty());
    // Its rows are back (it wrote them again): its interest with them.
    h.b.set_away_interest(h.now, "c", &[("t", None)]);
    h.b.handle_catalog_listing(h.now, &["c"], &[]);
    let items = poll_all(&mut h);
    for i in &items {
        h.b.handle_offline_stored(h.now, &i.recipient, i.id);
    }
    h.drain();
    h.b.handle_catalog_listing(h.now, &["c"], &[]);
    assert_eq!(h.b.away_nodes(), ["c"]);
    assert_eq!(h.b.peer_interest("c"), ["t"]);
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"y");
    assert_eq!(outbox(&h, "c"), (1, 0));
}

#[test]
fn a_peer_back_gets_what_the_catalog_did_not_store_before_newer_messages() {
    let (mut h, p) = away_peer(Config::default());
    h.b.node_away(h.now, "a");
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"y");
    let items = poll_all(&mut h);
    assert_eq!(items.len(), 2);
    h.b.node_live(h.now, "a");
    let (n, _) = h.connect("$node.a", SessionMode::Resume);
    h.subscribe(n, 1, ">", None, 8);
    h.publish(p, 3, "t", QoS::AtLeastOnce, b"z");
    assert!(h.deliveries(n).is_empty(), "held while the catalog answers");
    // Reported out of order: still in the outbox's order.
    h.b.handle_offline_failed(h.now, "a", items[1].id);
    h.drain();
    assert!(h.deliveries(n).is_empty(), "x is still handed on");
    h.b.handle_offline_failed(h.now, "a", items[0].id);
    h.drain();
    assert_eq!(payloads(&h.deliveries(n)), [b"x", b"y", b"z"]);
}

#[test]
fn a_linked_peer_s_outbox_waits_for_the_items_that_failed() {
    let (mut h, p) = away_peer(Config::default());
    h.b.node_away(h.now, "a");
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    let item = poll_all(&mut h).pop().unwrap();
    h.b.handle_offline_failed(h.now, "a", item.id);
    // It links again before its adapter heard it is live.
    let (n, _) = h.connect("$node.a", SessionMode::Resume);
    h.subscribe(n, 1, ">", None, 8);
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"y");
    assert!(h.deliveries(n).is_empty(), "y waits behind x");
    h.now += OFFLINE_RETRY;
    assert!(poll_all(&mut h).is_empty());
    h.drain();
    assert_eq!(payloads(&h.deliveries(n)), [b"x", b"y"]);
}

fn offline<'a>(id: u64, payload: &'a [u8]) -> OfflineMessage<'a> {
    OfflineMessage {
        origin: "a",
        id,
        topic: "t",
        meta: &[0; 5],
        payload,
    }
}

#[test]
fn a_drained_message_this_node_never_takes_is_rejected_not_refused() {
    let cfg = Config {
        max_message: 1024,
        ..Config::default()
    };
    let mut h = H::new(cfg);
    let (s, _) = h.connect("s", SessionMode::Resume);
    h.subscribe(s, 1, "t", None, 8);
    let big = [0u8; 2048];
    assert_eq!(
        h.b.deliver_offline(h.now, &offline(1, &big)),
        Err(OfflineError::Rejected),
        "the catalog may drop it: it would stall the queue"
    );
    let bad_topic = OfflineMessage {
        topic: "$sys.x",
        ..offline(2, b"x")
    };
    assert_eq!(
        h.b.deliver_offline(h.now, &bad_topic),
        Err(OfflineError::Rejected)
    );
    assert!(h.b.deliver_offline(h.now, &offline(3, b"small")).is_ok());
    h.drain();
    assert_eq!(payloads(&h.deliveries(s)), [b"small"]);
    assert_eq!(h.b.mesh_stats().offline_rejected, 2);
}
