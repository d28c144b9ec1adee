//! A hash for maps keyed by a counter: ids and tags that a program hands
//! out one after another (a session's delivery tags, a client's publish
//! ids), looked up and removed mostly in the order they were made.
//!
//! A general hash sends each key to a random bucket, so walking a run of
//! such keys misses the cache at every one; with thousands of them
//! outstanding that load was most of the lookup's time (BENCHMARKS.md, "The
//! in-flight table's hash"). [`CounterHash`] keeps the key itself as the
//! hash's low 57 bits, so neighbouring keys sit in neighbouring buckets, and
//! puts a multiplicative hash of it in the top 7, the byte hashbrown (and
//! `std`'s map) compares a group of buckets by, which must differ between
//! neighbours. Only for keys the program makes itself: a peer that chose
//! the keys could pile them into one bucket.

use core::hash::{BuildHasher, Hasher};

/// Builds [`CounterHasher`]s; see the [module](self).
#[derive(Debug, Default, Clone, Copy)]
pub struct CounterHash;

impl BuildHasher for CounterHash {
    type Hasher = CounterHasher;

    fn build_hasher(&self) -> CounterHasher {
        CounterHasher(0)
    }
}

/// Hashes one integer key; see the [module](self).
#[derive(Debug)]
pub struct CounterHasher(u64);

impl Hasher for CounterHasher {
    fn finish(&self) -> u64 {
        const TOP: u64 = !0 << 57;
        (self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) & TOP) | (self.0 & !TOP)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Keys other than integers still hash correctly, only not in order.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u16(&mut self, key: u16) {
        self.0 = u64::from(key);
    }

    fn write_u32(&mut self, key: u32) {
        self.0 = u64::from(key);
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }

    fn write_usize(&mut self, key: usize) {
        self.0 = key as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_keys_hash_to_neighbouring_buckets_with_different_tag_bytes() {
        let base = 1u64 << 40;
        for key in base..base + 128 {
            assert_eq!(CounterHash.hash_one(key) & ((1 << 57) - 1), key);
        }
        // hashbrown's byte of each bucket: neighbours compared by it are told
        // apart without reading their keys.
        let mut seen = [false; 128];
        for key in base..base + 128 {
            seen[(CounterHash.hash_one(key) >> 57) as usize] = true;
        }
        let distinct = seen.iter().filter(|&&s| s).count();
        assert!(distinct >= 64, "{distinct} distinct of 128");
    }

    #[test]
    fn narrower_keys_hash_as_the_same_number() {
        assert_eq!(CounterHash.hash_one(7u32), CounterHash.hash_one(7u64));
        assert_eq!(CounterHash.hash_one(7u16), CounterHash.hash_one(7u64));
        assert_eq!(CounterHash.hash_one(7usize), CounterHash.hash_one(7u64));
    }
}
