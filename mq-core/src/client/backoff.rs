//! Reconnect delays: exponential from a minimum to a maximum, with ±25 % jitter
//! from a tiny xorshift generator so that clients restarted together spread out.

use core::time::Duration;

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
    /// times a factor in [0.75, 1.25].
    pub(crate) fn next_delay(&mut self, min: Duration, max: Duration) -> Duration {
        let min_us = u64::try_from(min.as_micros()).unwrap_or(u64::MAX);
        let max_us = u64::try_from(max.as_micros())
            .unwrap_or(u64::MAX)
            .max(min_us);
        let base = min_us
            .checked_shl(self.attempt.min(63))
            .filter(|v| v >> self.attempt.min(63) == min_us)
            .unwrap_or(u64::MAX)
            .min(max_us);
        self.attempt = self.attempt.saturating_add(1);
        // factor in per-mille: 750..=1250
        let permille = 750 + self.next_u64() % 501;
        let jittered = u128::from(base) * u128::from(permille) / 1000;
        Duration::from_micros(u64::try_from(jittered).unwrap_or(u64::MAX))
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

#[cfg(test)]
mod tests {
    use super::*;

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
