//! Offline queues and groups: the jobs of a group only an away peer serves
//! go to its catalog queue with the group, and come out of a catalog queue
//! to that group's members.

use super::mesh::peer_links;
use super::offline::{offline, poll_all, restored};
use super::*;
use crate::wire::mesh::{Interest, group_sub};

/// The group sub id a peer's link joins `g` on `t` under, here.
const GROUP_SUB: u32 = 0x8000_0001;

/// Peer `b` linked with interest in `fan_out` and a member of group `g` on
/// `t`, then away; a publisher.
fn away_member(fan_out: &[&str]) -> (H, ConnId) {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let n = peer_links(&mut h, "b", fan_out);
    h.subscribe(n, GROUP_SUB, "t", Some("g"), 8);
    h.b.handle_closed(n, h.now);
    h.b.node_away(h.now, "b");
    h.drain();
    (h, p)
}

/// Peer `b`'s link connects, asks for its outbox and begins its snapshot.
fn link_begins(h: &mut H) -> ConnId {
    let (n, _) = h.connect("$node.b", SessionMode::Resume);
    h.subscribe(n, 1, ">", None, 64);
    h.send_all(n, [Frame::Interest(Interest::Begin)]);
    n
}

/// Waiting and in flight in group `g`'s queue at `h`.
fn group_queue(h: &H) -> (usize, usize) {
    h.b.queues()
        .iter()
        .find(|q| q.owner == "g")
        .map_or((0, 0), |q| (q.waiting, q.inflight))
}

/// A job of group `g`, which only the away peer `b` serves, handed on to
/// the catalog (its answer not in yet); then `w`, here, joins `g`. The job's
/// item and `w`.
fn handed_then_member_joins() -> (H, OfflineItem, ConnId) {
    let (mut h, p) = away_member(&[]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"job");
    let mut items = poll_all(&mut h);
    assert_eq!(items.len(), 1);
    let (w, _) = h.connect("w", SessionMode::Resume);
    h.subscribe(w, 1, "t", Some("g"), 8);
    assert!(h.deliveries(w).is_empty(), "on its way to the catalog");
    (h, items.remove(0), w)
}

#[test]
fn a_group_only_an_away_peer_serves_is_handed_on_with_its_group() {
    let (mut h, p) = away_member(&[]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"job");
    let items = poll_all(&mut h);
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(
        (item.recipient.as_str(), item.payload.as_slice()),
        ("b", &b"job"[..])
    );
    assert_eq!(item.group, Some(("t".into(), "g".into())));
    let epoch = h.b.store_epoch();
    assert_ne!(epoch, 0);
    assert_eq!(item.origin("n1"), alloc::format!("n1 #{epoch:x} 1 t g"));
    assert_eq!(group_queue(&h), (0, 1), "in flight until stored");
    assert_eq!(group_queue(&restored(&h)), (1, 0));
    h.b.handle_offline_stored(h.now, "b", item.id);
    h.drain();
    assert_eq!(group_queue(&h), (0, 0));
    assert_eq!(group_queue(&restored(&h)), (0, 0), "its ack is logged");
}

#[test]
fn a_message_for_the_outbox_and_a_group_is_handed_on_twice_one_after_the_other() {
    let (mut h, p) = away_member(&["t"]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"both");
    // Items are answered by id: the group's copy waits for the outbox's.
    let first = poll_all(&mut h);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].group, None);
    h.b.handle_offline_failed(h.now, "b", first[0].id);
    h.now += OFFLINE_RETRY;
    let again = poll_all(&mut h);
    assert_eq!(
        again.len(),
        1,
        "the failed one again, the group's still waiting"
    );
    h.b.handle_offline_stored(h.now, "b", again[0].id);
    let second = poll_all(&mut h);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, first[0].id, "the same message");
    assert_eq!(second[0].group, Some(("t".into(), "g".into())));
    assert_ne!(second[0].origin("n1"), first[0].origin("n1"));
    h.b.handle_offline_stored(h.now, "b", second[0].id);
    h.drain();
    assert_eq!(group_queue(&h), (0, 0));
    assert_eq!(h.b.mesh_stats().offline_stored, 2);
}

#[test]
fn a_peer_with_two_memberships_of_a_group_it_alone_serves_keeps_them_when_away() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let n = peer_links(&mut h, "b", &[]);
    h.subscribe(n, GROUP_SUB, "t", Some("g"), 8);
    h.subscribe(n, GROUP_SUB + 1, "t", Some("g"), 8);
    h.b.handle_closed(n, h.now);
    h.b.node_away(h.now, "b");
    h.drain();
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"job");
    let items = poll_all(&mut h);
    assert_eq!(items.len(), 1, "the group stays b's: its job is handed on");
    assert_eq!(items[0].group, Some(("t".into(), "g".into())));
}

#[test]
fn an_item_with_less_than_a_millisecond_left_is_handed_on_with_one() {
    // The catalogs keep TTLs in whole milliseconds and refuse 0.
    let (mut h, p) = away_member(&[]);
    let meta = Meta {
        ttl_ms: Some(1),
        ..Meta::default()
    };
    h.publish_with(p, 1, "t", QoS::AtLeastOnce, None, meta, b"job");
    h.now += Duration::from_micros(400);
    let items = poll_all(&mut h);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].ttl, Some(Duration::from_millis(1)));
}

#[test]
fn a_group_with_a_member_here_is_not_handed_on() {
    let (mut h, p) = away_member(&[]);
    let (w, _) = h.connect("w", SessionMode::Resume);
    h.subscribe(w, 1, "t", Some("g"), 8);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"job");
    assert!(poll_all(&mut h).is_empty());
    assert_eq!(payloads(&h.deliveries(w)), [b"job"]);
}

#[test]
fn a_forgotten_peer_s_group_jobs_on_their_way_to_the_catalog_go_back_to_the_group() {
    let (mut h, _, w) = handed_then_member_joins();
    assert!(h.b.forget_node(h.now, "b"));
    h.drain();
    assert_eq!(payloads(&h.deliveries(w)), [b"job"]);
    h.b.check_invariants().unwrap();
}

#[test]
fn a_group_s_job_the_catalog_did_not_store_goes_to_a_member_that_joined_meanwhile() {
    let (mut h, item, w) = handed_then_member_joins();
    h.b.handle_offline_failed(h.now, "b", item.id);
    h.now += OFFLINE_RETRY;
    // The next round puts it back in the group, which w now serves.
    assert!(poll_all(&mut h).is_empty());
    h.drain();
    assert_eq!(payloads(&h.deliveries(w)), [b"job"]);
    h.b.check_invariants().unwrap();
}

#[test]
fn a_peer_session_replaced_clean_gives_its_group_jobs_on_their_way_back_to_the_group() {
    let (mut h, _, w) = handed_then_member_joins();
    // A clean connect under the peer's id ends its session: not only
    // forget_node does.
    h.connect("$node.b", SessionMode::Clean);
    h.drain();
    assert_eq!(payloads(&h.deliveries(w)), [b"job"]);
    h.b.check_invariants().unwrap();
}

#[test]
fn a_group_s_job_a_full_catalog_queue_refused_goes_to_a_member_that_joined_meanwhile() {
    let (mut h, item, w) = handed_then_member_joins();
    h.b.handle_offline_full(h.now, "b", item.id);
    h.drain();
    assert_eq!(payloads(&h.deliveries(w)), [b"job"], "not dropped");
    assert_eq!(h.b.mesh_stats().offline_dropped, 0);
    h.b.check_invariants().unwrap();
}

#[test]
fn a_group_s_job_from_the_catalog_goes_to_that_group_s_members_only() {
    let mut h = H::new(Config::default());
    let (s, _) = h.connect("s", SessionMode::Resume);
    h.subscribe(s, 1, "t", None, 8);
    let (w, _) = h.connect("w", SessionMode::Resume);
    h.subscribe(w, 1, "t", Some("g"), 8);
    let (v, _) = h.connect("v", SessionMode::Resume);
    h.subscribe(v, 1, "t", Some("other"), 8);
    h.b.deliver_offline(h.now, &offline("a 1 t g", 7, "t", b"job"))
        .unwrap();
    h.drain();
    assert_eq!(payloads(&h.deliveries(w)), [b"job"]);
    assert!(h.deliveries(s).is_empty() && h.deliveries(v).is_empty());
    // The same message for the fan-out subscriptions is another delivery;
    // the group's again (another node drained it too) is a copy.
    h.b.deliver_offline(h.now, &offline("a", 7, "t", b"job"))
        .unwrap();
    h.b.deliver_offline(h.now, &offline("a 1 t g", 7, "t", b"job"))
        .unwrap();
    h.drain();
    assert_eq!(payloads(&h.deliveries(s)), [b"job"]);
    assert!(h.deliveries(w).is_empty() && h.deliveries(v).is_empty());
    assert_eq!(h.b.mesh_stats().deduplicated, 1);
    for bad in ["a 9 t g", "a x t g", ""] {
        let m = offline(bad, 8, "t", b"y");
        assert_eq!(h.b.deliver_offline(h.now, &m), Err(OfflineError::Malformed));
    }
}

#[test]
fn a_node_declares_its_groups_for_the_catalog() {
    let mut h = H::new(Config::default());
    let (w, _) = h.connect("w", SessionMode::Resume);
    h.subscribe(w, 1, "t", Some("g"), 8);
    h.subscribe(w, 2, "t", None, 8);
    let (v, _) = h.connect("v", SessionMode::Clean);
    h.subscribe(v, 1, "t", Some("g"), 8);
    let g = Some(String::from("g"));
    assert_eq!(
        h.b.declared_interest(),
        [(String::from("t"), None), (String::from("t"), g)]
    );
}

#[test]
fn a_group_the_catalog_lists_for_an_away_peer_keeps_its_jobs_for_it() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.b.set_away_interest(h.now, "b", &[("t", Some("g")), ("t", None)]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"job");
    let mut items = poll_all(&mut h);
    assert_eq!(items.len(), 1, "the outbox's copy first");
    h.b.handle_offline_stored(h.now, "b", items[0].id);
    items.extend(poll_all(&mut h));
    let groups: Vec<_> = items.iter().map(|i| i.group.clone()).collect();
    assert_eq!(groups, [None, Some(("t".into(), "g".into()))]);
    // Kept across a restart; listed again, it is not joined twice.
    let mut h2 = restored(&h);
    h2.b.set_away_interest(h2.now, "b", &[("t", Some("g"))]);
    assert_eq!(h2.b.peer_groups("b"), [("t".into(), "g".into())]);
    assert_eq!(group_queue(&h2), (1, 0));
}

#[test]
fn a_group_from_the_catalog_is_joined_by_the_peer_s_link_under_the_same_id() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.b.set_live_interest(h.now, "b", &[("t", Some("g"))]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"job");
    assert_eq!(group_queue(&h), (1, 0), "waits for the peer's link");
    // The link: its outbox, then its snapshot, which joins the group.
    let n = link_begins(&mut h);
    assert!(h.deliveries(n).is_empty(), "not before its link joins");
    let id = group_sub("t", "g");
    h.subscribe(n, id, "t", Some("g"), 8);
    h.send_all(n, [Frame::Interest(Interest::End)]);
    assert_eq!(payloads(&h.deliveries(n)), [b"job"]);
    assert_eq!(h.b.peer_groups("b").len(), 1);
}

#[test]
fn a_group_from_the_catalog_goes_when_the_peer_s_snapshot_does_not_join_it() {
    let mut h = H::new(Config::default());
    h.b.set_live_interest(h.now, "b", &[("t", Some("g")), ("bad..", Some("g"))]);
    h.b.set_live_interest(h.now, "b", &[("t", Some("bad name"))]);
    assert_eq!(h.b.stats().protocol_errors, 2);
    assert_eq!(h.b.peer_groups("b"), [("t".into(), "g".into())]);
    let _n = peer_links(&mut h, "b", &["t"]);
    assert!(h.b.peer_groups("b").is_empty());
    assert_eq!(h.b.peer_interest("b"), ["t"]);
}

#[test]
fn a_local_member_takes_the_jobs_of_a_group_the_catalog_lists_for_a_peer() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (w, _) = h.connect("w", SessionMode::Resume);
    h.subscribe(w, 1, "t", Some("g"), 8);
    h.b.set_away_interest(h.now, "b", &[("t", Some("g"))]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"job");
    assert_eq!(payloads(&h.deliveries(w)), [b"job"]);
    assert!(poll_all(&mut h).is_empty());
}

#[test]
fn a_group_from_the_catalog_during_the_peer_s_snapshot_goes_if_the_snapshot_does_not_join_it() {
    let mut h = H::new(Config::default());
    let n = link_begins(&mut h);
    h.b.set_live_interest(h.now, "b", &[("t", Some("g"))]);
    assert_eq!(
        h.b.peer_groups("b").len(),
        1,
        "kept while the snapshot runs"
    );
    h.send_all(n, [Frame::Interest(Interest::End)]);
    assert!(h.b.peer_groups("b").is_empty());
}

#[test]
fn a_group_s_job_that_failed_goes_out_on_the_link_of_a_peer_back_meanwhile() {
    let (mut h, p) = away_member(&[]);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"job");
    let item = poll_all(&mut h).pop().unwrap();
    h.b.node_live(h.now, "b");
    let n = link_begins(&mut h);
    h.subscribe(n, GROUP_SUB, "t", Some("g"), 8);
    h.send_all(n, [Frame::Interest(Interest::End)]);
    assert!(h.deliveries(n).is_empty(), "handed on: in flight");
    h.b.handle_offline_failed(h.now, "b", item.id);
    h.drain();
    assert_eq!(payloads(&h.deliveries(n)), [b"job"]);
}

#[test]
fn an_away_peer_listed_with_a_group_others_serve_does_not_join_it() {
    let mut h = H::new(Config::default());
    let (w, _) = h.connect("w", SessionMode::Resume);
    h.subscribe(w, 1, "t", Some("g"), 8);
    h.b.set_away_interest(h.now, "b", &[("t", Some("g"))]);
    h.drain();
    let logged = h.records.len();
    // Listed again at every heartbeat: nothing joins, nothing is logged.
    h.b.set_away_interest(h.now, "b", &[("t", Some("g"))]);
    h.drain();
    assert_eq!(h.records.len(), logged);
    assert!(h.b.peer_groups("b").is_empty());
}

#[test]
fn a_group_from_the_catalog_is_named_as_a_subscribe_names_it() {
    let mut h = H::new(Config::default());
    let long = "g".repeat(65);
    h.b.set_live_interest(h.now, "b", &[("t", Some(long.as_str()))]);
    assert_eq!(h.b.stats().protocol_errors, 1);
    assert!(h.b.peer_groups("b").is_empty());
    let longest = "g".repeat(64);
    h.b.set_live_interest(h.now, "b", &[("t", Some(longest.as_str()))]);
    assert_eq!(h.b.peer_groups("b"), [("t".into(), longest)]);
}
