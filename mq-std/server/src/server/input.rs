//! A connection's input on its way from the reader's chunks to the broker:
//! each chunk is handed over as it is; only a frame a chunk cut short is
//! copied, with as much of the next chunk as finishes it, into the input the
//! connection holds. Before, once some input was held, every later chunk was
//! copied whole behind it (frames rarely end where a chunk does, so that
//! was nearly every chunk: one more copy of every byte a broker took in,
//! 39 M instructions of a 1 KiB peer run).

use bytes::BytesMut;

/// The shortest piece of a chunk put behind held input at a time: a piece
/// is as long as what is held, so a frame longer than it takes a few
/// doublings, each copying no more than the frame.
const PIECE: usize = 1024;

/// Hands `held` (input the broker did not take yet) and then `chunk` to
/// `take`, which returns how many bytes from the front of what it is given
/// the broker took; keeps in `held` what it left. Returns the bytes taken.
pub(super) fn feed(
    held: &mut BytesMut,
    chunk: &[u8],
    mut take: impl FnMut(&[u8]) -> usize,
) -> usize {
    let mut taken = 0;
    let mut from = 0;
    // What is held first, lengthened by pieces of the chunk until the
    // broker takes past it: the rest of the piece is then read from the
    // chunk again.
    while !held.is_empty() && from < chunk.len() {
        let old = held.len();
        let piece = old.max(PIECE).min(chunk.len() - from);
        held.extend_from_slice(&chunk[from..from + piece]);
        let used = take(held);
        taken += used;
        if used >= old {
            from += used - old;
            held.clear();
        } else {
            from += piece;
            let _ = held.split_to(used);
        }
    }
    if held.is_empty() && from < chunk.len() {
        let used = take(&chunk[from..]);
        taken += used;
        held.extend_from_slice(&chunk[from + used..]);
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker of frames of one length byte and that many bytes: takes the
    /// whole ones, records them, and how many of their bytes it read from
    /// inside `chunk` (not from a copy).
    fn frames<'a>(
        got: &'a mut Vec<Vec<u8>>,
        from_chunk: &'a mut usize,
        chunk: &'a [u8],
    ) -> impl FnMut(&[u8]) -> usize + 'a {
        move |input: &[u8]| {
            let mut at = 0;
            while let Some(&n) = input.get(at) {
                let end = at + 1 + usize::from(n);
                let Some(frame) = input.get(at + 1..end) else {
                    break;
                };
                got.push(frame.to_vec());
                if chunk.as_ptr_range().contains(&frame.as_ptr()) {
                    *from_chunk += frame.len() + 1;
                }
                at = end;
            }
            at
        }
    }

    #[test]
    fn a_chunk_after_a_cut_frame_is_read_where_it_is() {
        let all: Vec<Vec<u8>> = (0..600u32)
            .map(|i| vec![i as u8; (i % 200) as usize])
            .collect();
        let stream: Vec<u8> = all
            .iter()
            .flat_map(|f| std::iter::once(f.len() as u8).chain(f.iter().copied()))
            .collect();
        for cut in [1, 7, 1000, 4099, 20_000] {
            let mut held = BytesMut::new();
            let (mut got, mut taken, mut direct) = (Vec::new(), 0, 0);
            for chunk in stream.chunks(cut) {
                let mut from_chunk = 0;
                taken += feed(&mut held, chunk, frames(&mut got, &mut from_chunk, chunk));
                direct += from_chunk;
            }
            assert_eq!(got, all, "chunks of {cut}");
            assert_eq!((taken, held.len()), (stream.len(), 0));
            if cut >= 4099 {
                // Copied: at most a frame and a piece at each cut.
                let copied = stream.len() - direct;
                let cuts = stream.len() / cut;
                assert!(
                    copied <= cuts * (201 + PIECE),
                    "chunks of {cut}: {copied} copied"
                );
            }
        }
    }

    #[test]
    fn input_the_broker_holds_back_is_kept_whole() {
        let mut held = BytesMut::from(&b"ab"[..]);
        assert_eq!(feed(&mut held, &[7; 5000], |_| 0), 0);
        assert_eq!(held.len(), 5002);
        assert_eq!(&held[..3], b"ab\x07");
        let mut held = BytesMut::new();
        assert_eq!(feed(&mut held, &[7; 10], |_| 4), 4);
        assert_eq!(&held[..], &[7; 6]);
    }
}
