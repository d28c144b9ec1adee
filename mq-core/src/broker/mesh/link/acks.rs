//! The peer's delivery tags of a link's publishes that wait for the
//! router's answer, by the publish id the link gave each.
//!
//! Ids are handed out in order (1, 2, ..., `u32::MAX`, then 1 again) and the
//! router answers a link's publishes about in the order they came, so the
//! tags are a ring from the oldest unanswered id: taking one is an index,
//! not a search (a `BTreeMap` cost about 600 instructions a message, its
//! insert and its remove).

use alloc::collections::VecDeque;

pub(super) struct Acks {
    /// The id of `tags[0]`.
    first: u32,
    /// The id the next publish gets.
    next: u32,
    /// The tag of each id from `first` on; `None` once taken (a slot goes
    /// when every older one has).
    tags: VecDeque<Option<u64>>,
}

impl Acks {
    pub(super) fn new() -> Acks {
        Acks::starting_at(1)
    }

    fn starting_at(next: u32) -> Acks {
        Acks {
            first: next,
            next,
            tags: VecDeque::new(),
        }
    }

    /// A new id, for a publish that acks `tag` once answered.
    pub(super) fn insert(&mut self, tag: u64) -> u32 {
        let id = self.next;
        if self.tags.is_empty() {
            self.first = id;
        }
        self.tags.push_back(Some(tag));
        self.next = following(id);
        id
    }

    /// The tag of publish `id`, once; `None` for an id not handed out or
    /// taken already.
    pub(super) fn take(&mut self, id: u32) -> Option<u64> {
        let at = distance(self.first, id)?;
        let tag = self.tags.get_mut(at)?.take()?;
        while self.tags.front() == Some(&None) {
            self.tags.pop_front();
            self.first = following(self.first);
        }
        Some(tag)
    }

    /// Every tag forgotten (the link is closing); ids go on from where they
    /// were.
    pub(super) fn clear(&mut self) {
        self.tags.clear();
    }
}

/// The id after `id`: 0 is never one.
fn following(id: u32) -> u32 {
    id.checked_add(1).unwrap_or(1)
}

/// How many ids after `from` `id` comes; `None` for 0, never an id.
fn distance(from: u32, id: u32) -> Option<usize> {
    if id == 0 {
        return None;
    }
    let d = match id.checked_sub(from) {
        Some(d) => d,
        // Past the wrap: `from` up to `u32::MAX`, then 1 up to `id`.
        None => u32::MAX - from + id,
    };
    usize::try_from(d).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_come_back_once_in_any_order() {
        let mut acks = Acks::new();
        let ids: [u32; 4] = core::array::from_fn(|tag| acks.insert(tag as u64 + 10));
        assert_eq!(ids, [1, 2, 3, 4]);
        assert_eq!(acks.take(3), Some(12));
        assert_eq!(acks.take(3), None);
        assert_eq!(acks.take(1), Some(10));
        assert_eq!(acks.take(5), None);
        assert_eq!(acks.take(0), None);
        assert_eq!(acks.insert(14), 5);
        assert_eq!(acks.take(2), Some(11));
        assert_eq!(acks.take(5), Some(14));
        assert_eq!(acks.take(4), Some(13));
        assert!(acks.tags.is_empty());
        assert_eq!(acks.insert(15), 6);
        assert_eq!(acks.take(6), Some(15));
    }

    #[test]
    fn ids_wrap_past_zero() {
        let mut acks = Acks::starting_at(u32::MAX - 1);
        let ids: [u32; 4] = core::array::from_fn(|tag| acks.insert(tag as u64));
        assert_eq!(ids, [u32::MAX - 1, u32::MAX, 1, 2]);
        assert_eq!(acks.take(2), Some(3));
        assert_eq!(acks.take(u32::MAX), Some(1));
        assert_eq!(acks.take(u32::MAX - 1), Some(0));
        assert_eq!(acks.take(1), Some(2));
        assert_eq!(acks.take(u32::MAX - 2), None);
        assert!(acks.tags.is_empty());
    }

    #[test]
    fn cleared_tags_are_gone() {
        let mut acks = Acks::new();
        let id = acks.insert(7);
        acks.clear();
        assert_eq!(acks.take(id), None);
        assert_eq!(acks.insert(8), 2);
        assert_eq!(acks.take(2), Some(8));
    }
}
