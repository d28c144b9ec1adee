//! Property tests of the MQTT ↔ mq topic mapping: round trips both ways, and
//! matching preserved against a reference MQTT matcher written here.

use mq_core::mqtt::topic::{
    MQ_BUF_LEN, MQTT_BUF_LEN, TopicMapError, to_mq_filter, to_mq_topic, to_mqtt_filter,
    to_mqtt_topic,
};
use mq_core::topic::{Filter, Topic};
use proptest::prelude::*;
use proptest::sample::select;

/// Characters near every edge of the mapping: separators, wildcards of both
/// sides, escapes and their pieces, space, controls, non-ASCII, `$`.
const CHARS: &[char] = &[
    'a', 'b', '.', '*', '>', '%', '2', '5', 'E', 'A', 'e', 'F', '0', ' ', '\t', '\u{7f}', 'é', '€',
    '$', '~', '/',
];

/// A level (possibly empty) over [`CHARS`] without `/`.
fn level() -> impl Strategy<Value = String> {
    prop::collection::vec(select(CHARS).prop_filter("no slash", |c| *c != '/'), 0..5)
        .prop_map(|cs| cs.into_iter().collect())
}

/// A valid MQTT topic name: levels joined by `/`, not empty.
fn mqtt_topic() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..6)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("topic names are not empty", |t| !t.is_empty())
}

/// Levels from a small set, so that filters and topics often match.
fn small_level() -> impl Strategy<Value = String> {
    select(&["a", "b", "", "$s", "a.b", "%"][..]).prop_map(String::from)
}

fn small_topic() -> impl Strategy<Value = String> {
    prop::collection::vec(small_level(), 1..5)
        .prop_map(|l| l.join("/"))
        .prop_filter("not empty", |t| !t.is_empty())
}

/// A valid MQTT filter over the small levels and `+`, ending in `#` half the
/// time.
fn small_filter() -> impl Strategy<Value = String> {
    let lvl = prop_oneof![3 => small_level(), 1 => Just("+".to_string())];
    (prop::collection::vec(lvl, 0..5), any::<bool>()).prop_filter_map(
        "filters are not empty",
        |(mut levels, hash)| {
            if hash {
                levels.push("#".into());
            }
            let f = levels.join("/");
            (!f.is_empty() && !levels.is_empty()).then_some(f)
        },
    )
}

/// MQTT's matching, as §4.7 says it.
fn mqtt_matches(filter: &str, topic: &str) -> bool {
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = topic.split('/').collect();
    if topic.starts_with('$') && matches!(f[0], "+" | "#") {
        return false;
    }
    for i in 0.. {
        match (f.get(i), t.get(i)) {
            (Some(&"#"), _) => return true,
            (Some(&"+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
    unreachable!()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mqtt_to_mq_to_mqtt_is_the_identity(topic in mqtt_topic()) {
        let mut mq = [0u8; MQ_BUF_LEN];
        match to_mq_topic(&topic, &mut mq) {
            Ok(t) => {
                let mut back = [0u8; MQTT_BUF_LEN];
                prop_assert_eq!(to_mqtt_topic(t, &mut back), Ok(topic.as_str()));
            }
            Err(e) => prop_assert!(
                matches!(e, TopicMapError::TooLong | TopicMapError::TooManyLevels),
                "{topic:?}: {e}"
            ),
        }
    }

    #[test]
    fn mq_to_mqtt_to_mq_is_the_identity_where_defined(
        tokens in prop::collection::vec("[a-z%25EA$/+#]{1,6}", 1..5)
    ) {
        let s = tokens.join(".");
        let Ok(topic) = Topic::new(&s) else { return Ok(()) };
        let mut back = [0u8; MQTT_BUF_LEN];
        if let Ok(name) = to_mqtt_topic(topic, &mut back) {
            let mut mq = [0u8; MQ_BUF_LEN];
            prop_assert_eq!(to_mq_topic(name, &mut mq).map(|t| t.as_str()), Ok(s.as_str()));
        }
    }

    #[test]
    fn matching_is_preserved(filter in small_filter(), topic in small_topic()) {
        let (mut fb, mut tb) = ([0u8; MQ_BUF_LEN], [0u8; MQ_BUF_LEN]);
        let mq_filter = to_mq_filter(&filter, &mut fb).unwrap();
        let mq_topic = to_mq_topic(&topic, &mut tb).unwrap();
        prop_assert_eq!(
            mq_filter.matches(mq_topic),
            mqtt_matches(&filter, &topic),
            "{} -> {:?} vs {} -> {}", filter, mq_filter, topic, mq_topic
        );
        // The two mq filters of a `#` filter never both match.
        if let Some(parent) = mq_filter.parent {
            prop_assert!(!(parent.matches(mq_topic) && mq_filter.filter.matches(mq_topic)));
        }
        // The mq filter maps back to an MQTT filter matching the same topics.
        let mut mb = [0u8; MQTT_BUF_LEN];
        let again = to_mqtt_filter(mq_filter.filter, &mut mb).unwrap();
        let parent_matches = mq_filter.parent.is_some_and(|p| p.matches(mq_topic));
        prop_assert_eq!(
            mqtt_matches(again, &topic) || parent_matches,
            mqtt_matches(&filter, &topic),
            "{} -> {}", filter, again
        );
    }

    #[test]
    fn never_panics_on_any_text(s in any::<String>()) {
        let (mut a, mut b) = ([0u8; MQ_BUF_LEN], [0u8; MQTT_BUF_LEN]);
        let _ = to_mq_topic(&s, &mut a);
        let _ = to_mq_filter(&s, &mut a);
        if let Ok(f) = Filter::new(&s) {
            let _ = to_mqtt_filter(f, &mut b);
        }
    }
}
