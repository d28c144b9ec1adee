//! The topic mapping: the table in the module docs, row by row, and its edges.

use super::super::topic::*;
use crate::topic::{Filter, Topic};

fn mq(mqtt: &str) -> std::string::String {
    let mut buf = [0u8; MQ_BUF_LEN];
    to_mq_topic(mqtt, &mut buf).unwrap().as_str().into()
}

fn back(mq: &str) -> Result<std::string::String, TopicMapError> {
    let mut buf = [0u8; MQTT_BUF_LEN];
    to_mqtt_topic(Topic::new(mq).unwrap(), &mut buf).map(Into::into)
}

#[test]
fn the_table_for_topics() {
    let rows = [
        ("a/b/c", "a.b.c"),
        ("/a", "%.a"),
        ("a//b", "a.%.b"),
        ("a/", "a.%"),
        ("/", "%.%"),
        ("%", "%25"),
        ("a.b", "a%2Eb"),
        ("a*b", "a%2Ab"),
        ("a>b", "a%3Eb"),
        ("a b", "a%20b"),
        ("café", "caf%C3%A9"),
        ("tab\there", "tab%09here"),
        ("%41", "%41"),
        ("100%", "100%"),
        ("%2e", "%2e"),
        ("%2E", "%252E"),
        ("%25", "%2525"),
        ("%%25", "%%2525"),
        ("%2F", "%2F"),
        ("$SYS/broker/load", "$SYS.broker.load"),
        ("a$/b", "a$.b"),
        ("~!@\"'()[]{};:=,", "~!@\"'()[]{};:=,"),
    ];
    for (mqtt, want) in rows {
        assert_eq!(mq(mqtt), want, "{mqtt:?}");
        assert_eq!(back(want).as_deref(), Ok(mqtt), "{want:?}");
    }
}

fn filters(mqtt: &str) -> (std::string::String, Option<std::string::String>) {
    let mut buf = [0u8; MQ_BUF_LEN];
    let f = to_mq_filter(mqtt, &mut buf).unwrap();
    (
        f.filter.as_str().into(),
        f.parent.map(|p| p.as_str().into()),
    )
}

#[test]
fn the_table_for_filters() {
    let rows = [
        ("a/+/c", "a.*.c", None),
        ("+", "*", None),
        ("#", ">", None),
        ("a/#", "a.>", Some("a")),
        ("+/#", "*.>", Some("*")),
        ("/#", "%.>", Some("%")),
        ("a/b.c/#", "a.b%2Ec.>", Some("a.b%2Ec")),
        ("$SYS/#", "$SYS.>", Some("$SYS")),
    ];
    for (mqtt, filter, parent) in rows {
        assert_eq!(
            filters(mqtt),
            (filter.into(), parent.map(Into::into)),
            "{mqtt}"
        );
    }
    let mq_back = [
        ("a.*.c", "a/+/c"),
        (">", "#"),
        ("a.>", "a/+/#"),
        ("*.>", "+/+/#"),
        ("%.a", "/a"),
    ];
    for (mq, mqtt) in mq_back {
        let mut buf = [0u8; MQTT_BUF_LEN];
        assert_eq!(to_mqtt_filter(Filter::new(mq).unwrap(), &mut buf), Ok(mqtt));
    }
}

#[test]
fn hash_matches_its_parent_and_the_dollar_rule_holds() {
    let mut buf = [0u8; MQ_BUF_LEN];
    let f = to_mq_filter("a/#", &mut buf).unwrap();
    for (t, want) in [
        ("a", true),
        ("a.b", true),
        ("a.b.c", true),
        ("b", false),
        ("ab", false),
    ] {
        assert_eq!(f.matches(Topic::new(t).unwrap()), want, "{t}");
    }
    let mut buf = [0u8; MQ_BUF_LEN];
    let all = to_mq_filter("#", &mut buf).unwrap();
    assert!(!all.matches(Topic::new("$SYS.x").unwrap()));
    assert!(all.matches(Topic::new("%.x").unwrap()));
    let mut buf = [0u8; MQ_BUF_LEN];
    let plus = to_mq_filter("+/x", &mut buf).unwrap();
    assert!(!plus.matches(Topic::new("$SYS.x").unwrap()));
}

#[test]
fn shared_subscriptions() {
    let f = MqttFilter::parse("$share/workers/jobs/+").unwrap();
    assert_eq!((f.share, f.filter), (Some("workers"), "jobs/+"));
    let f = MqttFilter::parse("$share/g/#").unwrap();
    assert_eq!((f.share, f.filter), (Some("g"), "#"));
    let f = MqttFilter::parse("$sharex/g/a").unwrap();
    assert_eq!((f.share, f.filter), (None, "$sharex/g/a"));
    for bad in [
        "$share/",
        "$share/g",
        "$share//a",
        "$share/g/",
        "$share/g+/a",
        "$share/#/a",
    ] {
        assert_eq!(
            MqttFilter::parse(bad),
            Err(TopicMapError::BadShare),
            "{bad}"
        );
    }
    let mut buf = [0u8; MQ_BUF_LEN];
    assert_eq!(to_mq_group("workers", &mut buf), Ok("workers"));
    let mut buf = [0u8; MQ_BUF_LEN];
    assert_eq!(to_mq_group("a.b c", &mut buf), Ok("a%2Eb%20c"));
}

#[test]
fn errors() {
    use TopicMapError as E;
    let mut buf = [0u8; MQ_BUF_LEN];
    assert_eq!(to_mq_topic("", &mut buf), Err(E::Empty));
    assert_eq!(to_mq_topic("a/+", &mut buf), Err(E::WildcardInTopic));
    assert_eq!(to_mq_topic("a/#", &mut buf), Err(E::WildcardInTopic));
    assert_eq!(to_mq_topic("a\0", &mut buf), Err(E::Nul));
    assert_eq!(to_mq_topic(&"é".repeat(50), &mut buf), Err(E::TooLong));
    assert_eq!(
        to_mq_topic(&"a/".repeat(32), &mut buf),
        Err(E::TooManyLevels)
    );
    assert!(to_mq_topic(&"a/".repeat(31), &mut buf).is_ok());
    let mut small = [0u8; 4];
    assert_eq!(to_mq_topic("abcde", &mut small), Err(E::BufferTooSmall));
    for bad in ["", "a/#/b", "a#", "a/b+", "++", "##"] {
        let want = if bad.is_empty() {
            E::Empty
        } else {
            E::BadWildcard
        };
        assert_eq!(MqttFilter::parse(bad), Err(want), "{bad}");
        assert_eq!(to_mq_filter(bad, &mut buf).map(|_| ()), Err(want), "{bad}");
    }
    // mq names without an MQTT name.
    // `%25` where the level's `%` needs no escape is not the form any MQTT
    // level maps to (found by the mqtt_topic fuzzer).
    for mq in [
        "a/b",
        "c#",
        "a+",
        "%",
        "%C3",
        "%00",
        "a.%C3%28",
        "100%25",
        "cas%2Ehare'worke%25",
    ] {
        assert_eq!(back(mq), Err(E::NoMqttName), "{mq}");
    }
    let mut buf = [0u8; MQTT_BUF_LEN];
    assert_eq!(
        to_mqtt_filter(Filter::new("a/b.*").unwrap(), &mut buf),
        Err(E::NoMqttName)
    );
}

#[test]
fn longest_names_fit_the_buffers() {
    // 255 bytes of `a.` ... becomes 255 bytes of `a/`; `>` grows by two.
    let s = "a.".repeat(31) + &"b".repeat(193);
    assert_eq!(s.len(), 255);
    assert!(back(&s).is_ok());
    let f = "*.".repeat(31) + ">";
    let mut buf = [0u8; MQTT_BUF_LEN];
    let m = to_mqtt_filter(Filter::new(&f).unwrap(), &mut buf).unwrap();
    assert_eq!(m.len(), f.len() + 2);
}
