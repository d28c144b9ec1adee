//! The clock adapters hand to the core: microseconds since the Unix epoch, but
//! monotonic within a process.
//!
//! Wall-clock based so that TTLs and retention ages in the broker's store stay
//! meaningful across a restart; anchored to `std::time::Instant` so a wall-clock
//! step (NTP) never moves time backwards inside a run.

use std::time::{Instant as StdInstant, SystemTime, UNIX_EPOCH};

use mq_core::Instant;

/// Converts between `std::time::Instant` and [`mq_core::Instant`].
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: StdInstant,
    origin_micros: u64,
}

impl Clock {
    /// A clock anchored at the current wall-clock time.
    pub fn new() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Clock {
            origin: StdInstant::now(),
            origin_micros: since_epoch.as_micros() as u64,
        }
    }

    /// Now, as the core sees it.
    pub fn now(&self) -> Instant {
        self.at(StdInstant::now())
    }

    /// A `std` instant, as the core sees it.
    pub fn at(&self, t: StdInstant) -> Instant {
        let elapsed = t.saturating_duration_since(self.origin).as_micros() as u64;
        Instant::from_micros(self.origin_micros + elapsed)
    }

    /// A core instant as a `std` instant (for sleeping until it).
    pub fn to_std(&self, t: Instant) -> StdInstant {
        let micros = t.as_micros().saturating_sub(self.origin_micros);
        self.origin + std::time::Duration::from_micros(micros)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn round_trips_and_is_monotonic() {
        let c = Clock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        let later = StdInstant::now() + Duration::from_millis(5);
        let core = c.at(later);
        let back = c.to_std(core);
        assert!(back.max(later) - back.min(later) < Duration::from_micros(2));
    }
}
