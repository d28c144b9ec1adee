//! Bytes read back as text: topics and filters from frames, the outbox and
//! the inbox, checked as UTF-8 on every publish and delivery.

/// `bytes` as a `str` if they are UTF-8.
///
/// On hosts (the broker's and std clients' hot path) ASCII, which nearly
/// every topic is, is settled a word at a time: `str::from_utf8` takes its
/// byte-at-a-time path on strings as short as topics (about 100 instructions
/// for 11 bytes, four times per message end to end). Devices keep the one
/// check, [`is_utf8`]: the fast path costs flash there, and so does
/// `str::from_utf8` (368 bytes on a Cortex-M4 against about 100).
#[inline]
pub(crate) fn str_of(bytes: &[u8]) -> Option<&str> {
    #[cfg(feature = "alloc")]
    {
        if bytes.is_ascii() {
            // SAFETY: every ASCII byte string is UTF-8.
            return Some(unsafe { core::str::from_utf8_unchecked(bytes) });
        }
        core::str::from_utf8(bytes).ok()
    }
    #[cfg(not(feature = "alloc"))]
    {
        // SAFETY: `is_utf8` accepts exactly what `str::from_utf8` accepts
        // (tested against it on every sequence of up to three bytes and on
        // any bytes).
        is_utf8(bytes).then(|| unsafe { core::str::from_utf8_unchecked(bytes) })
    }
}

/// Whether `bytes` are UTF-8, as `str::from_utf8` decides, in less code:
/// each character is decoded (a lead byte `C2..=F4` and as many
/// continuation bytes as it says), and its code point must need them (not
/// an overlong encoding), not be a surrogate, and be at most U+10FFFF.
#[cfg_attr(feature = "alloc", allow(dead_code))]
pub(crate) fn is_utf8(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some((&lead, tail)) = rest.split_first() {
        rest = tail;
        if lead < 0x80 {
            continue;
        }
        // `C0` and `C1` only ever start an overlong encoding.
        if !(0xC2..=0xF4).contains(&lead) {
            return false;
        }
        // Continuation bytes: 1 for `C0..=DF`, 2 for `E0..=EF`, 3 above.
        let more = 1 + usize::from(lead >= 0xE0) + usize::from(lead >= 0xF0);
        let mut point = u32::from(lead & (0x7F >> more));
        for _ in 0..more {
            match rest.split_first() {
                Some((&b, tail)) if b & 0xC0 == 0x80 => {
                    point = point << 6 | u32::from(b & 0x3F);
                    rest = tail;
                }
                _ => return false,
            }
        }
        // The least code point `more` bytes are for: 0x800 for two, 0x1_0000
        // for three (any for one, its lead being `C2` or more).
        let least = 1 << (5 * more + 1);
        let surrogate = point >> 11 == 0xD800 >> 11;
        if point < least || point > 0x10_FFFF || surrogate {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    extern crate std;

    use proptest::prelude::*;
    use std::vec::Vec;

    use super::{is_utf8, str_of};

    fn agrees(bytes: &[u8]) -> bool {
        is_utf8(bytes) == core::str::from_utf8(bytes).is_ok()
    }

    /// Every sequence of one and two bytes (also with an ASCII byte before
    /// and after, so that a sequence cut short is seen), and of three bytes
    /// led by `E0..=F4` (the three- and four-byte leads that can be valid).
    #[test]
    fn the_small_validator_agrees_with_the_standard_one_on_every_short_sequence() {
        for a in 0..=255u8 {
            assert!(agrees(&[a]), "{a:#x}");
            for b in 0..=255u8 {
                assert!(agrees(&[a, b]), "{a:#x} {b:#x}");
                assert!(agrees(&[b'x', a, b, b'y']), "{a:#x} {b:#x}");
                if (0xE0..=0xF4).contains(&a) {
                    for c in 0..=255u8 {
                        assert!(agrees(&[a, b, c]), "{a:#x} {b:#x} {c:#x}");
                    }
                }
            }
        }
    }

    /// Four-byte leads followed by every second byte and a few of the
    /// third and fourth, and text with multi-byte characters cut anywhere.
    #[test]
    fn the_small_validator_agrees_on_four_byte_sequences_and_cut_text() {
        let some = [0x00, 0x7F, 0x80, 0x8F, 0x90, 0xBF, 0xC0, 0xFF];
        for a in 0xF0..=0xFFu8 {
            for b in 0..=255u8 {
                for c in some {
                    for d in some {
                        assert!(agrees(&[a, b, c, d]), "{a:#x} {b:#x} {c:#x} {d:#x}");
                    }
                }
            }
        }
        let text = "a\u{e9}\u{20ac}\u{1f600}\u{10ffff}z".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                assert!(agrees(&text[i..j]), "{i}..{j}");
            }
        }
    }

    proptest! {
        #[test]
        fn the_small_validator_agrees_on_any_bytes(
            bytes in prop::collection::vec(any::<u8>(), 0..24),
        ) {
            prop_assert!(agrees(&bytes));
        }

        #[test]
        fn the_small_validator_agrees_on_any_text_damaged(
            text in ".{0,12}",
            at in any::<usize>(),
            byte in any::<u8>(),
        ) {
            let mut bytes: Vec<u8> = text.into_bytes();
            prop_assert!(agrees(&bytes));
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] = byte;
                prop_assert!(agrees(&bytes));
                bytes.truncate(at);
                prop_assert!(agrees(&bytes));
            }
        }
    }

    #[test]
    fn the_same_answer_as_the_standard_check() {
        let cases: [&[u8]; 9] = [
            b"",
            b"orders.eu",
            b"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p",
            "caf\u{e9}.men\u{fc}".as_bytes(),
            "\u{1f600}".as_bytes(),
            b"bad\xff",
            b"orders.\xc3",
            b"\xed\xa0\x80 surrogate",
            b"long ascii then bad: 0123456789abcdef\x80",
        ];
        for case in cases {
            assert_eq!(str_of(case), core::str::from_utf8(case).ok(), "{case:?}");
        }
    }
}
