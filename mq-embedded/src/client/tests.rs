//! The engine's transmit loop against a link that takes a few bytes a call.

use std::vec::Vec;

use mq_core::framing::stream::{Split, StreamDecoder};

use super::*;
use crate::Storage;
use mq_core::client::StreamOnly;

/// A link that is up as soon as it opens and takes at most `piece` bytes a
/// `send`; `AGAIN` is its [`Link::SEND_AGAIN`].
struct Pieces<const AGAIN: bool> {
    piece: usize,
    taken: Vec<u8>,
}

impl<const AGAIN: bool> Link for Pieces<AGAIN> {
    fn open(&mut self, _now: Instant) -> bool {
        true
    }

    fn status(&mut self) -> LinkStatus {
        LinkStatus::Up
    }

    fn close(&mut self) {}

    fn send(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.piece);
        self.taken.extend_from_slice(&bytes[..n]);
        n
    }

    const SEND_AGAIN: bool = AGAIN;

    fn receive<const SUBS: usize, const HELD: usize, const REQS: usize, F: Framer>(
        &mut self,
        _now: Instant,
        _session: &mut ClientSession<'_, SUBS, HELD, REQS, F>,
    ) {
    }
}

/// The bytes a link taking 4 at a time gets in one `drive` of a session that
/// connects (its `Hello`), and the length of that `Hello` with its prefix.
fn hello_in_pieces<const AGAIN: bool>() -> (usize, usize) {
    let mut storage: Storage<2048, 2048, 1024, 1024> = Storage::new();
    let mut slot = MaybeUninit::uninit();
    let config = Config::new("board-1").unwrap();
    let (engine, _) =
        Engine::<StreamOnly, 1, 1, 0>::new_in(&mut slot, config, StreamOnly, storage.buffers())
            .unwrap();
    engine.session.connect(Instant::ZERO);
    let mut link = Pieces::<AGAIN> {
        piece: 4,
        taken: Vec::new(),
    };
    assert!(engine.drive(Instant::ZERO, &mut link));
    // The frame as written: still in the buffer if not all taken.
    let pending = &engine.tx[..engine.tx_end];
    let written = if pending.is_empty() {
        &link.taken[..]
    } else {
        pending
    };
    assert!(written.starts_with(&link.taken));
    let hello = match StreamDecoder::new(u32::MAX).split(written) {
        Ok(Split::Whole { consumed, .. }) => consumed,
        other => panic!("no Hello written: {other:?}"),
    };
    (link.taken.len(), hello)
}

#[test]
fn a_link_that_sends_again_takes_the_whole_frame_in_one_drive() {
    let (taken, hello) = hello_in_pieces::<true>();
    assert!(hello > 8, "a Hello of {hello} bytes");
    assert_eq!(taken, hello);
}

#[test]
fn a_link_that_does_not_is_asked_once_a_settle() {
    // `drive` settles twice: a piece each time, the rest at the next poll.
    let (taken, hello) = hello_in_pieces::<false>();
    assert_eq!(taken, 8);
    assert!(hello > taken);
}
