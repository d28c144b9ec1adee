//! Admin requests (list topics and sessions, read, purge and delete topics):
//! the driver hands them to the session one at a time and answers each
//! caller with the broker's decoded reply.

use std::io;

use mq_core::Reason;
use mq_core::broker::admin::AdminReply;
use mq_core::client::AdminError;
use mq_core::wire::AdminRequest;

use super::command::ReplyTo;
use super::{Driver, Error};

/// An admin request, owned (see `mq_core::broker::admin` for what each does).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admin {
    /// Every topic.
    Topics,
    /// Every session.
    Sessions,
    /// Messages a topic keeps for replay, from sequence `from` (0: the
    /// oldest), at most `limit`, with the first `max_payload` bytes of each.
    Messages {
        /// Topic name.
        topic: String,
        /// First sequence number.
        from: u64,
        /// Most messages.
        limit: u32,
        /// Payload bytes of each.
        max_payload: u32,
    },
    /// Drop the topic's messages below sequence `before`.
    Purge {
        /// Topic name.
        topic: String,
        /// First sequence number kept.
        before: u64,
    },
    /// Remove the topic with its messages and sequence state.
    DeleteTopic {
        /// Topic name.
        topic: String,
    },
}

impl Admin {
    /// The request, borrowing the topic.
    pub fn request(&self) -> AdminRequest<'_> {
        match self {
            Admin::Topics => AdminRequest::Topics,
            Admin::Sessions => AdminRequest::Sessions,
            Admin::Messages {
                topic,
                from,
                limit,
                max_payload,
            } => AdminRequest::Messages {
                topic,
                from: *from,
                limit: *limit,
                max_payload: *max_payload,
            },
            Admin::Purge { topic, before } => AdminRequest::Purge {
                topic,
                before: *before,
            },
            Admin::DeleteTopic { topic } => AdminRequest::DeleteTopic { topic },
        }
    }
}

pub(crate) type AdminReplyTo = ReplyTo<Result<AdminReply, Error>>;

impl Driver {
    /// A caller's admin request: sent once the session is connected and
    /// free to take it.
    pub(super) fn admin(&mut self, request: Admin, reply: AdminReplyTo) {
        if self.stopping {
            reply.send(Err(self.closed_error()));
            return;
        }
        self.admin_queue.push_back((request, reply));
        self.send_admin();
    }

    /// Hands waiting admin requests to the session; true when one went.
    pub(super) fn send_admin(&mut self) -> bool {
        let mut sent = false;
        while let Some((request, reply)) = self.admin_queue.pop_front() {
            if reply.is_closed() {
                continue;
            }
            match self.session.admin(request.request()) {
                Ok(id) => {
                    self.admins.insert(id.0, reply);
                    sent = true;
                }
                Err(AdminError::Busy | AdminError::NotConnected) => {
                    self.admin_queue.push_front((request, reply));
                    break;
                }
                Err(AdminError::TopicTooLong) => {
                    reply.send(Err(Error::Invalid("topic longer than 255 bytes")));
                }
                Err(_) => reply.send(Err(Error::Invalid("admin request refused"))),
            }
        }
        sent
    }

    /// The broker's answer to admin request `id`.
    pub(super) fn admin_answered(&mut self, id: u32, body: &[u8]) {
        let Some(reply) = self.admins.remove(&id) else {
            return;
        };
        reply.send(match AdminReply::decode(body) {
            Ok(AdminReply::Refused { reason, text }) => {
                tracing::debug!("admin request refused: {text}");
                Err(Error::Rejected(reason))
            }
            Ok(answer) => Ok(answer),
            Err(_) => Err(Error::Invalid("the broker's admin answer did not decode")),
        });
    }

    /// The connection ended: answers to requests sent on it will not come.
    pub(super) fn admins_lost(&mut self) {
        for (_, reply) in self.admins.drain() {
            reply.send(Err(Error::Io(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the connection ended before the broker answered",
            ))));
        }
    }

    /// The session is over: every admin caller fails with `reason`.
    pub(super) fn admins_closed(&mut self, reason: Reason) {
        for (_, reply) in self.admins.drain() {
            reply.send(Err(Error::Closed(reason)));
        }
        for (_, reply) in self.admin_queue.drain(..) {
            reply.send(Err(Error::Closed(reason)));
        }
    }
}
