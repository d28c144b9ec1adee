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
    incarnations_grow_after_the_catalog_lost_its_data,
    interest_is_recorded_replaced_and_removed,
    malformed_interest_is_reported_not_used,
    offline_reads_in_order_and_removes_only_on_ack,
    enqueue_is_idempotent_on_the_origin,
    queues_are_bounded,
    concurrent_enqueues_respect_the_bound,
    expired_messages_are_neither_read_nor_counted,
    two_nodes_share_one_catalog_concurrently,
    unreachable_database_is_a_clear_error,
    database_gone_mid_use_then_back,
    silent_database_is_unavailable_not_a_hang,
    leases_and_ttls_have_one_range_everywhere,
);
