//! Admin frames: an operator's request and the broker's answer (see
//! `broker::admin` for what each does). Only a token with the admin
//! permission may send [`Admin`]; the broker answers every one with an
//! [`AdminAnswer`] of the same id.

use serde::{Deserialize, Serialize};

/// What an operator asks. Only sessions whose token has the admin permission
/// (`broker::Permissions::admin`) may ask over the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AdminRequest<'a> {
    /// Every topic the broker knows (`AdminReply::Topics`).
    Topics,
    /// Every session, connected or away (`AdminReply::Sessions`).
    Sessions,
    /// Messages a topic retains for replay (`AdminReply::Messages`).
    Messages {
        /// Topic name.
        topic: &'a str,
        /// First sequence number to list (0: the oldest kept).
        from: u64,
        /// Most messages to list (0: only count them).
        limit: u32,
        /// Bytes of each payload to include.
        max_payload: u32,
    },
    /// Drop a topic's messages with a lower sequence number than `before`
    /// (`AdminReply::Purged`).
    Purge {
        /// Topic name.
        topic: &'a str,
        /// First sequence number kept.
        before: u64,
    },
    /// Remove a topic with its messages and sequence state
    /// (`AdminReply::Deleted`).
    DeleteTopic {
        /// Topic name.
        topic: &'a str,
    },
}

impl AdminRequest<'_> {
    /// Whether the request changes the broker's state.
    pub fn is_mutation(&self) -> bool {
        matches!(
            self,
            AdminRequest::Purge { .. } | AdminRequest::DeleteTopic { .. }
        )
    }
}

/// Client → broker: an admin request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Admin<'a> {
    /// Client-chosen id, echoed in the answer.
    pub id: u32,
    /// What is asked.
    #[serde(borrow)]
    pub request: AdminRequest<'a>,
}

/// Broker → client: the answer to an [`Admin`] request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdminAnswer<'a> {
    /// The request's id.
    pub id: u32,
    /// The postcard encoding of the broker's `AdminReply` (decoded with
    /// `AdminReply::decode` where `alloc` is available).
    pub body: &'a [u8],
}
