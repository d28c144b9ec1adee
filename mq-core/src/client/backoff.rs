//! Reconnect delays: exponential from a minimum to a maximum, with ±25 % jitter
//! from a tiny xorshift generator so that clients restarted together spread out.

use core::time::Duration;

use crate::time::micros_of;

/// Exponential backoff state.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    rng: u64,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(seed: u64) -> Self {
        // xorshift has a fixed point at zero.
        let rng = if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        };
        Backoff { rng, attempt: 0 }
    }

    /// Forgets failed attempts (after a successful handshake).
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before the next attempt: `min · 2^attempts`, capped at `max`,
    /// times a factor in [0.75, 1.25]: on hosts in per-mille steps, on
    /// devices in steps of 1/131,072 (`binary_jitter`, which divides by
    /// nothing). 64-bit arithmetic only (128-bit multiplication and division
    /// cost about 1 KB of a device's flash).
    #[cfg(feature = "alloc")]
    pub(crate) fn next_delay(&mut self, min: Duration, max: Duration) -> Duration {
        Duration::from_micros(self.next_delay_micros(min, max))
    }

    /// The same delay in microseconds (`next_delay` is it as a `Duration`), what the
    /// client session adds to its clock: a `Duration` built only to be
    /// taken apart again cost a device a 64-bit division by 1,000,000.
    pub(crate) fn next_delay_micros(&mut self, min: Duration, max: Duration) -> u64 {
        let min_us = micros_of(min);
        let max_us = micros_of(max).max(min_us);
        let base = doubled(min_us, self.attempt).min(max_us);
        self.attempt = self.attempt.saturating_add(1);
        let r = self.next_u64();
        #[cfg(feature = "alloc")]
        let delay = per_mille(base, 750 + r % 501);
        #[cfg(not(feature = "alloc"))]
        let delay = binary_jitter(base, r);
        delay
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// `v · 2^times`, saturating: the shift loses no bit while it is at most
/// `v`'s leading zeros (`checked_shl`, then shifting back to compare, was
/// 64-bit shifts both ways on devices).
fn doubled(v: u64, times: u32) -> u64 {
    let shift = times.min(63);
    if shift <= v.leading_zeros() {
        v << shift
    } else {
        u64::MAX
    }
}

/// `base · (0.75 + k / 131,072)` rounded down, saturating, for `k`, the low
/// 16 bits of `r`, in 0..65,536: the factor in [0.75, 1.25) by shifts and
/// multiplies. Devices' jitter: `per_mille`'s two divisions by 1,000 and
/// the draw's `% 501` were about 200 bytes of flash.
#[cfg(any(test, not(feature = "alloc")))]
fn binary_jitter(base: u64, r: u64) -> u64 {
    let k = r & 0xFFFF;
    let half = base >> 1;
    // `half · k >> 16` in two parts that cannot overflow; at most `half`.
    let up = (half >> 16) * k + (((half & 0xFFFF) * k) >> 16);
    (base - (base >> 2)).saturating_add(up)
}

/// `v · permille / 1000` rounded down, saturating: in two parts that cannot
/// overflow unless the result does (`permille` is at most 1,250).
#[cfg(any(test, feature = "alloc"))]
fn per_mille(v: u64, permille: u64) -> u64 {
    (v / 1000)
        .saturating_mul(permille)
        .saturating_add(v % 1000 * permille / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_mille_agrees_with_128_bit_arithmetic() {
        let wide = |v: u64, p: u64| {
            u64::try_from(u128::from(v) * u128::from(p) / 1000).unwrap_or(u64::MAX)
        };
        let mut b = Backoff::new(7);
        let edges = [
            0,
            1,
            999,
            1000,
            1001,
            u64::MAX / 1250,
            u64::MAX / 1000,
            u64::MAX,
        ];
        for v in edges
            .into_iter()
            .chain((0..2000).map(|_| b.next_u64() >> (b.next_u64() % 64)))
        {
            for p in [0, 1, 750, 999, 1000, 1001, 1250] {
                assert_eq!(per_mille(v, p), wide(v, p), "{v} * {p} / 1000");
            }
        }
    }

    #[test]
    fn binary_jitter_agrees_with_128_bit_arithmetic_and_stays_in_bounds() {
        let wide = |base: u64, k: u64| {
            let up = (u128::from(base >> 1) * u128::from(k)) >> 16;
            let v = u128::from(base - base / 4) + up;
            u64::try_from(v).unwrap_or(u64::MAX)
        };
        let mut b = Backoff::new(11);
        let mut draws = Backoff::new(13);
        let edges = [
            0,
            1,
            2,
            3,
            4,
            999,
            65_535,
            65_536,
            131_072,
            u64::MAX / 2,
            u64::MAX,
        ];
        for base in edges
            .into_iter()
            .chain((0..2000).map(|_| b.next_u64() >> (b.next_u64() % 64)))
        {
            for r in [0, 1, 0x7FFF, 0x8000, 0xFFFF, u64::MAX, draws.next_u64()] {
                let got = binary_jitter(base, r);
                assert_eq!(got, wide(base, r & 0xFFFF), "{base} {r:#x}");
                assert!(got >= base - base / 4, "{base} {r:#x}: {got}");
                let high = u128::from(base) * 5 / 4;
                assert!(u128::from(got) <= high, "{base} {r:#x}: {got}");
            }
        }
    }

    #[test]
    fn doubling_agrees_with_128_bit_arithmetic() {
        let wide = |v: u64, times: u32| {
            let shifted = u128::from(v) << times.min(63);
            u64::try_from(shifted).unwrap_or(u64::MAX)
        };
        for v in [
            0,
            1,
            2,
            3,
            100_000,
            1 << 62,
            (1 << 62) + 1,
            u64::MAX / 2,
            u64::MAX,
        ] {
            for times in [0, 1, 2, 20, 46, 47, 48, 61, 62, 63, 64, 200, u32::MAX] {
                assert_eq!(doubled(v, times), wide(v, times), "{v} << {times}");
            }
        }
        // At the edge: the top bit shifted to bit 63, and one step beyond.
        assert_eq!(doubled(100_000, 47), 100_000 << 47);
        assert_eq!(doubled(100_000, 48), u64::MAX);
    }

    #[test]
    fn doubles_caps_and_jitters() {
        let mut b = Backoff::new(1);
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let expect = [100u64, 200, 400, 800, 1000, 1000];
        for base in expect {
            let d = b.next_delay(min, max).as_millis() as u64;
            assert!(d >= base * 3 / 4 && d <= base * 5 / 4, "{d} vs {base}");
        }
        b.reset();
        let d = b.next_delay_micros(min, max) / 1000;
        assert!((75..=125).contains(&d));
        // Huge attempt counts saturate instead of overflowing.
        for _ in 0..200 {
            assert!(b.next_delay(min, max) <= Duration::from_millis(1250));
        }
    }
}
