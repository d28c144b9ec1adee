//! Offline queues (see `broker::mesh::offline`): an away peer's outbox
//! handed on to the catalog, away interest from the catalog, and the
//! catalog's messages for this node published as a link's.

use super::mesh::{Mesh2, peer_links};
use super::*;

/// The outbox of peer `node` at `h`: (waiting, in flight).
pub(super) fn outbox(h: &H, node: &str) -> (usize, usize) {
    let owner = alloc::format!("$node.{node}");
    h.b.queues()
        .iter()
        .find(|q| q.owner == owner)
        .map_or((0, 0), |q| (q.waiting, q.inflight))
}

pub(super) fn poll_all(h: &mut H) -> Vec<OfflineItem> {
    let now = h.now;
    core::iter::from_fn(|| h.b.poll_offline(now)).collect()
}

/// `h` restarted on its own store, with its configuration.
pub(super) fn restored(h: &H) -> H {
    H::restored_from(h.b.config().clone(), &h.records)
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
fn an_away_peer_s_outbox_leaves_only_once_the_catalog_stored_it() {
    let (mut h, p) = away_peer(Config::default());
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"before");
    assert!(
        poll_all(&mut h).is_empty(),
        "not away yet: the outbox waits"
    );
    assert!(h.b.node_away(h.now, "a"));
    assert_eq!(h.b.away_nodes(), ["a"]);
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"after");
    h.publish(p, 3, "u", QoS::AtLeastOnce, b"not wanted");
    let items = poll_all(&mut h);
    let got: Vec<(&str, &str, &[u8])> = (items.iter())
        .map(|i| (i.recipient.as_str(), i.topic.as_str(), i.payload.as_slice()))
        .collect();
    assert_eq!(got, [("a", "t", &b"before"[..]), ("a", "t", &b"after"[..])]);
    assert_eq!(Meta::decode_from(&items[0].meta), Some(Meta::default()));
    assert_eq!(outbox(&h, "a"), (0, 2), "in flight until stored");
    // Not stored yet: a restart still has both.
    assert_eq!(outbox(&restored(&h), "a"), (2, 0));
    h.b.handle_offline_stored(h.now, "a", items[0].id);
    h.drain();
    assert_eq!(outbox(&h, "a"), (0, 1));
    assert_eq!(outbox(&restored(&h), "a"), (1, 0));
    h.b.handle_offline_stored(h.now, "a", items[1].id);
    // Reported twice: nothing happens.
    h.b.handle_offline_stored(h.now, "a", items[1].id);
    h.drain();
    assert_eq!(outbox(&h, "a"), (0, 0));
    assert_eq!(outbox(&restored(&h), "a"), (0, 0));
    assert_eq!(h.b.mesh_stats().offline_stored, 2);
}

#[test]
fn a_compaction_keeps_what_is_handed_on_but_not_stored() {
    let (mut h, p) = away_peer(Config::default());
    h.b.node_away(h.now, "a");
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"handed");
    assert_eq!(poll_all(&mut h).len(), 1);
    let snap = h.b.snapshot().unwrap();
    let h2 = H::restored_from(Config::default(), &snap.records);
    assert_eq!(outbox(&h2, "a"), (1, 0));
}

#[test]
fn a_failed_store_keeps_the_item_and_offers_it_again_later() {
    let (mut h, p) = away_peer(small_queue(Overflow::RejectNew));
    h.b.node_away(h.now, "a");
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"1");
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"2");
    let items = poll_all(&mut h);
    assert_eq!(items.len(), 2);
    for i in &items {
        h.b.handle_offline_failed(h.now, "a", i.id);
    }
    h.drain();
    assert_eq!(outbox(&h, "a"), (0, 2), "held until the retry");
    assert_eq!(outbox(&restored(&h), "a"), (2, 0));
    assert!(poll_all(&mut h).is_empty(), "not before the retry delay");
    // The outbox is full meanwhile: a publish is refused, nothing dropped.
    h.take(p);
    h.publish(p, 3, "t", QoS::AtLeastOnce, b"3");
    assert_eq!(
        h.take(p),
        [Got::PubReject {
            id: 3,
            reason: Reason::QueueFull
        }]
    );
    h.now += OFFLINE_RETRY;
    let again: Vec<Vec<u8>> = poll_all(&mut h).into_iter().map(|i| i.payload).collect();
    assert_eq!(again, [b"1".to_vec(), b"2".to_vec()], "in order");
}

#[test]
fn a_peer_back_before_the_catalog_answered_gets_the_item_over_its_link() {
    let (mut h, p) = away_peer(Config::default());
    h.b.node_away(h.now, "a");
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    let item = poll_all(&mut h).pop().unwrap();
    h.b.node_live(h.now, "a");
    assert!(h.b.away_nodes().is_empty());
    let (n, present) = h.connect("$node.a", SessionMode::Resume);
    assert!(present);
    h.subscribe(n, 1, ">", None, 8);
    assert!(h.deliveries(n).is_empty(), "handed on: in flight");
    h.b.handle_offline_failed(h.now, "a", item.id);
    h.drain();
    assert_eq!(payloads(&h.deliveries(n)), [b"x"]);
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"y");
    assert_eq!(payloads(&h.deliveries(n)), [b"y"]);
    assert!(poll_all(&mut h).is_empty());
}

#[test]
fn away_interest_from_the_catalog_makes_a_stored_outbox() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.b.set_away_interest(h.now, "b", &[("t.>", None), ("bad..filter", None)]);
    h.drain();
    assert_eq!(h.b.peer_interest("b"), ["t.>"]);
    assert_eq!(h.b.away_nodes(), ["b"]);
    h.publish(p, 1, "t.1", QoS::AtLeastOnce, b"kept");
    h.publish(p, 2, "u", QoS::AtLeastOnce, b"not wanted");
    assert_eq!(outbox(&h, "b"), (1, 0));
    let h2 = restored(&h);
    assert_eq!(h2.b.peer_interest("b"), ["t.>"]);
    assert_eq!(outbox(&h2, "b"), (1, 0));
    let items = poll_all(&mut h);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].payload, b"kept");
    // The catalog adds interest, and withdraws none: the peer's own link
    // snapshot does that.
    h.b.set_away_interest(h.now, "b", &[("u", None)]);
    h.drain();
    assert_eq!(h.b.peer_interest("b"), ["t.>", "u"]);
    h.b.set_away_interest(h.now, "b", &[]);
    h.publish(p, 3, "t.2", QoS::AtLeastOnce, b"still");
    h.publish(p, 4, "u", QoS::AtLeastOnce, b"now");
    let items = poll_all(&mut h);
    let got: Vec<&[u8]> = items.iter().map(|i| i.payload.as_slice()).collect();
    assert_eq!(got, [&b"still"[..], &b"now"[..]]);
    assert_eq!(restored(&h).b.peer_interest("b"), ["t.>", "u"]);
}

#[test]
fn away_interest_does_not_override_a_linked_peer() {
    let mut h = H::new(Config::default());
    let _n = peer_links(&mut h, "b", &["t"]);
    h.b.set_away_interest(h.now, "b", &[("u", None)]);
    assert_eq!(h.b.peer_interest("b"), ["t"]);
    assert!(h.b.away_nodes().is_empty());
}

pub(super) fn offline<'a>(
    origin: &'a str,
    id: u64,
    topic: &'a str,
    payload: &'a [u8],
) -> OfflineMessage<'a> {
    OfflineMessage {
        origin,
        id,
        topic,
        meta: &[0; 5],
        payload,
    }
}

#[test]
fn a_drained_message_is_published_locally_and_stored_before_it_is_done() {
    let mut h = H::new(Config::default());
    let (s, _) = h.connect("s", SessionMode::Resume);
    h.subscribe(s, 1, "t", None, 8);
    h.auto_persist = false;
    let ticket =
        h.b.deliver_offline(h.now, &offline("a", 7, "t", b"x"))
            .unwrap();
    h.drain();
    assert!(!h.b.is_offline_stored(ticket));
    assert!(h.deliveries(s).is_empty(), "not before it is stored");
    h.persist();
    assert!(h.b.is_offline_stored(ticket));
    assert_eq!(payloads(&h.deliveries(s)), [b"x"]);
    // Read again from the catalog (another node delivered it too): once.
    h.auto_persist = true;
    let again =
        h.b.deliver_offline(h.now, &offline("a", 7, "t", b"x"))
            .unwrap();
    h.drain();
    assert!(h.b.is_offline_stored(again));
    assert!(h.deliveries(s).is_empty());
    assert_eq!(h.b.mesh_stats().deduplicated, 1);
    let bad = OfflineMessage {
        meta: b"\xff",
        ..offline("a", 8, "t", b"y")
    };
    assert_eq!(
        h.b.deliver_offline(h.now, &bad),
        Err(OfflineError::Malformed)
    );
}

#[test]
fn a_drained_message_reaches_no_peer_s_outbox() {
    let mut h = H::new(Config::default());
    let n = peer_links(&mut h, "c", &["t"]);
    h.b.deliver_offline(h.now, &offline("a", 1, "t", b"x"))
        .unwrap();
    h.drain();
    assert!(h.deliveries(n).is_empty(), "the one-hop rule");
}

#[test]
fn a_message_from_the_catalog_and_over_a_link_is_delivered_once() {
    let (mut m, sb, p) = Mesh2::one_way();
    // Over the link first (a's message id 1), then from the catalog.
    m.a.publish(p, 1, "t", QoS::AtLeastOnce, b"one");
    m.shuttle();
    assert_eq!(payloads(&m.b.deliveries(sb)), [b"one"]);
    let now = m.b.now;
    // Filed by a under its node id and store epoch.
    let origin = alloc::format!("a #{:x}", m.a.b.store_epoch());
    m.b.b
        .deliver_offline(now, &offline(&origin, 1, "t", b"one"))
        .unwrap();
    // From the catalog first (id 2 at a), then over the link.
    m.b.b
        .deliver_offline(now, &offline(&origin, 2, "t", b"two"))
        .unwrap();
    m.shuttle();
    m.a.publish(p, 2, "t", QoS::AtLeastOnce, b"two");
    m.shuttle();
    assert_eq!(payloads(&m.b.deliveries(sb)), [b"two"]);
    assert_eq!(m.b.b.mesh_stats().deduplicated, 2);
    // Id 3 of a's store before it was lost (another epoch, or none: a log
    // from before epochs) is another message than a's id 3 now.
    m.b.b
        .deliver_offline(now, &offline("a", 3, "t", b"old"))
        .unwrap();
    m.shuttle();
    m.a.publish(p, 3, "t", QoS::AtLeastOnce, b"new");
    m.shuttle();
    assert_eq!(payloads(&m.b.deliveries(sb)), [b"old", b"new"]);
}

#[test]
fn a_full_local_queue_refuses_a_drained_message() {
    let mut h = H::new(small_queue(Overflow::RejectNew));
    let (s, _) = h.connect("s", SessionMode::Resume);
    h.subscribe(s, 1, "t", None, 0);
    h.b.handle_closed(s, h.now);
    h.drain();
    for id in 1..=2 {
        h.b.deliver_offline(h.now, &offline("a", id, "t", b"x"))
            .unwrap();
        h.drain();
    }
    assert_eq!(
        h.b.deliver_offline(h.now, &offline("a", 3, "t", b"x")),
        Err(OfflineError::Refused)
    );
}

#[test]
fn an_item_that_failed_goes_out_on_the_link_of_a_peer_back_meanwhile() {
    let (mut h, p) = away_peer(Config::default());
    h.b.node_away(h.now, "a");
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    let item = poll_all(&mut h).pop().unwrap();
    h.b.handle_offline_failed(h.now, "a", item.id);
    // The peer links again before its adapter heard it is live.
    let (n, _) = h.connect("$node.a", SessionMode::Resume);
    h.subscribe(n, 1, ">", None, 8);
    assert!(h.deliveries(n).is_empty(), "held for the retry");
    h.now += OFFLINE_RETRY;
    assert!(poll_all(&mut h).is_empty(), "its link takes it");
    h.drain();
    assert_eq!(payloads(&h.deliveries(n)), [b"x"]);
    assert!(h.b.away_nodes().is_empty());
}

#[test]
fn away_peers_take_turns_a_batch_at_a_time() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    for peer in ["a", "b"] {
        let n = peer_links(&mut h, peer, &["t"]);
        h.b.handle_closed(n, h.now);
        h.b.node_away(h.now, peer);
    }
    h.drain();
    for i in 0..2 * OFFLINE_BATCH as u32 {
        h.publish(p, i + 1, "t", QoS::AtLeastOnce, b"m");
    }
    // Each batch stores what the catalog takes; the outboxes refill as
    // fast. The first batch is one peer's, the next the other's.
    let now = h.now;
    let mut batch = || -> Vec<String> {
        let items: Vec<_> = (0..OFFLINE_BATCH)
            .filter_map(|_| h.b.poll_offline(now))
            .collect();
        for i in &items {
            h.b.handle_offline_stored(now, &i.recipient, i.id);
        }
        items.into_iter().map(|i| i.recipient).collect()
    };
    let (first, second) = (batch(), batch());
    assert!(first.iter().all(|r| *r == first[0]), "one run: {first:?}");
    assert!(second.iter().all(|r| *r == second[0]));
    assert_eq!(first.len(), OFFLINE_BATCH);
    assert_ne!(first[0], second[0], "the other peer's turn");
}
