//! Emptied lists kept for the next publish: every admitted message carries a
//! list of its queues and one of the publishers to answer, usually of one or
//! a few entries each, and allocating them per message showed in the profile.

use alloc::vec::Vec;

/// Lists kept at most.
const LISTS: usize = 256;
/// Lists that grew beyond this many entries are not kept (a large fan-out
/// allocates once per message anyway; idle memory stays small).
const ENTRIES: usize = 8;

pub(crate) struct Spares<T> {
    lists: Vec<Vec<T>>,
}

impl<T> Spares<T> {
    pub(crate) const fn new() -> Self {
        Spares { lists: Vec::new() }
    }

    /// An empty list, reused when one is kept.
    pub(crate) fn take(&mut self) -> Vec<T> {
        self.lists.pop().unwrap_or_default()
    }

    /// Keeps `list`, emptied, for a later `take` (a few, small ones).
    pub(crate) fn give(&mut self, mut list: Vec<T>) {
        if self.lists.len() < LISTS && list.capacity() <= ENTRIES && list.capacity() > 0 {
            list.clear();
            self.lists.push(list);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_bounded_number_of_small_lists() {
        let mut s = Spares::new();
        let mut a = s.take();
        a.extend([1u32, 2, 3]);
        let at = a.as_ptr();
        s.give(a);
        let b = s.take();
        assert!(b.is_empty());
        assert_eq!(b.as_ptr(), at, "the same allocation comes back");
        s.give(Vec::with_capacity(ENTRIES + 1));
        s.give(Vec::new());
        assert!(
            s.lists.is_empty(),
            "large and unallocated lists are not kept"
        );
        for _ in 0..LISTS + 10 {
            s.give(Vec::with_capacity(1));
        }
        assert_eq!(s.lists.len(), LISTS);
    }
}
