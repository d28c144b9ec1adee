//! The driver's side towards the socket: the loop reports the connection
//! coming and going, reads into [`read_buf`](Driver::read_buf) and writes from
//! [`output`](Driver::output); the driver moves those bytes into and out of
//! the session, and takes output only while the socket keeps up.

use std::io;

use mq_core::Instant;
use mq_core::client::Framing;
use mq_core::framing::stream::{Split, StreamDecoder};
use tracing::debug;

use super::{Driver, READ_CHUNK, WRITE_HIGH_WATER};

impl Driver {
    /// The connection is up.
    pub(crate) fn handle_connected(&mut self, now: Instant) {
        self.draining = false;
        self.clear_buffers();
        if let Err(e) = self.start_tls() {
            self.handle_disconnected(now, Some(e));
            return;
        }
        self.session.handle_connected(now);
    }

    /// The connection (or the attempt) is over; `error` says why, if it failed.
    ///
    /// Input already read is not lost: whole frames in the read buffer still go
    /// to the session (the broker's last words, such as `Close` with
    /// `SessionTakenOver`, are usually right before its end of stream), and the
    /// session hears of the disconnect once none is left. While the session
    /// cannot take them (a full sink), that waits for the application.
    pub(crate) fn handle_disconnected(&mut self, now: Instant, error: Option<io::Error>) {
        if let Some(e) = &error {
            debug!("connection lost: {e}");
        }
        if !self.welcomed && self.connect_error.is_none() {
            self.connect_error = error;
        }
        // Nothing more can be written on this connection.
        self.tls_conn = None;
        self.tx_start = 0;
        self.tx_end = 0;
        self.draining = true;
        self.settle_disconnect(now);
    }

    /// Reports a lost transport to the session once the input it left behind
    /// holds no whole frame. True when it did.
    pub(super) fn settle_disconnect(&mut self, now: Instant) -> bool {
        if !self.draining {
            return false;
        }
        if self.rx_start < self.rx_len && self.holds_whole_frame() {
            return false;
        }
        self.draining = false;
        self.clear_buffers();
        self.session.handle_disconnected(now);
        true
    }

    /// Where to read socket bytes into; empty while the session cannot take
    /// more (backpressure).
    pub(crate) fn read_buf(&mut self) -> &mut [u8] {
        self.make_read_room();
        &mut self.rx[self.rx_len..]
    }

    /// Makes room at the end of the read buffer. Consumed input is forgotten
    /// for free; what is left moves to the front only once less than
    /// [`READ_CHUNK`] is free after it, and then only when the move copies
    /// no more than was consumed before it, or when what is left holds no
    /// whole frame (the rest of it must fit). So most reads copy nothing,
    /// and a backlog the session does not take yet (a full sink) is not
    /// moved again at every read for the little room a few frames taken
    /// gave back: moved so, it cost a 1 KiB peer run 28 M instructions,
    /// more than one copy of every byte received. `rx` holds a largest
    /// frame plus `READ_CHUNK`, so after a move the rest of any frame fits;
    /// with no room at the end, the session still takes the whole frames
    /// in the buffer as the application makes room for them.
    pub(super) fn make_read_room(&mut self) {
        if self.rx_start == self.rx_len {
            self.rx_start = 0;
            self.rx_len = 0;
        } else if self.rx_start > 0
            && self.rx.len() - self.rx_len < READ_CHUNK
            && (self.rx_start >= self.rx_len - self.rx_start || !self.holds_whole_frame())
        {
            self.rx.copy_within(self.rx_start..self.rx_len, 0);
            self.rx_len -= self.rx_start;
            self.rx_start = 0;
        }
    }

    /// Whether the input not consumed yet starts with a whole frame.
    fn holds_whole_frame(&self) -> bool {
        let decoder = StreamDecoder::new(self.session.receive_limits().max_frame);
        matches!(
            decoder.split(&self.rx[self.rx_start..self.rx_len]),
            Ok(Split::Whole { .. })
        )
    }

    /// `n` bytes were read into [`read_buf`](Self::read_buf).
    pub(crate) fn handle_read(&mut self, n: usize) {
        self.rx_len = (self.rx_len + n).min(self.rx.len());
    }

    /// Bytes to write to the socket.
    pub(crate) fn output(&self) -> &[u8] {
        &self.tx[self.tx_start..self.tx_end]
    }

    /// `n` bytes of [`output`](Self::output) were written.
    pub(crate) fn handle_written(&mut self, n: usize) {
        self.tx_start = (self.tx_start + n).min(self.tx_end);
        if self.tx_start == self.tx_end {
            self.tx_start = 0;
            self.tx_end = 0;
        }
    }

    /// Time passed; call at [`Wants::timeout`](super::Wants::timeout) (earlier is harmless).
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.session.handle_timeout(now);
    }

    fn clear_buffers(&mut self) {
        self.rx_start = 0;
        self.rx_len = 0;
        self.tx_start = 0;
        self.tx_end = 0;
    }

    /// Takes output from the session while the socket keeps up.
    pub(super) fn transmit(&mut self, now: Instant) -> bool {
        let mut any = false;
        while self.tx_end - self.tx_start < WRITE_HIGH_WATER {
            if self.tx.len() - self.tx_end < self.frame_room {
                self.tx.copy_within(self.tx_start..self.tx_end, 0);
                self.tx_end -= self.tx_start;
                self.tx_start = 0;
            }
            match self.session.poll_transmit(now, &mut self.tx[self.tx_end..]) {
                Some(n) => {
                    self.tx_end += n;
                    any = true;
                }
                None => break,
            }
        }
        any
    }

    /// Makes room in the output buffer for the broker's largest frame.
    pub(super) fn size_output(&mut self) {
        let Some(limits) = self.session.broker_limits() else {
            return;
        };
        let room = Framing::Stream.max_framed_len(limits.max_frame as usize);
        if room > self.frame_room {
            self.frame_room = room;
            // A new zeroed buffer, which the allocator takes from pages known
            // to be zero, rather than `resize`, which writes every zero (about
            // 1 MiB with the default limits); what waits for the socket moves.
            let mut tx = vec![0; WRITE_HIGH_WATER + room];
            let pending = self.tx_end - self.tx_start;
            tx[..pending].copy_from_slice(&self.tx[self.tx_start..self.tx_end]);
            self.tx = tx;
            self.tx_start = 0;
            self.tx_end = pending;
        }
    }
}
