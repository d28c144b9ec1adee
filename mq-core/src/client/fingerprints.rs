//! The held table's fingerprint scan: which slots' 16-bit fingerprints equal
//! a message's, found without a branch per slot where the target has vector
//! compares (the held table, `held.rs`).

/// Whether `fp` is among `fingerprints`: usually not, and one pass without
/// branches, which the compiler turns into vector compares on hosts, says so
/// before any iterator over the matches is built.
pub(super) fn contains(fingerprints: &[u16], fp: u16) -> bool {
    fingerprints.iter().fold(false, |any, f| any | (*f == fp))
}

/// Indexes of the entries equal to `fp`, in order: on hosts in blocks (see
/// [`matching_in_blocks`]); on devices, which have no vector compares for the
/// blocks to use, one entry at a time, in less code.
pub(super) fn matching(fingerprints: &[u16], fp: u16) -> impl Iterator<Item = usize> + '_ {
    #[cfg(feature = "alloc")]
    let found = matching_in_blocks(fingerprints, fp);
    #[cfg(not(feature = "alloc"))]
    let found = matching_one_by_one(fingerprints, fp);
    found
}

/// Indexes of the entries equal to `fp`, one entry at a time.
#[cfg(any(test, not(feature = "alloc")))]
fn matching_one_by_one(fingerprints: &[u16], fp: u16) -> impl Iterator<Item = usize> + '_ {
    equal_in(fingerprints, fp, 0)
}

/// Indexes of the entries equal to `fp`. Blocks of 16 are tested without
/// branches first: on an array of known length the compiler turns that test
/// into a few vector compares (not on the slices `chunks` gives: too short and
/// of unknown length, they stay scalar and the scan costs four times as much).
#[cfg(any(test, feature = "alloc"))]
fn matching_in_blocks(fingerprints: &[u16], fp: u16) -> impl Iterator<Item = usize> + '_ {
    let (blocks, rest) = fingerprints.as_chunks::<16>();
    let whole = blocks
        .iter()
        .enumerate()
        .filter(move |(_, block)| block.iter().fold(false, |any, f| any | (*f == fp)))
        .flat_map(move |(b, block)| equal_in(block, fp, b * 16));
    whole.chain(equal_in(rest, fp, blocks.len() * 16))
}

/// Indexes (from `base`) of the entries of `block` equal to `fp`.
fn equal_in(block: &[u16], fp: u16, base: usize) -> impl Iterator<Item = usize> + '_ {
    block
        .iter()
        .enumerate()
        .filter(move |(_, f)| **f == fp)
        .map(move |(i, _)| base + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_finds_every_equal_entry_in_order() {
        // Two whole blocks of 16 and a rest of 5.
        let mut fps = [0u16; 37];
        for i in [0, 15, 16, 31, 32, 36] {
            fps[i] = 7;
        }
        fps[20] = 8;
        let found: alloc::vec::Vec<usize> = matching(&fps, 7).collect();
        assert_eq!(found, [0, 15, 16, 31, 32, 36]);
        assert_eq!(matching(&fps, 8).collect::<alloc::vec::Vec<_>>(), [20]);
        assert_eq!(matching(&fps, 9).count(), 0);
        assert_eq!(matching(&fps[..5], 7).collect::<alloc::vec::Vec<_>>(), [0]);
        assert!(contains(&fps, 7) && contains(&fps, 8) && contains(&fps[21..], 7));
        assert!(!contains(&fps, 9) && !contains(&fps[21..31], 7) && !contains(&[], 0));
    }

    #[test]
    fn both_ways_of_matching_find_the_same_entries() {
        // Lengths around the 16-entry blocks; values repeating at odd strides.
        for len in [0, 1, 15, 16, 17, 33, 64, 70] {
            let mut fingerprints = [0u16; 70];
            for (i, f) in fingerprints.iter_mut().enumerate() {
                *f = (i * 7 % 5) as u16;
            }
            let fingerprints = &fingerprints[..len];
            for fp in 0..6 {
                assert!(
                    matching_in_blocks(fingerprints, fp).eq(matching_one_by_one(fingerprints, fp)),
                    "{len} entries, fingerprint {fp}"
                );
            }
        }
        assert_eq!(matching_one_by_one(&[3, 1, 3], 3).last(), Some(2));
    }
}
