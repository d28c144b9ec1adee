//! Identities verified by the adapter, placeholders in permissions, and auth
//! replaced under live connections.

use super::*;

fn perms(publish: &[&str], subscribe: &[&str]) -> Permissions {
    Permissions {
        publish: publish.iter().map(|s| s.to_string()).collect(),
        subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
        admin: false,
    }
}

fn fleet_auth() -> Auth {
    Auth {
        tokens: vec![("ops-token".into(), Permissions::all())],
        identities: vec![
            (
                "sensor-17".into(),
                perms(&["dev.{client_id}.>"], &["dev.{client_id}.cmd"]),
            ),
            ("sensor-18".into(), perms(&["dev.{identity}.>"], &[])),
        ],
    }
}

fn welcomed(h: &mut H, c: ConnId) -> bool {
    matches!(h.take(c)[..], [Got::Welcome { .. }])
}

fn sub_frame(sub: u32, filter: &str) -> Frame<'_> {
    Frame::Subscribe(Subscribe {
        sub,
        filter,
        group: None,
        start: Start::New,
        qos: QoS::AtLeastOnce,
        credit: 4,
    })
}

#[test]
fn an_identity_gets_its_permissions_with_placeholders() {
    let mut h = H::new(Config {
        auth: fleet_auth(),
        ..Config::default()
    });
    // No identity, no token: refused; an unknown identity without a token too.
    let anon = h.connect_as("d1", SessionMode::Clean, None, None);
    assert_eq!(h.take(anon), vec![Got::Error(Reason::BadToken)]);
    let stranger = h.connect_as("d1", SessionMode::Clean, None, Some("nobody"));
    assert_eq!(h.take(stranger), vec![Got::Error(Reason::BadToken)]);

    let c = h.connect_as("d1", SessionMode::Clean, None, Some("sensor-17"));
    assert!(welcomed(&mut h, c));
    h.publish(c, 1, "dev.d1.temp", QoS::AtLeastOnce, b"ok");
    h.publish(c, 2, "dev.d2.temp", QoS::AtLeastOnce, b"not mine");
    let got = h.take(c);
    assert!(matches!(got[0], Got::PubAck { id: 1, .. }), "{got:?}");
    assert_eq!(
        got[1],
        Got::PubReject {
            id: 2,
            reason: Reason::NotAuthorized
        }
    );
    h.send(c, sub_frame(1, "dev.d1.cmd"));
    assert_eq!(h.take(c), vec![Got::SubAck(1)]);
    h.send(c, sub_frame(2, "dev.d2.cmd"));
    assert_eq!(h.take(c), vec![Got::SubReject(2, Reason::NotAuthorized)]);

    // `{identity}` is the certificate's name, whatever the client id.
    let c = h.connect_as("anything", SessionMode::Clean, None, Some("sensor-18"));
    assert!(welcomed(&mut h, c));
    h.publish(c, 1, "dev.sensor-18.x", QoS::AtLeastOnce, b"ok");
    h.publish(c, 2, "dev.anything.x", QoS::AtLeastOnce, b"no");
    let got = h.take(c);
    assert!(matches!(got[0], Got::PubAck { id: 1, .. }), "{got:?}");
    assert!(matches!(got[1], Got::PubReject { id: 2, .. }), "{got:?}");
}

#[test]
fn a_client_id_that_is_a_wildcard_gains_nothing() {
    let mut h = H::new(Config {
        auth: fleet_auth(),
        ..Config::default()
    });
    let c = h.connect_as("*", SessionMode::Clean, None, Some("sensor-17"));
    assert!(welcomed(&mut h, c));
    h.publish(c, 1, "dev.other.temp", QoS::AtLeastOnce, b"x");
    assert_eq!(
        h.take(c),
        vec![Got::PubReject {
            id: 1,
            reason: Reason::NotAuthorized
        }]
    );
}

#[test]
fn set_auth_closes_only_revoked_connections() {
    let mut h = H::new(Config {
        auth: fleet_auth(),
        ..Config::default()
    });
    let ops = h.connect_with("ops", SessionMode::Clean, Some("ops-token"));
    assert!(welcomed(&mut h, ops));
    let s17 = h.connect_as("d17", SessionMode::Clean, None, Some("sensor-17"));
    assert!(welcomed(&mut h, s17));
    h.send(s17, sub_frame(1, "dev.d17.cmd"));
    assert_eq!(h.take(s17), vec![Got::SubAck(1)]);
    let s18 = h.connect_as("d18", SessionMode::Clean, None, Some("sensor-18"));
    assert!(welcomed(&mut h, s18));
    h.subscribe(ops, 1, "dev.>", None, 16);

    // sensor-18 is revoked; sensor-17 keeps its identity but may no longer
    // subscribe; the token stays.
    let mut next = fleet_auth();
    next.identities = vec![("sensor-17".into(), perms(&["dev.{client_id}.>"], &[]))];
    let closed = h.b.set_auth(h.now, next);
    h.drain();
    assert_eq!(closed, 2);
    assert_eq!(h.take(s18), vec![Got::Error(Reason::BadToken)]);
    assert!(h.closed.contains(&s18));
    assert_eq!(h.take(s17), vec![Got::Error(Reason::NotAuthorized)]);
    assert!(h.closed.contains(&s17));

    // The token's connection kept going, and new connections get the new auth.
    assert!(!h.closed.contains(&ops));
    let again = h.connect_as("d18", SessionMode::Clean, None, Some("sensor-18"));
    assert_eq!(h.take(again), vec![Got::Error(Reason::BadToken)]);
    let d17 = h.connect_as("d17", SessionMode::Clean, None, Some("sensor-17"));
    assert!(welcomed(&mut h, d17));
    h.publish(d17, 1, "dev.d17.temp", QoS::AtLeastOnce, b"21");
    assert!(matches!(h.take(d17)[..], [Got::PubAck { id: 1, .. }]));
    let ds = h.deliveries(ops);
    assert_eq!(payloads(&ds), vec![b"21".as_slice()]);
}

#[test]
fn narrower_permissions_apply_to_live_sessions() {
    let mut h = H::new(Config {
        auth: fleet_auth(),
        ..Config::default()
    });
    let ops = h.connect_with("ops", SessionMode::Clean, Some("ops-token"));
    assert!(welcomed(&mut h, ops));
    let mut next = fleet_auth();
    next.tokens = vec![("ops-token".into(), perms(&["ops.>"], &[]))];
    assert_eq!(h.b.set_auth(h.now, next), 0);
    h.drain();
    h.publish(ops, 1, "ops.x", QoS::AtLeastOnce, b"ok");
    h.publish(ops, 2, "dev.x", QoS::AtLeastOnce, b"no");
    let got = h.take(ops);
    assert!(matches!(got[0], Got::PubAck { id: 1, .. }), "{got:?}");
    assert!(matches!(got[1], Got::PubReject { id: 2, .. }), "{got:?}");
}

#[test]
fn an_identity_the_adapter_withdraws_falls_back_to_the_token() {
    let mut h = H::new(Config {
        auth: fleet_auth(),
        ..Config::default()
    });
    let with_token = h.connect_as(
        "a",
        SessionMode::Clean,
        Some("ops-token"),
        Some("sensor-17"),
    );
    assert!(welcomed(&mut h, with_token));
    let cert_only = h.connect_as("b", SessionMode::Clean, None, Some("sensor-17"));
    assert!(welcomed(&mut h, cert_only));
    assert!(!h.b.set_identity(h.now, with_token, None));
    assert!(h.b.set_identity(h.now, cert_only, None));
    h.drain();
    assert_eq!(h.take(cert_only), vec![Got::Error(Reason::BadToken)]);
    assert!(!h.closed.contains(&with_token));
}
