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
    /// times a factor in [0.75, 1.25]. 64-bit arithmetic only (128-bit
    /// multiplication and division cost about 1 KB of a device's flash).
    pub(crate) fn next_delay(&mut self, min: Duration, max: Duration) -> Duration {
        let min_us = micros_of(min);
        let max_us = micros_of(max).max(min_us);
        let base = min_us
            .checked_shl(self.attempt.min(63))
            .filter(|v| v >> self.attempt.min(63) == min_us)
            .unwrap_or(u64::MAX)
            .min(max_us);
        self.attempt = self.attempt.saturating_add(1);
        // factor in per-mille: 750..=1250
        let permille = 750 + self.next_u64() % 501;
        Duration::from_micros(per_mille(base, permille))
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

/// `v · permille / 1000` rounded down, saturating: in two parts that cannot
/// overflow unless the result does (`permille` is at most 1,250).
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
        let d = b.next_delay(min, max).as_millis() as u64;
        assert!((75..=125).contains(&d));
        // Huge attempt counts saturate instead of overflowing.
        for _ in 0..200 {
            assert!(b.next_delay(min, max) <= Duration::from_millis(1250));
        }
    }
}
