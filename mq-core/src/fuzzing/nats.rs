//! Fuzz harness bodies for the NATS text protocol: the operation parser,
//! and the broker's NATS connection codec.

use crate::nats::{HeaderBlock, Limits, Op, Parsed};

/// Parses every operation it can from `data`; each must re-encode to bytes
/// that parse back to the same operation, and every header block that
/// parses must give its headers without panicking.
pub fn nats_parse(data: &[u8]) {
    let limits = Limits {
        max_control_line: 256,
        max_payload: 1024,
    };
    let mut at = 0;
    let mut scratch = [0u8; 2048];
    while let Ok(Parsed::Op(op, used)) = Op::parse(&data[at..], limits) {
        assert!(used > 0 && at + used <= data.len());
        let n = op
            .encode(&mut scratch)
            .expect("a parsed operation re-encodes");
        assert_eq!(n, op.encoded_len());
        let again = match Op::parse(&scratch[..n], Limits::default()) {
            Ok(Parsed::Op(again, m)) if m == n => again,
            other => panic!("{op:?} re-encoded to {other:?}"),
        };
        assert_eq!(again, op, "operation changed through a round trip");
        let headers = match op {
            Op::Pub(m) | Op::Msg { msg: m, .. } => m.headers,
            _ => None,
        };
        if let Some(Ok(block)) = headers.map(HeaderBlock::parse) {
            for (k, v) in block.iter() {
                assert!(!k.is_empty() && !v.contains(&b'\n'));
            }
        }
        at += used;
    }
}

/// The broker's NATS connection codec over arbitrary bytes fed in arbitrary
/// chunks (the first byte chooses the chunk size, the second how far time
/// moves between them), beside a well-behaved NATS subscriber to `>`:
/// nothing panics, the broker's invariants hold, and everything it writes
/// to the subscriber is a sequence of whole, valid operations.
#[cfg(feature = "alloc")]
pub fn nats_broker(data: &[u8]) {
    use crate::broker::{Broker, Config, Protocol};
    use crate::time::Instant;
    use alloc::vec::Vec;

    const WATCHER: &[u8] =
        b"CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\nSUB > 1\r\n";
    let [c, t, rest @ ..] = data else { return };
    let chunk = usize::from(*c) + 1;
    let step = core::time::Duration::from_millis(u64::from(*t) * 50);
    let mut cfg = Config::default();
    cfg.limits.max_frame = 4096;
    cfg.limits.keepalive_ms = 2_000;
    let mut b = Broker::new(cfg);
    let mut now = Instant::from_millis(1_000);
    let (Ok(fuzzed), Ok(watcher)) = (b.accept(now, Protocol::Nats), b.accept(now, Protocol::Nats))
    else {
        panic!("the broker refused a connection");
    };
    assert_eq!(b.handle_input(watcher, now, WATCHER), WATCHER.len());
    let mut pending: Vec<u8> = Vec::new();
    let mut watched: Vec<u8> = Vec::new();
    let mut buf = alloc::vec![0u8; 2048];
    let mut records: Vec<Vec<u8>> = Vec::new();
    let mut open = true;
    for piece in rest.chunks(chunk).chain(core::iter::once(&[][..])) {
        if open {
            pending.extend_from_slice(piece);
            let used = b.handle_input(fuzzed, now, &pending);
            assert!(used <= pending.len());
            pending.drain(..used);
        }
        now += step;
        // The watcher answers every PING (any input keeps it alive).
        assert_eq!(b.handle_input(watcher, now, b"PONG\r\n"), 6);
        b.handle_timeout(now);
        let closed =
            super::run_until_idle(&mut b, now, &mut buf, watcher, &mut watched, &mut records);
        assert!(!closed.contains(&watcher), "the watcher was closed");
        open &= !closed.contains(&fuzzed);
        b.check_invariants().expect("broker invariants");
    }
    let limits = Limits {
        max_control_line: crate::nats::MAX_CONTROL_LINE,
        max_payload: usize::MAX / 2,
    };
    let mut at = 0;
    while at < watched.len() {
        match Op::parse(&watched[at..], limits) {
            Ok(Parsed::Op(op, used)) => {
                if let Op::Msg { msg, .. } = op
                    && let Some(h) = msg.headers
                {
                    HeaderBlock::parse(h).expect("the broker wrote a valid header block");
                }
                at += used;
            }
            other => panic!("the broker wrote {other:?} at {at}"),
        }
    }
}
