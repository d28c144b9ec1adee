//! MQTT topic names and filters, and how they map to mq topics and filters.
//!
//! MQTT levels are separated by `/`, may be empty and may hold any text but
//! U+0000; mq tokens are separated by `.`, are never empty and are visible
//! ASCII other than `.`, `*` and `>` (see [`crate::topic`]). The mapping is:
//!
//! | MQTT | mq | |
//! | --- | --- | --- |
//! | `a/b/c` | `a.b.c` | a level is a token |
//! | `+` (a whole filter level) | `*` | one level |
//! | `a/#` | `a` and `a.>` | two filters; see below |
//! | `#` | `>` | every topic not starting with `$` |
//! | `/a`, `a//b`, `a/` | `%.a`, `a.%.b`, `a.%` | an empty level is the token `%` |
//! | `%` (a whole level) | `%25` | so it is not read as an empty level |
//! | `a.b`, `a*b`, `a>b`, `a b` | `a%2Eb`, `a%2Ab`, `a%3Eb`, `a%20b` | bytes mq forbids become `%XX` |
//! | `café` | `caf%C3%A9` | each byte of non-ASCII text, and controls, likewise |
//! | `%41`, `100%`, `%2e` | `%41`, `100%`, `%2e` | a `%` stays unless it would read as an escape… |
//! | `%2E`, `%25` | `%252E`, `%2525` | …and is `%25` where it would |
//! | `$SYS/x` | `$SYS.x` | `$` is kept: system topics stay system topics |
//! | `$share/g/a/+` | group `g`, filter `a.*` | a shared subscription is an mq group |
//!
//! **Escapes.** The escaped bytes are those mq forbids in a token (controls,
//! space, DEL, bytes of non-ASCII characters, `.`, `*`, `>`) and `%` itself; an
//! escape is `%` with two *uppercase* hex digits naming one of them. A `%` in
//! an MQTT level is escaped only where it and the next two bytes would read as
//! an escape (and when it is the whole level), so the common `100%` or `%41`
//! read the same on both sides. Mapping back decodes exactly those escapes and
//! the lone `%` token; everything else is copied. So MQTT → mq → MQTT is the
//! identity for every MQTT topic name that fits mq's limits (255 bytes, 32
//! tokens, after escaping), and an mq client sees an MQTT topic under the
//! stable name this table gives.
//!
//! **`#` also matches its parent.** MQTT's `a/#` matches `a` and everything
//! below it; mq's `a.>` matches one or more tokens after `a`, not `a`. So a
//! filter ending in `/#` maps to two mq filters, the parent `a` and `a.>`
//! ([`MqFilter::parent`]); they are disjoint, so a message matches at most one
//! of them and arrives once. `#` alone maps to `>` (every topic has a level).
//! The `$` rule agrees on both sides: a filter starting with a wildcard does
//! not match a topic starting with `$`.
//!
//! **mq names without an MQTT name.** mq → MQTT fails
//! ([`TopicMapError::NoMqttName`]) for mq topics that no MQTT topic maps to:
//! a token holding `/`, `+` or `#`, escapes that decode to invalid UTF-8 or
//! U+0000, a `%25` where a level keeps its `%` as it is (`100%25`: the level
//! `100%` maps to `100%`), or the lone topic `%` (an empty MQTT topic). mq filters map back
//! with `*` → `+` and a final `>` → `+/#` (`#` when it is the whole filter).
//!
//! **Shared subscriptions.** `$share/{group}/{filter}` ([`MqttFilter::parse`])
//! is the mq group `{group}` (escaped like a level, [`to_mq_group`]) on the
//! mapped filter; `$share/g/a/#` is the group `g` on `a` and the group `g` on
//! `a.>`.
//!
//! Every function writes into a caller buffer and allocates nothing: mq names
//! need at most [`MQ_BUF_LEN`] bytes and MQTT names mapped from mq at most
//! [`MQTT_BUF_LEN`]. A topic that fails to map answers PUBLISH with
//! [`ReasonCode::TopicNameInvalid`](super::ReasonCode::TopicNameInvalid), a
//! filter a SUBACK or UNSUBACK with
//! [`TopicFilterInvalid`](super::ReasonCode::TopicFilterInvalid).

use core::fmt;

use crate::topic::{Filter, MAX_TOPIC_LEN, Topic, TopicError};

/// The prefix of a shared subscription's filter.
pub const SHARE_PREFIX: &str = "$share/";

/// Bytes a buffer needs for any mq topic, filter or group [`to_mq_topic`],
/// [`to_mq_filter`] and [`to_mq_group`] write.
pub const MQ_BUF_LEN: usize = MAX_TOPIC_LEN;

/// Bytes a buffer needs for any MQTT name [`to_mqtt_topic`] and
/// [`to_mqtt_filter`] write.
pub const MQTT_BUF_LEN: usize = MAX_TOPIC_LEN + 2;

/// Why a topic or filter does not map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TopicMapError {
    /// The topic or filter is empty.
    Empty,
    /// A topic name contains `+` or `#`.
    WildcardInTopic,
    /// A filter has `+` or `#` inside a level, or `#` before its last level.
    BadWildcard,
    /// A `$share/` filter without a group or a filter, or with `+` or `#` in
    /// the group.
    BadShare,
    /// The text contains U+0000.
    Nul,
    /// The mq name would be longer than mq allows.
    TooLong,
    /// The mq name would have more tokens than mq allows.
    TooManyLevels,
    /// The mq name has no MQTT counterpart (see the module docs).
    NoMqttName,
    /// The output buffer is too small (see [`MQ_BUF_LEN`], [`MQTT_BUF_LEN`]).
    BufferTooSmall,
}

impl fmt::Display for TopicMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopicMapError::Empty => "empty topic or filter",
            TopicMapError::WildcardInTopic => "wildcard in a topic name",
            TopicMapError::BadWildcard => "wildcard not alone in its level, or `#` not last",
            TopicMapError::BadShare => "invalid shared subscription",
            TopicMapError::Nul => "U+0000 in a topic",
            TopicMapError::TooLong => "mq topic would be too long",
            TopicMapError::TooManyLevels => "mq topic would have too many tokens",
            TopicMapError::NoMqttName => "mq topic has no MQTT name",
            TopicMapError::BufferTooSmall => "output buffer too small",
        })
    }
}

impl core::error::Error for TopicMapError {}

/// Whether `s` may be a PUBLISH topic name as far as wildcards go (the
/// decoders check emptiness apart: MQTT 5 allows it with a topic alias).
pub(crate) fn is_topic_name(s: &str) -> bool {
    !s.contains(['+', '#'])
}

/// A SUBSCRIBE or UNSUBSCRIBE topic filter, checked and split into its
/// shared-subscription group and filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MqttFilter<'a> {
    /// The group of a `$share/{group}/{filter}` subscription.
    pub share: Option<&'a str>,
    /// The topic filter (after the group, for a shared subscription).
    pub filter: &'a str,
}

impl<'a> MqttFilter<'a> {
    /// Checks `s` as an MQTT topic filter, splitting off `$share/{group}/`.
    pub fn parse(s: &'a str) -> Result<Self, TopicMapError> {
        let (share, filter) = match s.strip_prefix(SHARE_PREFIX) {
            Some(rest) => {
                let (group, filter) = rest.split_once('/').ok_or(TopicMapError::BadShare)?;
                if group.is_empty() || filter.is_empty() || group.contains(['+', '#']) {
                    return Err(TopicMapError::BadShare);
                }
                (Some(group), filter)
            }
            None => (None, s),
        };
        check_filter(filter)?;
        if share.is_some_and(|g| g.contains('\0')) {
            return Err(TopicMapError::Nul);
        }
        Ok(MqttFilter { share, filter })
    }
}

/// Checks an MQTT topic filter (without `$share/`).
fn check_filter(filter: &str) -> Result<(), TopicMapError> {
    if filter.is_empty() {
        return Err(TopicMapError::Empty);
    }
    if filter.contains('\0') {
        return Err(TopicMapError::Nul);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        let ok = match level {
            "+" => true,
            "#" => last,
            _ => !level.contains(['+', '#']),
        };
        if !ok {
            return Err(TopicMapError::BadWildcard);
        }
    }
    Ok(())
}

/// Checks an MQTT topic name.
fn check_topic(topic: &str) -> Result<(), TopicMapError> {
    if topic.is_empty() {
        Err(TopicMapError::Empty)
    } else if !is_topic_name(topic) {
        Err(TopicMapError::WildcardInTopic)
    } else if topic.contains('\0') {
        Err(TopicMapError::Nul)
    } else {
        Ok(())
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether `b` is written as an escape in an mq token.
const fn escaped(b: u8) -> bool {
    matches!(b, 0x00..=0x20 | 0x7F..=0xFF | b'.' | b'*' | b'>' | b'%')
}

const fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The byte an escape at the front of `s` stands for, if one is there.
fn escape_at(s: &[u8]) -> Option<u8> {
    let [b'%', hi, lo, ..] = *s else { return None };
    let b = hex_digit(hi)? << 4 | hex_digit(lo)?;
    escaped(b).then_some(b)
}

/// An output buffer with a length limit.
struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
    limit: usize,
}

impl<'b> Out<'b> {
    fn new(buf: &'b mut [u8], limit: usize) -> Self {
        Out { buf, len: 0, limit }
    }

    fn push(&mut self, b: u8) -> Result<(), TopicMapError> {
        if self.len >= self.limit {
            return Err(TopicMapError::TooLong);
        }
        *self
            .buf
            .get_mut(self.len)
            .ok_or(TopicMapError::BufferTooSmall)? = b;
        self.len += 1;
        Ok(())
    }

    fn extend(&mut self, bytes: &[u8]) -> Result<(), TopicMapError> {
        bytes.iter().try_for_each(|&b| self.push(b))
    }

    fn done(self) -> &'b [u8] {
        let Out { buf, len, .. } = self;
        buf.get(..len).unwrap_or_default()
    }
}

/// Writes an MQTT level (or share name) as an mq token, a byte at a time.
fn escape_level(
    level: &[u8],
    mut emit: impl FnMut(u8) -> Result<(), TopicMapError>,
) -> Result<(), TopicMapError> {
    match level {
        [] => return emit(b'%'),
        b"%" => return b"%25".iter().try_for_each(|&b| emit(b)),
        _ => {}
    }
    for (i, &b) in level.iter().enumerate() {
        let escape = match b {
            b'%' => level.get(i..).and_then(escape_at).is_some(),
            _ => escaped(b),
        };
        if escape {
            emit(b'%')?;
            emit(HEX[usize::from(b >> 4)])?;
            emit(HEX[usize::from(b & 15)])?;
        } else {
            emit(b)?;
        }
    }
    Ok(())
}

fn push_level(level: &[u8], out: &mut Out<'_>) -> Result<(), TopicMapError> {
    escape_level(level, |b| out.push(b))
}

/// Writes an mq token as an MQTT level; refuses tokens no level maps to,
/// including those that are not the form a level maps to (`100%25`
/// decodes to `100%`, which maps to `100%`).
fn push_token(token: &[u8], out: &mut Out<'_>) -> Result<(), TopicMapError> {
    if token == b"%" {
        return Ok(());
    }
    let start = out.len;
    let mut rest = token;
    while let Some((&b, tail)) = rest.split_first() {
        if let Some(e) = escape_at(rest) {
            out.push(e)?;
            rest = rest.get(3..).unwrap_or_default();
        } else if matches!(b, b'/' | b'+' | b'#') {
            return Err(TopicMapError::NoMqttName);
        } else {
            out.push(b)?;
            rest = tail;
        }
    }
    let level = out.buf.get(start..out.len).unwrap_or_default();
    let mut expected = token.iter();
    escape_level(level, |b| match expected.next() {
        Some(&t) if t == b => Ok(()),
        _ => Err(TopicMapError::NoMqttName),
    })?;
    match expected.next() {
        None => Ok(()),
        Some(_) => Err(TopicMapError::NoMqttName),
    }
}

fn mq_error(e: TopicError) -> TopicMapError {
    match e {
        TopicError::Empty => TopicMapError::Empty,
        TopicError::TooLong => TopicMapError::TooLong,
        TopicError::TooManyTokens => TopicMapError::TooManyLevels,
        _ => TopicMapError::BadWildcard,
    }
}

fn as_str(bytes: &[u8]) -> Result<&str, TopicMapError> {
    core::str::from_utf8(bytes).map_err(|_| TopicMapError::NoMqttName)
}

/// The mq topic for an MQTT topic name.
pub fn to_mq_topic<'b>(mqtt: &str, buf: &'b mut [u8]) -> Result<Topic<'b>, TopicMapError> {
    check_topic(mqtt)?;
    let mut out = Out::new(buf, MAX_TOPIC_LEN);
    for (i, level) in mqtt.split('/').enumerate() {
        if i > 0 {
            out.push(b'.')?;
        }
        push_level(level.as_bytes(), &mut out)?;
    }
    // Only visible ASCII was written.
    Topic::new(as_str(out.done())?).map_err(mq_error)
}

/// The mq filters an MQTT topic filter maps to: one, or two for a filter
/// ending in `/#` (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MqFilter<'b> {
    /// The filter (`a.>` for `a/#`).
    pub filter: Filter<'b>,
    /// For a filter ending in `/#`, the parent level it also matches (`a`).
    pub parent: Option<Filter<'b>>,
}

impl MqFilter<'_> {
    /// Whether either filter matches `topic`: what the MQTT filter matches.
    pub fn matches(&self, topic: Topic<'_>) -> bool {
        self.filter.matches(topic) || self.parent.is_some_and(|p| p.matches(topic))
    }
}

/// The mq filter(s) for an MQTT topic filter (without `$share/`: see
/// [`MqttFilter::parse`]).
pub fn to_mq_filter<'b>(mqtt: &str, buf: &'b mut [u8]) -> Result<MqFilter<'b>, TopicMapError> {
    check_filter(mqtt)?;
    let mut out = Out::new(buf, MAX_TOPIC_LEN);
    let mut parent = None;
    for (i, level) in mqtt.split('/').enumerate() {
        if i > 0 {
            out.push(b'.')?;
        }
        match level {
            "+" => out.push(b'*')?,
            "#" => {
                if i > 0 {
                    parent = Some(out.len - 1);
                }
                out.push(b'>')?;
            }
            _ => push_level(level.as_bytes(), &mut out)?,
        }
    }
    let bytes = out.done();
    let filter = Filter::new(as_str(bytes)?).map_err(mq_error)?;
    let parent = match parent.and_then(|n| bytes.get(..n)) {
        Some(p) => Some(Filter::new(as_str(p)?).map_err(mq_error)?),
        None => None,
    };
    Ok(MqFilter { filter, parent })
}

/// The mq group name for the group of a `$share/{group}/…` subscription.
pub fn to_mq_group<'b>(share: &str, buf: &'b mut [u8]) -> Result<&'b str, TopicMapError> {
    if share.is_empty() {
        return Err(TopicMapError::BadShare);
    }
    let mut out = Out::new(buf, MAX_TOPIC_LEN);
    push_level(share.as_bytes(), &mut out)?;
    as_str(out.done())
}

/// The MQTT topic name of an mq topic, or [`TopicMapError::NoMqttName`].
pub fn to_mqtt_topic<'b>(mq: Topic<'_>, buf: &'b mut [u8]) -> Result<&'b str, TopicMapError> {
    let mut out = Out::new(buf, usize::MAX);
    for (i, token) in mq.tokens().enumerate() {
        if i > 0 {
            out.push(b'/')?;
        }
        push_token(token.as_bytes(), &mut out)?;
    }
    let s = as_str(out.done())?;
    check_topic(s).map_err(|_| TopicMapError::NoMqttName)?;
    Ok(s)
}

/// An MQTT topic filter matching what an mq filter matches, or
/// [`TopicMapError::NoMqttName`].
pub fn to_mqtt_filter<'b>(mq: Filter<'_>, buf: &'b mut [u8]) -> Result<&'b str, TopicMapError> {
    let mut out = Out::new(buf, usize::MAX);
    for (i, token) in mq.tokens().enumerate() {
        if i > 0 {
            out.push(b'/')?;
        }
        match token {
            "*" => out.push(b'+')?,
            ">" if i == 0 => out.push(b'#')?,
            ">" => out.extend(b"+/#")?,
            _ => push_token(token.as_bytes(), &mut out)?,
        }
    }
    let s = as_str(out.done())?;
    if s.is_empty() || s.contains('\0') {
        return Err(TopicMapError::NoMqttName);
    }
    Ok(s)
}
