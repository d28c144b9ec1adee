//! Large messages arrive in pieces (`Event::Chunk`); the clients hand the
//! application whole messages, put together here.

use std::sync::Arc;

use bytes::Bytes;
use mq_core::client::{Chunk, Delivery};
use tracing::warn;

use super::message::{Message, Settler};

/// Pieces of a large message are reassembled into a buffer reserved up to this
/// size at once; larger ones grow as their pieces arrive.
const MAX_RESERVE: u64 = 16 << 20;

/// A large message arriving in pieces.
pub(super) struct Partial {
    msg: Message,
    data: Vec<u8>,
}

/// Adds a piece of a large message; the whole message once the last arrived.
pub(super) fn reassemble(
    partial: &mut Option<Partial>,
    c: &Chunk<'_>,
    settler: &Arc<dyn Settler>,
) -> Option<Message> {
    if c.offset == 0 {
        let head = Delivery {
            id: c.id,
            sub: c.sub,
            topic: c.topic,
            seq: c.seq,
            attempt: c.attempt,
            qos: c.qos,
            meta: c.meta,
            payload: &[],
        };
        let reserve = usize::try_from(c.total.min(MAX_RESERVE)).unwrap_or(0);
        *partial = Some(Partial {
            msg: Message::new(&head, Bytes::new(), settler),
            data: Vec::with_capacity(reserve),
        });
    }
    let p = partial.as_mut()?;
    if p.msg.sub != c.sub || p.msg.seq != c.seq || p.data.len() as u64 != c.offset {
        // Not the continuation of what we have: the session restarts a message
        // from offset 0, so drop the fragment.
        warn!("out-of-place piece of a message dropped");
        return None;
    }
    p.data.extend_from_slice(c.data);
    if !c.last {
        return None;
    }
    let Partial { mut msg, data } = partial.take()?;
    msg.payload = Bytes::from(data);
    Some(msg)
}
