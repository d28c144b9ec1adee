//! Header blocks between NATS and mq: each `Key: Value` line is an mq
//! header, in order (a key may repeat); a status line is the headers
//! `nats:status` and `nats:description`. On the way out, mq headers whose
//! key NATS cannot carry (one with `:`, as MQTT's `mqtt:content-type`, or a
//! space) or whose value holds CR or LF are left out.

use alloc::vec::Vec;

use crate::nats::HeaderBlock;
use crate::nats::headers::HeaderWriter;
use crate::wire::{Headers, HeadersBuilder};

/// The header holding a status code (`503`).
pub(crate) const STATUS: &str = "nats:status";
/// The header holding the text after a status code.
pub(crate) const DESCRIPTION: &str = "nats:description";

/// A received block as mq headers, encoded into `buf`.
pub(crate) fn to_mq<'b>(block: Option<&HeaderBlock<'_>>, buf: &'b mut Vec<u8>) -> Headers<'b> {
    buf.clear();
    let Some(block) = block else {
        return Headers::EMPTY;
    };
    let mut digits = [0u8; 3];
    let status = block.status.map(|code| {
        digits = [
            b'0' + (code / 100 % 10) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
        ];
        &digits[..]
    });
    let fixed = [
        (STATUS, status),
        (
            DESCRIPTION,
            Some(block.description).filter(|d| !d.is_empty()),
        ),
    ];
    let need = block
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .chain(
            fixed
                .iter()
                .map(|(k, v)| v.map_or(0, |v| k.len() + v.len())),
        )
        .map(|n| n + 10)
        .sum();
    buf.resize(need, 0);
    let mut b = HeadersBuilder::new(buf);
    for (k, v) in fixed {
        if let Some(v) = v {
            let _ = b.push(k, v);
        }
    }
    for (k, v) in block.iter() {
        // Keys over mq's 255 bytes are left out.
        let _ = b.push(k, v);
    }
    b.finish()
}

/// mq headers as a NATS block in `buf`; `None` when there is nothing to
/// carry (no status and no header NATS can take).
pub(crate) fn to_nats<'b>(h: Headers<'_>, buf: &'b mut Vec<u8>) -> Option<&'b [u8]> {
    if h.is_empty() {
        return None;
    }
    let code = h
        .get(STATUS)
        .and_then(|v| core::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<u16>().ok())
        .filter(|c| (100..1000).contains(c));
    let description = h
        .get(DESCRIPTION)
        .and_then(|v| core::str::from_utf8(v).ok())
        .filter(|d| crate::nats::headers::valid_value(d.as_bytes()))
        .unwrap_or("");
    let status = code.map(|c| (c, description));
    let carried = || {
        h.iter().filter(|(k, v)| {
            *k != STATUS
                && *k != DESCRIPTION
                && crate::nats::headers::valid_key(k)
                && crate::nats::headers::valid_value(v)
        })
    };
    if status.is_none() && carried().next().is_none() {
        return None;
    }
    buf.clear();
    buf.resize(HeaderWriter::len_for(status, carried()), 0);
    let mut w = HeaderWriter::new(buf, status).ok()?;
    for (k, v) in carried() {
        w.push(k, v).ok()?;
    }
    let n = w.finish().ok()?;
    Some(&buf[..n])
}
