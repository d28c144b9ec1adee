//! The header block of `HPUB` and `HMSG`: a `NATS/1.0` line, optionally
//! with a status code and description (`NATS/1.0 503` is "no responders"),
//! then `Key: Value` lines, then an empty line.
//!
//! ```text
//! NATS/1.0\r\n
//! Trace-Id: 42\r\n
//! \r\n
//! ```

use core::fmt;

use super::EncodeError;

const VERSION: &[u8] = b"NATS/1.0";

/// Why bytes are not a header block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HeaderError {
    /// It does not start with `NATS/1.0`.
    Version,
    /// The status after `NATS/1.0` is not a three-digit code.
    Status,
    /// A line is not `Key: Value`, or a key has a byte keys may not have.
    Line,
    /// It does not end with an empty line (`\r\n\r\n`).
    Unterminated,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderError::Version => "header block does not start with NATS/1.0",
            HeaderError::Status => "header status is not a three-digit code",
            HeaderError::Line => "header line is not Key: Value",
            HeaderError::Unterminated => "header block does not end with an empty line",
        })
    }
}

impl core::error::Error for HeaderError {}

/// Whether `key` may be a header key: visible ASCII other than `:`.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b':')
}

/// Whether `value` may be a header value: no CR or LF.
pub fn valid_value(value: &[u8]) -> bool {
    !value.iter().any(|&b| b == b'\r' || b == b'\n')
}

/// A parsed header block, borrowing the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderBlock<'a> {
    /// The status code (`503`: no responders), if any.
    pub status: Option<u16>,
    /// The text after the status code.
    pub description: &'a [u8],
    /// The `Key: Value` lines, each ending in `\r\n`.
    lines: &'a [u8],
}

impl<'a> HeaderBlock<'a> {
    /// Parses a whole block (as `HPUB`'s header size delimits it).
    pub fn parse(raw: &'a [u8]) -> Result<Self, HeaderError> {
        let rest = raw.strip_prefix(VERSION).ok_or(HeaderError::Version)?;
        let eol = find_crlf(rest).ok_or(HeaderError::Unterminated)?;
        let (first, lines) = (&rest[..eol], &rest[eol + 2..]);
        let first = trim_start(first);
        let (status, description) = if first.is_empty() {
            (None, &first[..0])
        } else {
            let code = first.get(..3).ok_or(HeaderError::Status)?;
            if !code.iter().all(u8::is_ascii_digit) || first.get(3).is_some_and(|&b| b != b' ') {
                return Err(HeaderError::Status);
            }
            let code = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
            (Some(code), trim_start(&first[3..]))
        };
        let lines = lines
            .strip_suffix(b"\r\n")
            .ok_or(HeaderError::Unterminated)?;
        let block = HeaderBlock {
            status,
            description,
            lines,
        };
        let mut rest = lines;
        while !rest.is_empty() {
            let eol = find_crlf(rest).ok_or(HeaderError::Unterminated)?;
            split_line(&rest[..eol]).ok_or(HeaderError::Line)?;
            rest = &rest[eol + 2..];
        }
        Ok(block)
    }

    /// The headers in order (a key may repeat).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        self.lines
            .split(|&b| b == b'\n')
            .filter_map(|l| split_line(l.strip_suffix(b"\r").unwrap_or(l)))
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
    &b[n..]
}

fn split_line(line: &[u8]) -> Option<(&str, &[u8])> {
    let colon = line.iter().position(|&b| b == b':')?;
    let key = core::str::from_utf8(&line[..colon]).ok()?;
    if !valid_key(key) || !valid_value(line) {
        return None;
    }
    Some((key, trim_start(&line[colon + 1..])))
}

/// Writes a header block into a caller buffer: [`new`](Self::new), then
/// [`push`](Self::push) each header, then [`finish`](Self::finish).
#[derive(Debug)]
pub struct HeaderWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> HeaderWriter<'b> {
    /// Starts a block with a status code and description (`None`: none).
    pub fn new(buf: &'b mut [u8], status: Option<(u16, &str)>) -> Result<Self, EncodeError> {
        let mut w = HeaderWriter { buf, pos: 0 };
        w.put(VERSION)?;
        if let Some((code, text)) = status {
            let code = code.min(999);
            let digits = [
                b'0' + (code / 100) as u8,
                b'0' + (code / 10 % 10) as u8,
                b'0' + (code % 10) as u8,
            ];
            w.put(b" ")?;
            w.put(&digits)?;
            if !text.is_empty() {
                w.put(b" ")?;
                w.put(text.as_bytes())?;
            }
        }
        w.put(b"\r\n")?;
        Ok(w)
    }

    /// The bytes a block takes with this status and these headers.
    pub fn len_for<'h>(
        status: Option<(u16, &str)>,
        headers: impl Iterator<Item = (&'h str, &'h [u8])>,
    ) -> usize {
        let first = VERSION.len() + 2 + status.map_or(0, |(_, t)| 4 + t.len() + 1);
        first
            + headers
                .map(|(k, v)| k.len() + 2 + v.len() + 2)
                .sum::<usize>()
            + 2
    }

    /// Adds `key: value`. A key or value a header cannot carry (see
    /// [`valid_key`], [`valid_value`]) is left out and `Ok(false)` returned.
    pub fn push(&mut self, key: &str, value: &[u8]) -> Result<bool, EncodeError> {
        if !valid_key(key) || !valid_value(value) {
            return Ok(false);
        }
        let need = key.len() + value.len() + 4;
        if self.pos + need > self.buf.len() {
            return Err(EncodeError {
                needed: self.pos + need + 2,
            });
        }
        self.put(key.as_bytes())?;
        self.put(b": ")?;
        self.put(value)?;
        self.put(b"\r\n")?;
        Ok(true)
    }

    /// Ends the block; returns its length.
    pub fn finish(mut self) -> Result<usize, EncodeError> {
        self.put(b"\r\n")?;
        Ok(self.pos)
    }

    fn put(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        let end = self.pos + b.len();
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(EncodeError { needed: end })?;
        dst.copy_from_slice(b);
        self.pos = end;
        Ok(())
    }
}
