//! Emptied lists kept for the next publish: every admitted message carries a
//! list of its queues and one of the publishers to answer, usually of one or
//! a few entries each, and allocating them per message showed in the profile.
//! Messages too: retention lets go of one for each one it keeps, an ack of
//! the last delivery lets go of another, and the next message is written over
//! it (its record's allocation too, when as long).
//!
//! A store's group commit releases a whole window of publishes at once, and
//! a peer's acks come a window at a time: the kept ones are bounded by such a
//! window (1,024 publishes unacknowledged, as the peers' bench keeps), not by
//! a fraction of it, or most of every window allocates anew.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::broker::message::Msg;

/// Messages kept at most (a QoS 1 window of publishes is admitted before
/// the store releases the first of them: one spare would serve one of them).
const MESSAGES: usize = 1024;
/// Record bytes kept at most, in all.
const MESSAGE_BYTES: usize = 256 << 10;

/// Lists kept at most.
const LISTS: usize = 1024;
/// Lists that grew beyond this many entries are not kept (a large fan-out
/// allocates once per message anyway; idle memory stays small).
const ENTRIES: usize = 8;

pub(crate) struct Spares<T> {
    lists: Vec<Vec<T>>,
}

impl<T> Spares<T> {
    pub(crate) const fn new() -> Self {
        Spares { lists: Vec::new() }
    }

    /// An empty list, reused when one is kept.
    pub(crate) fn take(&mut self) -> Vec<T> {
        self.lists.pop().unwrap_or_default()
    }

    /// Keeps `list`, emptied, for a later `take` (a few, small ones).
    pub(crate) fn give(&mut self, mut list: Vec<T>) {
        if self.lists.len() < LISTS && list.capacity() <= ENTRIES && list.capacity() > 0 {
            list.clear();
            self.lists.push(list);
        }
    }
}

/// Messages nobody holds any more, for the next messages to be written over.
pub(crate) struct SpareMessages {
    msgs: Vec<Msg>,
    bytes: usize,
}

impl SpareMessages {
    pub(crate) const fn new() -> Self {
        SpareMessages {
            msgs: Vec::new(),
            bytes: 0,
        }
    }

    /// A message to write over, when one is kept.
    pub(crate) fn take(&mut self) -> Option<Msg> {
        let msg = self.msgs.pop()?;
        self.bytes -= msg.record.len();
        Some(msg)
    }

    /// Keeps `msg` when nobody else holds it and there is room, else drops it.
    pub(crate) fn give(&mut self, mut msg: Msg) {
        let len = msg.record.len();
        if self.msgs.len() < MESSAGES
            && self.bytes + len <= MESSAGE_BYTES
            && Arc::get_mut(&mut msg).is_some()
        {
            self.bytes += len;
            self.msgs.push(msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_bounded_number_of_small_lists() {
        let mut s = Spares::new();
        let mut a = s.take();
        a.extend([1u32, 2, 3]);
        let at = a.as_ptr();
        s.give(a);
        let b = s.take();
        assert!(b.is_empty());
        assert_eq!(b.as_ptr(), at, "the same allocation comes back");
        s.give(Vec::with_capacity(ENTRIES + 1));
        s.give(Vec::new());
        assert!(
            s.lists.is_empty(),
            "large and unallocated lists are not kept"
        );
        for _ in 0..LISTS + 10 {
            s.give(Vec::with_capacity(1));
        }
        assert_eq!(s.lists.len(), LISTS);
    }

    fn message(record_len: usize) -> Msg {
        use crate::broker::message::Message;
        Arc::new(Message {
            id: 1,
            seq: 1,
            topic: Arc::from("t"),
            qos: crate::wire::QoS::AtMostOnce,
            published_at: crate::time::Instant::from_micros(0),
            expires_at: None,
            priority: 0,
            payload_len: 0,
            publisher: None,
            record: alloc::vec![0u8; record_len].into(),
            meta_at: 0,
            payload_at: 0,
        })
    }

    #[test]
    fn keeps_a_bounded_number_of_messages_nobody_holds() {
        let mut s = SpareMessages::new();
        let held = message(10);
        s.give(held.clone());
        assert!(s.take().is_none(), "a message still held is not kept");
        s.give(message(MESSAGE_BYTES + 1));
        assert!(s.take().is_none(), "nor one beyond the bytes kept");
        for _ in 0..MESSAGES + 10 {
            s.give(message(1));
        }
        assert_eq!(s.msgs.len(), MESSAGES);
        let mut m = s.take().expect("kept");
        assert!(Arc::get_mut(&mut m).is_some());
        assert_eq!(s.bytes, MESSAGES - 1);
    }
}
