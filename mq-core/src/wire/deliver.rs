//! A [`Deliver`](super::Deliver) frame written from parts already encoded.
//!
//! The broker keeps every message as its encoded record, whose last fields are
//! the message's [`Meta`](super::Meta) and payload in postcard's encoding: the
//! very bytes a `Deliver` frame carries. Writing a delivery copies them next to
//! the few fields that differ per delivery, instead of decoding the record and
//! encoding the frame through serde (twice: once to measure it). The bytes are
//! the same as serde's (tested below, for any field values).

use super::QoS;
use super::codec::{Wire, Writer, bytes_len, varint_len};

/// `Frame::Deliver`'s variant index (postcard writes it as a one-byte varint).
const DELIVER: u8 = 10;

/// A delivery whose meta and payload are already encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EncodedDeliver<'a> {
    pub sub: u32,
    pub topic: &'a str,
    pub seq: u64,
    pub tag: u64,
    pub attempt: u16,
    pub qos: QoS,
    /// The message's [`Meta`](super::Meta), as postcard encodes it.
    pub meta: &'a [u8],
    /// The payload with its varint length in front, as postcard encodes a
    /// byte slice.
    pub payload: &'a [u8],
}

impl EncodedDeliver<'_> {
    /// The frame's encoded length (without framing).
    pub(crate) fn encoded_len(&self) -> usize {
        1 + varint_len(self.sub.into())
            + bytes_len(self.topic.len())
            + varint_len(self.seq)
            + varint_len(self.tag)
            + varint_len(self.attempt.into())
            + 1
            + self.meta.len()
            + 1
            + self.payload.len()
    }

    /// Writes the frame into `out`, which is exactly
    /// [`encoded_len`](Self::encoded_len) bytes long.
    pub(crate) fn encode_exact(&self, out: &mut [u8]) {
        let len = out.len();
        let mut w = Writer::new(out);
        w.byte(DELIVER);
        w.varint(self.sub.into());
        w.bytes(self.topic.as_bytes());
        w.varint(self.seq);
        w.varint(self.tag);
        w.varint(self.attempt.into());
        self.qos.write(&mut w);
        w.raw(self.meta);
        // No fragment: the whole message.
        w.byte(0);
        w.raw(self.payload);
        debug_assert_eq!(w.finish(), Some(len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Deliver, Frame, HeadersBuilder, Meta};
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn postcard<T: serde::Serialize>(value: &T) -> Vec<u8> {
        postcard::to_allocvec(value).unwrap()
    }

    proptest! {
        #[test]
        fn agrees_with_serde_byte_for_byte(
            sub in any::<u32>(),
            topic in "[a-z0-9._]{1,40}",
            seq in any::<u64>(),
            tag in any::<u64>(),
            attempt in any::<u16>(),
            qos1 in any::<bool>(),
            ttl in proptest::option::of(any::<u32>()),
            priority in any::<u8>(),
            reply in proptest::option::of("[a-z.]{1,20}"),
            correlation in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            header in proptest::option::of(("[a-z]{1,10}", proptest::collection::vec(any::<u8>(), 0..10))),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut hbuf = vec![0u8; 64];
            let headers = match &header {
                Some((k, v)) => {
                    let mut b = HeadersBuilder::new(&mut hbuf);
                    b.push(k, v).unwrap();
                    b.finish()
                }
                None => Default::default(),
            };
            let meta = Meta {
                ttl_ms: ttl,
                priority,
                reply_to: reply.as_deref(),
                correlation: correlation.as_deref(),
                headers,
            };
            let qos = if qos1 { QoS::AtLeastOnce } else { QoS::AtMostOnce };
            let frame = Frame::Deliver(Deliver {
                sub, topic: &topic, seq, tag, attempt, qos, meta,
                fragment: None,
                payload: &payload,
            });
            let want = postcard(&frame);
            let meta_bytes = postcard(&meta);
            let payload_bytes = postcard(&payload.as_slice());
            let d = EncodedDeliver {
                sub, topic: &topic, seq, tag, attempt, qos,
                meta: &meta_bytes,
                payload: &payload_bytes,
            };
            prop_assert_eq!(d.encoded_len(), want.len());
            let mut got = vec![0u8; d.encoded_len()];
            d.encode_exact(&mut got);
            prop_assert_eq!(got, want);
        }
    }
}
