//! How deep the stack went: [`paint`] fills the unused stack below the caller
//! with a pattern, [`peak`] later finds the lowest word that changed. The
//! stack's use is RAM that `arm-none-eabi-size` does not show.
//!
//! [`checkpoint`] splits a run in phases (start-up, then the steady state): it
//! notes the peak so far and paints again, so [`since_checkpoint`] tells the
//! later phase's peak while [`peak`] still tells the whole run's.
//!
//! The stack grows down from `_stack_start` (cortex-m-rt: the top of RAM). Only
//! [`DEPTH`] bytes below the top are painted and searched: a deeper stack reads
//! as `DEPTH`.

use core::ptr::{addr_of, read_volatile, write_volatile};
use core::sync::atomic::{AtomicUsize, Ordering};

/// How much of the stack is painted, from its top.
pub const DEPTH: usize = 32 * 1024;

const PATTERN: u32 = 0x5A5A_A5A5;

/// The peak noted at the last [`checkpoint`].
static EARLIER: AtomicUsize = AtomicUsize::new(0);

/// Bytes left alone below the stack pointer while painting (the painting code's
/// own frame).
const MARGIN: usize = 64;

unsafe extern "C" {
    /// The top of the stack (cortex-m-rt's linker script).
    static _stack_start: u32;
}

fn top() -> usize {
    addr_of!(_stack_start) as usize
}

/// Paints the stack below the current stack pointer (less a margin) down to
/// [`DEPTH`] below the top.
pub fn paint() {
    let bottom = top() - DEPTH;
    cortex_m::interrupt::free(|_| {
        let sp = cortex_m::register::msp::read() as usize;
        let mut at = bottom;
        while at + 4 <= sp - MARGIN {
            // SAFETY: below the stack pointer and above the bottom of the
            // painted region: RAM no live frame uses (interrupts are masked).
            unsafe { write_volatile(at as *mut u32, PATTERN) };
            at += 4;
        }
    });
}

/// The most stack used in the whole run so far, in bytes (from the top).
pub fn peak() -> usize {
    since_checkpoint().max(EARLIER.load(Ordering::Relaxed))
}

/// Notes the peak so far and paints again; returns that peak.
pub fn checkpoint() -> usize {
    let peak = peak();
    EARLIER.store(peak, Ordering::Relaxed);
    paint();
    peak
}

/// The most stack used since the last [`paint`] or [`checkpoint`].
pub fn since_checkpoint() -> usize {
    let top = top();
    let mut at = top - DEPTH;
    // SAFETY: reads of RAM inside the stack region.
    while at < top && unsafe { read_volatile(at as *const u32) } == PATTERN {
        at += 4;
    }
    top - at
}
