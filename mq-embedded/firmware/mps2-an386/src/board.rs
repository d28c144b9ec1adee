//! The QEMU mps2-an386 board: brings up the LAN9118 and the clock, sleeps until
//! the next deadline or a received frame, and ends the run through semihosting.
//!
//! Idle is `WFI`, woken by the LAN9118's receive interrupt (IRQ 13) or a one-shot
//! SysTick set to the next deadline, so QEMU uses no host CPU while the firmware
//! waits. The interrupt handlers themselves live in the binary (cortex-m-rt wants
//! them there) and call [`on_systick`] and [`on_interrupt`].

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{NVIC, SYST};

use crate::clock;
pub use crate::exit_code::ExitCode;
use crate::lan9118::{self, InitError, Lan9118, Registers};

/// Where the LAN9118's registers are mapped.
pub const ETH_BASE: usize = 0x4020_0000;

/// The LAN9118's interrupt line.
pub const ETH_IRQ: u16 = 13;

/// Sleeps (WFI) so far, and LAN9118 interrupts taken.
static SLEEPS: AtomicU32 = AtomicU32::new(0);
static ETH_INTERRUPTS: AtomicU32 = AtomicU32::new(0);

/// How the firmware idled: proof that frames wake it (not only the timer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleCounters {
    pub sleeps: u32,
    pub eth_interrupts: u32,
}

/// The idle counters so far.
pub fn idle_counters() -> IdleCounters {
    IdleCounters {
        sleeps: SLEEPS.load(Ordering::Relaxed),
        eth_interrupts: ETH_INTERRUPTS.load(Ordering::Relaxed),
    }
}

/// SysTick's reload register is 24 bits wide: at 25 MHz, a sleep of 0.67 s at most.
const SYSTICK_MAX: u32 = 0x00FF_FFFF;

/// Ends the QEMU run with `code` as its exit status.
pub fn exit(code: ExitCode) -> ! {
    semihosting::process::exit(i32::from(code as u8))
}

#[derive(Clone, Copy)]
struct Irq(u16);

// SAFETY: 13 is a valid interrupt number on this board (the LAN9118's line).
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}

/// The board once it is up: the parts the idle loop needs.
pub struct Board {
    syst: SYST,
    eth: Registers,
}

/// Brings the board up: the LAN9118 (reset, MAC address, receive interrupt), the
/// clock on its counter, SysTick as the wake-up alarm. Call once.
pub fn init() -> Result<(Board, Lan9118<'static>), InitError> {
    let Some(core) = cortex_m::Peripherals::take() else {
        panic!("board::init called twice");
    };
    // SAFETY: ETH_BASE is where mps2-an386 maps the LAN9118 (QEMU hw/arm/mps2.c).
    let registers = unsafe { Registers::new(ETH_BASE) };
    let rx = cortex_m::singleton!(ETH_RX: [u8; lan9118::RX_BUFFER] = [0; lan9118::RX_BUFFER])
        .expect("taken once, after Peripherals::take");
    let tx = cortex_m::singleton!(ETH_TX: [u8; lan9118::TX_BUFFER] = [0; lan9118::TX_BUFFER])
        .expect("taken once, after Peripherals::take");
    let eth = Lan9118::new(registers, rx, tx)?;
    clock::start(registers);

    let mut syst = core.SYST;
    syst.disable_counter();
    syst.set_clock_source(SystClkSource::Core);
    syst.enable_interrupt();
    // SAFETY: the handler for this line only acknowledges the controller's
    // interrupts; unmasking it breaks no critical section.
    unsafe { NVIC::unmask(Irq(ETH_IRQ)) };
    Ok((
        Board {
            syst,
            eth: registers,
        },
        eth,
    ))
}

impl Board {
    /// Sleeps until a frame arrives or `micros` microseconds pass, whichever is
    /// first (`None`: until a frame). Returns at once if a frame is already waiting.
    pub fn idle(&mut self, micros: Option<u64>) {
        let eth = self.eth;
        self.idle_unless(micros, || {
            // Acknowledge first, then look: a frame landing after the look raises
            // the line again and WFI returns at once.
            eth.acknowledge_interrupts();
            eth.rx_frames_waiting() > 0
        });
    }

    /// Sleeps until an interrupt or `micros` microseconds pass (`None`: until
    /// an interrupt), unless `ready` (asked with interrupts masked, so nothing
    /// it looks at changes before WFI) says there is work already. For
    /// applications woken by another device than the LAN9118 (the UART).
    pub fn idle_unless(&mut self, micros: Option<u64>, ready: impl FnOnce() -> bool) {
        if micros == Some(0) {
            return;
        }
        cortex_m::interrupt::free(|_| {
            if ready() {
                return;
            }
            // Also without a deadline: the clock's extension needs a reading
            // at least once per 171 s.
            let ticks = micros.map_or(u64::from(SYSTICK_MAX), clock::micros_to_ticks);
            self.syst
                .set_reload(ticks.clamp(1, u64::from(SYSTICK_MAX)) as u32);
            self.syst.clear_current();
            self.syst.enable_counter();
            // Interrupts are masked: a pending one ends WFI, and its handler runs
            // when the critical section ends.
            cortex_m::asm::wfi();
            SLEEPS.fetch_add(1, Ordering::Relaxed);
        });
    }
}

/// For the SysTick handler: the alarm is one-shot; reading the clock keeps its
/// 64-bit extension current during long sleeps.
pub fn on_systick() {
    // SAFETY: the handler is the only other user of SYST, and it only stops the
    // counter, which `Board::idle` restarts on its next sleep.
    let mut syst = unsafe { cortex_m::Peripherals::steal() }.SYST;
    syst.disable_counter();
    clock::now_ticks();
}

/// For the default interrupt handler: handles the LAN9118's line and returns
/// `false` for any other interrupt (a fault in this firmware).
pub fn on_interrupt(irqn: i16) -> bool {
    if irqn != ETH_IRQ as i16 {
        return false;
    }
    // SAFETY: as in `init`.
    unsafe { Registers::new(ETH_BASE) }.acknowledge_interrupts();
    ETH_INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    true
}
