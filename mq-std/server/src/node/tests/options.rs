//! The node's options: the catalog call timeout, its default and its checks.

use std::time::Duration;

use super::NodeOptions;

#[test]
fn the_catalog_call_timeout_defaults_below_the_lease_and_reaches_the_catalog() {
    // By default a catalog call may take half the lease, at most the lease
    // less a heartbeat period, never the catalog's own 5 s (as long as the
    // default lease).
    let opts = NodeOptions::new("a", "sqlite:x");
    assert_eq!(
        opts.catalog_options().call_timeout,
        Duration::from_millis(2_500)
    );
    let mut slow = opts.clone();
    slow.heartbeat = Duration::from_millis(4_000);
    assert_eq!(
        slow.catalog_options().call_timeout,
        Duration::from_millis(1_000)
    );
    let mut set = opts.clone();
    set.call_timeout = Some(Duration::from_millis(300));
    set.namespace = Some("east".into());
    let options = set.catalog_options();
    assert_eq!(options.call_timeout, Duration::from_millis(300));
    assert_eq!(options.namespace, "east");
    set.check().unwrap();
}

#[test]
fn a_catalog_call_timeout_as_long_as_the_lease_is_refused() {
    for timeout in [
        Duration::ZERO,
        Duration::from_secs(5),
        Duration::from_secs(6),
    ] {
        let mut opts = NodeOptions::new("a", "sqlite:x");
        opts.call_timeout = Some(timeout);
        match opts.check() {
            Err(mq_catalog::Error::Invalid(why)) => {
                assert!(why.contains("call timeout"), "{why}");
                assert!(why.contains("shorter than the lease"), "{why}");
            }
            other => panic!("{timeout:?} accepted: {other:?}"),
        }
    }
}
