//! NATS beside the other protocols and itself: header blocks both ways,
//! request-reply with no-responders, and messages crossing between NATS,
//! MQTT and mq clients in both directions.

use alloc::string::ToString;
use alloc::vec;

use super::mqtt::connect_packet;
use super::nats::QUIET;
use super::*;
use crate::mqtt::{self as m, Properties, UserProperties, Version};

const HEADERS: &str = r#"{"verbose":false,"headers":true,"no_responders":true}"#;

#[test]
fn headers_travel_as_a_block_or_not_at_all() {
    let mut h = H::new(Config::default());
    let with = h.nconnect(HEADERS);
    let without = h.nconnect(QUIET);
    h.ntype(with, "SUB a 1\r\n");
    h.ntype(without, "SUB a 1\r\n");
    let block = "NATS/1.0\r\nTrace-Id: 42\r\nA: b\r\nA: c\r\n\r\n";
    h.ntype(
        with,
        &alloc::format!(
            "HPUB a {} {}\r\n{block}hi\r\n",
            block.len(),
            block.len() + 2
        ),
    );
    assert_eq!(
        h.ntake(with),
        alloc::format!(
            "HMSG a 1 {} {}\r\n{block}hi\r\n",
            block.len(),
            block.len() + 2
        )
    );
    // A client that did not say `headers` gets the message without them.
    assert_eq!(h.ntake(without), "MSG a 1 2\r\nhi\r\n");
    // A block that is not one is refused; the connection stays.
    h.ntype(with, "HPUB a 4 5\r\nNATSx\r\nPING\r\n");
    assert_eq!(
        h.ntake(with),
        "-ERR 'Invalid Headers: header block does not start with NATS/1.0'\r\nPONG\r\n"
    );
}

#[test]
fn request_reply_across_two_nats_clients() {
    let mut h = H::new(Config::default());
    let service = h.nconnect(QUIET);
    let client = h.nconnect(HEADERS);
    h.ntype(service, "SUB svc.echo workers 1\r\n");
    h.ntype(
        client,
        "SUB _INBOX.abc.* 7\r\nPUB svc.echo _INBOX.abc.1 4\r\nping\r\n",
    );
    assert_eq!(
        h.ntake(service),
        "MSG svc.echo 1 _INBOX.abc.1 4\r\nping\r\n"
    );
    h.ntype(service, "PUB _INBOX.abc.1 4\r\npong\r\n");
    assert_eq!(h.ntake(client), "MSG _INBOX.abc.1 7 4\r\npong\r\n");
}

#[test]
fn no_responders_answers_a_request_nobody_takes() {
    let mut h = H::new(Config::default());
    let client = h.nconnect(HEADERS);
    h.ntype(
        client,
        "SUB _INBOX.abc.* 7\r\nPUB nobody.home _INBOX.abc.2 2\r\nhi\r\n",
    );
    assert_eq!(
        h.ntake(client),
        "HMSG _INBOX.abc.2 7 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    );
    // Without `no_responders` (or without headers): silence, as in NATS.
    let plain = h.nconnect(r#"{"verbose":false,"headers":true}"#);
    h.ntype(
        plain,
        "SUB _INBOX.x.* 1\r\nPUB nobody.home _INBOX.x.1 2\r\nhi\r\n",
    );
    assert_eq!(h.ntake(plain), "");
    // Someone subscribed (any protocol): no 503.
    let (mq, _) = h.connect("svc", SessionMode::Clean);
    h.subscribe(mq, 1, "nobody.home", None, 8);
    h.ntype(client, "PUB nobody.home _INBOX.abc.3 2\r\nhi\r\n");
    assert_eq!(h.ntake(client), "");
    assert_eq!(h.deliveries(mq).len(), 1);
}

#[test]
fn no_responders_counts_toward_unsub_max() {
    let mut h = H::new(Config::default());
    let c = h.nconnect(HEADERS);
    h.ntype(
        c,
        "SUB _INBOX.r 1\r\nUNSUB 1 1\r\nPUB x _INBOX.r 0\r\n\r\nPUB x _INBOX.r 0\r\n\r\n",
    );
    assert_eq!(
        h.ntake(c),
        "HMSG _INBOX.r 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    );
    assert_eq!(h.b.stats().current_subscriptions, 0);
}

#[test]
fn nats_to_mq_and_mqtt() {
    let mut h = H::new(Config::default());
    let (mq, _) = h.connect("mq-sub", SessionMode::Clean);
    h.subscribe(mq, 1, "sensors.*.temp", None, 8);
    let (mqtt, _) = h.mconnect("mqtt-sub", Version::V5, true);
    h.msubscribe(mqtt, Version::V5, "sensors/+/temp", m::QoS::AtMostOnce);
    let nats = h.nconnect(HEADERS);
    let block = "NATS/1.0\r\nunit: C\r\n\r\n";
    h.ntype(
        nats,
        &alloc::format!(
            "HPUB sensors.kitchen.temp _INBOX.n.1 {} {}\r\n{block}21.5\r\n",
            block.len(),
            block.len() + 4
        ),
    );
    let d = h.deliveries(mq);
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].topic.as_str(), d[0].payload.as_slice()),
        ("sensors.kitchen.temp", &b"21.5"[..])
    );
    assert_eq!(d[0].reply_to.as_deref(), Some("_INBOX.n.1"));
    let p = h.mpublishes(mqtt, Version::V5);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].topic, "sensors/kitchen/temp");
    assert_eq!(p[0].payload, b"21.5");
    assert_eq!(p[0].response_topic.as_deref(), Some("_INBOX/n/1"));
    assert_eq!(p[0].user, vec![("unit".to_string(), "C".to_string())]);
}

#[test]
fn mq_and_mqtt_to_nats() {
    let mut h = H::new(Config::default());
    let nats = h.nconnect(HEADERS);
    h.ntype(nats, "SUB sensors.> 1\r\n");
    let (mq, _) = h.connect("mq-pub", SessionMode::Clean);
    h.publish_with(
        mq,
        1,
        "sensors.hall.temp",
        QoS::AtLeastOnce,
        None,
        Meta {
            reply_to: Some("replies.hall"),
            ..Meta::default()
        },
        b"19",
    );
    assert_eq!(
        h.ntake(nats),
        "MSG sensors.hall.temp 1 replies.hall 2\r\n19\r\n"
    );
    let (mqtt, _) = h.mconnect_with(connect_packet("mqtt-pub", Version::V5, true));
    let user = [("unit", "C")];
    let mut props = Properties::EMPTY;
    props.user = UserProperties::new(&user);
    props.content_type = Some("text/plain");
    h.mpublish_with(
        mqtt,
        Version::V5,
        "sensors/porch/temp",
        m::QoS::AtLeastOnce,
        false,
        props,
        b"7",
    );
    // MQTT's own headers (`mqtt:content-type`) have no NATS name: left out.
    let block = "NATS/1.0\r\nunit: C\r\n\r\n";
    assert_eq!(
        h.ntake(nats),
        alloc::format!(
            "HMSG sensors.porch.temp 1 {} {}\r\n{block}7\r\n",
            block.len(),
            block.len() + 1
        )
    );
}

#[test]
fn mqtt_request_answered_over_nats() {
    let mut h = H::new(Config::default());
    let service = h.nconnect(QUIET);
    h.ntype(service, "SUB svc.time 1\r\n");
    let (mqtt, _) = h.mconnect("asker", Version::V5, true);
    h.msubscribe(mqtt, Version::V5, "replies/asker", m::QoS::AtMostOnce);
    let mut props = Properties::EMPTY;
    props.response_topic = Some("replies/asker");
    h.mpublish_with(
        mqtt,
        Version::V5,
        "svc/time",
        m::QoS::AtMostOnce,
        false,
        props,
        b"?",
    );
    assert_eq!(h.ntake(service), "MSG svc.time 1 replies.asker 1\r\n?\r\n");
    h.ntype(service, "PUB replies.asker 5\r\nnoon!\r\n");
    let p = h.mpublishes(mqtt, Version::V5);
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].topic.as_str(), p[0].payload.as_slice()),
        ("replies/asker", &b"noon!"[..])
    );
}
