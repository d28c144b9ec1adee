//! The board's UART0: an Arm CMSDK APB UART at `0x4000_4000` (receive
//! interrupt on IRQ 0), as an `embedded-io` byte stream for mq-embedded's
//! `SerialClient`.
//!
//! The UART holds one received byte. The receive interrupt moves it into
//! [`RxRing`], a ring the application drains; when the ring is full the
//! handler leaves the byte in the UART and turns its interrupt off, so the
//! UART takes nothing more and the sender is held back (QEMU stops reading its
//! character device; a real line would need RTS for that): nothing is lost.
//! Reading from the ring turns the interrupt back on. Transmission is polled:
//! a write waits while the UART's one-byte transmit buffer is full, and gives
//! up after [`TX_STUCK_SPINS`] polls of it ([`UartError::TxStuck`]).
//!
//! The ring is pure and tested on the host; the registers and the interrupt
//! are the board's.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Where UART0's registers are mapped, and its receive interrupt.
pub const UART0_BASE: usize = 0x4000_4000;
pub const UART0_RX_IRQ: u16 = 0;

/// The board's APB clock, from which the baud rate divides.
pub const PCLK_HZ: u32 = 25_000_000;

/// Received bytes the ring holds until the application reads them: more than
/// a telemetry acknowledgement burst, less than a frame (the decoder holds
/// frames; this only covers the time between two reads).
pub const RX_RING: usize = 512;

/// Polls of a full transmit buffer before a write gives up (about a second
/// under QEMU; the host side reading nothing for that long is a lost line).
pub const TX_STUCK_SPINS: u32 = 2_000_000;

/// A single-producer, single-consumer byte ring: the receive interrupt pushes,
/// the application pops. `N` is a power of two.
pub struct RxRing<const N: usize> {
    bytes: UnsafeCell<[u8; N]>,
    /// Bytes pushed and popped so far (wrapping): the producer writes `head`,
    /// the consumer `tail`.
    head: AtomicUsize,
    tail: AtomicUsize,
}

// SAFETY: one producer and one consumer (see `push` and `pop_into`); each slot
// is written before `head` publishes it and read before `tail` frees it.
unsafe impl<const N: usize> Sync for RxRing<N> {}

impl<const N: usize> RxRing<N> {
    const POWER_OF_TWO: () = assert!(N.is_power_of_two());

    pub const fn new() -> Self {
        let () = Self::POWER_OF_TWO;
        RxRing {
            bytes: UnsafeCell::new([0; N]),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        let head = self.head.load(Ordering::Acquire);
        head.wrapping_sub(self.tail.load(Ordering::Acquire))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_full(&self) -> bool {
        self.len() >= N
    }

    /// Adds `byte`; `false` (and nothing added) when full. The producer only.
    pub fn push(&self, byte: u8) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        if head.wrapping_sub(self.tail.load(Ordering::Acquire)) >= N {
            return false;
        }
        // SAFETY: `head % N` is in bounds, and the consumer does not read the
        // slot until `head` moves past it.
        unsafe { (self.bytes.get() as *mut u8).add(head % N).write(byte) };
        self.head.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// Moves the oldest bytes into `out`; how many. The consumer only.
    pub fn pop_into(&self, out: &mut [u8]) -> usize {
        let tail = self.tail.load(Ordering::Relaxed);
        let waiting = self.head.load(Ordering::Acquire).wrapping_sub(tail);
        let n = waiting.min(out.len());
        for (k, slot) in out.iter_mut().take(n).enumerate() {
            // SAFETY: in bounds; the producer wrote the slot before publishing
            // `head`, and does not write it again until `tail` moves past it.
            *slot = unsafe {
                (self.bytes.get() as *const u8)
                    .add(tail.wrapping_add(k) % N)
                    .read()
            };
        }
        self.tail.store(tail.wrapping_add(n), Ordering::Release);
        n
    }
}

impl<const N: usize> Default for RxRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(target_os = "none", feature = "serial"))]
pub use on_board::*;

/// The registers, the interrupt and the byte stream: the board's, in the
/// serial build.
#[cfg(all(target_os = "none", feature = "serial"))]
mod on_board {
    use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use super::*;

    const DATA: usize = 0x00;
    const STATE: usize = 0x04;
    const CTRL: usize = 0x08;
    /// Read: which interrupts are raised. Write: clears those set in the value.
    const INT: usize = 0x0C;
    const BAUDDIV: usize = 0x10;

    const STATE_TX_FULL: u32 = 1 << 0;
    const STATE_RX_FULL: u32 = 1 << 1;
    const CTRL_TX_EN: u32 = 1 << 0;
    const CTRL_RX_EN: u32 = 1 << 1;
    const CTRL_RX_INT_EN: u32 = 1 << 3;
    const INT_RX: u32 = 1 << 1;

    /// UART0's received bytes.
    static RX: RxRing<RX_RING> = RxRing::new();
    /// The handler turned the receive interrupt off (the ring was full).
    static RX_PAUSED: AtomicBool = AtomicBool::new(false);
    /// Receive interrupts taken.
    static RX_INTERRUPTS: AtomicU32 = AtomicU32::new(0);

    /// Receive interrupts taken so far.
    pub fn rx_interrupts() -> u32 {
        RX_INTERRUPTS.load(Ordering::Relaxed)
    }

    /// Something was received and not read yet.
    pub fn rx_waiting() -> bool {
        !RX.is_empty()
    }

    /// The UART's registers.
    #[derive(Clone, Copy)]
    pub struct Registers {
        base: usize,
    }

    impl Registers {
        /// # Safety
        ///
        /// `base` must be where a CMSDK APB UART is mapped, and nothing else may
        /// drive it.
        pub const unsafe fn new(base: usize) -> Registers {
            Registers { base }
        }

        fn read(self, offset: usize) -> u32 {
            // SAFETY: a register of the UART `new` was given.
            unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
        }

        fn write(self, offset: usize, value: u32) {
            // SAFETY: as in `read`.
            unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
        }

        /// Moves received bytes into the ring while it has room; turns the
        /// receive interrupt off when it has none, on otherwise. Runs in the
        /// interrupt handler, or with interrupts masked.
        fn drain_into_ring(self) {
            self.write(INT, INT_RX);
            while self.read(STATE) & STATE_RX_FULL != 0 {
                if RX.is_full() {
                    self.write(CTRL, CTRL_TX_EN | CTRL_RX_EN);
                    RX_PAUSED.store(true, Ordering::Relaxed);
                    return;
                }
                RX.push(self.read(DATA) as u8);
            }
            if RX_PAUSED.swap(false, Ordering::Relaxed) {
                self.write(CTRL, CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INT_EN);
            }
        }
    }

    /// For the default interrupt handler: handles UART0's receive line and
    /// returns `false` for any other interrupt.
    pub fn on_interrupt(irqn: i16) -> bool {
        if irqn != UART0_RX_IRQ as i16 {
            return false;
        }
        // SAFETY: UART0 is mapped there; the handler and `Uart` (which masks
        // interrupts around its own use of the receive side) are its only users.
        unsafe { Registers::new(UART0_BASE) }.drain_into_ring();
        RX_INTERRUPTS.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// A write could not go out.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum UartError {
        /// The transmit buffer stayed full for [`TX_STUCK_SPINS`] polls.
        TxStuck,
    }

    impl core::fmt::Display for UartError {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("the UART's transmit buffer stayed full")
        }
    }

    impl mq_embedded::embedded_io::Error for UartError {
        fn kind(&self) -> mq_embedded::embedded_io::ErrorKind {
            mq_embedded::embedded_io::ErrorKind::TimedOut
        }
    }

    /// UART0 as a byte stream (see the module docs).
    pub struct Uart {
        regs: Registers,
    }

    impl Uart {
        /// Sets UART0 up at `baud` (8N1 is all it does) with its receive
        /// interrupt on. Call once.
        pub fn uart0(baud: u32) -> Uart {
            // SAFETY: UART0 is mapped there, and this is its only driver.
            let regs = unsafe { Registers::new(UART0_BASE) };
            regs.write(CTRL, 0);
            // The divider must be at least 16.
            regs.write(BAUDDIV, (PCLK_HZ / baud.max(1)).max(16));
            while regs.read(STATE) & STATE_RX_FULL != 0 {
                let _ = regs.read(DATA);
            }
            regs.write(INT, !0);
            regs.write(CTRL, CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INT_EN);
            // SAFETY: the handler only moves bytes into the ring; unmasking it
            // breaks no critical section.
            unsafe { cortex_m::peripheral::NVIC::unmask(RxIrq) };
            Uart { regs }
        }

        /// Takes what the UART holds if the handler paused (the ring had been
        /// full), and turns its interrupt back on.
        fn resume_receiving(&self) {
            if RX_PAUSED.load(Ordering::Relaxed) {
                cortex_m::interrupt::free(|_| self.regs.drain_into_ring());
            }
        }
    }

    #[derive(Clone, Copy)]
    struct RxIrq;

    // SAFETY: 0 is UART0's receive interrupt on this board.
    unsafe impl cortex_m::interrupt::InterruptNumber for RxIrq {
        fn number(self) -> u16 {
            UART0_RX_IRQ
        }
    }

    impl Uart {
        /// Writes one byte once the transmit buffer has room.
        fn put(&self, byte: u8) -> Result<(), UartError> {
            self.wait_tx()?;
            self.regs.write(DATA, u32::from(byte));
            Ok(())
        }

        fn wait_tx(&self) -> Result<(), UartError> {
            for _ in 0..TX_STUCK_SPINS {
                if self.regs.read(STATE) & STATE_TX_FULL == 0 {
                    return Ok(());
                }
            }
            Err(UartError::TxStuck)
        }
    }

    mod io {
        use mq_embedded::embedded_io::{ErrorType, Read, ReadReady, Write};

        use super::{RX, Uart, UartError};

        impl ErrorType for Uart {
            type Error = UartError;
        }

        impl ReadReady for Uart {
            fn read_ready(&mut self) -> Result<bool, UartError> {
                self.resume_receiving();
                Ok(!RX.is_empty())
            }
        }

        impl Read for Uart {
            /// Waits (WFI) until something was received, then takes what there is.
            fn read(&mut self, buf: &mut [u8]) -> Result<usize, UartError> {
                loop {
                    let n = RX.pop_into(buf);
                    self.resume_receiving();
                    if n > 0 || buf.is_empty() {
                        return Ok(n);
                    }
                    cortex_m::asm::wfi();
                }
            }
        }

        impl Write for Uart {
            /// Writes all of `buf`, or what went out before the UART stalled
            /// (an error if nothing did).
            fn write(&mut self, buf: &[u8]) -> Result<usize, UartError> {
                for (k, &byte) in buf.iter().enumerate() {
                    if let Err(err) = self.put(byte) {
                        return if k == 0 { Err(err) } else { Ok(k) };
                    }
                }
                Ok(buf.len())
            }

            fn flush(&mut self) -> Result<(), UartError> {
                self.wait_tx()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RxRing;

    #[test]
    fn ring_keeps_order_across_the_wrap_and_refuses_when_full() {
        let ring: RxRing<8> = RxRing::new();
        let mut out = [0u8; 8];
        let (mut next, mut expected) = (0u8, 0u8);
        let mut check = |out: &[u8]| {
            for &b in out {
                assert_eq!(b, expected);
                expected = expected.wrapping_add(1);
            }
        };
        for round in 0..50 {
            let burst = 1 + round % 8;
            if ring.len() + burst > 8 {
                let n = ring.pop_into(&mut out);
                check(&out[..n]);
            }
            for _ in 0..burst {
                assert!(ring.push(next));
                next = next.wrapping_add(1);
            }
            let (before, take) = (ring.len(), 1 + (round * 3) % 8);
            let n = ring.pop_into(&mut out[..take]);
            assert_eq!(n, take.min(before));
            check(&out[..n]);
        }
        let n = ring.pop_into(&mut out);
        check(&out[..n]);
        for _ in 0..8 {
            assert!(ring.push(next));
            next = next.wrapping_add(1);
        }
        assert!(ring.is_full());
        assert!(!ring.push(0xAA));
        assert_eq!(ring.pop_into(&mut out), 8);
        check(&out);
        assert!(ring.is_empty());
        assert_eq!(ring.pop_into(&mut out), 0);
    }
}
