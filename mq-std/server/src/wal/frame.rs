//! One framed entry of a segment or snapshot file, and the search for the next
//! valid one after damage.
//!
//! ```text
//! len: u32 LE | crc: u32 LE | kind: u8 | token: u64 LE | payload
//! ```
//!
//! `len` counts the body (`kind`, `token`, `payload`); `crc` is CRC-32C
//! (Castagnoli, `CRC_32_ISCSI`) over the four `len` bytes and the body, so a
//! damaged length is caught like damaged contents.

use super::crc::crc32c;

/// Bytes before the payload: length, checksum, kind, token.
pub(crate) const HEADER: usize = 4 + 4 + 1 + 8;

/// Body bytes before the payload: kind and token.
const BODY_HEADER: usize = 1 + 8;

/// The largest body a frame may claim; anything larger is damage.
pub(crate) const MAX_BODY: usize = 1 << 30;

/// How far past the last good token the next good one may plausibly be when
/// searching through damage (tokens are consecutive; this allows for billions
/// of lost records).
const MAX_TOKEN_JUMP: u64 = 1 << 32;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// A broker record; the token is the log's sequence number (segments) or the
    /// record's ordinal (snapshots).
    Record = 1,
    /// First frame of a snapshot file: token = the sequence number the snapshot
    /// covers up to; payload = first segment after it (u64 LE), record count
    /// (u64 LE).
    SnapshotBegin = 2,
    /// Last frame of a snapshot file: token = record count + 1; no payload.
    SnapshotEnd = 3,
    /// A sync mark in a segment: token = how many of the segment's bytes
    /// were synced before this frame was written; no payload. Recovery tells
    /// a write a power cut tore (past the last sync point) from damage to
    /// synced data by it.
    Synced = 4,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Record),
            2 => Some(Kind::SnapshotBegin),
            3 => Some(Kind::SnapshotEnd),
            4 => Some(Kind::Synced),
            _ => None,
        }
    }
}

/// A frame that validated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame<'a> {
    pub kind: Kind,
    pub token: u64,
    pub payload: &'a [u8],
    /// Bytes the whole frame occupies.
    pub size: usize,
}

/// Appends one frame to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, kind: Kind, token: u64, payload: &[u8]) {
    // The header whole, then the payload: one reserve and two copies where
    // a copy a field cost each frame its own capacity checks. The checksum
    // is over the frame as written: two parts (the payload apart, a third,
    // cost it more than the copies saved).
    let head = fields(kind, token, payload.len());
    let start = out.len();
    out.reserve(HEADER + payload.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(payload);
    let crc = crc32c(&[&head[..4], &out[start + 8..]]).to_le_bytes();
    out[start + 4..start + 8].copy_from_slice(&crc);
}

/// The header of a frame holding `payload`, its checksum included, for a
/// payload written from where it is rather than copied after its header
/// (`super::batch`): the same bytes [`encode`] writes before it.
pub(crate) fn header(kind: Kind, token: u64, payload: &[u8]) -> [u8; HEADER] {
    let mut head = fields(kind, token, payload.len());
    let crc = crc32c(&[&head[..4], &head[8..], payload]);
    head[4..8].copy_from_slice(&crc.to_le_bytes());
    head
}

/// A header's fields for a payload of `len` bytes, its checksum (bytes 4
/// to 8) still zero.
fn fields(kind: Kind, token: u64, len: usize) -> [u8; HEADER] {
    let body = BODY_HEADER + len;
    debug_assert!(body <= MAX_BODY, "record too large for a frame");
    let mut head = [0; HEADER];
    head[..4].copy_from_slice(&(body as u32).to_le_bytes());
    head[8] = kind as u8;
    head[9..].copy_from_slice(&token.to_le_bytes());
    head
}

/// The header fields at `pos`, when the length is sane and the kind known.
fn header_at(buf: &[u8], pos: usize) -> Option<(usize, u32, Kind, u64)> {
    let h = buf.get(pos..pos + HEADER)?;
    let body = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    if !(BODY_HEADER..=MAX_BODY).contains(&body) || body > buf.len() - pos - 8 {
        return None;
    }
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let kind = Kind::from_u8(h[8])?;
    let token = u64::from_le_bytes(h[9..17].try_into().expect("8 bytes"));
    Some((body, crc, kind, token))
}

/// The frame at `pos`, if one validates there (sane length, known kind, CRC).
pub(crate) fn decode_at(buf: &[u8], pos: usize) -> Option<Frame<'_>> {
    let (body, crc, kind, token) = header_at(buf, pos)?;
    if crc32c(&[&buf[pos..pos + 4], &buf[pos + 8..pos + 8 + body]]) != crc {
        return None;
    }
    Some(Frame {
        kind,
        token,
        payload: &buf[pos + HEADER..pos + 8 + body],
        size: 8 + body,
    })
}

/// The first position at or after `from` where a frame validates whose token
/// could follow `last` (the last good token, when known). The cheap checks
/// (length, kind, token range) come before the CRC, so searching through
/// damage costs little more than reading it.
pub(crate) fn resync(buf: &[u8], from: usize, last: Option<u64>) -> Option<usize> {
    let end = buf.len().checked_sub(HEADER)?;
    (from..=end).find(|&pos| {
        let Some((_, _, _, token)) = header_at(buf, pos) else {
            return false;
        };
        if let Some(last) = last
            && !(token > last && token - last <= MAX_TOKEN_JUMP)
        {
            return false;
        }
        decode_at(buf, pos).is_some()
    })
}

/// What reading a segment finds, in file order.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Item<'a> {
    /// A frame that validates.
    Frame(Frame<'a>),
    /// Bytes where nothing validates, up to the next valid frame (or the end).
    Damage { from: usize, to: usize },
}

/// Every valid frame of `buf` and the damaged stretches between them; `last`
/// is the last record token before it, when known (see [`resync`]).
pub(crate) fn walk(buf: &[u8], mut last: Option<u64>) -> Vec<Item<'_>> {
    let mut items = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        if let Some(f) = decode_at(buf, pos) {
            if f.kind == Kind::Record {
                last = Some(last.map_or(f.token, |l| l.max(f.token)));
            }
            items.push(Item::Frame(f));
            pos += f.size;
            continue;
        }
        let to = resync(buf, pos + 1, last).unwrap_or(buf.len());
        items.push(Item::Damage { from: pos, to });
        pos = to;
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut buf = Vec::new();
        encode(&mut buf, Kind::Record, 7, b"hello");
        encode(&mut buf, Kind::Record, 8, b"");
        let a = decode_at(&buf, 0).unwrap();
        assert_eq!(
            (a.kind, a.token, a.payload),
            (Kind::Record, 7, &b"hello"[..])
        );
        assert_eq!(a.size, HEADER + 5);
        let b = decode_at(&buf, a.size).unwrap();
        assert_eq!((b.token, b.payload.len()), (8, 0));
        assert_eq!(a.size + b.size, buf.len());

        // Every single-bit flip in the first frame is caught, and the search
        // finds the second frame again.
        for bit in 0..a.size * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_at(&bad, 0).is_none(), "bit {bit} not caught");
            assert_eq!(resync(&bad, 1, Some(7)), Some(a.size));
        }
        // A torn frame does not validate, and nothing follows it.
        assert!(decode_at(&buf[..buf.len() - 1], a.size).is_none());
        assert_eq!(resync(&buf[..buf.len() - 1], 1, Some(7)), None);
        // A token that cannot follow the last good one is not taken.
        assert_eq!(resync(&buf, 1, Some(8)), None);
    }
}
