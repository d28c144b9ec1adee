//! SMSC LAN9118 Ethernet controller (as QEMU emulates it on the mps2 boards) as a
//! smoltcp [`Device`].
//!
//! The controller has FIFOs instead of descriptor rings: a received frame is a
//! status word (length including the 4-byte FCS, error bit) in the RX status FIFO
//! and its bytes as little-endian 32-bit words in the RX data FIFO; a frame is sent
//! by writing two command words and its bytes to the TX data FIFO. Every frame's
//! words are read out, also the ones that are dropped (a bad frame, one too long
//! for the buffer): the RX "peek" register and the fast-forward are unreliable in
//! QEMU, and a frame left half-read would shift every later one.
//!
//! QEMU's receive FIFO holds about 10 KiB and drops frames beyond it without
//! counting them, so TCP receive windows above 8 KiB lose segments.

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Largest Ethernet frame handed to or taken from smoltcp (no FCS, no VLAN tag).
pub const MTU: usize = 1514;

/// Bytes of the receive buffer: a maximal frame plus FCS, in whole words.
pub const RX_BUFFER: usize = 1536;

/// Bytes of the transmit buffer.
pub const TX_BUFFER: usize = MTU;

/// Full-size frames QEMU's receive data FIFO holds (2640 words, and each frame
/// takes its length, FCS included, in whole words): smoltcp caps the TCP window
/// it advertises at this many segments, so a peer never overruns the FIFO.
pub const RX_FIFO_FRAMES: usize = 2640 * 4 / (MTU + 4 + 2);

mod reg {
    pub const RX_DATA_FIFO: usize = 0x00;
    pub const TX_DATA_FIFO: usize = 0x20;
    pub const RX_STATUS_FIFO: usize = 0x40;
    pub const TX_STATUS_FIFO: usize = 0x48;
    pub const ID_REV: usize = 0x50;
    pub const IRQ_CFG: usize = 0x54;
    pub const INT_STS: usize = 0x58;
    pub const INT_EN: usize = 0x5C;
    pub const BYTE_TEST: usize = 0x64;
    pub const RX_CFG: usize = 0x6C;
    pub const TX_CFG: usize = 0x70;
    pub const HW_CFG: usize = 0x74;
    pub const RX_FIFO_INF: usize = 0x7C;
    pub const TX_FIFO_INF: usize = 0x80;
    pub const PMT_CTRL: usize = 0x84;
    pub const FREE_RUN: usize = 0x9C;
    pub const MAC_CSR_CMD: usize = 0xA4;
    pub const MAC_CSR_DATA: usize = 0xA8;

    /// Indirect MAC registers, through MAC_CSR_CMD / MAC_CSR_DATA.
    pub const MAC_CR: u32 = 1;
    pub const MAC_ADDRH: u32 = 2;
    pub const MAC_ADDRL: u32 = 3;
}

const BYTE_TEST_VALUE: u32 = 0x8765_4321;
const CHIP_ID: u32 = 0x0118;
const HW_CFG_SRST: u32 = 1 << 0;
const PMT_CTRL_READY: u32 = 1 << 0;
/// IRQ_CFG: interrupt output enabled, active high, push-pull.
const IRQ_CFG_ENABLE_HIGH: u32 = (1 << 8) | (1 << 4) | (1 << 0);
/// INT_STS / INT_EN: the RX status FIFO holds at least one frame.
const INT_RSFL: u32 = 1 << 3;
const TX_CFG_TX_ON: u32 = 1 << 1;
/// TX_CFG: a full TX status FIFO does not stop the transmitter.
const TX_CFG_TXSAO: u32 = 1 << 2;
const MAC_CR_FDPX: u32 = 1 << 20;
const MAC_CR_TXEN: u32 = 1 << 3;
const MAC_CR_RXEN: u32 = 1 << 2;
const MAC_CSR_BUSY: u32 = 1 << 31;
const MAC_CSR_READ: u32 = 1 << 30;
const TX_CMD_A_FIRST: u32 = 1 << 13;
const TX_CMD_A_LAST: u32 = 1 << 12;
/// TX status word: error summary.
const TX_STATUS_ES: u32 = 1 << 15;

/// How many times to poll for the end of a reset or a MAC register access.
const SPIN_LIMIT: u32 = 100_000;

/// The controller's register block (a plain address; copy it freely).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registers {
    base: usize,
}

impl Registers {
    /// The register block at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a LAN9118's registers, mapped for 32-bit
    /// volatile access, and nothing else may use that memory as ordinary memory.
    pub const unsafe fn new(base: usize) -> Registers {
        Registers { base }
    }

    fn read(self, offset: usize) -> u32 {
        // SAFETY: `new`'s contract: a device register, 4-byte aligned.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write(self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    /// The 25 MHz free-running counter (restarts at the soft reset).
    pub fn free_run(self) -> u32 {
        self.read(reg::FREE_RUN)
    }

    /// Acknowledges every pending interrupt, which lowers the interrupt line. For the
    /// interrupt handler: the main loop finds the frames in the FIFO itself.
    pub fn acknowledge_interrupts(self) {
        let pending = self.read(reg::INT_STS);
        self.write(reg::INT_STS, pending);
    }

    /// Frames waiting in the RX status FIFO.
    pub fn rx_frames_waiting(self) -> u32 {
        (self.read(reg::RX_FIFO_INF) >> 16) & 0xFF
    }

    fn mac_read(self, register: u32) -> Result<u32, InitError> {
        self.write(reg::MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | register);
        self.mac_wait()?;
        Ok(self.read(reg::MAC_CSR_DATA))
    }

    fn mac_write(self, register: u32, value: u32) -> Result<(), InitError> {
        self.write(reg::MAC_CSR_DATA, value);
        self.write(reg::MAC_CSR_CMD, MAC_CSR_BUSY | register);
        self.mac_wait()
    }

    fn mac_wait(self) -> Result<(), InitError> {
        spin_until(|| self.read(reg::MAC_CSR_CMD) & MAC_CSR_BUSY == 0)
            .ok_or(InitError::Timeout("MAC register access"))
    }
}

fn spin_until(mut done: impl FnMut() -> bool) -> Option<()> {
    (0..SPIN_LIMIT).any(|_| done()).then_some(())
}

/// Why the controller could not be brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitError {
    /// BYTE_TEST did not read back its fixed pattern: no controller, or wrong endianness.
    NoDevice(u32),
    /// ID_REV names another chip.
    UnknownChip(u32),
    /// The controller did not finish a step (reset, ready, MAC access).
    Timeout(&'static str),
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::NoDevice(read) => {
                write!(f, "no LAN9118: BYTE_TEST reads {read:#010x}")
            }
            InitError::UnknownChip(id) => write!(f, "not a LAN9118: ID_REV is {id:#010x}"),
            InitError::Timeout(step) => write!(f, "LAN9118 timed out: {step}"),
        }
    }
}

impl core::error::Error for InitError {}

/// What became of received and sent frames (only the driver's own losses; QEMU's
/// silent FIFO drops are not visible).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub rx_frames: u32,
    /// Frames with the error bit set, discarded.
    pub rx_errors: u32,
    /// Frames too short for an Ethernet header or too long for the buffer, discarded.
    pub rx_bad_length: u32,
    pub tx_frames: u32,
    /// TX status words with the error bit set.
    pub tx_errors: u32,
}

/// A received frame's status word from the RX status FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxStatus(pub u32);

impl RxStatus {
    const ERROR: u32 = 1 << 15;
    /// The frame failed the address filter (only delivered with MAC_CR.RXALL).
    const FILTER_FAIL: u32 = 1 << 30;
    const FCS: usize = 4;
    const ETHERNET_HEADER: usize = 14;

    /// The frame's length in the FIFO, FCS included.
    pub fn length(self) -> usize {
        ((self.0 >> 16) & 0x3FFF) as usize
    }

    /// How many data FIFO words the frame occupies.
    pub fn words(self) -> usize {
        self.length().div_ceil(4)
    }

    /// The frame's length without FCS if it should be handed on: no error, passed the
    /// filter, at least an Ethernet header, and its words fit `buffer` bytes.
    pub fn usable(self, buffer: usize) -> Result<usize, Discard> {
        if self.0 & (Self::ERROR | Self::FILTER_FAIL) != 0 {
            return Err(Discard::Error);
        }
        let length = self.length();
        if length < Self::ETHERNET_HEADER + Self::FCS || self.words() * 4 > buffer {
            return Err(Discard::BadLength);
        }
        Ok(length - Self::FCS)
    }
}

/// Why a received frame was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    Error,
    BadLength,
}

/// The LAN9118 driver: owns the controller and a receive and a transmit buffer.
pub struct Lan9118<'a> {
    registers: Registers,
    mac: [u8; 6],
    rx: &'a mut [u8; RX_BUFFER],
    tx: &'a mut [u8; TX_BUFFER],
    tag: u16,
    counters: Counters,
}

impl<'a> Lan9118<'a> {
    /// Resets and starts the controller: soft reset, wait until ready, read the MAC
    /// address, interrupt on received frames (line active high), transmitter on,
    /// MAC receiving and sending in full duplex (unicast to us and broadcast).
    pub fn new(
        registers: Registers,
        rx: &'a mut [u8; RX_BUFFER],
        tx: &'a mut [u8; TX_BUFFER],
    ) -> Result<Lan9118<'a>, InitError> {
        let byte_test = registers.read(reg::BYTE_TEST);
        if byte_test != BYTE_TEST_VALUE {
            return Err(InitError::NoDevice(byte_test));
        }
        let id = registers.read(reg::ID_REV);
        if id >> 16 != CHIP_ID {
            return Err(InitError::UnknownChip(id));
        }
        registers.write(reg::HW_CFG, HW_CFG_SRST);
        spin_until(|| registers.read(reg::HW_CFG) & HW_CFG_SRST == 0)
            .ok_or(InitError::Timeout("soft reset"))?;
        spin_until(|| registers.read(reg::PMT_CTRL) & PMT_CTRL_READY != 0)
            .ok_or(InitError::Timeout("ready after reset"))?;

        let low = registers.mac_read(reg::MAC_ADDRL)?.to_le_bytes();
        let high = registers.mac_read(reg::MAC_ADDRH)?.to_le_bytes();
        let mut mac = [low[0], low[1], low[2], low[3], high[0], high[1]];
        if mac == [0; 6] || mac == [0xFF; 6] || mac[0] & 1 != 0 {
            // No usable address from the EEPROM: a fixed locally administered one.
            mac = [0x02, 0x00, 0x00, 0x41, 0x03, 0x86];
            registers.mac_write(
                reg::MAC_ADDRL,
                u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
            )?;
            registers.mac_write(reg::MAC_ADDRH, u32::from(mac[4]) | u32::from(mac[5]) << 8)?;
        }

        registers.write(reg::INT_EN, 0);
        registers.write(reg::INT_STS, u32::MAX);
        registers.write(reg::IRQ_CFG, IRQ_CFG_ENABLE_HIGH);
        registers.write(reg::INT_EN, INT_RSFL);
        registers.write(reg::RX_CFG, 0); // no offset, 4-byte end alignment
        registers.write(reg::TX_CFG, TX_CFG_TX_ON | TX_CFG_TXSAO);
        registers.mac_write(reg::MAC_CR, MAC_CR_FDPX | MAC_CR_TXEN | MAC_CR_RXEN)?;

        Ok(Lan9118 {
            registers,
            mac,
            rx,
            tx,
            tag: 0,
            counters: Counters::default(),
        })
    }

    /// The controller's MAC address.
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    /// The register block, for the interrupt handler and the clock.
    pub fn registers(&self) -> Registers {
        self.registers
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Reads the next good frame into the receive buffer, discarding bad ones on
    /// the way; its length, or `None` when the FIFO is empty.
    fn receive_frame(&mut self) -> Option<usize> {
        while self.registers.rx_frames_waiting() > 0 {
            let status = RxStatus(self.registers.read(reg::RX_STATUS_FIFO));
            match status.usable(self.rx.len()) {
                Ok(length) => {
                    for chunk in self.rx[..status.words() * 4].chunks_exact_mut(4) {
                        let word = self.registers.read(reg::RX_DATA_FIFO);
                        chunk.copy_from_slice(&word.to_le_bytes());
                    }
                    self.counters.rx_frames += 1;
                    return Some(length);
                }
                Err(discard) => {
                    for _ in 0..status.words() {
                        self.registers.read(reg::RX_DATA_FIFO);
                    }
                    match discard {
                        Discard::Error => self.counters.rx_errors += 1,
                        Discard::BadLength => self.counters.rx_bad_length += 1,
                    }
                }
            }
        }
        None
    }

    /// Pops the TX status words of sent frames, counting errors.
    fn reap_tx_status(&mut self) {
        let used = (self.registers.read(reg::TX_FIFO_INF) >> 16) & 0xFF;
        for _ in 0..used {
            if self.registers.read(reg::TX_STATUS_FIFO) & TX_STATUS_ES != 0 {
                self.counters.tx_errors += 1;
            }
        }
    }

    /// Is there room in the TX data FIFO for a maximal frame and its commands?
    fn tx_has_room(&self) -> bool {
        // TDFREE is in bytes on the chip; QEMU reports words, which only errs on
        // the safe side here.
        let free = (self.registers.read(reg::TX_FIFO_INF) & 0xFFFF) as usize;
        free >= TX_BUFFER + 8
    }
}

impl Device for Lan9118<'_> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let length = self.receive_frame()?;
        self.reap_tx_status();
        let room = self.tx_has_room();
        let rx = RxToken {
            frame: &self.rx[..length],
        };
        let tx = TxToken {
            registers: self.registers,
            buffer: self.tx,
            tag: &mut self.tag,
            counters: &mut self.counters.tx_frames,
            room,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        self.reap_tx_status();
        if !self.tx_has_room() {
            return None;
        }
        Some(TxToken {
            registers: self.registers,
            buffer: self.tx,
            tag: &mut self.tag,
            counters: &mut self.counters.tx_frames,
            room: true,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = Some(RX_FIFO_FRAMES);
        caps
    }
}

/// A received frame, borrowed from the driver's receive buffer.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Permission to send one frame through the driver's transmit buffer.
pub struct TxToken<'a> {
    registers: Registers,
    buffer: &'a mut [u8; TX_BUFFER],
    tag: &'a mut u16,
    counters: &'a mut u32,
    /// False for the reply token of a receive when the FIFO was full: the frame is
    /// built but dropped, as a full wire would (smoltcp retransmits).
    room: bool,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        assert!(
            len <= MTU,
            "smoltcp asked for a {len}-byte frame, above the MTU"
        );
        let frame = &mut self.buffer[..len];
        let result = f(frame);
        if self.room {
            *self.tag = self.tag.wrapping_add(1);
            let len32 = len as u32; // <= MTU
            self.registers
                .write(reg::TX_DATA_FIFO, TX_CMD_A_FIRST | TX_CMD_A_LAST | len32);
            self.registers
                .write(reg::TX_DATA_FIFO, u32::from(*self.tag) << 16 | len32);
            for chunk in frame.chunks(4) {
                let mut word = [0; 4];
                word[..chunk.len()].copy_from_slice(chunk);
                self.registers
                    .write(reg::TX_DATA_FIFO, u32::from_le_bytes(word));
            }
            *self.counters += 1;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(length: u32, flags: u32) -> RxStatus {
        RxStatus(length << 16 | flags)
    }

    #[test]
    fn good_frames_lose_only_their_fcs() {
        assert_eq!(status(64, 0).usable(RX_BUFFER), Ok(60));
        assert_eq!(status(1518, 0).usable(RX_BUFFER), Ok(1514));
        // Broadcast and multicast flags are not errors.
        assert_eq!(status(64, 1 << 13).usable(RX_BUFFER), Ok(60));
        assert_eq!(status(64, 1 << 10).usable(RX_BUFFER), Ok(60));
    }

    #[test]
    fn words_cover_the_fcs_and_round_up() {
        assert_eq!(status(64, 0).words(), 16);
        assert_eq!(status(65, 0).words(), 17);
        assert_eq!(status(18, 0).words(), 5);
    }

    #[test]
    fn bad_frames_are_discarded_whole() {
        assert_eq!(status(64, 1 << 15).usable(RX_BUFFER), Err(Discard::Error));
        assert_eq!(status(64, 1 << 30).usable(RX_BUFFER), Err(Discard::Error));
        assert_eq!(status(17, 0).usable(RX_BUFFER), Err(Discard::BadLength));
        assert_eq!(status(0, 0).usable(RX_BUFFER), Err(Discard::BadLength));
        assert_eq!(status(1537, 0).usable(RX_BUFFER), Err(Discard::BadLength));
        assert_eq!(status(0x3FFF, 0).usable(RX_BUFFER), Err(Discard::BadLength));
        // The discard reads every word of the frame, also for the longest status.
        assert_eq!(status(0x3FFF, 1 << 15).words(), 4096);
    }
}
