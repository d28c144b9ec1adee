//! The decoder of a serial-framed connection's input, frame by frame, for the
//! broker task (the broker decodes stream framing itself, not serial framing).
//! It lived in `serial.rs`, which serves lines through the server's handle:
//! here the two modules no longer use each other. (Its test stays in
//! `serial.rs`, with the frames it shares with the line's tests.)

use mq_core::broker::{Broker, ConnId};
use mq_core::framing::serial::{self, SerialDecoder};

/// Decodes a serial-framed connection's input for the broker, frame by frame
/// (the broker decodes stream framing itself).
pub(crate) struct SerialInput {
    decoder: SerialDecoder<Vec<u8>>,
    /// The broker could not take the decoder's last frame yet.
    refused: bool,
}

impl SerialInput {
    /// A decoder for frames up to `max_frame` bytes.
    pub(crate) fn new(max_frame: u32) -> SerialInput {
        SerialInput {
            decoder: SerialDecoder::new(vec![0; serial::max_framed_len(max_frame as usize)]),
            refused: false,
        }
    }

    /// Whether a decoded frame waits for the broker.
    pub(crate) fn holds_frame(&self) -> bool {
        self.refused
    }

    /// Offers the frame the broker refused last, then decodes `bytes` into
    /// frames for it; stops at a frame it cannot take yet (kept for the next
    /// call). Returns how many bytes were consumed.
    pub(crate) fn offer(
        &mut self,
        broker: &mut Broker,
        conn: ConnId,
        now: mq_core::Instant,
        bytes: &[u8],
    ) -> usize {
        if self.refused {
            if let Some(frame) = self.decoder.last_frame()
                && !broker.handle_frame(conn, now, frame)
            {
                return 0;
            }
            self.refused = false;
        }
        let mut used = 0;
        while let Some(rest) = bytes.get(used..).filter(|rest| !rest.is_empty()) {
            let (n, out) = self.decoder.feed(rest);
            used += n.max(1);
            match out {
                Some(Ok(frame)) if !broker.handle_frame(conn, now, frame) => {
                    self.refused = true;
                    break;
                }
                Some(Err(e)) => tracing::debug!(conn = conn.0, error = %e, "serial frame dropped"),
                _ => {}
            }
        }
        used.min(bytes.len())
    }
}
