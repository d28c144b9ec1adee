//! Transmitting: which frame goes out next (control frames, acks, subscription
//! changes, credit, then publishes), and what writing it changes.

use super::held::Settle;
use crate::framing::Framer;
use heapless::String;

use super::subscriptions::{MAX_FILTER_LEN, Outgoing};
use super::{Session, State};
use crate::framing::serial::DELIMITER;
use crate::time::Instant;
use crate::wire::{
    Ack, Close, Credit, ErrorFrame, Frame, Hello, Nack, PROTOCOL_VERSION, Reason, Subscribe,
    Unsubscribe,
};

/// A frame `poll_transmit` is about to write, and what writing it changes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Tx {
    Error,
    Close,
    Hello,
    Pong,
    Ping,
    Subscribe(usize),
    Unsubscribe(usize),
    Settle(usize),
    /// An ack offered by message; its ring entry.
    Resend(usize),
    #[cfg(feature = "alloc")]
    Admin,
    Credit {
        index: usize,
        owed: u32,
        grant: u32,
    },
    Publish {
        id: u32,
        at: usize,
        sent: usize,
        total: usize,
    },
}

/// What `poll_transmit` writes next: a frame built by `next_tx`, or the
/// outbox's next publish, which is built where it is written (a `Publish` is
/// large, and handing it back is a copy).
enum Next<'a> {
    Frame(Tx, Frame<'a>),
    Publish,
}

impl<B, const SUBS: usize, const HELD: usize, const REQS: usize, F: Framer>
    Session<B, SUBS, HELD, REQS, F>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Writes as many whole frames as fit into the front of `buf`, framed as
    /// configured, and returns the bytes written; `None` when there is nothing to
    /// send or the next frame does not fit, in which case `buf` is untouched. On a
    /// serial line each connection's `Hello` is preceded by a lone delimiter.
    ///
    /// `buf` must hold the largest frame: at least
    /// `framing.max_framed_len(min(broker max_frame, Config::max_frame_out))` bytes
    /// ([`Framing::max_framed_len`](super::Framing::max_framed_len), [`broker_limits`](Self::broker_limits),
    /// [`Config::max_frame_out`](super::Config::max_frame_out)); publishes are fragmented to that maximum, not
    /// to `buf`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let mut written = 0;
        loop {
            self.drop_unsendable();
            // Where the reply subscription's filter is written, if it is sent.
            let mut scratch = String::new();
            let Some(out) = buf.get_mut(written..) else {
                break;
            };
            let sent = match self.next_tx(&mut scratch) {
                Some(Next::Frame(tx, ref frame)) => self.write_frame(tx, frame, out),
                Some(Next::Publish) => self.write_publish(out),
                None => None,
            };
            let Some((tx, n)) = sent else {
                break;
            };
            written += n;
            self.stats.frames_out += 1;
            self.stats.bytes_out += n as u64;
            self.commit(tx);
        }
        if written == 0 {
            return None;
        }
        self.conn.last_tx = now;
        Some(written)
    }

    /// Writes `frame` into the front of `out`; on a serial line a lone
    /// delimiter before a `Hello` ends whatever partial frame of an earlier
    /// connection the broker's decoder holds.
    fn write_frame(&self, tx: Tx, frame: &Frame<'_>, out: &mut [u8]) -> Option<(Tx, usize)> {
        let lead = usize::from(matches!(tx, Tx::Hello) && self.framing.framing().is_serial());
        let (head, body) = out.split_at_mut_checked(lead)?;
        let n = self.encode(frame, self.framing.encoded_len(frame), body)?;
        head.fill(DELIMITER);
        trace!("sent {}", frame.kind());
        Some((tx, lead + n))
    }

    /// Writes the outbox's next publish, or its next fragment, into the front
    /// of `out`. Publishes are sized to the broker's limit, not to `out`.
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    fn write_publish(&self, out: &mut [u8]) -> Option<(Tx, usize)> {
        let max_frame = self.frame_limit()? as usize;
        let (rec, sent) = (self.outbox.next()?, self.outbox.next_sent());
        // Most publishes go whole: on hosts measured and written as they
        // are, without the fragmenter's copies of the frame.
        #[cfg(feature = "alloc")]
        let whole = (sent == 0).then(|| Frame::Publish(self.whole_publish(&rec)));
        #[cfg(feature = "alloc")]
        let whole_len = whole.as_ref().map(|f| self.framing.encoded_len(f));
        #[cfg(feature = "alloc")]
        let piece;
        #[cfg(feature = "alloc")]
        let (frame, len, end) = match (&whole, whole_len) {
            (Some(frame), Some(len)) if len <= max_frame => (frame, len, rec.payload.len()),
            _ => {
                piece = self
                    .fragmenter(&rec)
                    .next(usize::try_from(sent).ok()?, max_frame)?;
                (&piece.frame, piece.encoded_len, piece.end)
            }
        };
        // Devices keep the one path (the other is code more, for speed they
        // do not need), and cut the piece over the whole frame where it is
        // rather than take it out of the `Piece` `next` returns (a copy).
        #[cfg(not(feature = "alloc"))]
        let fragmenter = self.fragmenter(&rec);
        #[cfg(not(feature = "alloc"))]
        let frame = &mut fragmenter.whole();
        #[cfg(not(feature = "alloc"))]
        let (end, len) = fragmenter.next_over(frame, usize::try_from(sent).ok()?, max_frame)?;
        let n = self.encode(frame, len, out)?;
        trace!("sent publish {}", rec.id);
        let tx = Tx::Publish {
            id: rec.id,
            at: rec.at,
            sent: end,
            total: rec.payload.len(),
        };
        Some((tx, n))
    }

    /// Writes `frame`, `len` bytes encoded, into the front of `out`: the one
    /// place frames are encoded, so that devices carry one copy of the encoder.
    fn encode(&self, frame: &Frame<'_>, len: usize, out: &mut [u8]) -> Option<usize> {
        self.framing.encode_sized(frame, len, u32::MAX, out).ok()
    }

    /// The next frame to write, without changing anything.
    fn next_tx<'a>(&'a self, scratch: &'a mut String<MAX_FILTER_LEN>) -> Option<Next<'a>> {
        match self.conn.state {
            State::Disconnecting => self.conn.error_pending.map(|code| {
                Next::Frame(
                    Tx::Error,
                    Frame::Error(ErrorFrame {
                        code,
                        text: code.as_str(),
                    }),
                )
            }),
            State::Handshaking => self.conn.hello_pending.then(|| {
                Next::Frame(
                    Tx::Hello,
                    Frame::Hello(Hello {
                        version: PROTOCOL_VERSION,
                        client_id: self.config.client_id.as_str(),
                        session: self.config.mode,
                        token: self.config.token.as_ref().map(|t| t.as_str()),
                        limits: self.receive_limits(),
                    }),
                )
            }),
            // A closing session sends its Close last (`next_connected_tx`).
            State::Connected | State::Closing => self.next_connected_tx(scratch),
            _ => None,
        }
    }

    fn next_connected_tx<'a>(
        &'a self,
        scratch: &'a mut String<MAX_FILTER_LEN>,
    ) -> Option<Next<'a>> {
        if let Some(&value) = self.conn.pongs.front() {
            return Some(Next::Frame(Tx::Pong, Frame::Pong(value)));
        }
        if let Some(value) = self.conn.ping_pending {
            return Some(Next::Frame(Tx::Ping, Frame::Ping(value)));
        }
        // Settlements before subscription changes: an unsubscribe must not
        // overtake the acks issued before it.
        if let Some((slot, tag, settle)) = self.held.next_settling() {
            let frame = match settle {
                Settle::Ack => Frame::Ack(Ack { tag }),
                Settle::Nack { requeue } => Frame::Nack(Nack { tag, requeue }),
            };
            return Some(Next::Frame(Tx::Settle(slot), frame));
        }
        // After a resume, before the subscriptions are re-asserted (which
        // lets the broker deliver again).
        if let Some((next, a)) = self.held.next_resend() {
            return Some(Next::Frame(Tx::Resend(next), Frame::AckMessage(a)));
        }
        #[cfg(feature = "alloc")]
        if let Some(a) = &self.admin_out {
            return Some(Next::Frame(Tx::Admin, Frame::Admin(a.frame())));
        }
        for (index, s) in self.subs.iter(Self::REQUESTS) {
            match s.outgoing {
                Outgoing::Subscribe => {
                    let (filter, group) = match self.subs.names(index) {
                        Some(names) => (names.filter.as_str(), names.group.as_deref()),
                        None if Self::REQUESTS => {
                            self.reply_topic(scratch);
                            (scratch.as_str(), None)
                        }
                        // No reply subscription without requests.
                        None => continue,
                    };
                    return Some(Next::Frame(
                        Tx::Subscribe(index),
                        Frame::Subscribe(Subscribe {
                            sub: s.id,
                            filter,
                            group,
                            start: s.start,
                            qos: s.qos,
                            credit: s.window,
                        }),
                    ));
                }
                Outgoing::Unsubscribe => {
                    return Some(Next::Frame(
                        Tx::Unsubscribe(index),
                        Frame::Unsubscribe(Unsubscribe { sub: s.id }),
                    ));
                }
                Outgoing::None => {}
            }
        }
        for (index, s) in self.subs.iter(Self::REQUESTS) {
            if s.unsubscribing || !s.sent {
                continue;
            }
            if let Some(credit) = s.credit_due() {
                let grant = s.grant.min(credit);
                return Some(Next::Frame(
                    Tx::Credit {
                        index,
                        owed: credit - grant,
                        grant,
                    },
                    Frame::Credit(Credit { sub: s.id, credit }),
                ));
            }
        }
        if self.frame_limit().is_some() && self.outbox.has_next() {
            return Some(Next::Publish);
        }
        // Everything queued before `close` (acks, publishes, unsubscribes)
        // goes out first, then the Close (a publish that can never start at
        // the broker's limit is rejected first: `drop_unsendable`). Asked
        // here, last, rather than in `next_tx` after this returned nothing:
        // there the `Option<Next>` (144 bytes) was copied out.
        (self.conn.state == State::Closing && self.conn.close_pending).then_some(Next::Frame(
            Tx::Close,
            Frame::Close(Close {
                reason: Reason::Normal,
                text: "",
            }),
        ))
    }

    /// A frame from `next_tx`, or a publish, was written.
    fn commit(&mut self, tx: Tx) {
        match tx {
            Tx::Error => self.conn.error_pending = None,
            Tx::Close => self.closed(),
            Tx::Hello => self.conn.hello_pending = false,
            Tx::Pong => {
                self.conn.pongs.pop_front();
            }
            Tx::Ping => {
                self.conn.ping_pending = None;
                self.stats.pings += 1;
            }
            Tx::Subscribe(index) => {
                if let Some(s) = self.subs.get_mut(index) {
                    s.outgoing = Outgoing::None;
                    if !s.sent {
                        // A new subscription: the whole window went with it.
                        s.grant = 0;
                        s.owed = 0;
                    }
                    s.sent = true;
                }
            }
            Tx::Unsubscribe(index) => {
                if let Some(s) = self.subs.get_mut(index) {
                    s.outgoing = Outgoing::None;
                }
            }
            Tx::Settle(slot) => self.held.free(slot),
            Tx::Resend(next) => self.held.resent(next),
            #[cfg(feature = "alloc")]
            Tx::Admin => self.admin_out = None,
            Tx::Credit { index, owed, grant } => {
                if let Some(s) = self.subs.get_mut(index) {
                    s.owed = s.owed.saturating_sub(owed);
                    s.grant = s.grant.saturating_sub(grant);
                }
            }
            Tx::Publish {
                id,
                at,
                sent,
                total,
            } => {
                self.outbox.advance(at, sent as u64, total as u64);
                self.requests.sent(id);
            }
        }
    }
}
