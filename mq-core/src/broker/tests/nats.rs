//! NATS connections: the harness's NATS side (text typed in, text read
//! back), and the rules of one connection: what a person at a terminal
//! sees, verbose mode, errors worded as nats-server words them, limits,
//! authorization, subscriptions, queue groups, `UNSUB max` and keepalive.

use alloc::string::String;
use alloc::vec::Vec;

use super::*;

impl H {
    /// A NATS connection, accepted; its `INFO` is read and checked.
    pub(super) fn naccept(&mut self) -> ConnId {
        let c = self.b.accept(self.now, Protocol::Nats).unwrap();
        self.mqtt.insert(c, Vec::new());
        self.drain();
        let info = self.ntake(c);
        assert!(
            info.starts_with("INFO {") && info.ends_with("}\r\n"),
            "{info}"
        );
        c
    }

    /// A NATS client that sent `CONNECT` with `json` (and got no answer:
    /// `json` should turn verbose off).
    pub(super) fn nconnect(&mut self, json: &str) -> ConnId {
        let c = self.naccept();
        self.ntype(c, &alloc::format!("CONNECT {json}\r\n"));
        assert_eq!(self.ntake(c), "");
        c
    }

    /// Sends text as typed (all of it must be consumed).
    pub(super) fn ntype(&mut self, c: ConnId, text: &str) {
        self.send_raw(c, text.as_bytes());
    }

    /// What the broker wrote to `c` since the last call, as text.
    pub(super) fn ntake(&mut self, c: ConnId) -> String {
        let raw = self.mqtt.get_mut(&c).expect("a NATS connection");
        String::from_utf8(core::mem::take(raw)).expect("text")
    }
}

pub(super) const QUIET: &str = r#"{"verbose":false}"#;

#[test]
fn a_person_with_telnet() {
    let mut h = H::new(Config::default());
    let c = h.b.accept(h.now, Protocol::Nats).unwrap();
    h.mqtt.insert(c, Vec::new());
    h.drain();
    let info = h.ntake(c);
    assert!(info.contains("\"max_payload\":1048576"), "{info}");
    assert!(info.contains("\"headers\":true"), "{info}");
    // No CONNECT: nats-server's defaults (verbose) apply.
    h.ntype(c, "PUB orders 5\r\nhello\r\n");
    assert_eq!(h.ntake(c), "+OK\r\n");
    h.ntype(c, "SUB orders 1\r\n");
    assert_eq!(h.ntake(c), "+OK\r\n");
    h.ntype(c, "PUB orders 5\r\nhello\r\n");
    assert_eq!(h.ntake(c), "+OK\r\nMSG orders 1 5\r\nhello\r\n");
    h.ntype(c, "ping\r\n");
    assert_eq!(h.ntake(c), "PONG\r\n");
    assert_eq!(h.b.stats().current_nats_connections, 1);
    assert_eq!(h.b.stats().nats_connections_total, 1);
}

#[test]
fn a_line_typed_in_pieces() {
    let mut h = H::new(Config::default());
    let c = h.nconnect(QUIET);
    h.ntype(c, "SUB a 1\r\n");
    let whole = b"PUB a 5\r\nhello\r\n";
    let mut held = Vec::new();
    for &b in whole {
        held.push(b);
        let n = h.b.handle_input(c, h.now, &held);
        held.drain(..n);
        h.drain();
    }
    assert!(held.is_empty());
    assert_eq!(h.ntake(c), "MSG a 1 5\r\nhello\r\n");
}

#[test]
fn verbose_answers_in_the_order_caused() {
    let mut h = H::new(Config::default());
    let c = h.naccept();
    // CONNECT {} keeps verbose on, as nats-server does.
    h.ntype(c, "CONNECT {}\r\nSUB a 1\r\nPING\r\nPUB a 1\r\nx\r\n");
    assert_eq!(
        h.ntake(c),
        "+OK\r\n+OK\r\nPONG\r\n+OK\r\nMSG a 1 1\r\nx\r\n"
    );
    h.ntype(c, "UNSUB 1\r\nPUB a 1\r\ny\r\n");
    assert_eq!(h.ntake(c), "+OK\r\n+OK\r\n");
}

#[test]
fn a_malformed_line_ends_that_connection_only() {
    let mut h = H::new(Config::default());
    let other = h.nconnect(QUIET);
    h.ntype(other, "SUB a 1\r\n");
    for (typed, said) in [
        ("FOO bar\r\n", "-ERR 'Unknown Protocol Operation'\r\n"),
        (
            "PUB a 3\r\nhelloo\r\n",
            "-ERR 'Unknown Protocol Operation'\r\n",
        ),
        (
            "MSG a 1 1\r\nx\r\n",
            "-ERR 'Unknown Protocol Operation'\r\n",
        ),
        (
            "PUB a b c d\r\n",
            "-ERR 'Invalid Arguments: PUB <subject> [reply] <size>'\r\n",
        ),
        (
            "CONNECT {bad\r\n",
            "-ERR 'Invalid CONNECT: not a JSON object with fields of the right types'\r\n",
        ),
    ] {
        let c = h.nconnect(QUIET);
        h.ntype(c, typed);
        assert_eq!(h.ntake(c), said, "after {typed:?}");
        assert!(h.closed.contains(&c), "closed after {typed:?}");
        // Everyone else is still served.
        h.ntype(other, "PUB a 2\r\nok\r\n");
        assert_eq!(h.ntake(other), "MSG a 1 2\r\nok\r\n");
    }
    assert!(h.b.stats().protocol_errors >= 5);
}

#[test]
fn max_payload_is_enforced_before_the_payload() {
    let mut cfg = Config::default();
    cfg.limits.max_frame = 1024;
    let mut h = H::new(cfg);
    let c = h.b.accept(h.now, Protocol::Nats).unwrap();
    h.mqtt.insert(c, Vec::new());
    h.drain();
    assert!(h.ntake(c).contains("\"max_payload\":1024"));
    // At the limit: accepted (the payload is awaited).
    let at = b"CONNECT {\"verbose\":false}\r\nPUB a 1024\r\n";
    assert_eq!(h.b.handle_input(c, h.now, at), at.len() - 12);
    h.drain();
    assert_eq!(h.ntake(c), "");
    let c = h.nconnect(QUIET);
    h.ntype(c, "PUB a 1025\r\n");
    assert_eq!(h.ntake(c), "-ERR 'Maximum Payload Violation'\r\n");
    assert!(h.closed.contains(&c));
}

#[test]
fn a_control_line_without_end_is_refused() {
    let mut h = H::new(Config::default());
    let c = h.nconnect(QUIET);
    let long = "SUB ".to_string() + &"a".repeat(crate::nats::MAX_CONTROL_LINE);
    h.ntype(c, &long);
    assert_eq!(h.ntake(c), "-ERR 'Maximum Control Line Exceeded'\r\n");
    assert!(h.closed.contains(&c));
}

#[test]
fn subjects_mq_cannot_take() {
    let mut h = H::new(Config::default());
    let c = h.nconnect(QUIET);
    h.ntype(c, "SUB a..b 1\r\nSUB a.b* 2\r\nSUB caf\u{e9} 3\r\n");
    assert_eq!(h.ntake(c), "-ERR 'Invalid Subject'\r\n".repeat(3));
    h.ntype(c, "PUB a.* 1\r\nx\r\nPUB a r.> 1\r\nx\r\n");
    assert_eq!(h.ntake(c), "-ERR 'Invalid Publish Subject'\r\n".repeat(2));
    h.ntype(c, "PUB $sys.x 1\r\nx\r\n");
    assert_eq!(
        h.ntake(c),
        "-ERR 'Permissions Violation for Publish to \"$sys.x\"'\r\n"
    );
    // Still open.
    h.ntype(c, "PING\r\n");
    assert_eq!(h.ntake(c), "PONG\r\n");
}

#[test]
fn wildcards_match_as_in_nats() {
    let mut h = H::new(Config::default());
    let c = h.nconnect(QUIET);
    h.ntype(c, "SUB orders.* 1\r\nSUB orders.> 2\r\n");
    h.ntype(
        c,
        "PUB orders.eu 1\r\na\r\nPUB orders.eu.fr 1\r\nb\r\nPUB orders 1\r\nc\r\n",
    );
    let got = h.ntake(c);
    assert_eq!(got.matches("MSG orders.eu 1 1\r\na").count(), 1, "{got}");
    assert_eq!(got.matches("MSG orders.eu 2 1\r\na").count(), 1, "{got}");
    assert_eq!(got.matches("MSG orders.eu.fr 2 1\r\nb").count(), 1, "{got}");
    assert_eq!(got.matches("MSG").count(), 3, "{got}");
}

#[test]
fn queue_groups_share_the_messages() {
    let mut h = H::new(Config::default());
    let w1 = h.nconnect(QUIET);
    let w2 = h.nconnect(QUIET);
    let all = h.nconnect(QUIET);
    h.ntype(w1, "SUB jobs workers 1\r\n");
    h.ntype(w2, "SUB jobs workers 9\r\n");
    h.ntype(all, "SUB jobs 3\r\n");
    let p = h.nconnect(QUIET);
    for i in 0..10 {
        h.ntype(p, &alloc::format!("PUB jobs 1\r\n{i}\r\n"));
    }
    let (a, b) = (h.ntake(w1), h.ntake(w2));
    let (na, nb) = (
        a.matches("MSG jobs 1 1").count(),
        b.matches("MSG jobs 9 1").count(),
    );
    assert_eq!(na + nb, 10, "{a}{b}");
    assert!(na > 0 && nb > 0, "both members get some: {na} {nb}");
    assert_eq!(h.ntake(all).matches("MSG jobs 3 1").count(), 10);
}

#[test]
fn unsub_max_ends_after_n_in_all() {
    let mut h = H::new(Config::default());
    let c = h.nconnect(QUIET);
    h.ntype(c, "SUB a 1\r\nSUB b 2\r\nPUB b 1\r\n1\r\nUNSUB 1 2\r\n");
    h.ntake(c);
    for i in 0..4 {
        h.ntype(c, &alloc::format!("PUB a 1\r\n{i}\r\n"));
    }
    assert_eq!(h.ntake(c), "MSG a 1 1\r\n0\r\nMSG a 1 1\r\n1\r\n");
    // Already at its maximum: it ends at once.
    h.ntype(c, "UNSUB 2 1\r\nPUB b 1\r\n2\r\n");
    assert_eq!(h.ntake(c), "");
    assert_eq!(h.b.stats().current_subscriptions, 0);
    // An unknown sid is no error.
    h.ntype(c, "UNSUB 99\r\nPING\r\n");
    assert_eq!(h.ntake(c), "PONG\r\n");
}

#[test]
fn a_sid_used_twice_keeps_the_first() {
    let mut h = H::new(Config::default());
    let c = h.nconnect(QUIET);
    h.ntype(c, "SUB a 1\r\nSUB b 1\r\nPUB a 1\r\nx\r\nPUB b 1\r\ny\r\n");
    assert_eq!(h.ntake(c), "MSG a 1 1\r\nx\r\n");
}

#[test]
fn echo_off_skips_own_messages_only() {
    let mut h = H::new(Config::default());
    let me = h.nconnect(r#"{"verbose":false,"echo":false}"#);
    let other = h.nconnect(QUIET);
    h.ntype(me, "SUB a 1\r\n");
    h.ntype(other, "SUB a 1\r\n");
    h.ntype(me, "PUB a 4\r\nmine\r\n");
    assert_eq!(h.ntake(me), "");
    assert_eq!(h.ntake(other), "MSG a 1 4\r\nmine\r\n");
    h.ntype(other, "PUB a 6\r\ntheirs\r\n");
    assert_eq!(h.ntake(me), "MSG a 1 6\r\ntheirs\r\n");
}

#[test]
fn echo_off_in_a_queue_group_hands_own_messages_to_another_member() {
    let mut h = H::new(Config::default());
    let me = h.nconnect(r#"{"verbose":false,"echo":false}"#);
    h.ntype(me, "SUB jobs workers 1\r\n");
    // Alone in the group: its own message goes to nobody.
    h.ntype(me, "PUB jobs 1\r\n0\r\n");
    assert_eq!(h.ntake(me), "");
    let other = h.nconnect(QUIET);
    h.ntype(other, "SUB jobs workers 9\r\n");
    for i in 1..=6 {
        h.ntype(me, &alloc::format!("PUB jobs 1\r\n{i}\r\n"));
    }
    assert_eq!(h.ntake(me), "");
    assert_eq!(h.ntake(other).matches("MSG jobs 9 1").count(), 6);
    // Others' messages still reach it.
    h.ntype(other, "PUB jobs 1\r\nx\r\nPUB jobs 1\r\ny\r\n");
    assert_eq!(h.ntake(me).matches("MSG jobs 1 1").count(), 1);
}

fn with_tokens() -> Config {
    let mut cfg = Config::default();
    cfg.auth.tokens = alloc::vec![
        ("admin".to_string(), Permissions::all()),
        (
            "orders".to_string(),
            Permissions {
                publish: alloc::vec!["orders.>".to_string()],
                subscribe: alloc::vec!["orders.>".to_string(), "_INBOX.>".to_string()],
                admin: false,
            },
        ),
    ];
    cfg
}

#[test]
fn a_token_is_required_when_configured() {
    let mut h = H::new(with_tokens());
    let c = h.b.accept(h.now, Protocol::Nats).unwrap();
    h.mqtt.insert(c, Vec::new());
    h.drain();
    assert!(h.ntake(c).contains("\"auth_required\":true"));
    h.ntype(c, "SUB a 1\r\n");
    assert_eq!(h.ntake(c), "-ERR 'Authorization Violation'\r\n");
    assert!(h.closed.contains(&c));
    let c = h.naccept();
    h.ntype(c, "CONNECT {\"auth_token\":\"wrong\"}\r\n");
    assert_eq!(h.ntake(c), "-ERR 'Authorization Violation'\r\n");
    assert!(h.closed.contains(&c));
    // user and pass: the password is the token.
    let c = h.nconnect(r#"{"verbose":false,"user":"x","pass":"admin"}"#);
    h.ntype(c, "PING\r\n");
    assert_eq!(h.ntake(c), "PONG\r\n");
    assert!(h.b.stats().auth_failures >= 2);
}

#[test]
fn without_connect_in_time_a_token_connection_ends() {
    let mut h = H::new(with_tokens());
    let c = h.naccept();
    h.advance(h.b.config().handshake_timeout + Duration::from_millis(1));
    assert_eq!(h.ntake(c), "-ERR 'Authentication Timeout'\r\n");
    assert!(h.closed.contains(&c));
}

#[test]
fn token_permissions_apply_to_pub_and_sub() {
    let mut h = H::new(with_tokens());
    let c = h.nconnect(r#"{"verbose":false,"auth_token":"orders"}"#);
    h.ntype(c, "PUB payments.x 1\r\nx\r\n");
    assert_eq!(
        h.ntake(c),
        "-ERR 'Permissions Violation for Publish to \"payments.x\"'\r\n"
    );
    h.ntype(c, "SUB payments.> 1\r\n");
    assert_eq!(
        h.ntake(c),
        "-ERR 'Permissions Violation for Subscription to \"payments.>\"'\r\n"
    );
    // The refused sid is free again, and the connection serves on.
    h.ntype(c, "SUB orders.> 1\r\nPUB orders.eu 2\r\nok\r\n");
    assert_eq!(h.ntake(c), "MSG orders.eu 1 2\r\nok\r\n");
}

#[test]
fn keepalive_pings_then_ends_a_stale_connection() {
    let mut cfg = Config::default();
    cfg.limits.keepalive_ms = 10_000;
    let mut h = H::new(cfg);
    let c = h.nconnect(QUIET);
    h.advance(Duration::from_secs(10));
    assert_eq!(h.ntake(c), "PING\r\n");
    // An answer (any input) keeps it alive.
    h.ntype(c, "PONG\r\n");
    h.advance(Duration::from_secs(9));
    assert_eq!(h.ntake(c), "");
    h.advance(Duration::from_secs(1));
    assert_eq!(h.ntake(c), "PING\r\n");
    h.advance(Duration::from_secs(10));
    assert_eq!(h.ntake(c), "PING\r\n");
    assert!(!h.closed.contains(&c));
    h.advance(Duration::from_secs(10));
    assert_eq!(h.ntake(c), "-ERR 'Stale Connection'\r\n");
    assert!(h.closed.contains(&c));
    assert_eq!(h.b.timers(), 0);
}

#[test]
fn a_message_larger_than_the_transmit_buffer() {
    let mut cfg = Config::default();
    cfg.limits.max_frame = 512 * 1024;
    let mut h = H::new(cfg);
    h.buf = alloc::vec![0u8; 4096];
    let c = h.nconnect(QUIET);
    // The topic's first message waits for a store record (its sequence
    // numbers): after that, messages go out as they come.
    h.ntype(c, "SUB big 1\r\nPUB big 0\r\n\r\n");
    assert_eq!(h.ntake(c), "MSG big 1 0\r\n\r\n");
    let payload = "x".repeat(300_000);
    h.ntype(
        c,
        &alloc::format!("PUB big {}\r\n{payload}\r\nPING\r\n", payload.len()),
    );
    let got = h.ntake(c);
    // (Not assert_eq: a failure would print 300 kB.)
    assert!(
        got == alloc::format!("MSG big 1 300000\r\n{payload}\r\nPONG\r\n"),
        "{}",
        &got[..40]
    );
}
