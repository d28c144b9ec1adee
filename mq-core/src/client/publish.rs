//! Publishing: the application's messages into the outbox, the frames that
//! carry them (fragmented to the largest frame), and the broker's answers.

use super::Event;
use super::outbox::{PushError, Record};
use super::{PublishError, PublishId, PublishOptions, Session, State};
use crate::framing::stream;
use crate::time::Instant;
use crate::topic::Topic;
use crate::wire::{Dedup, Fragment, Frame, PubAck, PubReject, Publish, QoS, Reason};

/// Payload bytes a fragment of `p`'s message starting at `offset` can carry within
/// `max` encoded bytes. Exact, unlike [`crate::wire::publish_overhead`] (a bound): the
/// frame is measured with an empty payload, whose length prefix then grows to at
/// most the size of `max`'s.
fn fragment_room(p: &Publish<'_>, offset: u64, max: usize) -> usize {
    let probe = Publish {
        fragment: Some(Fragment {
            offset,
            total: p.payload.len() as u64,
        }),
        payload: &[],
        ..*p
    };
    let base = Frame::Publish(probe).encoded_len();
    max.saturating_sub(base.saturating_sub(1) + stream::prefix_len(max))
}

impl<B, const SUBS: usize, const HELD: usize> Session<B, SUBS, HELD>
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
    pub fn publish(
        &mut self,
        _now: Instant,
        topic: &str,
        payload: &[u8],
        opts: &PublishOptions<'_>,
    ) -> Result<PublishId, PublishError> {
        Topic::new(topic).map_err(|_| PublishError::InvalidTopic)?;
        let id = self.candidate_publish_id();
        let dedup_seq = match (opts.qos, self.config.producer) {
            (QoS::AtLeastOnce, Some(_)) => Some(self.dedup_seq.wrapping_add(1)),
            _ => None,
        };
        if let Some(max_frame) = self.frame_limit() {
            // The last fragment has the longest offset: if it cannot carry a byte,
            // no fragment can.
            let p = Publish {
                id,
                topic,
                qos: opts.qos,
                dedup: dedup_seq
                    .zip(self.config.producer)
                    .map(|(seq, producer)| Dedup { producer, seq }),
                meta: opts.meta,
                fragment: None,
                payload,
            };
            let max = max_frame as usize;
            let last = (payload.len() as u64).saturating_sub(1);
            if Frame::Publish(p).encoded_len() > max && fragment_room(&p, last, max) == 0 {
                return Err(PublishError::TooLarge);
            }
        }
        self.outbox
            .push(id, opts.qos, dedup_seq, topic, &opts.meta, payload)
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

    /// The publish frame for the outbox record `rec` of which `sent` payload bytes
    /// went out, and the payload offset after it; `None` when not even one payload
    /// byte fits `max_frame` next to the record's headers.
    pub(super) fn publish_frame<'r>(
        &self,
        rec: &Record<'r>,
        sent: u64,
        max_frame: u32,
    ) -> Option<(Publish<'r>, u64)> {
        let max = max_frame as usize;
        let total = rec.payload.len() as u64;
        let dedup = rec
            .dedup_seq
            .and_then(|seq| self.config.producer.map(|producer| Dedup { producer, seq }));
        let mut p = Publish {
            id: rec.id,
            topic: rec.topic,
            qos: rec.qos,
            dedup,
            meta: rec.meta,
            fragment: None,
            payload: rec.payload,
        };
        if sent == 0 && Frame::Publish(p).encoded_len() <= max {
            return Some((p, total));
        }
        let room = fragment_room(&p, sent, max);
        if room == 0 {
            return None;
        }
        let end = sent.saturating_add(room as u64).min(total);
        p.fragment = Some(Fragment {
            offset: sent,
            total,
        });
        p.payload = rec
            .payload
            .get(usize::try_from(sent).ok()?..usize::try_from(end).ok()?)?;
        Some((p, end))
    }

    /// The largest publish frame to produce: the broker's maximum frame, capped by
    /// `Config::max_frame_out`; `None` before the first `Welcome`.
    pub(super) fn frame_limit(&self) -> Option<u32> {
        self.conn
            .broker
            .map(|b| b.max_frame.min(self.config.max_frame_out))
    }

    /// Rejects, locally, publishes whose headers alone exceed the largest frame
    /// ([`frame_limit`](Self::frame_limit)): they could never be sent.
    pub(super) fn drop_unsendable(&mut self) {
        if self.conn.state != State::Connected {
            return;
        }
        let Some(max_frame) = self.frame_limit() else {
            return;
        };
        while self.events.room(1) {
            let Some((rec, sent)) = self.outbox.next() else {
                return;
            };
            if sent > 0 || self.publish_frame(&rec, sent, max_frame).is_some() {
                return;
            }
            let id = rec.id;
            warn!("publish {} cannot fit the broker's maximum frame", id);
            self.outbox.drop_next();
            self.stats.publish_rejects += 1;
            self.push_event(Event::PublishRejected {
                id: PublishId(id),
                reason: Reason::MessageTooLarge,
            });
        }
    }

    pub(super) fn on_puback(&mut self, a: PubAck) {
        if self.outbox.remove_acked(a.id) {
            self.stats.publish_acks += 1;
            self.push_event(Event::Published {
                id: PublishId(a.id),
                seq: a.seq,
                duplicate: a.duplicate,
            });
        } else {
            debug!("puback for unknown publish {}", a.id);
        }
    }

    pub(super) fn on_pubreject(&mut self, r: PubReject) {
        // Frees the entry in any state: a rejected fragmented publish stops.
        self.outbox.remove(r.id);
        self.stats.publish_rejects += 1;
        self.push_event(Event::PublishRejected {
            id: PublishId(r.id),
            reason: r.reason,
        });
    }
}
