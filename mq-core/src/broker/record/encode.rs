//! The records written for every message, encoded without serde, byte for
//! byte as postcard encodes them (the tests below hold them to it): the
//! message's own record (`Message`, `MessageOnce`, `Forwarded`) and a
//! subscription's `Ack`. Going through serde measured and wrote them field by
//! field, each field a copy of its own: on a node that forwards, the
//! `Forwarded` record cost about ten times its hand-written `Message`.

use alloc::sync::Arc;

use super::{MessageRecord, Record};
use crate::wire::QoS;
use crate::wire::codec::{Counter, Sink, Writer, bytes_len};

/// The variant indexes postcard writes (as varints) for the records encoded
/// here: their places in [`Record`]'s declaration.
const MESSAGE: u64 = 0;
const ACK: u64 = 5;
const MESSAGE_ONCE: u64 = 16;
const FORWARDED: u64 = 19;

impl Record<'_> {
    /// This record's encoding by hand, into `spare` (a record nobody else
    /// holds) when it is as long; `None` for a record not encoded here (or a
    /// meta that cannot be encoded).
    pub(super) fn encode_by_hand(&self, spare: Option<Arc<[u8]>>) -> Option<Arc<[u8]>> {
        match *self {
            Record::Ack { .. } => {
                let mut count = Counter::default();
                self.write_ack(&mut count);
                let mut bytes = new_or_spare(count.finish()?, spare);
                let out = Arc::get_mut(&mut bytes)?;
                let len = out.len();
                let mut w = Writer::new(out);
                self.write_ack(&mut w);
                // Every byte is written: a spare's old bytes must not remain.
                (w.finish()? == len).then_some(bytes)
            }
            _ => self.encode_message(spare),
        }
    }

    /// An `Ack`'s encoding into `out`: its length; `None` for another
    /// record, or when `out` is too short.
    pub(super) fn encode_ack_into(&self, out: &mut [u8]) -> Option<usize> {
        if !matches!(self, Record::Ack { .. }) {
            return None;
        }
        let mut w = Writer::new(out);
        self.write_ack(&mut w);
        w.finish()
    }

    fn write_ack<S: Sink>(&self, s: &mut S) {
        if let Record::Ack { client, sub, msg } = *self {
            s.varint(ACK);
            s.bytes(client.as_bytes());
            s.varint(u64::from(sub));
            s.varint(msg);
        }
    }

    /// The fields a message record has before its message, and the message;
    /// `None` for a record that holds none.
    fn write_message_head<S: Sink>(&self, s: &mut S) -> Option<&MessageRecord<'_>> {
        match self {
            Record::Message(m) => {
                s.varint(MESSAGE);
                Some(m)
            }
            Record::MessageOnce {
                client,
                pid,
                message,
            } => {
                s.varint(MESSAGE_ONCE);
                s.bytes(client.as_bytes());
                s.varint(u64::from(*pid));
                Some(message)
            }
            Record::Forwarded { group, message } => {
                s.varint(FORWARDED);
                match group {
                    None => s.byte(0),
                    Some((filter, name)) => {
                        s.byte(1);
                        s.bytes(filter.as_bytes());
                        s.bytes(name.as_bytes());
                    }
                }
                Some(message)
            }
            _ => None,
        }
    }

    fn encode_message(&self, spare: Option<Arc<[u8]>>) -> Option<Arc<[u8]>> {
        let mut count = Counter::default();
        let m = self.write_message_head(&mut count)?;
        m.write_fields(&mut count);
        let head_len = count.finish()?;
        let meta_len = m.meta.encoded_len();
        let len = head_len + meta_len.checked_add(bytes_len(m.payload.len()))?;
        let mut bytes = new_or_spare(len, spare);
        let out = Arc::get_mut(&mut bytes)?;
        let (head, rest) = out.split_at_mut(head_len);
        let mut w = Writer::new(head);
        self.write_message_head(&mut w);
        m.write_fields(&mut w);
        // Every byte is written: a spare's old bytes must not remain.
        if w.finish()? != head_len {
            return None;
        }
        let (meta, tail) = rest.split_at_mut(meta_len);
        if !m.meta.encode_into(meta) {
            return None;
        }
        let tail_len = tail.len();
        let mut w = Writer::new(tail);
        w.bytes(m.payload);
        (w.finish()? == tail_len).then_some(bytes)
    }
}

impl MessageRecord<'_> {
    /// The fields before the meta.
    fn write_fields<S: Sink>(&self, s: &mut S) {
        s.varint(self.id);
        s.bytes(self.topic.as_bytes());
        s.varint(self.seq);
        s.byte(match self.qos {
            QoS::AtMostOnce => 0,
            QoS::AtLeastOnce => 1,
        });
        s.varint(self.published_us);
        match self.dedup {
            None => s.byte(0),
            Some(d) => {
                s.byte(1);
                s.varint(d.producer);
                s.varint(d.seq);
            }
        }
    }
}

/// `spare` when it is `len` bytes long and nobody else holds it, else a
/// new allocation.
#[inline]
fn new_or_spare(len: usize, spare: Option<Arc<[u8]>>) -> Arc<[u8]> {
    match spare {
        Some(b) if b.len() == len && Arc::strong_count(&b) == 1 && Arc::weak_count(&b) == 0 => b,
        _ => core::iter::repeat_n(0u8, len).collect(),
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::String;
    use alloc::vec::Vec;

    use super::*;
    use crate::wire::{Dedup, Meta};
    use proptest::prelude::*;

    /// A record of every kind encoded here, around `message`.
    fn every_kind<'a>(
        message: MessageRecord<'a>,
        client: &'a str,
        group: Option<(&'a str, &'a str)>,
        (pid, sub): (u16, u32),
    ) -> [Record<'a>; 4] {
        [
            Record::Message(message),
            Record::MessageOnce {
                client,
                pid,
                message,
            },
            Record::Forwarded { group, message },
            Record::Ack {
                client,
                sub,
                msg: message.id,
            },
        ]
    }

    proptest! {
        #[test]
        fn records_are_encoded_as_serde_encodes_them(
            id in any::<u64>(),
            topic in "[a-z0-9.]{1,40}",
            seq in any::<u64>(),
            qos1 in any::<bool>(),
            published_us in any::<u64>(),
            dedup in proptest::option::of((any::<u64>(), any::<u64>())),
            ttl_ms in proptest::option::of(any::<u32>()),
            priority in any::<u8>(),
            reply_to in proptest::option::of("[a-z.]{1,20}"),
            correlation in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            client in "[$a-z0-9.]{0,200}",
            group in proptest::option::of(("[a-z.*>]{1,30}", "[a-z]{1,150}")),
            pid in any::<u16>(),
            sub in any::<u32>(),
        ) {
            let message = MessageRecord {
                id,
                topic: &topic,
                seq,
                qos: if qos1 { QoS::AtLeastOnce } else { QoS::AtMostOnce },
                published_us,
                dedup: dedup.map(|(producer, seq)| Dedup { producer, seq }),
                meta: Meta {
                    ttl_ms,
                    priority,
                    reply_to: reply_to.as_deref(),
                    correlation: correlation.as_deref(),
                    ..Meta::default()
                },
                payload: &payload,
            };
            let group = group.as_ref().map(|(f, g): &(String, String)| (f.as_str(), g.as_str()));
            for record in every_kind(message, &client, group, (pid, sub)) {
                let by_serde = postcard::to_allocvec(&record).unwrap();
                let by_hand = record.encode_by_hand(None);
                prop_assert_eq!(by_hand.as_deref(), Some(&by_serde[..]));
                if let Some(op) = super::super::StoreOp::inline(0, &record) {
                    prop_assert_eq!(op.bytes(), &by_serde[..]);
                }
                prop_assert_eq!(Record::decode(&by_serde), Ok(record));
                // Written over a spare record of the same length: none of
                // its old bytes remain.
                let spare: Arc<[u8]> = alloc::vec![0xa5; by_serde.len()].into();
                let spare_at = spare.as_ptr();
                let over = record.encode_reusing(Some(spare));
                prop_assert_eq!(&*over, &by_serde[..]);
                prop_assert_eq!(over.as_ptr(), spare_at, "the spare is written over");
                // A spare of another length is not.
                let short: Arc<[u8]> = Vec::from(&by_serde[1..]).into();
                prop_assert_eq!(&*record.encode_reusing(Some(short)), &by_serde[..]);
            }
        }
    }
}
