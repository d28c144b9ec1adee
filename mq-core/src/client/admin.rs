//! Admin requests from the session (see `broker::admin`), with `alloc`: one
//! waits to be sent at a time; the broker's answer arrives through the inbox, in order
//! with the messages, as [`Event::AdminAnswer`](super::Event::AdminAnswer)
//! whose body is the postcard encoding of the broker's `AdminReply`.

use core::fmt;

#[cfg(feature = "alloc")]
use {
    super::error::Backpressure,
    super::inbox::{self, RecordHead},
    super::{Session, State},
    crate::framing::Framer,
    crate::topic::MAX_TOPIC_LEN,
    crate::wire::{AdminAnswer, AdminRequest, Meta, QoS},
    alloc::vec::Vec,
};

/// Identifies an admin request; its answer carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdminId(pub u32);

/// `Session::admin` (with `alloc`) refused a request; nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AdminError {
    /// Only a connected session can ask (an answer would not survive a
    /// reconnect).
    NotConnected,
    /// The previous request has not been sent yet: drain `poll_transmit`.
    Busy,
    /// The topic name is longer than the session can hold.
    TopicTooLong,
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AdminError::NotConnected => "not connected",
            AdminError::Busy => "an admin request is still waiting to be sent",
            AdminError::TopicTooLong => "topic too long",
        })
    }
}

impl core::error::Error for AdminError {}

/// A request waiting to be sent: its id and encoded body.
#[cfg(feature = "alloc")]
#[derive(Debug, Clone)]
pub(super) struct AdminOut {
    id: u32,
    body: Vec<u8>,
}

#[cfg(feature = "alloc")]
impl AdminOut {
    /// The frame, borrowing the body from here.
    pub(super) fn frame(&self) -> crate::wire::Admin<'_> {
        crate::wire::Admin {
            id: self.id,
            request: &self.body,
        }
    }
}

#[cfg(feature = "alloc")]
impl<B, const SUBS: usize, const HELD: usize, const REQS: usize, F: Framer>
    Session<B, SUBS, HELD, REQS, F>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Asks the broker an admin question (list topics or sessions, read,
    /// purge or delete a topic); the answer comes as
    /// [`Event::AdminAnswer`](super::Event::AdminAnswer) with the returned id.
    /// The broker refuses it (in the answer) unless the session's token has
    /// the admin permission. Only with `alloc`.
    pub fn admin(&mut self, request: AdminRequest<'_>) -> Result<AdminId, AdminError> {
        if self.conn.state != State::Connected {
            return Err(AdminError::NotConnected);
        }
        if self.admin_out.is_some() {
            return Err(AdminError::Busy);
        }
        let topic = match request {
            AdminRequest::Messages { topic, .. }
            | AdminRequest::Purge { topic, .. }
            | AdminRequest::DeleteTopic { topic } => topic,
            AdminRequest::Topics | AdminRequest::Sessions => "",
        };
        if topic.len() > MAX_TOPIC_LEN {
            return Err(AdminError::TopicTooLong);
        }
        let body = postcard::to_allocvec(&request).map_err(|_| AdminError::TopicTooLong)?;
        self.next_admin = self.next_admin.wrapping_add(1);
        let id = self.next_admin;
        self.admin_out = Some(AdminOut { id, body });
        Ok(AdminId(id))
    }

    /// The broker answered an admin request: into the inbox, in order with
    /// the messages.
    pub(super) fn on_admin_answer(&mut self, a: AdminAnswer<'_>) -> Result<(), Backpressure> {
        let head = RecordHead {
            chunk: false,
            last: true,
            reply: false,
            admin: true,
            qos: QoS::AtMostOnce,
            sub: a.id,
            attempt: 1,
            seq: 0,
            id: 0,
            offset: 0,
            total: a.body.len() as u64,
        };
        let meta = Meta::default();
        // Larger than the inbox can ever hold: the answer says so by being
        // empty (the broker fits answers to the frame size announced, which
        // the inbox bounds, so this is a broker that ignored it).
        let body = match inbox::record_len(0, &meta, a.body.len() as u64) {
            Some(n) if n <= self.inbox.capacity() => a.body,
            _ => &[],
        };
        if !self.inbox.add(&head, "", &meta, body, body.len()) {
            return Err(Backpressure::Inbox);
        }
        self.events.message_queued();
        Ok(())
    }
}
