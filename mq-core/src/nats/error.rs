//! What can be wrong with received bytes, and with a buffer to encode into.

use core::fmt;

/// Why bytes are not a NATS operation. [`server_text`](Self::server_text)
/// is the `-ERR` a server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ParseError {
    /// The line starts with no operation this protocol has.
    UnknownOperation,
    /// No end of line within [`Limits::max_control_line`](super::Limits).
    ControlLineTooLong,
    /// The payload size is above [`Limits::max_payload`](super::Limits).
    PayloadTooLarge,
    /// The bytes after the payload are not `\r\n`: the size was wrong.
    PayloadNotTerminated,
    /// The operation's arguments are not what it takes; the usage line.
    BadArguments(&'static str),
}

impl ParseError {
    /// The `-ERR` text (without quotes), worded as nats-server words it where
    /// it has a word for it.
    pub fn server_text(&self) -> &'static str {
        match self {
            ParseError::UnknownOperation | ParseError::PayloadNotTerminated => {
                "Unknown Protocol Operation"
            }
            ParseError::ControlLineTooLong => "Maximum Control Line Exceeded",
            ParseError::PayloadTooLarge => "Maximum Payload Violation",
            ParseError::BadArguments(usage) => usage,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnknownOperation => f.write_str("unknown protocol operation"),
            ParseError::ControlLineTooLong => f.write_str("control line too long"),
            ParseError::PayloadTooLarge => f.write_str("payload above the maximum"),
            ParseError::PayloadNotTerminated => {
                f.write_str("payload not followed by CRLF (wrong size)")
            }
            ParseError::BadArguments(usage) => write!(f, "bad arguments: {usage}"),
        }
    }
}

impl core::error::Error for ParseError {}

/// The buffer is too small; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EncodeError {
    /// The bytes the operation takes.
    pub needed: usize,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "buffer too small: {} bytes needed", self.needed)
    }
}

impl core::error::Error for EncodeError {}
