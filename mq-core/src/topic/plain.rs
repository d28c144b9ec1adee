//! A topic name checked in one tight pass (hosts): every publish and every
//! delivery validates its topic, and almost every topic is plain tokens
//! joined by dots. [`plainly_valid`] answers yes or no without saying why; on
//! no, the general validation (topics and filters) finds the error. Devices
//! skip this: it is code more, for speed they do not need.

use super::{MAX_TOKENS, MAX_TOPIC_LEN, PLAIN};

/// Whether `b` is a valid topic name: allowed bytes and dots, no empty token,
/// at most [`MAX_TOKENS`] tokens and [`MAX_TOPIC_LEN`] bytes. One pass, one
/// table look-up and one branch a byte; it does not say what is wrong.
pub(super) const fn plainly_valid(b: &[u8]) -> bool {
    if b.len() > MAX_TOPIC_LEN {
        return false;
    }
    // The start counts as a dot: a leading dot makes an empty token.
    let mut after_dot = true;
    let mut dots = 0;
    let mut rest = b;
    while let Some((&c, after)) = rest.split_first() {
        if PLAIN[c as usize] {
            after_dot = false;
        } else if c == b'.' && !after_dot {
            after_dot = true;
            dots += 1;
        } else {
            return false;
        }
        rest = after;
    }
    // An empty name ends "after a dot" too.
    !after_dot && dots < MAX_TOKENS
}

#[cfg(test)]
mod tests {
    use super::super::validate;
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Every string over `alphabet` of length `len`, as bytes.
    fn all(alphabet: &[u8], len: usize) -> Vec<Vec<u8>> {
        let mut out = vec![Vec::new()];
        for _ in 0..len {
            out = out
                .into_iter()
                .flat_map(|s| {
                    alphabet.iter().map(move |&c| {
                        let mut t = s.clone();
                        t.push(c);
                        t
                    })
                })
                .collect();
        }
        out
    }

    fn agrees(b: &[u8]) {
        let fast = plainly_valid(b);
        let slow = core::str::from_utf8(b).is_ok_and(|s| validate(s, false).is_ok());
        assert_eq!(fast, slow, "{b:?}");
    }

    #[test]
    fn agrees_with_the_byte_at_a_time_check_on_every_short_name() {
        // Every byte class: plain at the edges of the range, the dot, the
        // wildcards, control, space, DEL, non-ASCII.
        let edges = [b'a', b'.', b'!', b'~', b'*', b'>', b' ', 0x7F, 0x80, 0x00];
        for len in 0..=5 {
            for s in all(&edges, len) {
                agrees(&s);
            }
        }
        // Longer names: one odd byte anywhere, and with it a dot anywhere
        // (two dots side by side included).
        for len in 6..=26 {
            for at in 0..len {
                for c in edges {
                    let mut s = vec![b'a'; len];
                    s[at] = c;
                    agrees(&s);
                    for other in 0..len {
                        let mut t = s.clone();
                        t[other] = b'.';
                        agrees(&t);
                    }
                }
            }
        }
    }

    #[test]
    fn counts_tokens_and_length_exactly() {
        for tokens in [1, MAX_TOKENS - 1, MAX_TOKENS, MAX_TOKENS + 1] {
            for width in [1, 3, 7, 8] {
                let name = vec!["t".repeat(width); tokens].join(".");
                agrees(name.as_bytes());
            }
        }
        for len in [MAX_TOPIC_LEN - 1, MAX_TOPIC_LEN, MAX_TOPIC_LEN + 1] {
            agrees(&vec![b'x'; len]);
        }
    }
}
