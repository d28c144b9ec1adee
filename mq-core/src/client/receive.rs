//! Receiving: frames from the broker into the session, deliveries into the
//! inbox (whole, reassembled from fragments, or as chunks when larger than the
//! inbox), and the application's acks and nacks of them.

use crate::framing::Framer;
use heapless::String;

use super::held::{MessageKey, Settle, Slot, topic_hash};
use super::inbox::{self, RecordHead};
use super::{AckError, Backpressure, DeliveryId, Session, State};
use crate::framing::stream::{Split, StreamDecoder, StreamError};
use crate::time::Instant;
use crate::topic::{MAX_TOPIC_LEN, Topic};
use crate::wire::fragment::Placement;
use crate::wire::{DecodeError, Deliver, Frame, Meta, QoS, Reason};

/// What happens to the remaining fragments of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RxMode {
    /// Reassembled in the inbox.
    Reassemble,
    /// Each fragment becomes a chunk.
    Chunked,
    /// A redelivery already handled: drop the rest.
    Discard,
}

/// A fragmented delivery in progress (the
/// [`Reassembler`](crate::wire::fragment::Reassembler) checks its sequence).
#[derive(Debug, Clone)]
pub(super) struct RxFrag {
    pub(super) mode: RxMode,
    pub(super) sub: u32,
    /// Fields of the chunks still to come.
    pub(super) head: RecordHead,
    /// The topic from the first fragment, for the chunks still to come.
    pub(super) topic: String<MAX_TOPIC_LEN>,
}

impl<B, const SUBS: usize, const HELD: usize, const REQS: usize, F: Framer>
    Session<B, SUBS, HELD, REQS, F>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Bytes from a stream transport (varint-framed, whatever `Framing` the output
    /// uses). Consumes whole frames only and returns how many bytes it took; keep
    /// the rest and hand it in again with more. Stops early when the next delivery
    /// does not fit (see [`Backpressure`]): drain events, then call again. Input that
    /// is not a valid frame ends the connection (`ErrorFrame`, then
    /// `Event::Disconnected`) and is consumed entirely, as is input arriving while no
    /// connection is active.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> usize {
        let decoder = StreamDecoder::new(self.max_frame_in);
        let mut consumed = 0;
        while consumed < bytes.len() {
            if !self.accepts_input() {
                return bytes.len();
            }
            let rest = bytes.get(consumed..).unwrap_or(&[]);
            // Bad input ends the connection with one reason or another.
            let reason = match decoder.split(rest) {
                Ok(Split::Incomplete { .. }) => break,
                Ok(Split::Whole { body, consumed: n }) => match Frame::decode_from_broker(body) {
                    // On hosts the frame is handled where it was decoded
                    // (moving it out is a copy of a large value); on devices
                    // moving it takes less code.
                    #[cfg(feature = "alloc")]
                    Ok(ref frame) => match self.on_frame(now, frame) {
                        Ok(()) => {
                            consumed += n;
                            continue;
                        }
                        Err(_) => break,
                    },
                    #[cfg(not(feature = "alloc"))]
                    Ok(frame) => match self.on_frame(now, &frame) {
                        Ok(()) => {
                            consumed += n;
                            continue;
                        }
                        Err(_) => break,
                    },
                    Err(DecodeError::Unexpected) => {
                        self.handle_unexpected_frame(now);
                        return bytes.len();
                    }
                    Err(_) => Reason::Malformed,
                },
                Err(StreamError::FrameTooLarge { .. }) => Reason::FrameTooLarge,
                Err(_) => Reason::Malformed,
            };
            self.violation(reason);
            return bytes.len();
        }
        consumed
    }

    /// Acknowledges a delivery (sends `Ack` with its current broker tag). Acking a
    /// QoS 0 delivery ([`DeliveryId::NONE`]) does nothing and succeeds. Acked
    /// messages are remembered, so a redelivery of one is re-acked and not shown.
    pub fn ack(&mut self, id: DeliveryId) -> Result<(), AckError> {
        self.settle(id, Settle::Ack)
    }

    /// Refuses a delivery: `requeue` asks the broker to deliver it again (possibly
    /// to another group member), otherwise it is dead-lettered.
    pub fn nack(&mut self, id: DeliveryId, requeue: bool) -> Result<(), AckError> {
        self.settle(id, Settle::Nack { requeue })
    }

    /// Forgets a fragmented delivery cut short by the end of its connection.
    pub(super) fn abandon_fragments(&mut self) {
        self.reasm.reset();
        if let Some(rx) = self.rx.take() {
            if rx.mode == RxMode::Reassemble {
                self.inbox.drop_partial();
            }
            // The application never saw it whole: a redelivery must be shown.
            if rx.mode != RxMode::Discard
                && let Some(slot) = self.held.lookup(DeliveryId(rx.head.id))
            {
                self.held.free(slot);
            }
        }
    }

    pub(super) fn on_deliver(&mut self, d: &Deliver<'_>) -> Result<(), Backpressure> {
        if !self.reasm.in_progress() {
            if self.subs.index(d.sub).is_none() {
                self.violation(Reason::ProtocolViolation);
                return Ok(());
            }
            if Topic::new(d.topic).is_err() {
                self.violation(Reason::Malformed);
                return Ok(());
            }
        }
        // The fragment rules; the state stays as it is after a violation, so
        // that ending the connection cleans it up.
        let place = match self
            .reasm
            .check(d.tag, d.fragment, d.payload.len(), u64::MAX)
        {
            Ok(place) => place,
            Err(e) => {
                debug!("bad deliver: {}", e.as_str());
                self.violation(Reason::ProtocolViolation);
                return Ok(());
            }
        };
        if place.first {
            self.on_first(d, &place)
        } else {
            self.on_fragment(d, &place)
        }
    }

    /// A delivery, or the first fragment of one.
    fn on_first(&mut self, d: &Deliver<'_>, place: &Placement) -> Result<(), Backpressure> {
        let len = d.payload.len() as u64;
        let (total, more) = (place.total, !place.last);
        // Only QoS 1 deliveries are held, and recognised when they come again.
        let key = MessageKey {
            sub: d.sub,
            topic_hash: match d.qos {
                QoS::AtLeastOnce => topic_hash(d.topic),
                QoS::AtMostOnce => 0,
            },
            seq: d.seq,
        };
        // Built once for both the redelivery's slot and a new one (built at
        // each, 36 bytes more on devices).
        let held = Slot::Held {
            key,
            tag: d.tag,
            epoch: self.conn.epoch,
        };
        if d.qos == QoS::AtLeastOnce {
            if let Some(settle) = self.held.recall(&key) {
                self.held
                    .insert(Slot::Settling { tag: d.tag, settle })
                    .ok_or(Backpressure::Held)?;
                debug!("duplicate delivery suppressed (seq {})", d.seq);
                self.stats.duplicates_suppressed += 1;
                self.discard_rest(d, place);
                return Ok(());
            }
            if let Some(slot) = self.held.find(&key) {
                self.held.set(slot, held);
                self.stats.redeliveries_absorbed += 1;
                self.discard_rest(d, place);
                return Ok(());
            }
            if !self.held.has_free() {
                return Err(Backpressure::Held);
            }
        }
        let reply = Self::REQUESTS && self.subs.is_reply(d.sub);
        let request = if reply {
            match self.check_reply(d, place)? {
                Some(request) => Some(request),
                None => return Ok(()),
            }
        } else {
            None
        };
        let whole = inbox::record_len(d.topic.len(), &d.meta, total);
        let reassemble = whole.is_some_and(|n| n <= self.inbox.capacity());
        let (record, chunked) = if reassemble {
            (whole, false)
        } else {
            (inbox::record_len(d.topic.len(), &d.meta, len), true)
        };
        let Some(record) = record.filter(|n| *n <= self.inbox.capacity()) else {
            // A single frame larger than the inbox: more than we announced.
            self.violation(Reason::FrameTooLarge);
            return Ok(());
        };
        if chunked && d.fragment.is_none() {
            self.violation(Reason::FrameTooLarge);
            return Ok(());
        }
        if !self.inbox.has_room(record) {
            return Err(Backpressure::Inbox);
        }
        let id = match d.qos {
            QoS::AtMostOnce => DeliveryId::NONE,
            QoS::AtLeastOnce => self.held.insert(held).ok_or(Backpressure::Held)?,
        };
        let head = RecordHead {
            chunk: chunked,
            last: !more,
            reply,
            admin: false,
            qos: d.qos,
            sub: d.sub,
            attempt: d.attempt,
            seq: d.seq,
            id: id.0,
            offset: 0,
            total,
        };
        let data_len = if chunked {
            d.payload.len()
        } else {
            usize::try_from(total).unwrap_or(usize::MAX)
        };
        if !self.inbox.add(&head, d.topic, &d.meta, d.payload, data_len) {
            // Checked above; undo the slot so nothing is half done.
            if let Some(slot) = self.held.lookup(id) {
                self.held.free(slot);
            }
            return Err(Backpressure::Inbox);
        }
        if chunked || !more {
            self.events.message_queued();
        }
        if let Some(request) = request {
            self.reply_placed(request, !more);
        }
        self.reasm.commit(place);
        if more {
            let rx = self.rx.insert(RxFrag {
                mode: if chunked {
                    RxMode::Chunked
                } else {
                    RxMode::Reassemble
                },
                sub: d.sub,
                head,
                topic: String::new(),
            });
            // Copied in place (left empty if it does not fit, which a valid
            // topic always does).
            let _ = rx.topic.push_str(d.topic);
        }
        Ok(())
    }

    /// The rest of a fragmented redelivery that was already handled is dropped.
    pub(super) fn discard_rest(&mut self, d: &Deliver<'_>, place: &Placement) {
        self.reasm.commit(place);
        if !place.last {
            self.rx = Some(RxFrag {
                mode: RxMode::Discard,
                sub: d.sub,
                head: RecordHead {
                    chunk: false,
                    last: false,
                    reply: false,
                    admin: false,
                    qos: d.qos,
                    sub: d.sub,
                    attempt: d.attempt,
                    seq: d.seq,
                    id: 0,
                    offset: 0,
                    total: place.total,
                },
                topic: String::new(),
            });
        }
    }

    /// The next fragment of the delivery in progress.
    fn on_fragment(&mut self, d: &Deliver<'_>, place: &Placement) -> Result<(), Backpressure> {
        // The record's head is copied out only for a chunk, which needs it.
        let Some(mode) = self
            .rx
            .as_ref()
            .filter(|rx| rx.sub == d.sub)
            .map(|rx| rx.mode)
        else {
            self.violation(Reason::ProtocolViolation);
            return Ok(());
        };
        let len = d.payload.len() as u64;
        match mode {
            RxMode::Discard => {}
            RxMode::Reassemble => {
                if self.inbox.append(d.payload).is_none() {
                    self.violation(Reason::ProtocolViolation);
                    return Ok(());
                }
                if place.last {
                    self.events.message_queued();
                    if Self::REQUESTS && self.rx.as_ref().is_some_and(|rx| rx.head.reply) {
                        self.reply_complete();
                    }
                }
            }
            RxMode::Chunked => {
                let meta = Meta::default();
                let Some(rx) = self.rx.as_ref() else {
                    return Ok(());
                };
                let topic = rx.topic.as_str();
                let Some(record) = inbox::record_len(topic.len(), &meta, len)
                    .filter(|n| *n <= self.inbox.capacity())
                else {
                    self.violation(Reason::FrameTooLarge);
                    return Ok(());
                };
                if !self.inbox.has_room(record) {
                    return Err(Backpressure::Inbox);
                }
                let head = RecordHead {
                    offset: place.offset,
                    last: place.last,
                    ..rx.head
                };
                if !self
                    .inbox
                    .add(&head, topic, &meta, d.payload, d.payload.len())
                {
                    return Err(Backpressure::Inbox);
                }
                self.events.message_queued();
            }
        }
        self.reasm.commit(place);
        if place.last {
            self.rx = None;
        }
        Ok(())
    }

    pub(super) fn settle(&mut self, id: DeliveryId, settle: Settle) -> Result<(), AckError> {
        if !id.needs_ack() {
            return Ok(());
        }
        let slot = self.held.lookup(id).ok_or(AckError::Unknown)?;
        let &Slot::Held { key, tag, epoch } = self.held.slot(slot) else {
            return Err(AckError::Unknown);
        };
        if settle != (Settle::Nack { requeue: true }) {
            self.held.remember(key, settle);
        }
        if self.conn.state == State::Connected && epoch == self.conn.epoch {
            self.held.set(slot, Slot::Settling { tag, settle });
            Ok(())
        } else {
            self.held.free(slot);
            // Its tag is void, but the broker may have the message waiting
            // to come again: tell it by message.
            if settle == Settle::Ack && self.conn.state == State::Connected {
                self.held.offer_last();
            }
            Err(AckError::Stale)
        }
    }
}
