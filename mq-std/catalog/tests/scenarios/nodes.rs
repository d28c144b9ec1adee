//! Nodes: incarnations, fencing, leases.

use std::time::{Duration, SystemTime};

use mq_catalog::{Envelope, Error, MAX_LEASE};

use super::NewPlace;
use crate::support::{envelope, eventually, one_unreadable_node};

const LONG: Duration = Duration::from_secs(60);

pub async fn register_fences_the_old_incarnation(place: NewPlace) {
    let place = place();
    let catalog = place.open().await;
    let old = catalog.register("a", "10.0.0.1:7000", LONG).await.unwrap();
    let new = catalog.register("a", "10.0.0.1:7001", LONG).await.unwrap();
    assert!(new.incarnation > old.incarnation, "{new:?} after {old:?}");

    match catalog.heartbeat(&old, LONG).await {
        Err(Error::Fenced {
            node,
            held,
            current,
        }) => assert_eq!(
            (node.as_str(), held, current),
            ("a", old.incarnation, new.incarnation)
        ),
        other => panic!("the old incarnation's heartbeat: {other:?}"),
    }
    catalog.heartbeat(&new, LONG).await.unwrap();

    let live = catalog.live_nodes().await.unwrap().nodes;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(
        (
            live[0].id.as_str(),
            live[0].incarnation,
            live[0].addr.as_str()
        ),
        ("a", new.incarnation, "10.0.0.1:7001")
    );

    // One counter for all nodes: another node's incarnation is newer still,
    // and so is the next one of `a`, after it deregistered.
    let b = catalog.register("b", "10.0.0.2:7000", LONG).await.unwrap();
    assert!(b.incarnation > new.incarnation);
    catalog.deregister(&new).await.unwrap();
    let again = catalog.register("a", "10.0.0.1:7002", LONG).await.unwrap();
    assert!(again.incarnation > b.incarnation);
    place.clean().await;
}

pub async fn deregister_keeps_the_newer_incarnation(place: NewPlace) {
    let place = place();
    let catalog = place.open().await;
    let old = catalog.register("a", "h:1", LONG).await.unwrap();
    let new = catalog.register("a", "h:2", LONG).await.unwrap();
    assert!(matches!(
        catalog.deregister(&old).await,
        Err(Error::Fenced { current, .. }) if current == new.incarnation
    ));
    let ids = |nodes: Vec<mq_catalog::Node>| -> Vec<(String, u64)> {
        nodes.into_iter().map(|n| (n.id, n.incarnation)).collect()
    };
    assert_eq!(
        ids(catalog.live_nodes().await.unwrap().nodes),
        [("a".to_owned(), new.incarnation)]
    );
    catalog.deregister(&new).await.unwrap();
    assert!(catalog.live_nodes().await.unwrap().nodes.is_empty());
    // Gone already: deregistering again is fine, a heartbeat is not.
    catalog.deregister(&new).await.unwrap();
    assert!(matches!(
        catalog.heartbeat(&new, LONG).await,
        Err(Error::LeaseExpired { incarnation, .. }) if incarnation == new.incarnation
    ));
    place.clean().await;
}

pub async fn expired_leases_are_not_listed(place: NewPlace) {
    let place = place();
    let catalog = place.open().await;
    let short = catalog
        .register("short", "h:1", Duration::from_millis(300))
        .await
        .unwrap();
    let long = catalog.register("long", "h:2", LONG).await.unwrap();
    eventually(
        "the short lease expires",
        Duration::from_secs(30),
        || async {
            let live = catalog.live_nodes().await.unwrap().nodes;
            live.iter().all(|n| n.id != "short")
        },
    )
    .await;
    let live = catalog.live_nodes().await.unwrap().nodes;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].id, "long");
    assert!(live[0].lease_expires > std::time::SystemTime::now());

    // Too late to renew: the node must register again.
    assert!(matches!(
        catalog.heartbeat(&short, LONG).await,
        Err(Error::LeaseExpired { .. })
    ));
    assert_eq!(catalog.reap_expired().await.unwrap(), 1);
    assert_eq!(catalog.reap_expired().await.unwrap(), 0);
    catalog.heartbeat(&long, LONG).await.unwrap();
    let back = catalog.register("short", "h:3", LONG).await.unwrap();
    assert!(back.incarnation > long.incarnation);
    catalog.heartbeat(&back, LONG).await.unwrap();
    assert_eq!(catalog.live_nodes().await.unwrap().nodes.len(), 2);
    place.clean().await;
}

/// A catalog that lost everything (a Redis that keeps nothing on disk
/// restarted, a file recreated) still hands out greater incarnations, so the
/// node's new self fences off the old one that kept running.
pub async fn incarnations_grow_after_the_catalog_lost_its_data(place: NewPlace) {
    let place = place();
    let catalog = place.open().await;
    let mut old = catalog.register("a", "h:1", LONG).await.unwrap();
    for _ in 0..50 {
        old = catalog.register("a", "h:1", LONG).await.unwrap();
    }
    catalog.destroy().await.unwrap();

    let catalog = place.open().await;
    let new = catalog.register("a", "h:2", LONG).await.unwrap();
    assert!(new.incarnation > old.incarnation, "{new:?} after {old:?}");
    assert!(matches!(
        catalog.heartbeat(&old, LONG).await,
        Err(Error::Fenced { current, .. }) if current == new.incarnation
    ));
    place.clean().await;
}

pub async fn heartbeat_renews_the_lease(place: NewPlace) {
    let place = place();
    let catalog = place.open().await;
    let me = catalog
        .register("a", "h:1", Duration::from_secs(5))
        .await
        .unwrap();
    let before = catalog.live_nodes().await.unwrap().nodes[0].lease_expires;
    catalog.heartbeat(&me, LONG).await.unwrap();
    let after = catalog.live_nodes().await.unwrap().nodes[0].lease_expires;
    assert!(
        after >= before + Duration::from_secs(30),
        "{after:?} after {before:?}"
    );
    place.clean().await;
}

/// Leases and TTLs run from 1 ms to 100 years on every backend: the longest
/// works (its expiry fits every database's numbers), anything longer, up to
/// `i64::MAX` ms, is refused as invalid before it reaches the database
/// (where it would overflow SQLite's arithmetic, PostgreSQL's `bigint`,
/// Redis' `PEXPIRE`).
pub async fn leases_and_ttls_have_one_range_everywhere(place: NewPlace) {
    let place = place();
    let catalog = place.open().await;
    let absurd = [
        Duration::ZERO,
        MAX_LEASE + Duration::from_millis(1),
        Duration::from_millis(i64::MAX as u64),
        Duration::MAX,
    ];
    for span in absurd {
        let refused = catalog.register("a", "h:1", span).await;
        assert!(
            matches!(refused, Err(Error::Invalid(_))),
            "{span:?}: {refused:?}"
        );
        let message = Envelope {
            ttl: Some(span),
            ..envelope("a", 1)
        };
        let refused = catalog.enqueue("r", &message).await;
        assert!(
            matches!(refused, Err(Error::Invalid(_))),
            "{span:?}: {refused:?}"
        );
    }
    let me = catalog.register("a", "h:1", MAX_LEASE).await.unwrap();
    catalog.heartbeat(&me, MAX_LEASE).await.unwrap();
    for span in absurd {
        let refused = catalog.heartbeat(&me, span).await;
        assert!(
            matches!(refused, Err(Error::Invalid(_))),
            "{span:?}: {refused:?}"
        );
    }
    let in_99_years = SystemTime::now() + MAX_LEASE / 100 * 99;
    let live = catalog.live_nodes().await.unwrap().nodes;
    assert_eq!(live.len(), 1);
    assert!(live[0].lease_expires > in_99_years, "{live:?}");
    let longest = Envelope {
        ttl: Some(MAX_LEASE),
        ..envelope("a", 2)
    };
    catalog.enqueue("r", &longest).await.unwrap();
    let read = catalog.read("r", None, 10).await.unwrap().messages;
    assert_eq!(read.len(), 1);
    assert!(
        read[0].expires_at.is_some_and(|at| at > in_99_years),
        "{read:?}"
    );
    assert_eq!(catalog.queue_len("r").await.unwrap(), 1);
    place.clean().await;
}

pub async fn an_unreadable_node_does_not_hide_the_others(place: NewPlace) {
    // One node row with a negative incarnation (another program wrote it)
    // failed the whole listing: every node of the mesh then saw no peer.
    let place = place();
    let catalog = place.open().await;
    let a = catalog.register("a", "h:1", LONG).await.unwrap();
    catalog.register("b", "h:2", LONG).await.unwrap();
    let c = catalog.register("c", "h:3", LONG).await.unwrap();
    place.corrupt_node("b").await;
    let listed = catalog.live_nodes().await.unwrap();
    let ids: Vec<(&str, u64, &str)> = (listed.nodes.iter())
        .map(|n| (n.id.as_str(), n.incarnation, n.addr.as_str()))
        .collect();
    assert_eq!(
        ids,
        [("a", a.incarnation, "h:1"), ("c", c.incarnation, "h:3")]
    );
    one_unreadable_node(&listed, "b", "");
    // Registering again writes the row anew: it is readable again.
    let b = catalog.register("b", "h:4", LONG).await.unwrap();
    let listed = catalog.live_nodes().await.unwrap();
    assert!(listed.unreadable.is_empty(), "{listed:?}");
    assert!(
        (listed.nodes.iter()).any(|n| n.id == "b" && n.incarnation == b.incarnation),
        "{listed:?}"
    );
    place.clean().await;
}
