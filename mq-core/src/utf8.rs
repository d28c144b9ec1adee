//! Bytes read back as text: topics and filters from frames, the outbox and
//! the inbox, checked as UTF-8 on every publish and delivery.

/// `bytes` as a `str` if they are UTF-8.
///
/// On hosts (the broker's and std clients' hot path) ASCII, which nearly
/// every topic is, is settled a word at a time: `str::from_utf8` takes its
/// byte-at-a-time path on strings as short as topics (about 100 instructions
/// for 11 bytes, four times per message end to end). Devices keep the one
/// check: the fast path costs flash there.
#[inline]
pub(crate) fn str_of(bytes: &[u8]) -> Option<&str> {
    #[cfg(feature = "alloc")]
    if bytes.is_ascii() {
        // SAFETY: every ASCII byte string is UTF-8.
        return Some(unsafe { core::str::from_utf8_unchecked(bytes) });
    }
    core::str::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::str_of;

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
