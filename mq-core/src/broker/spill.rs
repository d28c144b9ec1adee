//! Bytes out for the codecs that write into the caller's transmit buffer
//! (MQTT, NATS): whole items only, an item larger than an empty buffer
//! encoded aside once and handed out over several calls, and what a write
//! hands back to the router afterwards.

use alloc::vec::Vec;

use super::command::Command;
use super::conn::After;
use super::router::Router;
use super::{ConnId, Map};
use crate::time::Instant;

/// Where bytes go: the caller's buffer, and what is written of it.
pub(crate) struct Tx<'b> {
    pub buf: &'b mut [u8],
    pub pos: usize,
}

/// An item encoded aside, and how much of it was handed out.
#[derive(Default)]
pub(crate) struct Spill {
    bytes: Vec<u8>,
    sent: usize,
}

impl Spill {
    /// Part of a spilled item is still to go out.
    pub(crate) fn pending(&self) -> bool {
        self.sent < self.bytes.len()
    }

    /// Hands out what fits of the spilled item; true when all of it is out.
    pub(crate) fn drain(&mut self, tx: &mut Tx<'_>) -> bool {
        let rest = &self.bytes[self.sent..];
        let n = rest.len().min(tx.buf.len() - tx.pos);
        tx.buf[tx.pos..tx.pos + n].copy_from_slice(&rest[..n]);
        tx.pos += n;
        self.sent += n;
        if self.pending() {
            return false;
        }
        self.bytes = Vec::new();
        self.sent = 0;
        true
    }

    /// Writes an item of `len` bytes with `encode` (which returns whether it
    /// wrote it): into `tx` when it fits, aside when it is larger than an
    /// empty buffer. False when it does not fit yet (nothing written).
    pub(crate) fn put(
        &mut self,
        tx: &mut Tx<'_>,
        len: usize,
        encode: impl FnOnce(&mut [u8]) -> bool,
    ) -> bool {
        if len <= tx.buf.len() - tx.pos {
            if encode(&mut tx.buf[tx.pos..tx.pos + len]) {
                tx.pos += len;
            }
            return true;
        }
        if tx.pos > 0 {
            return false;
        }
        self.bytes.resize(len, 0);
        if !encode(&mut self.bytes) {
            self.bytes = Vec::new();
            return true;
        }
        self.sent = 0;
        self.drain(tx);
        true
    }
}

/// What a write hands back to the router afterwards.
#[derive(Default)]
pub(crate) struct Settled {
    /// Deliveries done with without an acknowledgement from the client.
    pub acks: Vec<u64>,
    /// QoS 0 deliveries written (or dropped), per subscription: credit to
    /// return.
    pub credit: Map<u32, u32>,
}

impl Settled {
    /// Hands it all to the router.
    pub(crate) fn apply(self, id: ConnId, now: Instant, r: &mut Router) {
        for tag in self.acks {
            r.handle(id, now, Command::Ack { tag });
        }
        for (sub, credit) in self.credit {
            r.handle(id, now, Command::Credit { sub, credit });
        }
    }
}

/// What a stream codec (MQTT's, NATS's) is after a write: more to write while
/// the router queued output for it or the codec has something of its own
/// (`pending`: its control frames, a spilled frame, a last frame of a closing
/// connection); idle otherwise, until a closing connection has written
/// everything: then `Close`, once.
pub(crate) fn after_write(
    id: ConnId,
    r: &Router,
    pending: bool,
    closing: bool,
    close_event_sent: &mut bool,
) -> After {
    if pending || r.links.get(id).is_some_and(|l| !l.out.is_empty()) {
        return After::More;
    }
    if !closing || *close_event_sent {
        return After::Idle;
    }
    *close_event_sent = true;
    After::Close
}
