//! Arbitrary input never panics or leaks.

use super::*;
use proptest::prelude::*;

fn connected() -> T {
    let mut t = T::new(config(), 2048, 700);
    t.handshake(false, limits(300, 0));
    t.subscribe("a.>");
    t.s.publish(t.now, "a.b", &[7; 700], &PublishOptions::default())
        .unwrap();
    t
}

/// Drives the session like an adapter would, checking what comes out.
fn pump(t: &mut T) {
    for body in t.tx() {
        frame(&body);
    }
    let events = t.ev();
    for e in events {
        if let Ev::Message(m) = &e {
            let _ = t.s.ack(m.id);
        }
        if let Ev::Chunk(c) = &e
            && c.last
        {
            let _ = t.s.nack(c.id, true);
        }
    }
}

/// sub, seq, tag, topic index, attempt, QoS 1, payload length, fragment.
type Spec = (u32, u64, u64, u64, u16, bool, usize, Option<(u64, u64)>);

fn fragment_strategy() -> impl Strategy<Value = Spec> {
    (
        0u32..3,
        0u64..4,
        0u64..6,
        0u64..4,
        1u16..3,
        any::<bool>(),
        0usize..400,
        proptest::option::of((0u64..1200, 0u64..1200)),
    )
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut t = connected();
        for chunk in &chunks {
            let n = t.s.handle_input(t.now, chunk);
            prop_assert!(n <= chunk.len());
            pump(&mut t);
        }
    }

    #[test]
    fn arbitrary_deliveries_never_panic_or_leak(
        frames in proptest::collection::vec(fragment_strategy(), 0..24),
        disconnect_at in 0usize..24,
    ) {
        let mut t = connected();
        let payload = [3u8; 400];
        for (i, (sub, seq, tag, topic, attempt, qos1, len, frag)) in frames.into_iter().enumerate() {
            if i == disconnect_at {
                t.reconnect(true, limits(300, 0));
            }
            let topics = ["a.b", "a.c", "a.d.e", "x"];
            let mut d = deliver(sub, topics[topic as usize], seq, tag, if qos1 { QoS::AtLeastOnce } else { QoS::AtMostOnce }, &payload[..len]);
            d.attempt = attempt;
            d.fragment = frag.map(|(offset, total)| Fragment { offset, total });
            let bytes = T::wire(&Frame::Deliver(d));
            let mut rest = &bytes[..];
            for _ in 0..4 {
                let n = t.s.handle_input(t.now, rest);
                rest = &rest[n..];
                pump(&mut t);
                if rest.is_empty() {
                    break;
                }
            }
            if !t.s.is_connected() {
                t.reconnect(true, limits(300, 0));
            }
        }
        pump(&mut t);
        prop_assert!(t.s.inbox_bytes() <= 700);
    }
}
