//! Who may do what: tokens and verified identities with their topic
//! permissions, and the decision for one connection's credentials.
//!
//! A connection presents up to two credentials: a token (in `Hello`, or as an
//! MQTT password) and an identity its adapter verified before handing the
//! connection to the broker (the subject CN or a SAN of a TLS client
//! certificate; see [`Broker::accept_with_identity`](super::Broker::accept_with_identity)).
//! The broker never sees a certificate: what the identity is and that it was
//! verified is the adapter's business, what it may do is decided here.
//!
//! Permission patterns may name the connection's client id and identity:
//! `dev.{client_id}.>` or `site.{identity}.*`. A placeholder is replaced only by
//! a value that is one plain topic token (no `.`, `*`, `>`, not starting with
//! `$`); otherwise the pattern grants nothing, so a client id such as `*` or
//! `a.b` cannot widen what a rule allows.

use alloc::string::String;
use alloc::vec::Vec;

use crate::topic::{Filter, Topic};

/// What a token or an identity may do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    /// Filters of the topics the holder may publish to.
    pub publish: Vec<String>,
    /// Filters the holder may subscribe within (a subscription's filter must be
    /// covered by one of them).
    pub subscribe: Vec<String>,
    /// May list topics and sessions, read, purge and delete topics (see
    /// `broker::admin`).
    pub admin: bool,
}

impl Permissions {
    /// Everything.
    pub fn all() -> Self {
        Permissions {
            publish: alloc::vec![String::from(">")],
            subscribe: alloc::vec![String::from(">"), String::from("$dlq.>")],
            admin: true,
        }
    }

    /// May the holder publish to `topic`?
    pub fn may_publish(&self, topic: Topic<'_>) -> bool {
        self.publish.iter().any(|f| match f.as_str() {
            // Everyone's default, checked on every publish: `>` matches every
            // topic but the system ones (see `Filter::matches`).
            ">" => !topic.as_str().starts_with('$'),
            f => Filter::new(f).is_ok_and(|f| f.matches(topic)),
        })
    }

    /// May the holder subscribe with `filter`?
    pub fn may_subscribe(&self, filter: Filter<'_>) -> bool {
        self.subscribe
            .iter()
            .filter_map(|f| Filter::new(f).ok())
            .any(|allowed| covers(allowed, filter))
    }

    /// These permissions for one connection: `{client_id}` and `{identity}`
    /// in each pattern replaced by the connection's (see the module docs). A
    /// pattern whose placeholder has no safe value is left out.
    pub fn resolve(&self, client_id: &str, identity: Option<&str>) -> Permissions {
        let one = |patterns: &[String]| {
            patterns
                .iter()
                .filter_map(|p| substitute(p, client_id, identity))
                .collect()
        };
        Permissions {
            publish: one(&self.publish),
            subscribe: one(&self.subscribe),
            admin: self.admin,
        }
    }
}

const CLIENT_ID: &str = "{client_id}";
const IDENTITY: &str = "{identity}";

fn substitute(pattern: &str, client_id: &str, identity: Option<&str>) -> Option<String> {
    if !pattern.contains('{') {
        return Some(String::from(pattern));
    }
    let mut out = String::from(pattern);
    if out.contains(CLIENT_ID) {
        out = out.replace(CLIENT_ID, plain_token(client_id)?);
    }
    if out.contains(IDENTITY) {
        out = out.replace(IDENTITY, plain_token(identity?)?);
    }
    // An unknown placeholder, or braces left over, make a filter nobody means.
    if out.contains('{') || Filter::new(&out).is_err() {
        return None;
    }
    Some(out)
}

/// `value` when it is a single literal topic token.
fn plain_token(value: &str) -> Option<&str> {
    let literal = !value.is_empty()
        && !value.starts_with('$')
        && !value.contains(['.', '*', '>', '{', '}'])
        && Topic::new(value).is_ok();
    literal.then_some(value)
}

/// Whether every topic `inner` matches is also matched by `outer`.
pub fn covers(outer: Filter<'_>, inner: Filter<'_>) -> bool {
    // A leading wildcard does not reach system topics (see `Filter::matches`).
    if inner.as_str().starts_with('$') && matches!(outer.as_str().as_bytes()[0], b'*' | b'>') {
        return false;
    }
    let mut o = outer.tokens();
    let mut i = inner.tokens();
    loop {
        match (o.next(), i.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(t)) if t != ">" => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// What one connection presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// The client id of its session.
    pub client_id: &'a str,
    /// The token it sent, if any.
    pub token: Option<&'a str>,
    /// The identity its adapter verified (a TLS client certificate's), if any.
    pub identity: Option<&'a str>,
}

/// Tokens and identities with their permissions. With neither configured every
/// client may do everything; otherwise a client must present a known identity
/// or a known token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// `(token, permissions)` pairs.
    pub tokens: Vec<(String, Permissions)>,
    /// `(identity, permissions)` pairs: identities an adapter verified, such as
    /// the subject CN or a SAN of a TLS client certificate.
    pub identities: Vec<(String, Permissions)>,
}

impl Auth {
    /// No token and no identity is configured: everyone may do everything.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty() && self.identities.is_empty()
    }

    /// The permissions of a connection with `token` and no identity, before
    /// placeholders are resolved; `None` when it is not accepted.
    pub fn permissions(&self, token: Option<&str>) -> Option<Permissions> {
        if self.is_open() {
            return Some(Permissions::all());
        }
        let token = token?;
        self.tokens
            .iter()
            .find(|(t, _)| constant_time_eq(t.as_bytes(), token.as_bytes()))
            .map(|(_, p)| p.clone())
    }

    /// What a connection presenting `c` may do, its placeholders resolved;
    /// `None` when it is not accepted. A known identity decides (a client
    /// certificate is the stronger credential); else a known token; else
    /// nothing is accepted unless auth is open.
    pub fn authorize(&self, c: &Credentials<'_>) -> Option<Permissions> {
        if self.is_open() {
            return Some(Permissions::all());
        }
        let by_identity = c.identity.and_then(|id| {
            self.identities
                .iter()
                .find(|(known, _)| known == id)
                .map(|(_, p)| p)
        });
        let perms = match by_identity {
            Some(p) => p.clone(),
            None => self.permissions(c.token)?,
        };
        Some(perms.resolve(c.client_id, c.identity))
    }
}

/// Compares secrets without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn f(s: &str) -> Filter<'_> {
        Filter::new(s).unwrap()
    }

    fn t(s: &str) -> Topic<'_> {
        Topic::new(s).unwrap()
    }

    fn perms(publish: &[&str], subscribe: &[&str]) -> Permissions {
        Permissions {
            publish: publish.iter().map(|s| String::from(*s)).collect(),
            subscribe: subscribe.iter().map(|s| String::from(*s)).collect(),
            admin: false,
        }
    }

    fn creds<'a>(
        client_id: &'a str,
        token: Option<&'a str>,
        id: Option<&'a str>,
    ) -> Credentials<'a> {
        Credentials {
            client_id,
            token,
            identity: id,
        }
    }

    #[test]
    fn covering() {
        assert!(covers(f(">"), f("a.b")));
        assert!(covers(f(">"), f("a.>")));
        assert!(covers(f("a.>"), f("a.*.c")));
        assert!(covers(f("a.*"), f("a.b")));
        assert!(covers(f("a.*"), f("a.*")));
        assert!(!covers(f("a.*"), f("a.>")));
        assert!(!covers(f("a.b"), f("a.*")));
        assert!(!covers(f("a.>"), f("b.c")));
        assert!(!covers(f("a.>"), f("a")));
        assert!(!covers(f(">"), f("$dlq.>")));
        assert!(covers(f("$dlq.>"), f("$dlq.orders")));
    }

    #[test]
    fn auth_open_and_closed() {
        let open = Auth::default();
        assert!(open.permissions(None).is_some());
        assert_eq!(
            open.authorize(&creds("c", None, None)),
            Some(Permissions::all())
        );
        let closed = Auth {
            tokens: vec![(String::from("t1"), perms(&["sensors.>"], &["cmd.dev1.*"]))],
            identities: Vec::new(),
        };
        assert!(closed.permissions(None).is_none());
        assert!(closed.permissions(Some("t2")).is_none());
        let p = closed.permissions(Some("t1")).unwrap();
        assert!(p.may_publish(t("sensors.a")));
        assert!(!p.may_publish(t("cmd.a")));
        assert!(p.may_subscribe(f("cmd.dev1.reboot")));
        assert!(!p.may_subscribe(f("cmd.>")));
    }

    #[test]
    fn identity_decides_before_token() {
        let auth = Auth {
            tokens: vec![(String::from("tok"), perms(&["public.>"], &[]))],
            identities: vec![(String::from("sensor-17"), perms(&["sensors.>"], &[]))],
        };
        // Only identities configured is closed too.
        let only_ids = Auth {
            tokens: Vec::new(),
            identities: auth.identities.clone(),
        };
        assert!(!only_ids.is_open());
        assert_eq!(only_ids.authorize(&creds("c", None, None)), None);
        assert_eq!(only_ids.authorize(&creds("c", None, Some("other"))), None);

        let p = auth
            .authorize(&creds("c", Some("tok"), Some("sensor-17")))
            .unwrap();
        assert!(p.may_publish(t("sensors.a")));
        assert!(!p.may_publish(t("public.a")));
        // An unknown identity falls back to the token.
        let p = auth
            .authorize(&creds("c", Some("tok"), Some("nobody")))
            .unwrap();
        assert!(p.may_publish(t("public.a")));
        assert_eq!(
            auth.authorize(&creds("c", Some("bad"), Some("nobody"))),
            None
        );
    }

    #[test]
    fn placeholders_take_the_client_id_and_identity() {
        let auth = Auth {
            tokens: Vec::new(),
            identities: vec![(
                String::from("sensor-17"),
                perms(
                    &["dev.{client_id}.>", "site.{identity}.telemetry"],
                    &["dev.{client_id}.cmd.*", "fleet.>"],
                ),
            )],
        };
        let p = auth
            .authorize(&creds("dev42", None, Some("sensor-17")))
            .unwrap();
        assert_eq!(
            p.publish,
            vec![
                String::from("dev.dev42.>"),
                String::from("site.sensor-17.telemetry")
            ]
        );
        assert!(p.may_publish(t("dev.dev42.temp")));
        assert!(!p.may_publish(t("dev.dev43.temp")));
        assert!(p.may_subscribe(f("dev.dev42.cmd.reboot")));
        assert!(!p.may_subscribe(f("dev.dev43.cmd.reboot")));
        assert!(p.may_subscribe(f("fleet.x")));
    }

    #[test]
    fn publishing_everywhere_agrees_with_the_filter() {
        let p = perms(&[">"], &[]);
        for topic in ["a", "a.b.c", "$dlq.orders", "$x", "a.$b"] {
            let as_filter = Filter::new(">").unwrap().matches(t(topic));
            assert_eq!(p.may_publish(t(topic)), as_filter, "{topic}");
        }
        assert!(!p.may_publish(t("$dlq.orders")));
        assert!(perms(&["$dlq.>"], &[]).may_publish(t("$dlq.orders")));
    }

    #[test]
    fn a_placeholder_cannot_widen_a_rule() {
        let p = perms(
            &["dev.{client_id}.>", "keep.>", "id.{identity}", "x.{nope}"],
            &[],
        );
        for bad in ["*", ">", "a.b", "$sys", "", "a{b", "{identity}"] {
            let r = p.resolve(bad, Some("ok"));
            assert_eq!(
                r.publish,
                vec![String::from("keep.>"), String::from("id.ok")],
                "client id {bad:?}"
            );
        }
        // No identity: patterns naming it grant nothing.
        let r = p.resolve("c1", None);
        assert_eq!(
            r.publish,
            vec![String::from("dev.c1.>"), String::from("keep.>")]
        );
        assert!(!r.may_publish(t("dev.c2.x")));
    }
}
