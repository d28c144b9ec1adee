//! Property tests for topics, filters and the subscription index, against naive
//! reference implementations written here.

use mq_core::topic::{Filter, MAX_TOKENS, MAX_TOPIC_LEN, SubscriptionIndex, Topic};
use proptest::prelude::*;
use proptest::sample::{Index, select};

const TOKENS: &[&str] = &["a", "b", "c", "dd", "$s"];

fn topic_string() -> impl Strategy<Value = String> {
    prop::collection::vec(select(TOKENS), 1..6).prop_map(|t| t.join("."))
}

/// Valid filters over the same tokens plus `*`, with `>` as the last token
/// about half the time.
fn filter_string() -> impl Strategy<Value = String> {
    let token = prop_oneof![3 => select(TOKENS), 1 => Just("*")];
    (prop::collection::vec(token, 1..6), any::<bool>()).prop_map(|(mut t, tail)| {
        if tail {
            *t.last_mut().unwrap() = ">";
        }
        t.join(".")
    })
}

/// Strings likely to be near the validity boundary: separators, wildcards,
/// spaces, non-ASCII, and lengths/token counts around the limits.
fn tricky_string() -> impl Strategy<Value = String> {
    let token = select(
        &[
            "a", "$sys", "~!", "*", ">", "", "a b", "\u{e9}", "\t", "\u{7f}", "a*", ">b",
        ][..],
    );
    prop_oneof![
        any::<String>(),
        prop::collection::vec(token, 1..5).prop_map(|t| t.join(".")),
        "[ab.*>$ \t\u{e9}\u{7f}~!]{0,12}",
        "([ab*>]\\.){28,35}[ab*>]",
        "([ab]\\.){30,33}[ab]",
        "[a-z$]{250,260}",
    ]
}

/// Reference matcher: a filter ending in `>` matches topics at least as long with
/// the same leading tokens; any other filter matches topics of equal length;
/// `*` equals every token.
fn reference_matches(filter: &str, topic: &str) -> bool {
    let f: Vec<&str> = filter.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    // A wildcard in the first position never matches a `$` (system) topic.
    if t[0].starts_with('$') && (f[0] == "*" || f[0] == ">") {
        return false;
    }
    let same = |fs: &[&str]| fs.iter().zip(&t).all(|(f, t)| *f == "*" || f == t);
    match f.split_last() {
        Some((&">", head)) => t.len() > head.len() && same(head),
        _ => t.len() == f.len() && same(&f),
    }
}

/// Reference validity: the rules from the `topic` module docs, applied literally.
fn reference_valid(s: &str, filter: bool) -> bool {
    let tokens: Vec<&str> = s.split('.').collect();
    let plain = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && !b".*>".contains(&b))
    };
    let last = tokens.len() - 1;
    !s.is_empty()
        && s.len() <= MAX_TOPIC_LEN
        && tokens.len() <= MAX_TOKENS
        && tokens
            .iter()
            .enumerate()
            .all(|(i, t)| plain(t) || (filter && (*t == "*" || (*t == ">" && i == last))))
}

/// Every (filter, value) entry matching `topic`, sorted: the brute-force answer.
fn brute_force(entries: &[(String, u8)], topic: &str) -> Vec<(String, u8)> {
    let topic = Topic::new(topic).unwrap();
    let mut found: Vec<_> = entries
        .iter()
        .filter(|(f, _)| Filter::new(f).unwrap().matches(topic))
        .cloned()
        .collect();
    found.sort();
    found
}

fn indexed(index: &SubscriptionIndex<(String, u8)>, topic: &str) -> Vec<(String, u8)> {
    let mut found: Vec<_> = index
        .matches(Topic::new(topic).unwrap())
        .into_iter()
        .cloned()
        .collect();
    found.sort();
    found
}

#[derive(Debug, Clone)]
enum Op {
    Insert(String, u8),
    /// Remove an entry that is present (picked by index), if any.
    Remove(Index),
    /// Try to remove an entry that may or may not be present.
    RemoveAny(String, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (filter_string(), 0u8..3).prop_map(|(f, v)| Op::Insert(f, v)),
        2 => any::<Index>().prop_map(Op::Remove),
        1 => (filter_string(), 0u8..3).prop_map(|(f, v)| Op::RemoveAny(f, v)),
    ]
}

proptest! {
    #[test]
    fn filter_matches_agrees_with_reference(filter in filter_string(), topic in topic_string()) {
        let f = Filter::new(&filter).unwrap();
        let t = Topic::new(&topic).unwrap();
        prop_assert_eq!(f.matches(t), reference_matches(&filter, &topic));
    }

    #[test]
    fn index_agrees_with_brute_force(
        ops in prop::collection::vec(op(), 0..60),
        topics in prop::collection::vec(topic_string(), 1..12),
    ) {
        let mut index = SubscriptionIndex::new();
        let mut entries: Vec<(String, u8)> = Vec::new();
        for op in ops {
            match op {
                Op::Insert(f, v) => {
                    index.insert(Filter::new(&f).unwrap(), (f.clone(), v));
                    entries.push((f, v));
                }
                Op::Remove(i) => {
                    if !entries.is_empty() {
                        let (f, v) = entries.remove(i.index(entries.len()));
                        prop_assert!(index.remove(Filter::new(&f).unwrap(), &(f.clone(), v)));
                    }
                }
                Op::RemoveAny(f, v) => {
                    let present = entries.iter().position(|e| e.0 == f && e.1 == v);
                    let removed = index.remove(Filter::new(&f).unwrap(), &(f.clone(), v));
                    prop_assert_eq!(removed, present.is_some());
                    if let Some(at) = present {
                        entries.remove(at);
                    }
                }
            }
            prop_assert_eq!(index.len(), entries.len());
            prop_assert_eq!(index.is_empty(), entries.is_empty());
        }
        for topic in &topics {
            prop_assert_eq!(indexed(&index, topic), brute_force(&entries, topic), "topic {}", topic);
        }
        // Draining everything leaves an empty index that still answers.
        for (f, v) in entries.drain(..) {
            prop_assert!(index.remove(Filter::new(&f).unwrap(), &(f.clone(), v)));
        }
        prop_assert!(index.is_empty());
        prop_assert!(indexed(&index, &topics[0]).is_empty());
    }

    #[test]
    fn validation_agrees_with_reference(s in tricky_string()) {
        prop_assert_eq!(Topic::new(&s).is_ok(), reference_valid(&s, false), "topic {:?}", s);
        prop_assert_eq!(Filter::new(&s).is_ok(), reference_valid(&s, true), "filter {:?}", s);
    }

    #[test]
    fn every_topic_is_a_filter_matching_itself(s in tricky_string()) {
        if let Ok(t) = Topic::new(&s) {
            let f = Filter::new(&s).expect("a valid topic is a valid filter");
            prop_assert!(!f.is_wildcard());
            prop_assert!(f.matches(t));
            prop_assert!(Filter::from(t).matches(t));
            prop_assert_eq!(t.tokens().count(), s.split('.').count());
        }
        if let Ok(f) = Filter::new(&s) {
            prop_assert_eq!(Topic::new(&s).is_ok(), !f.is_wildcard());
        }
    }
}
