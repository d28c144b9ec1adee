//! Node links: a peer's declared interest at the node it links to, and two
//! nodes linked both ways (see `broker::mesh`).

use super::*;
use crate::wire::mesh::Interest;

/// A peer node `name` links to the broker: its outbox subscription, then
/// `filters` as its interest snapshot.
pub(super) fn peer_links(h: &mut H, name: &str, filters: &[&str]) -> ConnId {
    let (c, _) = h.connect(&alloc::format!("$node.{name}"), SessionMode::Resume);
    h.subscribe(c, 1, ">", None, 64);
    declare(h, c, filters);
    c
}

fn declare(h: &mut H, c: ConnId, filters: &[&str]) {
    let frames = core::iter::once(Frame::Interest(Interest::Begin))
        .chain(filters.iter().map(|f| Frame::Interest(Interest::Add(f))))
        .chain([Frame::Interest(Interest::End)]);
    h.send_all(c, frames);
}

fn topics(ds: &[Dv]) -> Vec<&str> {
    ds.iter().map(|d| d.topic.as_str()).collect()
}

#[test]
fn outbox_gets_only_what_the_peer_declared() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let n = peer_links(&mut h, "a", &["data.>"]);
    assert_eq!(h.b.peer_interest("a"), ["data.>"]);
    h.publish(p, 1, "data.x", QoS::AtLeastOnce, b"1");
    h.publish(p, 2, "jobs.x", QoS::AtLeastOnce, b"2");
    assert_eq!(topics(&h.deliveries(n)), ["data.x"]);
    assert_eq!(h.b.mesh_stats().forwarded, 1);
}

#[test]
fn a_snapshot_withdraws_interest_only_at_its_end() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let n = peer_links(&mut h, "a", &["a", "b"]);
    h.send_all(
        n,
        [
            Frame::Interest(Interest::Begin),
            Frame::Interest(Interest::Add("a")),
        ],
    );
    // Mid-snapshot, "b" is still wanted: nothing is lost while it is resent.
    h.publish(p, 1, "b", QoS::AtLeastOnce, b"1");
    h.send(n, Frame::Interest(Interest::End));
    h.publish(p, 2, "b", QoS::AtLeastOnce, b"2");
    h.publish(p, 3, "a", QoS::AtLeastOnce, b"3");
    assert_eq!(payloads(&h.deliveries(n)), [b"1", b"3"]);
    assert_eq!(h.b.peer_interest("a"), ["a"]);
}

#[test]
fn a_known_topic_goes_where_the_peer_s_interest_says_now() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let n = peer_links(&mut h, "a", &["a"]);
    // "b" is known (its routes remembered) before the peer wants it, while it
    // does, and after it stops; no subscription changes meanwhile.
    h.publish(p, 1, "b", QoS::AtLeastOnce, b"1");
    h.send(n, Frame::Interest(Interest::Add("b")));
    h.publish(p, 2, "b", QoS::AtLeastOnce, b"2");
    h.send(n, Frame::Interest(Interest::Remove("b")));
    h.publish(p, 3, "b", QoS::AtLeastOnce, b"3");
    assert_eq!(payloads(&h.deliveries(n)), [b"2"]);
}

#[test]
fn peer_interest_outlives_the_link_and_a_restart() {
    let mut h = H::new(Config::default());
    let n = peer_links(&mut h, "a", &["t.>", "u"]);
    h.send(n, Frame::Interest(Interest::Remove("u")));
    h.b.handle_closed(n, h.now);
    let mut h2 = H::restored_from(Config::default(), &h.records);
    assert_eq!(h2.b.peer_interest("a"), ["t.>"]);
    // Published while the peer is away: its outbox keeps it.
    let (p, _) = h2.connect("pub", SessionMode::Clean);
    h2.publish(p, 1, "t.1", QoS::AtLeastOnce, b"kept");
    h2.publish(p, 2, "u", QoS::AtLeastOnce, b"not wanted");
    let (n2, present) = h2.connect("$node.a", SessionMode::Resume);
    assert!(present);
    h2.subscribe(n2, 1, ">", None, 64);
    assert_eq!(payloads(&h2.deliveries(n2)), [b"kept"]);
}

#[test]
fn only_node_links_declare_interest() {
    let mut h = H::new(Config::default());
    let (c, _) = h.connect("client", SessionMode::Resume);
    h.send(c, Frame::Interest(Interest::Add(">")));
    assert_eq!(h.b.stats().protocol_errors, 1);
    assert!(h.b.peer_interest("client").is_empty());
}

/// Two nodes `a` and `b`, linked both ways: each link's bytes are moved by
/// `shuttle`.
pub(super) struct Mesh2 {
    pub(super) a: H,
    pub(super) b: H,
    /// (link at a, its accepted end at b), (link at b, its end at a).
    ab: (ConnId, ConnId),
    ba: (ConnId, ConnId),
}

fn link(from: &mut H, to: &mut H, names: (&str, &str), token: Option<&str>) -> (ConnId, ConnId) {
    let l = (from.b)
        .connect_link(from.now, names.0, names.1, token)
        .unwrap();
    let c = to.b.accept(to.now, Framing::Stream).unwrap();
    // Raw bytes, moved by `shuttle` (the harness keeps them as it does MQTT's).
    from.mqtt.insert(l, Vec::new());
    to.mqtt.insert(c, Vec::new());
    (l, c)
}

impl Mesh2 {
    fn new() -> Mesh2 {
        Mesh2::with(Config::default(), None)
    }

    /// Both nodes with `cfg`, their links presenting `token`.
    fn with(cfg: Config, token: Option<&str>) -> Mesh2 {
        let (mut a, mut b) = (H::new(cfg.clone()), H::new(cfg));
        let ab = link(&mut a, &mut b, ("a", "b"), token);
        let ba = link(&mut b, &mut a, ("b", "a"), token);
        let mut m = Mesh2 { a, b, ab, ba };
        m.shuttle();
        m
    }

    /// A persistent subscriber `sb` to `t` at b, a publisher `p` at a.
    pub(super) fn one_way() -> (Mesh2, ConnId, ConnId) {
        let mut m = Mesh2::new();
        let (sb, _) = m.b.connect("sb", SessionMode::Resume);
        m.b.subscribe(sb, 1, "t", None, 8);
        m.shuttle();
        let (p, _) = m.a.connect("pub", SessionMode::Clean);
        (m, sb, p)
    }

    /// Both nodes with a persistent member of group `w` on `filter`: `wa`
    /// at a, `wb` at b.
    fn workers(filter: &str) -> (Mesh2, ConnId, ConnId) {
        let mut m = Mesh2::new();
        let (wa, _) = m.a.connect("wa", SessionMode::Resume);
        m.a.subscribe(wa, 1, filter, Some("w"), 8);
        let (wb, _) = m.b.connect("wb", SessionMode::Resume);
        m.b.subscribe(wb, 1, filter, Some("w"), 8);
        m.shuttle();
        (m, wa, wb)
    }

    /// Moves bytes over both links until neither side has more to say.
    pub(super) fn shuttle(&mut self) {
        loop {
            self.a.drain();
            self.b.drain();
            let ((la, cb), (lb, ca)) = (self.ab, self.ba);
            let mut moved = pass(&mut self.a, la, &mut self.b, cb);
            moved |= pass(&mut self.b, cb, &mut self.a, la);
            moved |= pass(&mut self.b, lb, &mut self.a, ca);
            moved |= pass(&mut self.a, ca, &mut self.b, lb);
            if !moved {
                break;
            }
        }
    }
}

/// Hands what `from` sent on `cf` to `to` on `ct`; true when there was any.
fn pass(from: &mut H, cf: ConnId, to: &mut H, ct: ConnId) -> bool {
    let bytes = core::mem::take(from.mqtt.get_mut(&cf).unwrap());
    if bytes.is_empty() {
        return false;
    }
    assert_eq!(to.b.handle_input(ct, to.now, &bytes), bytes.len());
    true
}

#[test]
fn local_interest_is_counted_once_and_withdrawn_with_the_last() {
    let mut m = Mesh2::new();
    let (s1, _) = m.a.connect("s1", SessionMode::Clean);
    let (s2, _) = m.a.connect("s2", SessionMode::Resume);
    m.a.subscribe(s1, 1, "x.>", None, 8);
    m.a.subscribe(s2, 1, "x.>", None, 8);
    m.shuttle();
    assert_eq!(m.b.b.peer_interest("a"), ["x.>"]);
    m.a.send(s1, Frame::Unsubscribe(Unsubscribe { sub: 1 }));
    m.shuttle();
    assert_eq!(m.b.b.peer_interest("a"), ["x.>"], "s2 still holds it");
    // A persistent session away still wants its messages.
    m.a.b.handle_closed(s2, m.a.now);
    m.shuttle();
    assert_eq!(m.b.b.peer_interest("a"), ["x.>"]);
    m.a.connect("s2", SessionMode::Clean);
    m.shuttle();
    assert!(m.b.b.peer_interest("a").is_empty(), "the last one went");
}

#[test]
fn what_came_over_a_link_goes_to_local_subscribers_only() {
    let mut m = Mesh2::new();
    let (sa, _) = m.a.connect("sa", SessionMode::Clean);
    let (sb, _) = m.b.connect("sb", SessionMode::Clean);
    m.a.subscribe(sa, 1, "t", None, 8);
    m.b.subscribe(sb, 1, "t", None, 8);
    m.shuttle();
    let (p, _) = m.a.connect("pub", SessionMode::Clean);
    m.a.publish(p, 1, "t", QoS::AtLeastOnce, b"once");
    m.shuttle();
    assert_eq!(payloads(&m.a.deliveries(sa)), [b"once"]);
    assert_eq!(payloads(&m.b.deliveries(sb)), [b"once"]);
    // b does not send it back to a, though a wants "t".
    assert_eq!(m.a.b.mesh_stats().forwarded, 1);
    assert_eq!(m.b.b.mesh_stats().forwarded, 0);
    assert_eq!(m.b.b.mesh_stats().received, 1);
    m.shuttle();
    assert!(m.a.deliveries(sa).is_empty());
}

#[test]
fn a_group_is_served_by_local_members_first_then_by_one_peer() {
    let (mut m, wa, wb) = Mesh2::workers("jobs.>");
    let joined = [(String::from("jobs.>"), String::from("w"))];
    assert_eq!(m.b.b.peer_groups("a"), joined);
    let (p, _) = m.b.connect("pub", SessionMode::Clean);
    for i in 1..=4u8 {
        m.b.publish(p, u32::from(i), "jobs.x", QoS::AtLeastOnce, &[i]);
    }
    m.shuttle();
    let served = m.b.deliveries(wb);
    assert_eq!(served.len(), 4, "b's own member serves them all");
    assert!(m.a.deliveries(wa).is_empty());
    for d in served {
        m.b.ack(wb, d.tag);
    }
    // Without a member of its own, b hands the group's jobs to a.
    m.b.send(wb, Frame::Unsubscribe(Unsubscribe { sub: 1 }));
    m.b.publish(p, 5, "jobs.x", QoS::AtLeastOnce, b"5");
    m.shuttle();
    assert_eq!(payloads(&m.a.deliveries(wa)), [b"5"]);
    // a's member leaves: a leaves b's group.
    m.a.send(wa, Frame::Unsubscribe(Unsubscribe { sub: 1 }));
    m.shuttle();
    assert!(m.b.b.peer_groups("a").is_empty());
}

#[test]
fn links_present_their_token_and_their_own_node_does_not_check_them() {
    // A node's token grants node links; a client's, even with every topic, not.
    let mut node = Permissions::all();
    node.subscribe.push("$node.>".into());
    let auth = Auth {
        tokens: vec![
            ("node-secret".into(), node),
            ("client-secret".into(), Permissions::all()),
        ],
        identities: Vec::new(),
    };
    let cfg = Config {
        auth: auth.clone(),
        ..Config::default()
    };
    let mut m = Mesh2::with(cfg, Some("node-secret"));
    let sb =
        m.b.connect_with("sb", SessionMode::Clean, Some("client-secret"));
    let p =
        m.a.connect_with("pub", SessionMode::Clean, Some("client-secret"));
    m.b.take(sb);
    m.a.take(p);
    m.b.subscribe(sb, 1, "t", None, 8);
    m.shuttle();
    assert_eq!(m.a.b.peer_interest("b"), ["t"]);
    // Auth reloaded: the links' own sessions stay.
    assert_eq!(m.a.b.set_auth(m.a.now, auth.clone()), 0);
    assert_eq!(m.b.b.set_auth(m.b.now, auth), 0);
    m.a.publish(p, 1, "t", QoS::AtLeastOnce, b"hi");
    m.shuttle();
    assert_eq!(payloads(&m.b.deliveries(sb)), [b"hi"]);
    // A client cannot take a's link session at b, nor b's own link's.
    for id in ["$node.a", "$link.a"] {
        let c =
            m.b.connect_with(id, SessionMode::Resume, Some("client-secret"));
        assert_eq!(m.b.take(c), [Got::Error(Reason::NotAuthorized)], "{id}");
    }
    m.a.publish(p, 2, "t", QoS::AtLeastOnce, b"still");
    m.shuttle();
    assert_eq!(payloads(&m.b.deliveries(sb)), [b"still"]);
}

#[test]
fn without_auth_no_connection_takes_a_link_s_local_session() {
    let (mut m, sb, p) = Mesh2::one_way();
    let c = m.b.connect_with("$link.a", SessionMode::Resume, None);
    assert_eq!(m.b.take(c), [Got::Error(Reason::NotAuthorized)]);
    m.a.publish(p, 1, "t", QoS::AtLeastOnce, b"hi");
    m.shuttle();
    assert_eq!(payloads(&m.b.deliveries(sb)), [b"hi"]);
}

#[test]
fn a_forgotten_node_gets_no_more_traffic() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (w, _) = h.connect("w", SessionMode::Resume);
    h.subscribe(w, 1, "jobs.>", Some("w"), 8);
    let n = peer_links(&mut h, "a", &["t"]);
    h.subscribe(n, 7, "jobs.>", Some("w"), 8);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"waiting");
    assert!(h.b.forget_node(h.now, "a"));
    h.drain();
    assert_eq!(h.take(n).last(), Some(&Got::Close(Reason::Normal)));
    assert!(h.b.peer_interest("a").is_empty() && h.b.peer_groups("a").is_empty());
    assert!(!h.b.has_session("$node.a"));
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"none");
    assert_eq!(h.b.mesh_stats().forwarded, 1, "only the first");
    // Restored, it is still gone.
    let mut h2 = H::restored_from(Config::default(), &h.records);
    assert!(!h2.b.has_session("$node.a"));
    assert!(!h2.b.forget_node(h2.now, "a"));
}

#[test]
fn a_job_for_a_group_this_node_just_left_goes_back_to_the_peer() {
    let mut m = Mesh2::new();
    let (wa, _) = m.a.connect("wa", SessionMode::Clean);
    m.a.subscribe(wa, 1, "jobs.>", Some("w"), 8);
    // Another node, c, is a member at b too, its link down for now.
    let c = peer_links(&mut m.b, "c", &[]);
    m.b.subscribe(c, 9, "jobs.>", Some("w"), 8);
    m.b.b.handle_closed(c, m.b.now);
    m.shuttle();
    // a cannot write to b for now: its leave waits, and b hands it a job.
    let (link_at_a, _) = m.ab;
    m.a.b.pause_transmit(link_at_a);
    m.a.send(wa, Frame::Unsubscribe(Unsubscribe { sub: 1 }));
    let (p, _) = m.b.connect("pub", SessionMode::Clean);
    m.b.publish(p, 1, "jobs.x", QoS::AtLeastOnce, b"job");
    m.shuttle();
    m.a.b.resume_transmit(link_at_a);
    m.shuttle();
    assert_eq!(m.b.b.peer_groups("a"), []);
    // Not swallowed at a: b gives it to c once c is back.
    let (c, _) = m.b.connect("$node.c", SessionMode::Resume);
    m.b.subscribe(c, 9, "jobs.>", Some("w"), 8);
    // After the nack's backoff, within the ack timeout.
    m.b.advance(Duration::from_secs(5));
    assert_eq!(payloads(&m.b.deliveries(c)), [b"job"]);
}

#[test]
fn a_restart_routes_a_client_s_message_by_its_record_not_its_producer_id() {
    // Clients pick producer ids at random: any bit may be set.
    let mut h = H::new(Config::default());
    let (w, _) = h.connect("w", SessionMode::Resume);
    h.subscribe(w, 1, "jobs", Some("g"), 8);
    let (s, _) = h.connect("s", SessionMode::Resume);
    h.subscribe(s, 1, "jobs", None, 8);
    h.b.handle_closed(w, h.now);
    h.b.handle_closed(s, h.now);
    let (p, _) = h.connect("pub", SessionMode::Clean);
    for (id, producer) in [(1, 1u64 << 63), (2, 3 << 62), (3, 1 << 62)] {
        let dedup = Some(Dedup { producer, seq: 1 });
        h.publish_with(
            p,
            id,
            "jobs",
            QoS::AtLeastOnce,
            dedup,
            Meta::default(),
            b"x",
        );
    }
    let mut h2 = H::restored_from(Config::default(), &h.records);
    for (client, group) in [("w", Some("g")), ("s", None)] {
        let (c, _) = h2.connect(client, SessionMode::Resume);
        h2.subscribe(c, 1, "jobs", group, 8);
        assert_eq!(h2.deliveries(c).len(), 3, "{client} after the restart");
    }
}

#[test]
fn a_topic_deleted_at_its_node_starts_again_without_being_taken_for_duplicates() {
    let (mut m, sb, p) = Mesh2::one_way();
    m.a.publish(p, 1, "t", QoS::AtLeastOnce, b"before");
    m.shuttle();
    assert_eq!(payloads(&m.b.deliveries(sb)), [b"before"]);
    // Deleted at a: its sequence starts at 1 again there.
    let del = crate::broker::admin::AdminRequest::DeleteTopic { topic: "t" };
    m.a.b.admin(m.a.now, &del);
    m.a.publish(p, 2, "t", QoS::AtLeastOnce, b"after");
    m.shuttle();
    assert_eq!(payloads(&m.b.deliveries(sb)), [b"after"]);
    assert_eq!(m.b.b.mesh_stats().deduplicated, 0);
}

#[test]
fn a_group_whose_local_member_is_away_is_served_by_a_peer_s() {
    let (mut m, wa, wb) = Mesh2::workers("jobs");
    // b's only member is offline (its session kept): a's live one serves.
    m.b.b.handle_closed(wb, m.b.now);
    let (p, _) = m.b.connect("pub", SessionMode::Clean);
    m.b.publish(p, 1, "jobs", QoS::AtLeastOnce, b"job");
    m.shuttle();
    assert_eq!(payloads(&m.a.deliveries(wa)), [b"job"]);
}

#[test]
fn a_link_drop_gives_again_no_more_than_the_receivers_dedup_window() {
    // A window smaller than the catalog's page: one delivery at a time.
    let cfg = Config {
        dedup_window: 8,
        ..Config::default()
    };
    let mut m = Mesh2::with(cfg, None);
    let (sb, _) = m.b.connect("sb", SessionMode::Resume);
    m.b.subscribe(sb, 1, "t", None, 100);
    m.shuttle();
    let (p, _) = m.a.connect("pub", SessionMode::Clean);
    let sent: Vec<[u8; 1]> = (1..=20u8).map(|i| [i]).collect();
    for (id, payload) in (1..).zip(&sent) {
        m.a.publish(p, id, "t", QoS::AtLeastOnce, payload);
    }
    // What a delivers reaches b, and b stores it; b's acks are lost with
    // the link.
    let (lb, ca) = m.ba;
    loop {
        m.a.drain();
        m.b.drain();
        if !pass(&mut m.a, ca, &mut m.b, lb) {
            break;
        }
    }
    m.b.mqtt.get_mut(&lb).unwrap().clear();
    m.a.b.handle_closed(ca, m.a.now);
    m.b.b.handle_closed(lb, m.b.now);
    m.ba = link(&mut m.b, &mut m.a, ("b", "a"), None);
    m.shuttle();
    // a gives again what it had in flight: each is recognised.
    assert_eq!(payloads(&m.b.deliveries(sb)), sent);
}

#[test]
fn a_peer_s_outbox_takes_the_credit_its_link_asks_for_now() {
    let mut h = H::new(Config::default());
    let n = peer_links(&mut h, "a", &["t"]);
    h.b.handle_closed(n, h.now);
    // Its next run has a smaller dedup window, so less credit.
    let (n, present) = h.connect("$node.a", SessionMode::Resume);
    assert!(present);
    h.subscribe(n, 1, ">", None, 2);
    let (p, _) = h.connect("pub", SessionMode::Clean);
    for i in 1..=5u8 {
        h.publish(p, u32::from(i), "t", QoS::AtLeastOnce, &[i]);
    }
    assert_eq!(payloads(&h.deliveries(n)), [[1], [2]]);
}

#[test]
fn a_link_s_delivery_past_its_deadline_is_sent_again() {
    // A client's delivery stays put past its deadline (see `delivery.rs`);
    // a link's far end drops copies by message id, so its is sent again.
    let mut h = H::new(ack_within(2));
    let n = peer_links(&mut h, "a", &["t"]);
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"x");
    let first = h.deliveries(n);
    assert_eq!((payloads(&first), first[0].attempt), (vec![&b"x"[..]], 1));
    h.advance(Duration::from_secs(3));
    let again = h.deliveries(n);
    assert_eq!((payloads(&again), again[0].attempt), (vec![&b"x"[..]], 2));
    assert_eq!(h.b.stats().ack_timeouts, 0);
    assert_eq!(h.b.stats().redelivered, 1);
}
