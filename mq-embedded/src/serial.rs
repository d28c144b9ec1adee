//! The driver over an `embedded-io` byte stream (a UART), with the COBS + CRC
//! framing of [`mq_core::framing::serial`].
//!
//! A serial line has no connect and no close: it is always "up". A connection
//! is the span from the device's `Hello` to its end, and the line carries one
//! connection after another:
//!
//! - **Opening** a connection forgets any partial input; the session then
//!   writes a lone delimiter (ending whatever partial frame the broker's decoder
//!   holds) and `Hello`. The broker (`mqd --serial`) treats a `Hello` on a line
//!   whose connection already had one as a new connection on the same line,
//!   closing the old one.
//! - **Loss** is noticed by the session's timers: no `Welcome` within
//!   `Config::connect_timeout`, or nothing received for 1.5 keepalive intervals
//!   while connected (the session pings at half the interval, so a live broker
//!   always answers). A broker that restarted answers the device's next frame
//!   (a ping at the latest) with an error, because that frame is not a `Hello`.
//!   Either way the session ends the connection and re-handshakes after its
//!   backoff, resuming the persistent session: the broker redelivers what was
//!   not acked and the outbox resends what was not stored.
//! - **Stale frames**: deliveries and acknowledgements of an earlier connection
//!   may still be on the line while a new `Hello` goes out; until `Welcome` the
//!   session drops them (counted in [`LineStats::stale_frames`]), as a new TCP
//!   connection would never see them.
//!
//! The delimiter and the stale frames are the session's rules for a serial line
//! (see the serial-line rules in [`mq_core::wire`]); this driver only moves
//! bytes and frames.
//! - **Noise** (a damaged or truncated frame) fails its CRC or COBS decoding
//!   and is dropped; the decoder resynchronises at the next delimiter. On an
//!   open connection the session then ends the connection (both sides do), so
//!   what the frame carried is recovered like a loss, in order: QoS 1
//!   publishes and deliveries are resent until acknowledged.

use core::mem::MaybeUninit;

use embedded_io::{Read, ReadReady, Write};
use mq_core::__mq_debug as debug;
use mq_core::Instant;
use mq_core::client::{Config, Event, Framer, SerialOnly};
use mq_core::framing::serial::{SerialDecoder, SerialError, SerialStats};
use mq_core::wire::DecodeError;

use crate::buffers::{BufferError, Buffers};
use crate::client::{Client, ClientSession, Link, LinkStatus, Transport, sealed};

/// Bytes read from the line at a time.
const READ_CHUNK: usize = 32;

/// An mq client over a UART (see the crate docs for the loop).
pub type SerialClient<
    'a,
    IO,
    const SUBS: usize = 8,
    const HELD: usize = 32,
    const REQS: usize = 4,
> = Client<'a, Serial<'a, IO>, SUBS, HELD, REQS>;

/// What a serial line has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LineStats {
    /// Frames decoded, and frames dropped for noise (CRC, COBS), for being
    /// larger than the receive buffer, or for not being frames.
    pub decoder: SerialStats,
    /// Frames of an earlier connection dropped while a new one was being
    /// opened: the session's [`Stats::stale_frames`](mq_core::client::Stats::stale_frames).
    pub stale_frames: u32,
    /// Reads that failed.
    pub read_errors: u32,
    /// Writes that failed; their bytes are lost (and recovered like noise).
    pub write_errors: u32,
}

/// The UART half of a [`SerialClient`]: the byte stream, the frame decoder over
/// the receive buffer, and bytes read but not decoded yet.
pub struct Serial<'a, IO> {
    io: IO,
    decoder: SerialDecoder<&'a mut [u8]>,
    chunk: [u8; READ_CHUNK],
    chunk_start: usize,
    chunk_end: usize,
    /// The session refused the decoder's last frame (backpressure): offer it
    /// again before reading on.
    refused: bool,
    read_errors: u32,
    write_errors: u32,
}

impl<IO> sealed::Sealed for Serial<'_, IO> {}

/// A serial client's session writes serial framing only.
impl<IO> Transport for Serial<'_, IO> {
    type Framer = SerialOnly;
    const FRAMER: SerialOnly = SerialOnly;
}

impl<'a, IO> Serial<'a, IO> {
    /// The transport over `io`, decoding into `rx`.
    fn over(io: IO, rx: &'a mut [u8]) -> Self {
        Serial {
            io,
            decoder: SerialDecoder::for_client(rx),
            chunk: [0; READ_CHUNK],
            chunk_start: 0,
            chunk_end: 0,
            refused: false,
            read_errors: 0,
            write_errors: 0,
        }
    }
}

impl<IO: Read + Write + ReadReady> Serial<'_, IO> {
    /// Refills `chunk` from the line if it is used up; `false` when nothing is
    /// waiting.
    fn refill(&mut self) -> bool {
        if self.chunk_start < self.chunk_end {
            return true;
        }
        self.chunk_start = 0;
        self.chunk_end = 0;
        match self.io.read_ready() {
            Ok(true) => {}
            Ok(false) => return false,
            Err(_) => {
                self.read_errors = self.read_errors.wrapping_add(1);
                return false;
            }
        }
        match self.io.read(&mut self.chunk) {
            Ok(n) => {
                self.chunk_end = n.min(READ_CHUNK);
                n > 0
            }
            Err(_) => {
                self.read_errors = self.read_errors.wrapping_add(1);
                false
            }
        }
    }
}

impl<IO: Read + Write + ReadReady> Link for Serial<'_, IO> {
    fn open(&mut self, _now: Instant) -> bool {
        self.decoder.reset();
        self.chunk_start = 0;
        self.chunk_end = 0;
        self.refused = false;
        true
    }

    fn status(&mut self) -> LinkStatus {
        LinkStatus::Up
    }

    fn close(&mut self) {}

    const SEND_AGAIN: bool = false;

    fn send(&mut self, bytes: &[u8]) -> usize {
        match self.io.write(bytes) {
            Ok(n) if n > 0 => n,
            // A line that takes nothing: the bytes are lost, as on a broken wire.
            _ => {
                self.write_errors = self.write_errors.wrapping_add(1);
                bytes.len()
            }
        }
    }

    fn receive<const SUBS: usize, const HELD: usize, const REQS: usize, F: Framer>(
        &mut self,
        now: Instant,
        session: &mut ClientSession<'_, SUBS, HELD, REQS, F>,
    ) {
        if self.refused {
            if let Some(frame) = self.decoder.last_frame()
                && session.handle_frame(now, frame).is_err()
            {
                return;
            }
            self.refused = false;
        }
        while self.refill() {
            let input = self
                .chunk
                .get(self.chunk_start..self.chunk_end)
                .unwrap_or(&[]);
            let (used, out) = self.decoder.feed(input);
            self.chunk_start += used.max(1);
            match out {
                Some(Ok(frame)) if session.handle_frame(now, frame).is_err() => {
                    self.refused = true;
                    return;
                }
                Some(Err(SerialError::Frame(DecodeError::Unexpected))) => {
                    session.handle_unexpected_frame(now);
                }
                Some(Err(e)) => {
                    debug!("serial frame dropped: {}", e);
                    session.handle_damaged_frame(now);
                }
                _ => {}
            }
        }
    }
}

impl<'a, IO: Read + Write + ReadReady, const SUBS: usize, const HELD: usize, const REQS: usize>
    Client<'a, Serial<'a, IO>, SUBS, HELD, REQS>
{
    /// A client that speaks to the broker over `io` (a UART, or any byte
    /// stream), working in `buffers`. The largest frames each way are what `rx`
    /// and `tx` hold. Nothing happens until [`connect`](Self::connect) and
    /// [`poll`](Self::poll).
    ///
    /// Name the type where the client is bound (`let client:
    /// SerialClient<'_, Uart> = SerialClient::new(..)?`): Rust does not infer
    /// the table sizes from the alias's defaults.
    pub fn new(config: Config, io: IO, buffers: Buffers<'a>) -> Result<Self, BufferError> {
        Client::new_with(config, buffers, |rx| Serial::over(io, rx))
    }

    /// [`new`](Self::new), built in `slot` rather than returned: the client
    /// (several KB, the session's tables) never passes through the stack,
    /// which building it by value makes as deep as it is large, once. For a
    /// client in a `static`.
    pub fn new_in<'s>(
        slot: &'s mut MaybeUninit<Self>,
        config: Config,
        io: IO,
        buffers: Buffers<'a>,
    ) -> Result<&'s mut Self, BufferError> {
        Client::new_in_with(slot, config, buffers, |rx| Serial::over(io, rx))
    }

    /// Does everything that is due, then returns the next event; call it until
    /// it returns `None`, then sleep until [`poll_at`](Self::poll_at) or the
    /// UART has input.
    ///
    /// Each call reads what the line has (`read_ready`, then `read`; it never
    /// waits for input), decodes frames into the session, runs its timers, and
    /// writes what the session sends (`write` may wait for the UART). A
    /// message borrows the client until the next call: copy the
    /// [`DeliveryId`](crate::DeliveryId) out, let the event go, then
    /// [`ack`](Self::ack).
    ///
    /// [`Event::Connect`] (a `Hello` goes out) and [`Event::Disconnected`] (the
    /// connection ended; a new `Hello` follows after the backoff) are for
    /// information: the client acts on them itself.
    pub fn poll(&mut self, now: Instant) -> Option<Event<'_>> {
        self.engine.drive(now, &mut self.transport);
        self.engine.session.poll_event()
    }

    /// When to call [`poll`](Self::poll) next at the latest, besides when the
    /// UART has input: the session's timers.
    pub fn poll_at(&self) -> Option<Instant> {
        self.engine.session.poll_timeout()
    }

    /// What the line has seen.
    pub fn line_stats(&self) -> LineStats {
        let t = &self.transport;
        LineStats {
            decoder: t.decoder.stats(),
            stale_frames: u32::try_from(self.engine.session.stats().stale_frames)
                .unwrap_or(u32::MAX),
            read_errors: t.read_errors,
            write_errors: t.write_errors,
        }
    }

    /// The byte stream.
    pub fn io(&self) -> &IO {
        &self.transport.io
    }

    /// The byte stream, mutably (to reconfigure the UART, say).
    pub fn io_mut(&mut self) -> &mut IO {
        &mut self.transport.io
    }
}

#[cfg(test)]
mod tests {
    use core::convert::Infallible;
    use std::collections::VecDeque;
    use std::vec::Vec;

    use embedded_io::ErrorType;
    use mq_core::framing::serial::{DELIMITER, encode_frame, max_framed_len};
    use mq_core::wire::{
        Deliver, Frame as WireFrame, Limits, PROTOCOL_VERSION, QoS, SubAck, Welcome,
    };

    use super::*;
    use crate::{Event, Storage, SubscribeOptions};

    /// An in-memory line: what the broker sends, what the board wrote.
    #[derive(Default)]
    struct Line {
        input: VecDeque<u8>,
        output: Vec<u8>,
    }

    impl ErrorType for Line {
        type Error = Infallible;
    }

    impl Read for Line {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
            let n = buf.len().min(self.input.len());
            for (dst, src) in buf.iter_mut().zip(self.input.drain(..n)) {
                *dst = src;
            }
            Ok(n)
        }
    }

    impl ReadReady for Line {
        fn read_ready(&mut self) -> Result<bool, Infallible> {
            Ok(!self.input.is_empty())
        }
    }

    impl Write for Line {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> Result<(), Infallible> {
            Ok(())
        }
    }

    type Board<'a> = SerialClient<'a, Line, 8, 1>;

    fn send(client: &mut Board<'_>, frame: WireFrame<'_>) {
        let mut buf = std::vec![0u8; max_framed_len(frame.encoded_len())];
        let n = encode_frame(&frame, &mut buf).unwrap();
        client.io_mut().input.extend(&buf[..n]);
    }

    /// The kinds of the frames the board wrote since the last call, and the
    /// bytes between frames (delimiters) seen.
    fn written(client: &mut Board<'_>) -> (Vec<&'static str>, usize) {
        let bytes = core::mem::take(&mut client.io_mut().output);
        let mut dec = SerialDecoder::new([0u8; 1024]);
        let (mut kinds, mut rest) = (Vec::new(), &bytes[..]);
        let mut empty = 0;
        while !rest.is_empty() {
            let (n, out) = dec.feed(rest);
            match out {
                Some(Ok(f)) => kinds.push(f.kind()),
                Some(Err(e)) => panic!("bad frame from the board: {e}"),
                None if n == 1 && rest[0] == DELIMITER => empty += 1,
                None => {}
            }
            rest = &rest[n..];
        }
        (kinds, empty)
    }

    fn deliver(tag: u64, seq: u64) -> WireFrame<'static> {
        WireFrame::Deliver(Deliver {
            sub: 1,
            topic: "cmd.x",
            seq,
            tag,
            attempt: 1,
            qos: QoS::AtLeastOnce,
            meta: Default::default(),
            fragment: None,
            payload: b"go",
        })
    }

    /// Polls until idle; the sequence numbers of the messages, other events
    /// by name.
    fn events(client: &mut Board<'_>, now: Instant) -> (Vec<u64>, Vec<&'static str>) {
        let (mut seqs, mut names) = (Vec::new(), Vec::new());
        while let Some(e) = client.poll(now) {
            match e {
                Event::Message(m) => seqs.push(m.seq),
                Event::Connect => names.push("connect"),
                Event::Connected { .. } => names.push("connected"),
                Event::Subscribed { .. } => names.push("subscribed"),
                _ => names.push("other"),
            }
        }
        (seqs, names)
    }

    #[test]
    fn built_in_place_it_opens_a_connection() {
        let mut storage: Storage<2048, 2048, 1024, 1024> = Storage::new();
        let mut slot = MaybeUninit::uninit();
        let config = Config::new("board-9").unwrap();
        let client: &mut Board<'_> =
            SerialClient::new_in(&mut slot, config, Line::default(), storage.buffers()).unwrap();
        let now = Instant::from_millis(1);
        client.connect(now);
        assert_eq!(events(client, now).1, ["connect"]);
        assert_eq!(written(client), (std::vec!["hello"], 1));
    }

    #[test]
    fn stale_frames_dropped_in_handshake_and_refused_frames_offered_again() {
        let mut storage: Storage<2048, 2048, 1024, 1024> = Storage::new();
        let config = Config::new("board-9").unwrap();
        let mut client: Board<'_> =
            SerialClient::new(config, Line::default(), storage.buffers()).unwrap();
        let now = Instant::from_millis(1);
        client.connect(now);
        assert_eq!(events(&mut client, now).1, ["connect"]);
        // A lone delimiter first, then Hello.
        assert_eq!(written(&mut client), (std::vec!["hello"], 1));

        // A delivery of an earlier connection, still on the line, then Welcome.
        send(&mut client, deliver(5, 1));
        send(
            &mut client,
            WireFrame::Welcome(Welcome {
                version: PROTOCOL_VERSION,
                session_present: true,
                limits: Limits {
                    max_frame: 1 << 20,
                    credit: 8,
                    keepalive_ms: 0,
                },
                epoch: 0,
            }),
        );
        assert_eq!(
            events(&mut client, now),
            (std::vec![], std::vec!["connected"])
        );
        assert_eq!(client.line_stats().stale_frames, 1);
        client
            .subscribe(now, "cmd.>", &SubscribeOptions::default())
            .unwrap();
        let _ = client.poll(now);
        assert_eq!(written(&mut client).0, ["subscribe"]);
        send(&mut client, WireFrame::SubAck(SubAck { sub: 1 }));
        assert_eq!(events(&mut client, now).1, ["subscribed"]);

        // Two QoS 1 deliveries, room to hold one (HELD = 1): the second waits
        // in the decoder until the first is acked, then arrives, once.
        send(&mut client, deliver(10, 1));
        send(&mut client, deliver(11, 2));
        let mut first = None;
        while let Some(e) = client.poll(now) {
            if let Event::Message(m) = e {
                assert!(first.is_none());
                first = Some((m.seq, m.id));
            }
        }
        let (seq, id) = first.unwrap();
        assert_eq!(seq, 1);
        assert_eq!(events(&mut client, now).0, std::vec![]);
        client.ack(id).unwrap();
        assert_eq!(events(&mut client, now).0, [2]);
        assert_eq!(written(&mut client).0, ["ack"]);
        assert_eq!(client.line_stats().decoder.frames, 5);
    }
}
