//! Publishing: the application's messages into the outbox, the frames that
//! carry them (fragmented to the largest frame), and the broker's answers.

use super::event::Note;
use super::outbox::{Head, Kind, PushError, Record};
use super::{PublishError, PublishId, PublishOptions, RequestFailure, Session, State};
use crate::framing::Framer;
use crate::time::Instant;
use crate::topic::Topic;
use crate::wire::fragment::Fragmenter;
use crate::wire::{Dedup, Meta, PubAck, PubReject, Publish, QoS, Reason};

impl<B, const SUBS: usize, const HELD: usize, const REQS: usize, F: Framer>
    Session<B, SUBS, HELD, REQS, F>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Queues a message; it is sent when connected (now or after a reconnect).
    ///
    /// QoS 0 messages leave the outbox once written by `poll_transmit`; QoS 1
    /// messages stay until `PubAck` ([`Event::Published`]) or `PubReject`
    /// ([`Event::PublishRejected`]) and are resent after every reconnect, in order,
    /// with the same id and dedup sequence. Messages larger than the broker's
    /// maximum frame (or [`Config::max_frame_out`](super::Config::max_frame_out)) are sent as fragments.
    ///
    /// [`Event::Published`]: super::Event::Published
    /// [`Event::PublishRejected`]: super::Event::PublishRejected
    pub fn publish(
        &mut self,
        _now: Instant,
        topic: &str,
        payload: &[u8],
        opts: &PublishOptions<'_>,
    ) -> Result<PublishId, PublishError> {
        self.enqueue(topic, payload, opts.qos, &opts.meta, false)
    }

    /// Puts a publish (or, `request`, a request of the session's) into the
    /// outbox.
    pub(super) fn enqueue(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        meta: &Meta<'_>,
        request: bool,
    ) -> Result<PublishId, PublishError> {
        Topic::new(topic).map_err(|_| PublishError::InvalidTopic)?;
        let id = self.candidate_publish_id();
        let dedup_seq = match (qos, self.config.producer) {
            (QoS::AtLeastOnce, Some(_)) => Some(self.dedup_seq.wrapping_add(1)),
            _ => None,
        };
        let limit = self.frame_limit();
        if let Some(max_frame) = limit {
            let p = Publish {
                id,
                topic,
                qos,
                dedup: dedup_seq
                    .zip(self.config.producer)
                    .map(|(seq, producer)| Dedup { producer, seq }),
                meta: *meta,
                fragment: None,
                payload,
            };
            if !Fragmenter::publish(p).sendable(max_frame as usize) {
                return Err(PublishError::TooLarge);
            }
        }
        let head = Head {
            id,
            qos,
            dedup_seq,
            request,
            sendable_within: limit,
        };
        self.outbox
            .push(head, topic, meta, payload)
            .map_err(|e| match e {
                PushError::Full => PublishError::OutboxFull,
                PushError::TooLarge => PublishError::TooLarge,
            })?;
        if let Some(seq) = dedup_seq {
            self.dedup_seq = seq;
        }
        self.next_publish_id = id.wrapping_add(1);
        if self.next_publish_id == 0 {
            self.publish_ids_wrapped = true;
        }
        self.stats.publishes += 1;
        trace!("publish {} queued", id);
        Ok(PublishId(id))
    }

    fn candidate_publish_id(&self) -> u32 {
        let mut id = self.next_publish_id;
        // Ids only repeat after the counter wrapped; the outbox cannot hold
        // anywhere near 2^32 records, so this ends.
        while id == 0 || (self.publish_ids_wrapped && self.outbox.contains_id(id)) {
            id = id.wrapping_add(1);
        }
        id
    }

    /// The frames of the outbox record `rec`.
    pub(super) fn fragmenter<'r>(&self, rec: &Record<'r>) -> Fragmenter<'r> {
        Fragmenter::publish(self.whole_publish(rec))
    }

    /// The outbox record `rec` as one publish frame, whole.
    pub(super) fn whole_publish<'r>(&self, rec: &Record<'r>) -> Publish<'r> {
        let dedup = rec
            .dedup_seq
            .and_then(|seq| self.config.producer.map(|producer| Dedup { producer, seq }));
        Publish {
            id: rec.id,
            topic: rec.topic,
            qos: rec.qos,
            dedup,
            meta: rec.meta,
            fragment: None,
            payload: rec.payload,
        }
    }

    /// The largest publish frame to produce: the broker's maximum frame, capped by
    /// `Config::max_frame_out`; `None` before the first `Welcome`.
    pub(super) fn frame_limit(&self) -> Option<u32> {
        self.conn
            .broker
            .map(|b| b.max_frame.min(self.config.max_frame_out))
    }

    /// Rejects, locally, publishes that cannot be sent within the largest frame
    /// ([`frame_limit`](Self::frame_limit)): their headers leave no room for
    /// payload in some fragment. A publish queued before the limit was known
    /// must not start and then stall halfway.
    pub(super) fn drop_unsendable(&mut self) {
        // Closing too: the Close waits for what is queued before it.
        if !matches!(self.conn.state, State::Connected | State::Closing) {
            return;
        }
        let Some(max_frame) = self.frame_limit() else {
            return;
        };
        while self.events.room(1) {
            // Checked when it was queued, or on an earlier call: not read again.
            if self.outbox.next_known_sendable(max_frame) != Some(false) {
                return;
            }
            // Bound in the `Option`: moved out of it, the record was copied
            // (52 bytes more on devices).
            let Some(ref rec) = self.outbox.next() else {
                return;
            };
            if self.outbox.next_sent() > 0 || self.fragmenter(rec).sendable(max_frame as usize) {
                self.outbox.mark_next_sendable(max_frame);
                return;
            }
            let (id, kind) = (rec.id, Some(rec.kind()));
            warn!("publish {} cannot fit the broker's maximum frame", id);
            self.outbox.drop_next();
            self.stats.publish_rejects += 1;
            self.publish_failed(id, kind, Reason::MessageTooLarge);
        }
    }

    pub(super) fn on_puback(&mut self, a: PubAck) {
        match self.outbox.remove_acked(a.id) {
            Some(kind) => {
                self.stats.publish_acks += 1;
                // A request's outcome is its reply.
                if kind == Kind::Publish {
                    self.push_event(Note::Published(a.id, a.seq, a.duplicate));
                }
            }
            None => debug!("puback for unknown publish {}", a.id),
        }
    }

    pub(super) fn on_pubreject(&mut self, r: PubReject) {
        // Frees the entry in any state: a rejected fragmented publish stops.
        let kind = self.outbox.remove(r.id);
        self.stats.publish_rejects += 1;
        self.publish_failed(r.id, kind, r.reason);
    }

    /// Tells the application a publish was refused: `PublishRejected`, or for
    /// a request `RequestFailed`.
    fn publish_failed(&mut self, id: u32, kind: Option<Kind>, reason: Reason) {
        let failure = RequestFailure::Rejected(reason);
        if !self.fail_publish(id, failure) && kind != Some(Kind::Request) {
            self.push_event(Note::PublishRejected(id, reason));
        }
    }
}
