//! The subscription index: which filters match a topic, without scanning them all.
//!
//! A trie keyed by token. Each node has its literal children, a separate `*`
//! child, the values of filters that end at the node, and the values of filters
//! that end at the node with `>`. Matching a topic walks the literal and `*`
//! branches token by token, so its cost depends on the topic's length and on how
//! many wildcard branches it meets, not on the number of filters.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{Filter, Topic};

/// Every subscription filter in a broker (or node), each with a value `V` (a
/// subscription id, a connection, ...), indexed so that the filters matching a
/// topic are found without looking at the others.
///
/// The index is a multimap: the same value may be inserted twice under one filter
/// and is then reported twice and must be removed twice.
#[derive(Debug, Clone)]
pub struct SubscriptionIndex<V> {
    root: Node<V>,
    len: usize,
    /// Counts changes: see [`generation`](SubscriptionIndex::generation).
    generation: u64,
}

#[derive(Debug, Clone)]
struct Node<V> {
    /// Children by literal token. `Box<str>: Borrow<str>`, so lookups by `&str`
    /// do not allocate.
    children: BTreeMap<Box<str>, Node<V>>,
    /// The child for a `*` token.
    star: Option<Box<Node<V>>>,
    /// Values of filters that end at this node.
    values: Vec<V>,
    /// Values of filters that end at this node with `>`: they match any topic
    /// with at least one more token.
    tail: Vec<V>,
}

impl<V> Node<V> {
    const fn new() -> Self {
        Node {
            children: BTreeMap::new(),
            star: None,
            values: Vec::new(),
            tail: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.values.is_empty()
            && self.tail.is_empty()
            && self.star.is_none()
            && self.children.is_empty()
    }

    /// Calls `f` for the values of every filter below this node that matches the
    /// remaining (non-empty) topic `rest`.
    fn walk<'s>(&'s self, rest: &str, f: &mut impl FnMut(&'s V)) {
        let (token, after) = match rest.split_once('.') {
            Some((token, after)) => (token, Some(after)),
            None => (rest, None),
        };
        self.tail.iter().for_each(&mut *f);
        if let Some(child) = self.children.get(token) {
            child.visit(after, f);
        }
        if let Some(star) = &self.star {
            star.visit(after, f);
        }
    }

    /// This node was reached by consuming a token; `rest` is what is left of the
    /// topic.
    fn visit<'s>(&'s self, rest: Option<&str>, f: &mut impl FnMut(&'s V)) {
        match rest {
            None => self.values.iter().for_each(f),
            Some(rest) => self.walk(rest, f),
        }
    }

    /// Removes one `value` under the filter `tokens`, pruning nodes left empty
    /// below this one.
    fn remove<'f>(&mut self, mut tokens: impl Iterator<Item = &'f str>, value: &V) -> bool
    where
        V: PartialEq,
    {
        match tokens.next() {
            None => remove_one(&mut self.values, value),
            Some(">") => remove_one(&mut self.tail, value),
            Some("*") => {
                let Some(star) = self.star.as_mut() else {
                    return false;
                };
                let removed = star.remove(tokens, value);
                if removed && star.is_empty() {
                    self.star = None;
                }
                removed
            }
            Some(token) => {
                let Some(child) = self.children.get_mut(token) else {
                    return false;
                };
                let removed = child.remove(tokens, value);
                if removed && child.is_empty() {
                    self.children.remove(token);
                }
                removed
            }
        }
    }

    #[cfg(test)]
    fn count_nodes(&self) -> usize {
        1 + self.star.as_ref().map_or(0, |s| s.count_nodes())
            + self.children.values().map(Node::count_nodes).sum::<usize>()
    }
}

/// Removes the first `value` from `values` (keeping the others in order) and
/// frees the buffer when it empties.
fn remove_one<V: PartialEq>(values: &mut Vec<V>, value: &V) -> bool {
    let Some(at) = values.iter().position(|v| v == value) else {
        return false;
    };
    values.remove(at);
    if values.is_empty() {
        *values = Vec::new();
    }
    true
}

impl<V> SubscriptionIndex<V> {
    /// An empty index.
    pub const fn new() -> Self {
        SubscriptionIndex {
            root: Node::new(),
            len: 0,
            generation: 0,
        }
    }

    /// The number of (filter, value) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the index has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A number that changes whenever an entry is added or removed: what
    /// [`for_each_match`](Self::for_each_match) reported for a topic still
    /// holds while it stays the same, so callers may keep the result.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Adds `value` under `filter`. An entry that is already present is added
    /// again.
    pub fn insert(&mut self, filter: Filter<'_>, value: V) {
        self.generation += 1;
        let mut node = &mut self.root;
        for token in filter.tokens() {
            node = match token {
                ">" => {
                    // Validation makes `>` the last token.
                    node.tail.push(value);
                    self.len += 1;
                    return;
                }
                "*" => node.star.get_or_insert_with(|| Box::new(Node::new())),
                token => {
                    if !node.children.contains_key(token) {
                        node.children.insert(token.into(), Node::new());
                    }
                    node.children
                        .get_mut(token)
                        .expect("child was just inserted")
                }
            };
        }
        node.values.push(value);
        self.len += 1;
    }

    /// Removes one entry equal to `value` under `filter`; returns whether there
    /// was one. Nodes left without entries are freed.
    pub fn remove(&mut self, filter: Filter<'_>, value: &V) -> bool
    where
        V: PartialEq,
    {
        let removed = self.root.remove(filter.tokens(), value);
        if removed {
            self.len -= 1;
            self.generation += 1;
        }
        removed
    }

    /// Calls `f` once for every entry whose filter matches `topic` (an entry
    /// inserted twice is reported twice). Does not allocate; the order is
    /// unspecified.
    pub fn for_each_match<'s>(&'s self, topic: Topic<'_>, mut f: impl FnMut(&'s V)) {
        let topic = topic.as_str();
        if topic.starts_with('$') {
            // System topics: leading wildcards do not match (see `Filter::matches`).
            let (token, after) = match topic.split_once('.') {
                Some((token, after)) => (token, Some(after)),
                None => (topic, None),
            };
            if let Some(child) = self.root.children.get(token) {
                child.visit(after, &mut f);
            }
        } else {
            self.root.walk(topic, &mut f);
        }
    }

    /// The values of every entry whose filter matches `topic`, as
    /// [`for_each_match`](Self::for_each_match) reports them.
    pub fn matches(&self, topic: Topic<'_>) -> Vec<&V> {
        let mut found = Vec::new();
        self.for_each_match(topic, |v| found.push(v));
        found
    }
}

impl<V> Default for SubscriptionIndex<V> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn filter(s: &str) -> Filter<'_> {
        Filter::new(s).unwrap()
    }

    fn sorted_matches(index: &SubscriptionIndex<u32>, topic: &str) -> Vec<u32> {
        let mut found: Vec<u32> = index
            .matches(Topic::new(topic).unwrap())
            .into_iter()
            .copied()
            .collect();
        found.sort_unstable();
        found
    }

    #[test]
    fn finds_exact_star_and_tail_filters() {
        let mut index = SubscriptionIndex::new();
        index.insert(filter("a.b.c"), 1);
        index.insert(filter("a.*.c"), 2);
        index.insert(filter("a.>"), 3);
        index.insert(filter(">"), 4);
        index.insert(filter("*.b"), 5);
        index.insert(filter("a.b"), 6);
        index.insert(filter("a.b.>"), 7);
        assert_eq!(index.len(), 7);

        assert_eq!(sorted_matches(&index, "a.b.c"), [1, 2, 3, 4, 7]);
        assert_eq!(sorted_matches(&index, "a.b"), [3, 4, 5, 6]);
        assert_eq!(sorted_matches(&index, "a"), [4]);
        assert_eq!(sorted_matches(&index, "x.y.z"), [4]);
        assert_eq!(sorted_matches(&index, "a.x.c.d"), [3, 4]);
    }

    #[test]
    fn duplicates_are_reported_and_removed_one_at_a_time() {
        let mut index = SubscriptionIndex::new();
        index.insert(filter("a.*"), 9);
        index.insert(filter("a.*"), 9);
        assert_eq!(sorted_matches(&index, "a.b"), [9, 9]);
        assert!(index.remove(filter("a.*"), &9));
        assert_eq!(sorted_matches(&index, "a.b"), [9]);
        assert!(index.remove(filter("a.*"), &9));
        assert!(!index.remove(filter("a.*"), &9));
        assert!(index.is_empty());
    }

    #[test]
    fn remove_needs_the_same_filter_and_value() {
        let mut index = SubscriptionIndex::new();
        index.insert(filter("a.b"), 1);
        index.insert(filter("a.>"), 2);
        assert!(!index.remove(filter("a.b"), &2));
        assert!(!index.remove(filter("a.*"), &1));
        assert!(!index.remove(filter("a.b.c"), &1));
        assert!(!index.remove(filter("a"), &1));
        assert!(!index.remove(filter("a.b.>"), &1));
        assert_eq!(index.len(), 2);
        assert!(index.remove(filter("a.>"), &2));
        assert_eq!(sorted_matches(&index, "a.b"), [1]);
    }

    #[test]
    fn removal_prunes_empty_nodes() {
        let mut index = SubscriptionIndex::new();
        let filters = ["a.b.c.d", "a.*.c", "a.b.>", "*.*.*", "x", ">"];
        for _ in 0..3 {
            for (i, f) in filters.iter().enumerate() {
                index.insert(filter(f), i);
            }
            assert!(index.root.count_nodes() > 1);
            for (i, f) in filters.iter().enumerate().rev() {
                assert!(index.remove(filter(f), &i));
            }
            assert!(index.is_empty());
            assert!(index.root.is_empty());
            assert_eq!(index.root.count_nodes(), 1);
        }
    }

    #[test]
    fn removal_keeps_shared_prefixes() {
        let mut index = SubscriptionIndex::new();
        index.insert(filter("a.b.c"), 1);
        index.insert(filter("a.b"), 2);
        assert!(index.remove(filter("a.b.c"), &1));
        assert_eq!(sorted_matches(&index, "a.b"), [2]);
        assert_eq!(index.root.count_nodes(), 3);
    }

    #[test]
    fn generation_changes_with_every_entry_added_or_removed() {
        let mut index = SubscriptionIndex::new();
        let g0 = index.generation();
        index.insert(filter("a.>"), 1);
        let g1 = index.generation();
        assert_ne!(g0, g1);
        // Matching and failed removals change nothing.
        let _ = sorted_matches(&index, "a.b");
        assert!(!index.remove(filter("a.b"), &1));
        assert_eq!(index.generation(), g1);
        assert!(index.remove(filter("a.>"), &1));
        assert_ne!(index.generation(), g1);
        assert_ne!(index.generation(), g0);
    }

    #[test]
    fn matches_borrow_the_index() {
        let mut index = SubscriptionIndex::new();
        index.insert(filter("a"), vec![1u8]);
        let found: Vec<&Vec<u8>> = index.matches(Topic::new("a").unwrap());
        assert_eq!(found, [&vec![1u8]]);
    }
}
