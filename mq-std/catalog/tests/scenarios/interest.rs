//! The interest of away sessions.

use mq_catalog::Interest;
use mq_core::QoS;

use super::NewPlace;
use crate::support::one_unreadable_interest;

/// `session`'s interest in `filter` (in `group`), attached to `node`, QoS 1.
pub fn interest(session: &str, node: &str, filter: &str, group: Option<&str>) -> Interest {
    Interest {
        session: session.to_owned(),
        node: node.to_owned(),
        filter: filter.to_owned(),
        group: group.map(str::to_owned),
        qos: QoS::AtLeastOnce,
    }
}

pub async fn interest_is_recorded_replaced_and_removed(place: NewPlace) {
    let place = place();
    let catalog = place.open().await;
    assert!(catalog.interests().await.unwrap().interests.is_empty());
    let kitchen = interest("s2", "a", "sensors.kitchen.*", None);
    let workers = interest("s1", "b", "jobs.>", Some("workers"));
    let alerts = interest("s1", "b", "alerts", None);
    for i in [&kitchen, &workers, &alerts] {
        catalog.add_interest(i).await.unwrap();
    }
    assert_eq!(
        catalog.interests().await.unwrap().interests,
        [alerts.clone(), workers.clone(), kitchen.clone()]
    );

    // The same session and filter again: replaced, not doubled.
    let moved = Interest {
        node: "c".to_owned(),
        qos: QoS::AtMostOnce,
        group: None,
        ..workers.clone()
    };
    catalog.add_interest(&moved).await.unwrap();
    assert_eq!(
        catalog.interests().await.unwrap().interests,
        [alerts.clone(), moved.clone(), kitchen.clone()]
    );

    assert!(catalog.remove_interest("s1", "alerts").await.unwrap());
    assert!(!catalog.remove_interest("s1", "alerts").await.unwrap());
    assert!(!catalog.remove_interest("s9", "jobs.>").await.unwrap());
    assert_eq!(
        catalog.interests().await.unwrap().interests,
        [moved, kitchen.clone()]
    );

    // A second handle (another node) sees the same.
    let other = place.open().await;
    assert_eq!(other.interests().await.unwrap().interests.len(), 2);

    // A session forgotten loses all its filters, and only its own.
    catalog.add_interest(&alerts).await.unwrap();
    assert_eq!(catalog.forget_session("s1").await.unwrap(), 2);
    assert_eq!(catalog.forget_session("s1").await.unwrap(), 0);
    assert_eq!(catalog.interests().await.unwrap().interests, [kitchen]);
    place.clean().await;
}

pub async fn malformed_interest_is_reported_not_used(place: NewPlace) {
    let place = place();
    let catalog = place.open().await;
    let (jobs, alerts, kitchen) = (
        interest("s1", "a", "jobs.>", None),
        interest("s1", "a", "alerts", Some("ops")),
        interest("s2", "b", "sensors.kitchen.*", None),
    );
    for i in [&jobs, &alerts, &kitchen] {
        catalog.add_interest(i).await.unwrap();
    }
    // A QoS a newer version may write, in one row: skipped, reported, and
    // the others still listed.
    place.corrupt_interest("s1", "jobs.>").await;
    let listed = catalog.interests().await.unwrap();
    assert_eq!(listed.interests, [alerts.clone(), kitchen.clone()]);
    one_unreadable_interest(&listed, ("s1", "jobs.>"), "QoS code 7");
    // What is well-formed still works, and the row can be removed.
    assert!(catalog.remove_interest("s1", "jobs.>").await.unwrap());
    let listed = catalog.interests().await.unwrap();
    assert_eq!(
        (listed.interests, listed.unreadable),
        (vec![alerts, kitchen], vec![])
    );
    place.clean().await;
}

pub async fn a_node_forgotten_loses_its_own_and_its_groups_interest(place: NewPlace) {
    let place = place();
    let catalog = place.open().await;
    let own = interest("$node.a", "a", "t", None);
    let group = interest("$node.a w", "a", "t", Some("w"));
    // Another node whose id starts alike, and a client session on node a.
    let other = interest("$node.ab", "ab", "t", None);
    let client = interest("c1", "a", "t", None);
    for i in [&own, &group, &other, &client] {
        catalog.add_interest(i).await.unwrap();
    }
    // Its own row unreadable (a newer version's QoS): it goes too.
    place.corrupt_interest("$node.a", "t").await;
    assert_eq!(catalog.forget_node("a").await.unwrap(), 2);
    assert_eq!(catalog.forget_node("a").await.unwrap(), 0);
    assert_eq!(
        catalog.interests().await.unwrap().interests,
        [other, client]
    );
    place.clean().await;
}
