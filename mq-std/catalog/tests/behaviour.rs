//! One suite of behaviour tests, run against each backend: SQLite (a file of
//! its own per test), and the machine's Redis and PostgreSQL (a namespace of
//! its own per test). Each scenario is a function of the place it runs in.

mod scenarios;
mod support;

use support::Place;

/// A module per backend, with a test per scenario.
macro_rules! suite {
    ($($scenario:ident),* $(,)?) => {
        backend!(sqlite: $($scenario),*);
        backend!(redis: $($scenario),*);
        backend!(postgres: $($scenario),*);
    };
}

macro_rules! backend {
    ($backend:ident: $($scenario:ident),*) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::scenarios::$scenario(super::Place::$backend).await;
                }
            )*
        }
    };
}

suite!(
    register_fences_the_old_incarnation,
    deregister_keeps_the_newer_incarnation,
    heartbeat_renews_the_lease,
    expired_leases_are_not_listed,
    an_unreadable_node_does_not_hide_the_others,
    incarnations_grow_after_the_catalog_lost_its_data,
    interest_is_recorded_replaced_and_removed,
    a_node_forgotten_loses_its_own_and_its_groups_interest,
    malformed_interest_is_reported_not_used,
    offline_reads_in_order_and_removes_only_on_ack,
    enqueue_is_idempotent_on_the_origin,
    enqueue_all_answers_each_message_in_order,
    queues_are_bounded,
    concurrent_enqueues_respect_the_bound,
    expired_messages_are_neither_read_nor_counted,
    an_unreadable_message_does_not_hold_back_the_others,
    two_nodes_share_one_catalog_concurrently,
    unreachable_database_is_a_clear_error,
    database_gone_mid_use_then_back,
    silent_database_is_unavailable_not_a_hang,
    leases_and_ttls_have_one_range_everywhere,
);

/// PostgreSQL's schemas: any namespace the options accept is one, keywords
/// included; the prefix PostgreSQL reserves is refused by name.
mod postgres_schemas {
    use mq_catalog::{Catalog, Error, Interest, Options};

    use super::support::{Place, envelope};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keyword_namespaces_are_schemas() {
        for keyword in ["select", "user"] {
            let mut place = Place::postgres();
            place.options.namespace = keyword.to_owned();
            let catalog = place.open().await;
            catalog
                .register("a", "h:1", std::time::Duration::from_secs(60))
                .await
                .unwrap();
            assert_eq!(catalog.live_nodes().await.unwrap().nodes.len(), 1);
            catalog
                .add_interest(&Interest {
                    session: "s".to_owned(),
                    node: "a".to_owned(),
                    filter: "orders.>".to_owned(),
                    group: None,
                    qos: mq_core::QoS::AtLeastOnce,
                })
                .await
                .unwrap();
            assert_eq!(catalog.interests().await.unwrap().interests.len(), 1);
            let id = catalog.enqueue("r", &envelope("a", 1)).await.unwrap().id();
            assert_eq!(catalog.queue_len("r").await.unwrap(), 1);
            assert_eq!(catalog.ack("r", &[id]).await.unwrap(), 1);
            place.clean().await;
        }
    }

    #[tokio::test]
    async fn pg_prefixed_namespaces_are_refused_by_name() {
        let options = Options {
            namespace: "pg_mq".to_owned(),
            ..Options::default()
        };
        let place = Place::postgres();
        match Catalog::open_with(&place.url, options).await {
            Err(Error::Invalid(detail)) => assert!(detail.contains("pg_"), "{detail}"),
            other => panic!("{other:?}"),
        }
        place.clean().await;
    }
}

/// Rows only SQLite can hold.
mod sqlite_rows {
    use super::scenarios::interest;
    use super::support::{Place, one_unreadable_interest, one_unreadable_node};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_stored_as_a_blob_makes_its_row_unreadable_not_the_listing() {
        // Its session was read as text and failed the whole listing.
        let place = Place::sqlite();
        let catalog = place.open().await;
        let (jobs, alerts) = (
            interest("s1", "a", "jobs.>", None),
            interest("s2", "a", "alerts", None),
        );
        for i in [&jobs, &alerts] {
            catalog.add_interest(i).await.unwrap();
        }
        place.blob_session("s1", "jobs.>").await;
        let listed = catalog.interests().await.unwrap();
        assert_eq!(listed.interests, [alerts]);
        one_unreadable_interest(&listed, ("s1", "jobs.>"), "session is a BLOB");
        place.clean().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_with_a_text_expiry_and_a_blob_address_is_unreadable_alone() {
        // Text compares as later than any number: the row is listed live,
        // and reading its expiry as a number failed the whole listing.
        let place = Place::sqlite();
        let catalog = place.open().await;
        let lease = std::time::Duration::from_secs(60);
        catalog.register("a", "h:1", lease).await.unwrap();
        catalog.register("b", "h:2", lease).await.unwrap();
        place.garble_sqlite_node("a").await;
        let listed = catalog.live_nodes().await.unwrap();
        let ids: Vec<&str> = listed.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["b"]);
        one_unreadable_node(&listed, "a", "address is a BLOB");
        place.clean().await;
    }
}

/// Rows only Redis can hold.
mod redis_rows {
    use mq_catalog::Error;

    use super::support::{Place, envelope, seqs_from};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_resp3_connection_reads_what_a_resp2_one_does() {
        // The scripts return Lua's false for a field a hash lacks (a
        // message's expiry when it has none), which the decoders take for
        // nil: a connection in RESP3 (`?protocol=resp3` in the URL) must
        // get nil too, not a boolean, or every such row is unreadable.
        let place = Place::redis();
        let url = format!("{}?protocol=resp3", place.url.trim_end_matches('/'));
        let place = place.at(&url);
        // The URL's protocol is honoured (as the catalog opens it too).
        let info = super::support::redis_command(&url, &["CLIENT", "INFO"]).await;
        let info = format!("{:?}", info.unwrap());
        assert!(info.contains("resp=3"), "{info}");
        let catalog = place.open().await;
        catalog.enqueue("r", &envelope("a", 1)).await.unwrap();
        catalog
            .register("n", "127.0.0.1:1", std::time::Duration::from_secs(60))
            .await
            .unwrap();
        let page = catalog.read("r", None, 10).await.unwrap();
        assert!(page.unreadable.is_empty(), "{:?}", page.unreadable);
        assert_eq!(seqs_from(&page.messages, "a"), [1]);
        assert_eq!(page.messages[0].expires_at, None);
        let listed = catalog.live_nodes().await.unwrap();
        assert!(listed.unreadable.is_empty(), "{:?}", listed.unreadable);
        place.clean().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_hash_missing_a_field_is_unreadable_alone() {
        // A hash without its address failed the whole listing; one without
        // its incarnation was left out unreported.
        let place = Place::redis();
        let catalog = place.open().await;
        let lease = std::time::Duration::from_secs(60);
        for (id, addr) in [("a", "h:1"), ("b", "h:2"), ("c", "h:3")] {
            catalog.register(id, addr, lease).await.unwrap();
        }
        place.drop_redis_node_field("a", "addr").await;
        place.drop_redis_node_field("c", "incarnation").await;
        let listed = catalog.live_nodes().await.unwrap();
        let ids: Vec<(&str, &str)> = (listed.nodes.iter())
            .map(|n| (n.id.as_str(), n.addr.as_str()))
            .collect();
        assert_eq!(ids, [("b", "h:2")]);
        let bad: Vec<(&str, String)> = (listed.unreadable.iter())
            .map(|u| (u.id.as_str(), u.reason.to_string()))
            .collect();
        match bad.as_slice() {
            [(a, no_addr), (c, no_incarnation)] => {
                assert_eq!((*a, *c), ("a", "c"));
                assert!(no_addr.contains("no addr"), "{no_addr}");
                assert!(
                    no_incarnation.contains("no incarnation"),
                    "{no_incarnation}"
                );
            }
            other => panic!("two unreadable rows: {other:?}"),
        }
        place.clean().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_expiry_that_is_not_a_number_makes_its_message_unreadable() {
        // The read script compared it with the clock and raised, failing the
        // whole read: now the row alone is unreadable, the others are read.
        let place = Place::redis();
        let catalog = place.open().await;
        let mut ids = Vec::new();
        for seq in 1..=3 {
            ids.push(
                catalog
                    .enqueue("r", &envelope("a", seq))
                    .await
                    .unwrap()
                    .id(),
            );
        }
        place.corrupt_redis_expiry(ids[1]).await;
        let page = catalog.read("r", None, 10).await.unwrap();
        assert_eq!(seqs_from(&page.messages, "a"), [1, 3]);
        match page.unreadable.as_slice() {
            [row] => {
                assert_eq!(row.id, ids[1]);
                assert!(matches!(row.reason, Error::Malformed(_)), "{row:?}");
            }
            other => panic!("one unreadable row: {other:?}"),
        }
        assert_eq!(page.last_id(), Some(ids[2]));
        assert_eq!(catalog.ack("r", &[ids[1]]).await.unwrap(), 1);
        let rest = catalog.read("r", None, 10).await.unwrap();
        assert_eq!(seqs_from(&rest.messages, "a"), [1, 3]);
        assert!(rest.unreadable.is_empty(), "{:?}", rest.unreadable);
        place.clean().await;
    }
}
