//! The caller's memory: the four buffers a client works in, and how small they
//! may be.

use core::fmt;

use mq_core::client::{Framing, INBOX_RECORD_OVERHEAD};

/// The smallest maximum frame a client may announce: `mqd` refuses a `Hello`
/// with less. Every buffer must hold a frame of this size.
pub const MIN_FRAME: usize = 512;

/// The memory a client works in, borrowed for its lifetime (typically
/// `'static`, from [`Storage`] or `static mut` arrays). Nothing else is
/// allocated.
#[derive(Debug)]
pub struct Buffers<'a> {
    /// Publishes until they are written (QoS 0) or acknowledged by the broker
    /// (QoS 1). Each takes its topic, payload, encoded properties and
    /// [`OUTBOX_RECORD_OVERHEAD`](mq_core::client::OUTBOX_RECORD_OVERHEAD)
    /// (32) bytes; size it for what may be outstanding while the broker is away.
    pub outbox: &'a mut [u8],
    /// Received messages until [`poll`](crate::TcpClient::poll) hands them out.
    /// Each takes its topic, payload, encoded properties and
    /// [`INBOX_RECORD_OVERHEAD`] (56) bytes; messages larger than the inbox
    /// arrive as [`Event::Chunk`](crate::Event::Chunk)s. At least
    /// [`MIN_FRAME`] + 56 bytes.
    pub inbox: &'a mut [u8],
    /// Receive buffer: the largest frame the client accepts is what fits here
    /// (the client announces it to the broker, which fragments to it). At least
    /// [`MIN_FRAME`] plus framing (517 bytes over TCP, 520 on a serial line).
    pub rx: &'a mut [u8],
    /// Transmit buffer: the largest frame the client produces is what fits here
    /// (publishes are fragmented to it, see
    /// [`Config::max_frame_out`](mq_core::client::Config::max_frame_out)). At
    /// least [`MIN_FRAME`] plus framing, like `rx`.
    pub tx: &'a mut [u8],
}

/// A client's memory in one place, sizes in the type: put it in a `static`
/// (it is all zeros, so it lands in `.bss`) and hand out [`buffers`](Self::buffers).
///
/// ```
/// use mq_embedded::Storage;
/// // 2 KiB outbox, 2 KiB inbox, 1 KiB frames each way: 6 KiB.
/// static mut STORAGE: Storage<2048, 2048, 1024, 1024> = Storage::new();
/// ```
#[derive(Debug)]
pub struct Storage<const OUTBOX: usize, const INBOX: usize, const RX: usize, const TX: usize> {
    outbox: [u8; OUTBOX],
    inbox: [u8; INBOX],
    rx: [u8; RX],
    tx: [u8; TX],
}

impl<const OUTBOX: usize, const INBOX: usize, const RX: usize, const TX: usize>
    Storage<OUTBOX, INBOX, RX, TX>
{
    /// Zeroed storage.
    pub const fn new() -> Self {
        Storage {
            outbox: [0; OUTBOX],
            inbox: [0; INBOX],
            rx: [0; RX],
            tx: [0; TX],
        }
    }

    /// The four buffers, borrowed.
    pub fn buffers(&mut self) -> Buffers<'_> {
        Buffers {
            outbox: &mut self.outbox,
            inbox: &mut self.inbox,
            rx: &mut self.rx,
            tx: &mut self.tx,
        }
    }
}

impl<const OUTBOX: usize, const INBOX: usize, const RX: usize, const TX: usize> Default
    for Storage<OUTBOX, INBOX, RX, TX>
{
    fn default() -> Self {
        Self::new()
    }
}

/// A buffer is too small for the client to work; nothing was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BufferError {
    /// [`Buffers::inbox`] must have at least `needed` bytes.
    Inbox {
        /// The least that works.
        needed: usize,
    },
    /// [`Buffers::rx`] must have at least `needed` bytes.
    Rx {
        /// The least that works.
        needed: usize,
    },
    /// [`Buffers::tx`] must have at least `needed` bytes.
    Tx {
        /// The least that works.
        needed: usize,
    },
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (which, needed) = match self {
            BufferError::Inbox { needed } => ("inbox", needed),
            BufferError::Rx { needed } => ("receive", needed),
            BufferError::Tx { needed } => ("transmit", needed),
        };
        write!(
            f,
            "{which} buffer too small: at least {needed} bytes needed"
        )
    }
}

impl core::error::Error for BufferError {}

impl Buffers<'_> {
    /// Checks the sizes for `framing`.
    pub(crate) fn check(&self, framing: Framing) -> Result<(), BufferError> {
        let inbox = MIN_FRAME + INBOX_RECORD_OVERHEAD;
        let framed = framing.max_framed_len(MIN_FRAME);
        if self.inbox.len() < inbox {
            Err(BufferError::Inbox { needed: inbox })
        } else if self.rx.len() < framed {
            Err(BufferError::Rx { needed: framed })
        } else if self.tx.len() < framed {
            Err(BufferError::Tx { needed: framed })
        } else {
            Ok(())
        }
    }
}

/// The largest frame that fits `len` bytes once framed, as a frame limit.
pub(crate) fn largest_frame(framing: Framing, len: usize) -> u32 {
    u32::try_from(framing.largest_frame(len)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_frame_is_exact() {
        for framing in [Framing::Stream, Framing::Serial] {
            for len in [520, 600, 1024, 2048, 16_389, 70_000] {
                let frame = largest_frame(framing, len) as usize;
                assert!(framing.max_framed_len(frame) <= len, "{framing:?} {len}");
                assert!(framing.max_framed_len(frame + 1) > len, "{framing:?} {len}");
            }
        }
        assert_eq!(Framing::Stream.max_framed_len(MIN_FRAME), 514);
        assert_eq!(Framing::Serial.max_framed_len(MIN_FRAME), 520);
    }
}
