//! The NATS client protocol: a text protocol a person can type.
//!
//! Operations are lines of text (`PUB orders 5`, `SUB orders 1`, `PING`),
//! some followed by a payload of a size the line gives. This module parses
//! both directions' operations from a receive buffer, borrowing subjects,
//! payloads and header blocks from it ([`Op::parse`]), and encodes them into
//! caller buffers ([`Op::encode`]). No allocation, no I/O.
//!
//! - this file: [`Op`], [`Limits`], parsing and encoding;
//! - [`connect`]: the JSON of `CONNECT` ([`ConnectOptions`]) and of `INFO`
//!   ([`ServerInfo`]);
//! - [`headers`]: the `NATS/1.0` header block of `HPUB` and `HMSG`;
//! - `error`: what can be wrong with received bytes ([`ParseError`]).
//!
//! Operation names are case-insensitive; a line ends with `\r\n` (a lone
//! `\n` is taken too, as nats-server does); arguments are separated by
//! spaces or tabs.

pub mod connect;
mod error;
pub mod headers;
mod parse;
mod write;

#[cfg(test)]
mod tests;

pub use connect::{ConnectOptions, ServerInfo};
pub use error::{EncodeError, ParseError};
pub use headers::{HeaderBlock, HeaderError};

/// nats-server's default longest control line (an operation's first line).
pub const MAX_CONTROL_LINE: usize = 4096;

/// Bounds a parser holds received operations to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest control line, `\r\n` included.
    pub max_control_line: usize,
    /// The largest payload (headers included) of a `PUB`, `HPUB`, `MSG` or `HMSG`.
    pub max_payload: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_control_line: MAX_CONTROL_LINE,
            max_payload: 1024 * 1024,
        }
    }
}

/// One protocol operation, borrowing from the bytes it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// `INFO {json}` (server to client).
    Info(&'a str),
    /// `CONNECT {json}` (client to server); see [`ConnectOptions::parse`].
    Connect(&'a str),
    /// `PUB subject [reply] size` or, with headers, `HPUB subject [reply]
    /// header-size total-size`.
    Pub(Message<'a>),
    /// `SUB subject [queue] sid`.
    Sub {
        /// The subject, possibly with wildcards.
        subject: &'a str,
        /// The queue group.
        queue: Option<&'a str>,
        /// The client's id for the subscription.
        sid: &'a str,
    },
    /// `UNSUB sid [max]`: end the subscription, or end it once `max`
    /// messages were delivered on it in all.
    Unsub {
        /// The subscription.
        sid: &'a str,
        /// How many messages in all before it ends.
        max: Option<u64>,
    },
    /// `MSG subject sid [reply] size` or `HMSG subject sid [reply]
    /// header-size total-size` (server to client).
    Msg {
        /// The subscription it is delivered for.
        sid: &'a str,
        /// The message.
        msg: Message<'a>,
    },
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `+OK` (verbose mode's answer).
    Ok,
    /// `-ERR 'text'`; the text without its quotes.
    Err(&'a str),
}

/// A message as `PUB`/`HPUB` and `MSG`/`HMSG` carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// Where it is published (a subject without wildcards).
    pub subject: &'a str,
    /// The subject to answer to.
    pub reply: Option<&'a str>,
    /// The `NATS/1.0` header block, `\r\n\r\n` included (`HPUB`, `HMSG`);
    /// see [`HeaderBlock::parse`].
    pub headers: Option<&'a [u8]>,
    /// The payload.
    pub payload: &'a [u8],
}

/// What [`Op::parse`] found at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A whole operation, and how many bytes it took.
    Op(Op<'a>, usize),
    /// More bytes are needed: at least this many in all.
    Incomplete(usize),
}
