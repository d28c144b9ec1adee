//! The packet ids of QoS 2 deliveries to a persistent session: one sent
//! under an id not its message's own is sent again under it after a restart
//! (the client holds the message by that id until PUBREL), and goes out only
//! once that id is stored.

use alloc::vec::Vec;

use super::mqtt::{MGot, MPub, pid};
use super::*;
use crate::mqtt::{self as m, Ack as MAck, Packet, Version};

const V3: Version = Version::V3_1_1;

/// A client "dev" with a persistent session and two subscriptions that
/// both match `q2` (two deliveries of each message: only one can have the
/// message's own packet id), and a publisher; the first message's two
/// deliveries completed, so the next one's id not its own is not the first
/// free one a new connection would take.
fn two_subscriptions() -> (H, ConnId, ConnId) {
    subscribed_twice(["q2", "+"])
}

/// "dev" (persistent) subscribed to both `filters` at QoS 2, a publisher,
/// and a first message's two deliveries completed.
fn subscribed_twice(filters: [&str; 2]) -> (H, ConnId, ConnId) {
    let mut h = H::new(Config::default());
    let (s, _) = h.mconnect("dev", V3, false);
    for filter in filters {
        h.msubscribe(s, V3, filter, m::QoS::ExactlyOnce);
    }
    let (p, _) = h.mconnect("p", V3, true);
    publish(&mut h, p, b"1");
    let first = h.mpublishes(s, V3);
    assert_eq!(first.len(), 2);
    for d in first {
        let id = d.pid.unwrap();
        h.msend(s, V3, Packet::PubRec(MAck::new(pid(id))));
        assert_eq!(h.mtake(s, V3), [MGot::PubRel(id)]);
        h.msend(s, V3, Packet::PubComp(MAck::new(pid(id))));
    }
    (h, s, p)
}

/// Publishes `payload` to `q2` at QoS 2 and releases it.
fn publish(h: &mut H, p: ConnId, payload: &[u8]) {
    h.mpublish(p, V3, "q2", m::QoS::ExactlyOnce, payload);
    h.msend(p, V3, Packet::PubRel(MAck::new(pid(1))));
    h.mtake(p, V3);
}

/// The packet ids of `got`, in order.
fn pids(got: &[MPub]) -> Vec<u16> {
    let mut ids: Vec<u16> = got.iter().map(|d| d.pid.unwrap()).collect();
    ids.sort_unstable();
    ids
}

/// Publishes a message whose two deliveries to "dev" (`s`) are not
/// acknowledged (the client holds both until PUBREL): the broker restarts,
/// from its log and from a snapshot, and sends both again under the ids
/// they had.
fn ids_kept_through_a_restart(mut h: H, s: ConnId, p: ConnId) {
    publish(&mut h, p, b"2");
    let sent = h.mpublishes(s, V3);
    assert_eq!(sent.len(), 2);
    let mut h2 = H::restored_from(Config::default(), h.records.clone());
    let (s2, present) = h2.mconnect("dev", V3, false);
    assert!(present);
    let again = h2.mpublishes(s2, V3);
    assert!(again.iter().all(|d| d.payload == b"2"), "{again:?}");
    assert_eq!(pids(&again), pids(&sent));
    let snap = h.b.snapshot().expect("store drained");
    let mut h3 = H::restored_from(Config::default(), snap.records);
    let (s3, _) = h3.mconnect("dev", V3, false);
    assert_eq!(pids(&h3.mpublishes(s3, V3)), pids(&sent));
}

#[test]
fn a_qos_2_delivery_keeps_its_packet_id_through_a_restart() {
    let (h, s, p) = two_subscriptions();
    ids_kept_through_a_restart(h, s, p);
}

#[test]
fn a_qos_2_delivery_under_another_id_waits_until_the_id_is_stored() {
    let (mut h, s, p) = two_subscriptions();
    h.auto_persist = false;
    publish(&mut h, p, b"2");
    h.persist();
    // Released: the delivery under its message's own id goes out, the
    // other once its id's record is stored.
    let own = h.mpublishes(s, V3);
    assert_eq!(own.len(), 1);
    assert_eq!(h.mpublishes(s, V3), []);
    h.persist();
    let other = h.mpublishes(s, V3);
    assert_eq!(other.len(), 1);
    assert_ne!(other[0].pid, own[0].pid);
}

#[test]
fn a_new_connection_sends_a_waiting_delivery_once_its_id_is_stored() {
    let (mut h, s, p) = two_subscriptions();
    h.auto_persist = false;
    publish(&mut h, p, b"2");
    h.persist();
    let own = h.mpublishes(s, V3);
    assert_eq!(own.len(), 1);
    // Gone while the other waits for its id's record; the client comes
    // back before it is stored.
    h.b.handle_closed(s, h.now);
    h.drain();
    let (s, present) = h.mconnect("dev", V3, false);
    assert!(present);
    let mut got = h.mpublishes(s, V3);
    assert!(got.len() < 2, "{got:?}");
    h.persist();
    got.extend(h.mpublishes(s, V3));
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().any(|d| d.pid == own[0].pid));
}

#[test]
fn a_recorded_id_ends_with_its_delivery_or_its_subscription() {
    let (mut h, s, p) = two_subscriptions();
    let is_once_pid = |r: &[u8]| matches!(Record::decode(r), Ok(Record::OncePid { .. }));
    assert!(h.records.iter().any(|r| is_once_pid(r)));
    publish(&mut h, p, b"2");
    for d in h.mpublishes(s, V3) {
        let id = d.pid.unwrap();
        h.msend(s, V3, Packet::PubRec(MAck::new(pid(id))));
        h.msend(s, V3, Packet::PubComp(MAck::new(pid(id))));
    }
    let snap = h.b.snapshot().expect("store drained");
    assert!(!snap.records.iter().any(|r| is_once_pid(r)));
    assert_eq!(h.b.router.recorded_pids(), 0);
    // Or with its subscription, in the log too.
    publish(&mut h, p, b"3");
    assert_eq!(h.mpublishes(s, V3).len(), 2);
    let filters = ["q2", "+"];
    let unsubscribe = m::Unsubscribe {
        packet_id: pid(3),
        properties: m::Properties::EMPTY,
        filters: m::List::new(&filters),
    };
    h.msend(s, V3, Packet::Unsubscribe(unsubscribe));
    assert_eq!(h.mtake(s, V3), [MGot::UnsubAck(3)]);
    let snap = h.b.snapshot().expect("store drained");
    assert!(!snap.records.iter().any(|r| is_once_pid(r)));
    assert_eq!(h.b.router.recorded_pids(), 0);
    let h2 = H::restored_from(Config::default(), h.records.clone());
    let snap = h2.b.snapshot().expect("nothing to store");
    assert!(!snap.records.iter().any(|r| is_once_pid(r)));
    assert_eq!(h2.b.router.recorded_pids(), 0);
}

/// [`two_subscriptions`] with `$share` groups: "dev" the only member of two
/// groups whose filters both match `q2`, so one of each message's two
/// deliveries goes out under an id not its message's own.
fn two_groups() -> (H, ConnId, ConnId) {
    subscribed_twice(["$share/g/q2", "$share/h/+"])
}

#[test]
fn a_shared_subscriptions_qos_2_delivery_keeps_its_packet_id_through_a_restart() {
    // The groups' queues come back with the messages, and "dev" is their
    // only member: it gets both again.
    let (h, s, p) = two_groups();
    ids_kept_through_a_restart(h, s, p);
}

#[test]
fn a_members_recorded_id_ends_when_another_member_completes_the_delivery() {
    let (mut h, s, p) = two_groups();
    let is_once_pid = |r: &[u8]| matches!(Record::decode(r), Ok(Record::OncePid { .. }));
    let (o, _) = h.mconnect("other", V3, true);
    h.msubscribe(o, V3, "$share/g/q2", m::QoS::ExactlyOnce);
    h.msubscribe(o, V3, "$share/h/+", m::QoS::ExactlyOnce);
    publish(&mut h, p, b"2");
    let sent = h.mpublishes(s, V3);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let snap = h.b.snapshot().expect("store drained");
    assert!(snap.records.iter().any(|r| is_once_pid(r)));
    // "dev" leaves: its groups hand both to "other", which completes them.
    h.b.handle_closed(s, h.now);
    h.drain();
    let moved = h.mpublishes(o, V3);
    assert_eq!(moved.len(), 2, "{moved:?}");
    for d in moved {
        let id = d.pid.unwrap();
        h.msend(o, V3, Packet::PubRec(MAck::new(pid(id))));
        assert_eq!(h.mtake(o, V3), [MGot::PubRel(id)]);
        h.msend(o, V3, Packet::PubComp(MAck::new(pid(id))));
    }
    // The id "dev" recorded is free: not in a snapshot, nor after a
    // restart from the log; none is counted (an ack in a group then walks
    // no members).
    let snap = h.b.snapshot().expect("store drained");
    assert!(!snap.records.iter().any(|r| is_once_pid(r)));
    assert_eq!(h.b.router.recorded_pids(), 0);
    let h2 = H::restored_from(Config::default(), h.records.clone());
    let snap = h2.b.snapshot().expect("nothing to store");
    assert!(!snap.records.iter().any(|r| is_once_pid(r)));
    assert_eq!(h2.b.router.recorded_pids(), 0);
}

#[test]
fn another_id_is_never_a_messages_own() {
    // Message ids give the lower half of the packet ids, the others come
    // from the upper half: a delivery waiting to go out again (the client
    // may hold it by its own id) never finds its id taken by another that
    // went first. `sim_mqtt`'s shared subscriber found that (seed 234).
    let (mut h, s, p) = two_subscriptions();
    publish(&mut h, p, b"2");
    let sent = pids(&h.mpublishes(s, V3));
    assert_eq!(sent.len(), 2);
    assert!(
        sent[0] <= u16::MAX / 2 && sent[1] > u16::MAX / 2,
        "{sent:?}"
    );
}
