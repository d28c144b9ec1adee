//! Admin frames: an operator's request and the broker's answer (see
//! `broker::admin` for what each does). Only a token with the admin
//! permission may send [`Admin`]; the broker answers every one with an
//! [`AdminAnswer`] of the same id.
//!
//! Both carry their content as an encoded body (postcard): [`AdminRequest`]
//! in `Admin`, `broker::admin::AdminReply` in `AdminAnswer`. A device that
//! never asks (no `alloc`) then decodes two byte strings rather than the
//! requests and replies themselves, and its firmware stays small.

use serde::{Deserialize, Serialize};

use super::{DecodeError, EncodeError};

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

impl<'a> AdminRequest<'a> {
    /// Encodes into the front of `buf` (an [`Admin`] frame's body), returning
    /// the bytes written.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let needed = postcard::serialize_with_flavor(self, postcard::ser_flavors::Size::default())
            .unwrap_or(usize::MAX);
        postcard::to_slice(self, buf)
            .map(|out| out.len())
            .map_err(|_| EncodeError::BufferTooSmall { needed })
    }

    /// Decodes an [`Admin`] frame's body; the topic borrows from it.
    pub fn decode(body: &'a [u8]) -> Result<AdminRequest<'a>, DecodeError> {
        match postcard::take_from_bytes::<AdminRequest<'a>>(body) {
            Ok((request, [])) => Ok(request),
            Ok(_) => Err(DecodeError::TrailingBytes),
            Err(_) => Err(DecodeError::Malformed),
        }
    }
}

/// Client → broker: an admin request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Admin<'a> {
    /// Client-chosen id, echoed in the answer.
    pub id: u32,
    /// What is asked: an [`AdminRequest`], encoded
    /// ([`AdminRequest::encode`]). One that does not decode is a protocol
    /// violation.
    pub request: &'a [u8],
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
