//! Little-endian fields of the records the outbox and inbox keep in caller storage.
//! Out-of-range reads give zero and out-of-range writes do nothing: the record
//! code checks bounds itself, these only make a bug harmless instead of a panic.

/// Reads a little-endian field of `N` bytes at `at` of a record's header
/// (read at once as an array, so the offsets are constants where it is
/// inlined; zeros if it is not there).
pub(crate) fn field<const N: usize>(h: &[u8], at: usize) -> [u8; N] {
    h.get(at..)
        .and_then(|b| b.first_chunk::<N>())
        .copied()
        .unwrap_or([0; N])
}

/// Writes a fixed-size field: its size is known where it is called, so the copy
/// is a few moves instead of a call to `memcpy` (records are written several
/// fields per message).
pub(crate) fn put<const N: usize>(buf: &mut [u8], at: usize, bytes: [u8; N]) {
    if let Some(dst) = buf.get_mut(at..).and_then(|b| b.first_chunk_mut::<N>()) {
        *dst = bytes;
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

/// Moves `len` bytes at `from` down to `to` (`to <= from`) within `buf`; the
/// ranges may overlap. Nothing moves when they are not in `buf`. Copies in
/// steps of `from - to` bytes, each from above its target, with
/// `copy_from_slice`: `copy_within` is a call that can panic, whatever its
/// arguments.
pub(crate) fn move_down(buf: &mut [u8], from: usize, len: usize, to: usize) {
    let Some(step) = from.checked_sub(to).filter(|&step| step > 0) else {
        return;
    };
    if from.checked_add(len).is_none_or(|end| end > buf.len()) {
        return;
    }
    let mut done = 0;
    while done < len {
        let n = step.min(len - done);
        let Some((low, high)) = buf.split_at_mut_checked(from + done) else {
            return;
        };
        match (low.get_mut(to + done..to + done + n), high.get(..n)) {
            (Some(dst), Some(src)) if dst.len() == src.len() => dst.copy_from_slice(src),
            _ => return,
        }
        done += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn move_down_agrees_with_copy_within() {
        for len in 0..12 {
            for from in 0..12 {
                for to in 0..=from {
                    let mut want: Vec<u8> = (0..16).collect();
                    let mut got = want.clone();
                    if from + len <= want.len() {
                        want.copy_within(from..from + len, to);
                    }
                    move_down(&mut got, from, len, to);
                    assert_eq!(got, want, "from {from} len {len} to {to}");
                }
            }
        }
    }
}
