//! Lists inside packets: user properties, subscription identifiers, topic
//! filters with their options, reason codes.
//!
//! A decoded list borrows the packet's bytes, which the decoder validated, and
//! yields its items lazily (any number, no allocation); a list to encode borrows
//! a slice of items the caller holds. Both compare equal when they yield the
//! same items.

use core::fmt;

mod sealed {
    pub trait Sealed {}
}

/// An item a [`List`] holds: read from validated packet bytes. Sealed.
pub trait ListItem<'a>: Sized + Copy + sealed::Sealed {
    /// Reads the next item from `bytes` (advancing past it and past anything
    /// else in the way), or `None` at the end.
    #[doc(hidden)]
    fn read_next(bytes: &mut &'a [u8]) -> Option<Self>;
}

macro_rules! sealed {
    ($($t:ty),*) => { $(impl sealed::Sealed for $t {})* };
}
sealed!(
    (&str, &str),
    u32,
    &str,
    super::ReasonCode,
    super::Subscription<'_>
);

#[derive(Clone, Copy)]
enum Repr<'a, T> {
    /// Validated bytes of a decoded packet.
    Encoded(&'a [u8]),
    /// Items the caller holds.
    Items(&'a [T]),
}

/// A list of items: borrowed from a decoded packet, or from the caller's slice.
#[derive(Clone, Copy)]
pub struct List<'a, T> {
    repr: Repr<'a, T>,
}

impl<'a, T: ListItem<'a>> List<'a, T> {
    /// No items.
    pub const EMPTY: List<'a, T> = List {
        repr: Repr::Items(&[]),
    };

    /// A list of the caller's items (to encode).
    pub const fn new(items: &'a [T]) -> Self {
        List {
            repr: Repr::Items(items),
        }
    }

    /// A list over bytes the decoder validated.
    pub(crate) const fn encoded(bytes: &'a [u8]) -> Self {
        List {
            repr: Repr::Encoded(bytes),
        }
    }

    /// The items, in order.
    pub fn iter(&self) -> ListIter<'a, T> {
        ListIter { repr: self.repr }
    }

    /// True when there are no items.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// How many items (counted by iterating).
    pub fn len(&self) -> usize {
        self.iter().count()
    }
}

impl<'a, T: ListItem<'a>> Default for List<'a, T> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<'a, T: ListItem<'a>> IntoIterator for List<'a, T> {
    type Item = T;
    type IntoIter = ListIter<'a, T>;
    fn into_iter(self) -> ListIter<'a, T> {
        self.iter()
    }
}

impl<'a, T: ListItem<'a> + PartialEq> PartialEq for List<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<'a, T: ListItem<'a> + Eq> Eq for List<'a, T> {}

impl<'a, T: ListItem<'a> + fmt::Debug> fmt::Debug for List<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(feature = "defmt")]
impl<'a, T: ListItem<'a> + defmt::Format> defmt::Format for List<'a, T> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "[");
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                defmt::write!(f, ", ");
            }
            defmt::write!(f, "{}", item);
        }
        defmt::write!(f, "]");
    }
}

/// Iterates a [`List`].
#[derive(Clone)]
pub struct ListIter<'a, T> {
    repr: Repr<'a, T>,
}

impl<'a, T: ListItem<'a>> Iterator for ListIter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match &mut self.repr {
            Repr::Encoded(bytes) => T::read_next(bytes),
            Repr::Items(items) => {
                let (first, rest) = items.split_first()?;
                *items = rest;
                Some(*first)
            }
        }
    }
}
