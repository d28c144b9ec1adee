//! The error of every client operation, async and blocking.

use std::fmt;
use std::io;

use mq_core::Reason;

use crate::tls::TlsError;

/// Why a client operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Connecting failed: the first TCP connection could not be opened, or it
    /// closed before the broker's `Welcome`.
    Io(io::Error),
    /// The broker refused the first connection (`BadToken`,
    /// `UnsupportedVersion`, `ShuttingDown`, ...), or did not welcome it within
    /// the connect timeout (`Timeout`).
    Refused(Reason),
    /// The broker refused this publish (`PubReject`) or subscription
    /// (`SubReject`).
    Rejected(Reason),
    /// The client is closed: `Normal` after [`close`](crate::client::Client::close) or
    /// once every handle is dropped, otherwise why the broker ended the session
    /// for good (`SessionTakenOver`, `BadToken`, ...).
    Closed(Reason),
    /// No answer within the time given.
    Timeout,
    /// An argument is not valid (topic, filter, group, header, option); the text
    /// says which.
    Invalid(&'static str),
    /// The message can never be sent: larger than the outbox, or its topic and
    /// properties alone exceed the broker's maximum frame.
    TooLarge,
    /// The client has as many subscriptions as it can hold.
    TooManySubscriptions,
    /// The TLS settings cannot be used (a file missing or not PEM, a key that
    /// does not fit its certificate); the text names the file. A TLS
    /// handshake that fails (an unknown CA, an expired certificate, the wrong
    /// server name) is [`Error::Io`] with rustls' words.
    Tls(TlsError),
}

impl Error {
    /// The broker's reason, for the variants that carry one.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Error::Refused(r) | Error::Rejected(r) | Error::Closed(r) => Some(*r),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "connecting failed: {e}"),
            Error::Refused(r) => write!(f, "the broker refused the connection: {r}"),
            Error::Rejected(r) => write!(f, "the broker refused the request: {r}"),
            Error::Closed(r) => write!(f, "the client is closed: {r}"),
            Error::Timeout => f.write_str("timed out"),
            Error::Invalid(what) => write!(f, "invalid argument: {what}"),
            Error::TooLarge => f.write_str("message too large"),
            Error::TooManySubscriptions => f.write_str("too many subscriptions"),
            Error::Tls(e) => write!(f, "TLS settings: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Tls(e) => Some(e),
            _ => None,
        }
    }
}
