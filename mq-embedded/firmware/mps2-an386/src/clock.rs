//! The monotonic clock: the LAN9118's 32-bit FREE_RUN counter (25 MHz, wraps every
//! 171.8 s) extended to 64 bits in software.
//!
//! QEMU derives FREE_RUN from its virtual clock, so it tracks wall time exactly,
//! where SysTick interrupts get lost while the guest is busy. The extension only
//! needs a reading at least once per wrap: every network poll reads the clock, and
//! the board's SysTick wake-up (at most 0.67 s away) reads it while idle.
//!
//! Time is handed out as microseconds since the counter started (the LAN9118's
//! reset), as smoltcp's `Instant` and, for the mq application, `mq_core::Instant`
//! is `Instant::from_micros(clock::now_micros())`.

/// Counter ticks per microsecond (the mps2 system clock, 25 MHz).
pub const TICKS_PER_MICRO: u64 = 25;

/// Extends successive readings of a wrapping 32-bit counter to 64 bits.
///
/// Correct as long as readings are less than one wrap (2^32 ticks) apart.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Extender {
    wraps: u32,
    last: u32,
}

impl Extender {
    /// An extender whose last reading was `raw`.
    pub const fn starting_at(raw: u32) -> Extender {
        Extender {
            wraps: 0,
            last: raw,
        }
    }

    /// The 64-bit count for a new reading `raw` of the counter.
    pub fn extend(&mut self, raw: u32) -> u64 {
        if raw < self.last {
            self.wraps = self.wraps.wrapping_add(1);
        }
        self.last = raw;
        (u64::from(self.wraps) << 32) | u64::from(raw)
    }
}

/// Microseconds for `ticks` of the 25 MHz counter.
pub const fn ticks_to_micros(ticks: u64) -> u64 {
    ticks / TICKS_PER_MICRO
}

/// Counter ticks for `micros` microseconds, saturating.
pub const fn micros_to_ticks(micros: u64) -> u64 {
    micros.saturating_mul(TICKS_PER_MICRO)
}

#[cfg(target_os = "none")]
mod board_clock {
    use core::cell::Cell;

    use cortex_m::interrupt::{self, Mutex};

    use super::Extender;
    use crate::lan9118::Registers;

    static STATE: Mutex<Cell<Option<(Registers, Extender)>>> = Mutex::new(Cell::new(None));

    /// Starts the clock on the FREE_RUN counter of the LAN9118 at `registers`,
    /// after its soft reset (which restarts the counter).
    pub fn start(registers: Registers) {
        interrupt::free(|cs| {
            let raw = registers.free_run();
            STATE
                .borrow(cs)
                .set(Some((registers, Extender::starting_at(raw))));
        });
    }

    /// Counter ticks since the LAN9118's reset; zero before [`start`].
    pub fn now_ticks() -> u64 {
        interrupt::free(|cs| {
            let cell = STATE.borrow(cs);
            let Some((registers, mut extender)) = cell.get() else {
                return 0;
            };
            let ticks = extender.extend(registers.free_run());
            cell.set(Some((registers, extender)));
            ticks
        })
    }

    /// Microseconds since the LAN9118's reset.
    pub fn now_micros() -> u64 {
        super::ticks_to_micros(now_ticks())
    }

    /// The time as smoltcp takes it.
    pub fn now() -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(i64::try_from(now_micros()).unwrap_or(i64::MAX))
    }
}

#[cfg(target_os = "none")]
pub use board_clock::{now, now_micros, now_ticks, start};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_on_across_wraps() {
        let mut clock = Extender::starting_at(0xFFFF_FFF0);
        assert_eq!(clock.extend(0xFFFF_FFF0), 0xFFFF_FFF0);
        assert_eq!(clock.extend(0xFFFF_FFFF), 0xFFFF_FFFF);
        assert_eq!(clock.extend(5), 0x1_0000_0005);
        assert_eq!(clock.extend(5), 0x1_0000_0005, "same reading, same time");
        assert_eq!(clock.extend(0x8000_0000), 0x1_8000_0000);
        assert_eq!(clock.extend(1), 0x2_0000_0001);
    }

    #[test]
    fn never_goes_backwards_over_many_wraps() {
        let mut clock = Extender::starting_at(0);
        let mut previous = 0;
        let mut raw: u32 = 0;
        for _ in 0..10_000 {
            raw = raw.wrapping_add(0x7654_3210);
            let now = clock.extend(raw);
            assert!(now > previous);
            previous = now;
        }
    }

    #[test]
    fn converts_ticks_and_micros() {
        assert_eq!(ticks_to_micros(25_000_000), 1_000_000);
        assert_eq!(micros_to_ticks(40), 1000);
        assert_eq!(micros_to_ticks(u64::MAX), u64::MAX);
    }
}
