//! Little-endian fields of the records the outbox and inbox keep in caller storage.
//! Out-of-range reads give zero and out-of-range writes do nothing: the record
//! code checks bounds itself, these only make a bug harmless instead of a panic.

fn rd<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    buf.get(at..at.saturating_add(N))
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; N])
}

pub(crate) fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(rd(buf, at))
}

pub(crate) fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(rd(buf, at))
}

pub(crate) fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(rd(buf, at))
}

/// Writes a fixed-size field: its size is known where it is called, so the copy
/// is a few moves instead of a call to `memcpy` (records are written several
/// fields per message).
pub(crate) fn put<const N: usize>(buf: &mut [u8], at: usize, bytes: [u8; N]) {
    if let Some(dst) = buf.get_mut(at..at.saturating_add(N)) {
        dst.copy_from_slice(&bytes);
    }
}

/// Writes a variable-length field (topic, metadata, payload).
pub(crate) fn put_slice(buf: &mut [u8], at: usize, bytes: &[u8]) {
    // The lengths always agree (the end saturates only past the buffer); saying
    // so keeps a panicking path out.
    if let Some(dst) = buf.get_mut(at..at.saturating_add(bytes.len()))
        && dst.len() == bytes.len()
    {
        dst.copy_from_slice(bytes);
    }
}
