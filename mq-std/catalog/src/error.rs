//! What can go wrong in a catalog call, said so that a node can act on it.

use core::fmt;

/// The error of every catalog call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The URL names no backend this crate has, or is malformed.
    Url(String),
    /// An argument the catalog cannot store (an empty id, a zero lease, ...).
    Invalid(String),
    /// The database cannot be reached or went away (connection refused or
    /// dropped, the SQLite file removed) or takes no writes now (a replica,
    /// a standby, one loading its data). The next call connects again.
    Unavailable {
        /// `sqlite`, `redis` or `postgres`.
        backend: &'static str,
        /// What the database or the operating system said.
        detail: String,
    },
    /// A newer incarnation of this node registered: this one is stale and must
    /// stop acting for the node.
    Fenced {
        /// The node id.
        node: String,
        /// The incarnation the caller holds.
        held: u64,
        /// The newest incarnation in the catalog.
        current: u64,
    },
    /// The node's lease ran out (or it deregistered) before this heartbeat: the
    /// other nodes may already treat it as gone. Register again.
    LeaseExpired {
        /// The node id.
        node: String,
        /// The incarnation the caller holds.
        incarnation: u64,
    },
    /// The recipient's offline queue holds `limit` messages: the message was
    /// not stored. Nothing is dropped to make room.
    QueueFull {
        /// The recipient session.
        recipient: String,
        /// The per-recipient limit.
        limit: u64,
    },
    /// The catalog holds something this crate did not write (a missing field,
    /// a number out of range): it was not used.
    Malformed(String),
    /// Any other error the database reported.
    Database {
        /// `sqlite`, `redis` or `postgres`.
        backend: &'static str,
        /// What the database said.
        detail: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url(detail) => write!(f, "catalog URL: {detail}"),
            Error::Invalid(detail) => write!(f, "invalid catalog argument: {detail}"),
            Error::Unavailable { backend, detail } => {
                write!(f, "the {backend} catalog is unavailable: {detail}")
            }
            Error::Fenced {
                node,
                held,
                current,
            } => write!(
                f,
                "node {node} incarnation {held} is fenced off by incarnation {current}"
            ),
            Error::LeaseExpired { node, incarnation } => write!(
                f,
                "the lease of node {node} incarnation {incarnation} expired: register again"
            ),
            Error::QueueFull { recipient, limit } => write!(
                f,
                "the offline queue of {recipient} is full ({limit} messages): not stored"
            ),
            Error::Malformed(detail) => write!(f, "malformed catalog data: {detail}"),
            Error::Database { backend, detail } => write!(f, "{backend} catalog: {detail}"),
        }
    }
}

impl std::error::Error for Error {}
