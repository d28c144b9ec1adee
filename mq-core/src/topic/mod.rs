//! Topic names and filters: validation and matching.
//!
//! A [`Topic`] names where a message is published: dot-separated tokens such as
//! `sensors.kitchen.temp`. A [`Filter`] says which topics a subscription wants; it
//! may use `*` for exactly one token and, as its last token only, `>` for one or
//! more trailing tokens (`sensors.*.temp`, `sensors.>`).
//!
//! Both types borrow the validated string (typically a slice of a receive buffer);
//! validating and matching never allocate. With the `alloc` feature,
//! `SubscriptionIndex` finds every filter matching a topic without scanning all
//! of them.
//!
//! Rules shared by topics and filters: at most [`MAX_TOPIC_LEN`] bytes and
//! [`MAX_TOKENS`] tokens; tokens are non-empty and made of visible ASCII
//! (`0x21..=0x7E`) other than `.`, `*` and `>`. `$` is allowed and is how system
//! topics (`$dlq.orders`) are named.

use core::fmt;

#[cfg(feature = "alloc")]
mod index;
#[cfg(feature = "alloc")]
mod plain;
#[cfg(feature = "alloc")]
pub use index::SubscriptionIndex;

/// The longest topic or filter, in bytes.
pub const MAX_TOPIC_LEN: usize = 255;

/// The most tokens a topic or filter may have.
pub const MAX_TOKENS: usize = 32;

/// Why a string is not a valid [`Topic`] or [`Filter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TopicError {
    /// The string is empty.
    Empty,
    /// The string is longer than [`MAX_TOPIC_LEN`] bytes.
    TooLong,
    /// The string has more than [`MAX_TOKENS`] tokens.
    TooManyTokens,
    /// A token is empty: a leading, trailing or doubled `.`.
    EmptyToken,
    /// The byte at offset `at` is not allowed (control, space, non-ASCII).
    BadChar {
        /// Byte offset of the offending byte.
        at: usize,
    },
    /// A topic contains `*` or `>`; only filters may.
    WildcardInTopic,
    /// A filter has `*` or `>` as part of a longer token (`a*`, `>b`).
    WildcardInsideToken,
    /// A filter has `>` before its last token.
    TailNotLast,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::Empty => f.write_str("topic is empty"),
            TopicError::TooLong => write!(f, "topic is longer than {MAX_TOPIC_LEN} bytes"),
            TopicError::TooManyTokens => write!(f, "topic has more than {MAX_TOKENS} tokens"),
            TopicError::EmptyToken => f.write_str("topic has an empty token"),
            TopicError::BadChar { at } => write!(f, "topic has a disallowed byte at offset {at}"),
            TopicError::WildcardInTopic => f.write_str("wildcard in a topic name"),
            TopicError::WildcardInsideToken => {
                f.write_str("wildcard must be a whole token in a filter")
            }
            TopicError::TailNotLast => f.write_str("`>` must be the last token of a filter"),
        }
    }
}

impl core::error::Error for TopicError {}

/// Whether `c` may appear anywhere in a token: visible ASCII but `.`, `*`
/// and `>`.
const fn is_plain(c: u8) -> bool {
    matches!(c, 0x21..=0x7E) && !matches!(c, b'.' | b'*' | b'>')
}

/// [`is_plain`] for every byte: hosts look bytes up in it (the check runs on
/// every publish and delivery).
#[cfg(feature = "alloc")]
const PLAIN: [bool; 256] = {
    let mut plain = [false; 256];
    let mut b = 0;
    while b < 256 {
        plain[b] = is_plain(b as u8);
        b += 1;
    }
    plain
};

/// [`is_plain`]: through the table on hosts; on devices by comparing, which
/// takes less flash than the table's 256 bytes.
const fn plain(c: u8) -> bool {
    #[cfg(feature = "alloc")]
    let plain = PLAIN[c as usize];
    #[cfg(not(feature = "alloc"))]
    let plain = is_plain(c);
    plain
}

/// `b[i]`, or 0 (never valid in a name) past the end: without a panicking
/// path, which indexing keeps where the compiler cannot see the bound.
const fn byte(b: &[u8], i: usize) -> u8 {
    match b.split_at_checked(i) {
        Some((_, [c, ..])) => *c,
        _ => 0,
    }
}

/// Checks `s` as a topic (`filter == false`) or a filter (`filter == true`).
/// Runs on every publish and delivery: the plain bytes of a token are skipped
/// through a table (on hosts), the rest is looked at one by one.
const fn validate(s: &str, filter: bool) -> Result<(), TopicError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(TopicError::Empty);
    }
    if b.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong);
    }
    let mut tokens = 0;
    let mut start = 0;
    let mut after_tail = false;
    let mut i = 0;
    loop {
        // `byte` is 0 past the end, which is not plain.
        while plain(byte(b, i)) {
            i += 1;
        }
        if i < b.len() && byte(b, i) != b'.' {
            match byte(b, i) {
                b'*' | b'>' => {
                    if !filter {
                        return Err(TopicError::WildcardInTopic);
                    }
                    let alone = (i == start) && (i + 1 == b.len() || byte(b, i + 1) == b'.');
                    if !alone {
                        return Err(TopicError::WildcardInsideToken);
                    }
                }
                _ => return Err(TopicError::BadChar { at: i }),
            }
            i += 1;
            continue;
        }
        // A token ends at `i`.
        if i == start {
            return Err(TopicError::EmptyToken);
        }
        if after_tail {
            return Err(TopicError::TailNotLast);
        }
        tokens += 1;
        if tokens > MAX_TOKENS {
            return Err(TopicError::TooManyTokens);
        }
        if i - start == 1 && byte(b, start) == b'>' {
            after_tail = true;
        }
        if i == b.len() {
            return Ok(());
        }
        i += 1;
        start = i;
    }
}

/// A validated topic name: where a message is published. Never contains wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Topic<'a>(&'a str);

impl<'a> Topic<'a> {
    /// Validates `s` as a topic name.
    pub const fn new(s: &'a str) -> Result<Self, TopicError> {
        #[cfg(feature = "alloc")]
        if plain::plainly_valid(s.as_bytes()) {
            return Ok(Topic(s));
        }
        match validate(s, false) {
            Ok(()) => Ok(Topic(s)),
            Err(e) => Err(e),
        }
    }

    /// A name validated as a topic before (checked again in debug builds
    /// only): the broker's table of topics holds only validated names, so a
    /// publish to one of them is not validated again.
    #[cfg(feature = "alloc")]
    pub(crate) fn known(s: &'a str) -> Self {
        debug_assert!(validate(s, false).is_ok(), "{s:?} is not a valid topic");
        Topic(s)
    }

    /// The topic as it was given.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// The topic's tokens, in order (at least one).
    pub fn tokens(&self) -> impl Iterator<Item = &'a str> + Clone + 'a {
        self.0.split('.')
    }
}

impl fmt::Display for Topic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A validated subscription filter: a topic pattern where `*` matches exactly one
/// token and a final `>` matches one or more trailing tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Filter<'a>(&'a str);

impl<'a> Filter<'a> {
    /// Validates `s` as a filter.
    pub const fn new(s: &'a str) -> Result<Self, TopicError> {
        match validate(s, true) {
            Ok(()) => Ok(Filter(s)),
            Err(e) => Err(e),
        }
    }

    /// The filter as it was given.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// The filter's tokens, in order (at least one); wildcards are the tokens `"*"`
    /// and `">"`.
    pub fn tokens(&self) -> impl Iterator<Item = &'a str> + Clone + 'a {
        self.0.split('.')
    }

    /// Whether the filter has a `*` or `>` token (and so may match more than one
    /// topic).
    pub fn is_wildcard(&self) -> bool {
        // Validation guarantees these bytes only occur as whole wildcard tokens.
        self.0.bytes().any(|b| b == b'*' || b == b'>')
    }

    /// Whether `topic` is one of the topics this filter selects.
    ///
    /// A wildcard in the first position does not match a system topic (one whose
    /// first token starts with `$`, such as the dead-letter topics `$dlq.…`): `>`
    /// alone does not receive dead letters, `$dlq.>` does.
    pub fn matches(&self, topic: Topic<'_>) -> bool {
        let mut filter_tokens = self.tokens();
        let mut topic_tokens = topic.tokens();
        if topic.as_str().starts_with('$') && matches!(self.0.as_bytes()[0], b'*' | b'>') {
            return false;
        }
        loop {
            match (filter_tokens.next(), topic_tokens.next()) {
                (None, None) => return true,
                (Some(">"), Some(_)) => return true,
                (Some("*"), Some(_)) => {}
                (Some(f), Some(t)) if f == t => {}
                _ => return false,
            }
        }
    }
}

impl<'a> From<Topic<'a>> for Filter<'a> {
    /// The filter that matches exactly this topic.
    fn from(topic: Topic<'a>) -> Self {
        Filter(topic.0)
    }
}

impl fmt::Display for Filter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_bytes_are_visible_ascii_but_separators_and_wildcards() {
        for c in 0..=255u8 {
            let expected = c.is_ascii_graphic() && !b".*>".contains(&c);
            assert_eq!((plain(c), is_plain(c)), (expected, expected), "{c:#x}");
        }
    }

    fn topic(s: &str) -> Topic<'_> {
        Topic::new(s).unwrap()
    }

    fn filter(s: &str) -> Filter<'_> {
        Filter::new(s).unwrap()
    }

    #[test]
    fn valid_topics() {
        for s in [
            "a",
            "sensors.kitchen.temp",
            "$dlq.orders",
            "A-Z_0~9!#",
            "x.y.z",
        ] {
            assert_eq!(Topic::new(s).map(|t| t.as_str()), Ok(s), "{s}");
        }
    }

    #[test]
    fn topic_errors() {
        use TopicError::*;
        let cases = [
            ("", Empty),
            (".", EmptyToken),
            (".a", EmptyToken),
            ("a.", EmptyToken),
            ("a..b", EmptyToken),
            ("a b", BadChar { at: 1 }),
            ("a.\tb", BadChar { at: 2 }),
            ("caf\u{e9}", BadChar { at: 3 }),
            ("a\u{7f}", BadChar { at: 1 }),
            ("a.*", WildcardInTopic),
            ("a.>", WildcardInTopic),
            ("a*b", WildcardInTopic),
        ];
        for (s, e) in cases {
            assert_eq!(Topic::new(s), Err(e), "{s:?}");
        }
    }

    /// `n` tokens `t` joined by dots, in `buf`.
    fn dotted(buf: &mut [u8; 128], n: usize, token: u8) -> &str {
        for (i, b) in buf.iter_mut().enumerate().take(2 * n - 1) {
            *b = if i % 2 == 0 { token } else { b'.' };
        }
        core::str::from_utf8(&buf[..2 * n - 1]).unwrap()
    }

    #[test]
    fn length_and_token_limits() {
        let bytes = [b'a'; MAX_TOPIC_LEN + 1];
        let long = core::str::from_utf8(&bytes[..MAX_TOPIC_LEN]).unwrap();
        assert!(Topic::new(long).is_ok());
        let too_long = core::str::from_utf8(&bytes).unwrap();
        assert_eq!(Topic::new(too_long), Err(TopicError::TooLong));
        assert_eq!(Filter::new(too_long), Err(TopicError::TooLong));

        let mut buf = [0; 128];
        let max = dotted(&mut buf, MAX_TOKENS, b't');
        assert_eq!(Topic::new(max).unwrap().tokens().count(), MAX_TOKENS);
        let over = dotted(&mut buf, MAX_TOKENS + 1, b't');
        assert_eq!(Topic::new(over), Err(TopicError::TooManyTokens));
        let over = dotted(&mut buf, MAX_TOKENS + 1, b'*');
        assert_eq!(Filter::new(over), Err(TopicError::TooManyTokens));
    }

    #[test]
    fn filter_validation() {
        use TopicError::*;
        for s in ["*", ">", "a.*", "*.b", "a.>", "*.*.>", "$dlq.>", "a.b"] {
            assert!(Filter::new(s).is_ok(), "{s}");
        }
        let cases = [
            ("", Empty),
            ("a..>", EmptyToken),
            ("a.>.", EmptyToken),
            ("a*", WildcardInsideToken),
            ("*a", WildcardInsideToken),
            ("a.**", WildcardInsideToken),
            ("a.>>", WildcardInsideToken),
            ("a.b>", WildcardInsideToken),
            (">.a", TailNotLast),
            ("a.>.*", TailNotLast),
            ("a.>.>", TailNotLast),
            ("a.*. ", BadChar { at: 4 }),
        ];
        for (s, e) in cases {
            assert_eq!(Filter::new(s), Err(e), "{s:?}");
        }
    }

    #[test]
    fn const_construction() {
        const T: Topic<'static> = match Topic::new("$dlq.orders") {
            Ok(t) => t,
            Err(_) => panic!(),
        };
        assert_eq!(
            T.tokens().collect::<heapless::Vec<_, 2>>(),
            ["$dlq", "orders"]
        );
    }

    #[test]
    fn is_wildcard() {
        assert!(!filter("a.b").is_wildcard());
        assert!(filter("a.*").is_wildcard());
        assert!(filter(">").is_wildcard());
    }

    #[test]
    fn matching() {
        let cases = [
            ("a.b.c", "a.b.c", true),
            ("a.b.c", "a.b", false),
            ("a.b", "a.b.c", false),
            ("a.b.c", "a.b.d", false),
            ("a.*.c", "a.x.c", true),
            ("a.*.c", "a.c", false),
            ("a.*.c", "a.x.y.c", false),
            ("*", "a", true),
            ("*", "a.b", false),
            ("*.*", "a.b", true),
            ("a.>", "a.b", true),
            ("a.>", "a.b.c.d", true),
            ("a.>", "a", false),
            ("a.>", "b.c", false),
            (">", "a", true),
            (">", "a.b.c", true),
            ("*.>", "a", false),
            ("*.>", "a.b", true),
            ("a.*.>", "a.b.c", true),
            ("a.*.>", "a.b", false),
            ("ab", "a", false),
            ("a", "ab", false),
            (">", "$dlq.orders", false),
            ("*.orders", "$dlq.orders", false),
            ("$dlq.>", "$dlq.orders", true),
            ("$dlq.*", "$dlq.orders", true),
            ("a.>", "a.$x", true),
        ];
        for (f, t, want) in cases {
            assert_eq!(filter(f).matches(topic(t)), want, "{f} vs {t}");
        }
    }

    #[test]
    fn topic_as_filter_matches_itself() {
        let t = topic("sensors.kitchen.temp");
        let f = Filter::from(t);
        assert_eq!(f.as_str(), t.as_str());
        assert!(!f.is_wildcard());
        assert!(f.matches(t));
    }

    /// The rules as the module docs state them, token by token: the model the
    /// table-driven validator must agree with, error for error (the first
    /// fault from the left wins; a token's bytes are looked at before the
    /// token itself).
    fn by_the_rules(s: &str, filter: bool) -> Result<(), TopicError> {
        if s.is_empty() {
            return Err(TopicError::Empty);
        }
        if s.len() > MAX_TOPIC_LEN {
            return Err(TopicError::TooLong);
        }
        let mut offset = 0;
        let mut previous: Option<&str> = None;
        for (n, token) in s.split('.').enumerate() {
            for (at, c) in token.bytes().enumerate() {
                let wildcard = c == b'*' || c == b'>';
                if wildcard && !filter {
                    return Err(TopicError::WildcardInTopic);
                }
                if wildcard && token.len() != 1 {
                    return Err(TopicError::WildcardInsideToken);
                }
                if !c.is_ascii_graphic() {
                    return Err(TopicError::BadChar { at: offset + at });
                }
            }
            if token.is_empty() {
                return Err(TopicError::EmptyToken);
            }
            if previous == Some(">") {
                return Err(TopicError::TailNotLast);
            }
            if n + 1 > MAX_TOKENS {
                return Err(TopicError::TooManyTokens);
            }
            previous = Some(token);
            offset += token.len() + 1;
        }
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn validation_agrees_with_the_rules(
            s in "[a$.*> \u{e9}]{0,40}",
            filter in proptest::prelude::any::<bool>(),
        ) {
            proptest::prop_assert_eq!(validate(&s, filter), by_the_rules(&s, filter));
        }

        #[test]
        fn validation_agrees_on_long_and_many_tokens(
            token in "[a*]{1,3}",
            n in 1usize..140,
        ) {
            let s = alloc_free_join(&token, n);
            for filter in [false, true] {
                proptest::prop_assert_eq!(validate(&s, filter), by_the_rules(&s, filter));
            }
        }
    }

    /// `n` copies of `token` joined by dots (at most `MAX_TOPIC_LEN` + 5 bytes).
    fn alloc_free_join(token: &str, n: usize) -> heapless::String<{ MAX_TOPIC_LEN + 8 }> {
        let mut s = heapless::String::new();
        for i in 0..n {
            if i > 0 && s.push('.').is_err() {
                break;
            }
            if s.push_str(token).is_err() {
                break;
            }
        }
        s
    }

    #[test]
    fn error_is_small_and_displays() {
        use core::fmt::Write;
        assert!(core::mem::size_of::<TopicError>() <= 2 * core::mem::size_of::<usize>());
        let mut s = heapless::String::<64>::new();
        write!(s, "{}", TopicError::BadChar { at: 7 }).unwrap();
        assert_eq!(s, "topic has a disallowed byte at offset 7");
    }
}
