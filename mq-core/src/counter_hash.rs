//! A hash for maps keyed by a counter: ids and tags that a program hands
//! out one after another (a session's delivery tags, a client's publish
//! ids), looked up and removed mostly in the order they were made.
//!
//! A general hash sends each key to a random bucket, so walking a run of
//! such keys misses the cache at every one; with thousands of them
//! outstanding that load was most of the lookup's time (BENCHMARKS.md, "The
//! in-flight table's hash"). [`CounterHash`] keeps runs of [`RUN`]
//! consecutive keys in neighbouring buckets: the run (the key without its
//! low bits) is mixed (splitmix64's finaliser) into a place of its own, and
//! the key's offset in the run added to it. Keys further apart spread as
//! under any good hash, whatever their spacing: a peer that decides which
//! of a session's tags stay outstanding (by the QoS of what it publishes,
//! say) cannot pile them into one bucket by spacing them a power of two
//! apart. The hash is not keyed, so it is no stronger than foldhash's
//! fixed state against a peer that searches for colliding runs; use it for
//! keys the program hands out, not for keys a peer chooses.
//!
//! The byte hashbrown (and `std`'s map) compares a group of buckets by is
//! taken from the top 7 bits of the hash as a `usize`; those bits are a
//! multiplicative hash of the whole key, so neighbours are told apart
//! without reading their keys.

use core::hash::{BuildHasher, Hasher};

/// Keys in a run that stays together: 64 neighbouring buckets.
pub const RUN: u64 = 1 << RUN_BITS;
const RUN_BITS: u32 = 6;

/// Fibonacci hashing's multiplier (2^64 ÷ the golden ratio, odd): every
/// bit of a key moves the product's top bits.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Where the map takes its tag byte from: the top 7 bits of a `usize`.
const TAG_SHIFT: u32 = usize::BITS - 7;
const TAG: u64 = 0x7f << TAG_SHIFT;

/// Builds [`CounterHasher`]s; see the [module](self).
#[derive(Debug, Default, Clone, Copy)]
pub struct CounterHash;

impl BuildHasher for CounterHash {
    type Hasher = CounterHasher;

    fn build_hasher(&self) -> CounterHasher {
        CounterHasher(0)
    }
}

/// Hashes an integer key (or several: each write is mixed into what came
/// before); see the [module](self).
#[derive(Debug)]
pub struct CounterHasher(u64);

impl CounterHasher {
    fn add(&mut self, key: u64) {
        // From the initial 0 this is `key` itself: a single integer keeps
        // its order.
        self.0 = self.0.rotate_left(23).wrapping_mul(GOLDEN) ^ key;
    }
}

/// splitmix64's finaliser: every bit of `x` moves every bit of the result.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Hasher for CounterHasher {
    fn finish(&self) -> u64 {
        let key = self.0;
        // The run's place, and the key's offset in the run after it.
        let place = mix(key >> RUN_BITS).wrapping_add(key & (RUN - 1));
        let tag = key.wrapping_mul(GOLDEN) >> 57;
        (place & !TAG) | (tag << TAG_SHIFT)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, key: u8) {
        self.add(u64::from(key));
    }

    fn write_u16(&mut self, key: u16) {
        self.add(u64::from(key));
    }

    fn write_u32(&mut self, key: u32) {
        self.add(u64::from(key));
    }

    fn write_u64(&mut self, key: u64) {
        self.add(key);
    }

    fn write_u128(&mut self, key: u128) {
        self.add(key as u64);
        self.add((key >> 64) as u64);
    }

    fn write_usize(&mut self, key: usize) {
        self.add(key as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(key: u64) -> u64 {
        CounterHash.hash_one(key)
    }

    /// The bucket in a table of `2^bits` (`bits` below the tag's).
    fn bucket(key: u64, bits: u32) -> u64 {
        hash(key) & ((1 << bits) - 1)
    }

    /// The byte the map compares buckets by.
    fn tag(key: u64) -> u64 {
        (hash(key) as usize >> TAG_SHIFT) as u64
    }

    #[test]
    fn a_run_of_keys_takes_neighbouring_buckets_with_different_tag_bytes() {
        let base = (1u64 << 40) + 5 * RUN;
        for key in base..base + RUN - 1 {
            let step = bucket(key + 1, 20).wrapping_sub(bucket(key, 20)) & ((1 << 20) - 1);
            assert_eq!(step, 1, "key {key}");
        }
        for key in base..base + 4 * RUN {
            assert_ne!(tag(key), tag(key + 1), "key {key}");
        }
    }

    #[test]
    fn keys_a_power_of_two_apart_spread_over_the_table() {
        // 4,096 outstanding keys in a table of 8,192 buckets: however far
        // apart a peer spaces them, no bucket gets more than a handful (4 to
        // 6 here, as under a random hash). Keeping the key's low bits alone
        // put all of them in one bucket at a spacing of 2^13; a run's offset
        // or'ed below its place, 51 at a spacing of 64.
        for spacing in (0..24).map(|b| 1u64 << b) {
            let mut load = [0u16; 1 << 13];
            for i in 0..4096 {
                load[bucket(1 + i * spacing, 13) as usize] += 1;
            }
            let most = *load.iter().max().unwrap();
            assert!(most <= 12, "spacing {spacing}: {most} keys in one bucket");
        }
    }

    #[test]
    fn narrower_keys_hash_as_the_same_number_and_every_field_counts() {
        assert_eq!(CounterHash.hash_one(7u32), hash(7));
        assert_eq!(CounterHash.hash_one(7u16), hash(7));
        assert_eq!(CounterHash.hash_one(7usize), hash(7));
        assert_ne!(
            CounterHash.hash_one((1u64, 2u64)),
            CounterHash.hash_one((3u64, 2u64))
        );
        assert_ne!(
            CounterHash.hash_one(1u128),
            CounterHash.hash_one(1u128 << 64)
        );
    }
}
