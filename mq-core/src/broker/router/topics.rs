//! The router's topic table: each topic's state, found by name, and found
//! again by the place a lookup returned (`Slot`) without hashing the name: a
//! publish looks its topic up once, numbers its message and retains it there.

use alloc::sync::Arc;
use core::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::TopicState;

/// Where a topic's state was found. Valid until the table changes; `at`
/// checks that it still holds the same topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot(usize);

#[derive(Default)]
pub(crate) struct Topics {
    table: HashTable<TopicState>,
    hasher: FixedState,
}

impl Topics {
    fn hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn find(&self, name: &str) -> Option<Slot> {
        self.table
            .find_bucket_index(self.hash(name), |t| &*t.name == name)
            .map(Slot)
    }

    /// `name`'s state and where it is.
    pub fn find_mut(&mut self, name: &str) -> Option<(Slot, &mut TopicState)> {
        let slot = self.find(name)?;
        self.table.get_bucket_mut(slot.0).map(|t| (slot, t))
    }

    /// The topic at `slot` if it is still the one named by this very `name`
    /// (a clone of its state's name: compared by address, not by text).
    pub fn at_mut(&mut self, slot: Slot, name: &Arc<str>) -> Option<&mut TopicState> {
        self.table
            .get_bucket_mut(slot.0)
            .filter(|t| Arc::ptr_eq(&t.name, name))
    }

    pub fn get(&self, name: &str) -> Option<&TopicState> {
        self.table.find(self.hash(name), |t| &*t.name == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut TopicState> {
        let hash = self.hash(name);
        self.table.find_mut(hash, |t| &*t.name == name)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// `name`'s state, made by `new` when there is none (one lookup either
    /// way, none when `found` is where it is), and where it is.
    pub fn get_or_insert_with(
        &mut self,
        found: Option<Slot>,
        name: &str,
        new: impl FnOnce() -> TopicState,
    ) -> (Slot, &mut TopicState) {
        if let Some(slot) = found
            && self
                .table
                .get_bucket(slot.0)
                .is_some_and(|t| &*t.name == name)
        {
            let t = self.table.get_bucket_mut(slot.0).expect("just found");
            return (slot, t);
        }
        let hash = self.hash(name);
        let hasher = &self.hasher;
        let entry = self
            .table
            .entry(hash, |t| &*t.name == name, |t| hasher.hash_one(&*t.name));
        let occupied = match entry {
            Entry::Occupied(known) => known,
            Entry::Vacant(vacant) => vacant.insert(new()),
        };
        (Slot(occupied.bucket_index()), occupied.into_mut())
    }

    pub fn remove(&mut self, name: &str) -> Option<TopicState> {
        let hash = self.hash(name);
        match self.table.find_entry(hash, |t| &*t.name == name) {
            Ok(found) => Some(found.remove().0),
            Err(_) => None,
        }
    }

    pub fn values(&self) -> impl Iterator<Item = &TopicState> {
        self.table.iter()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut TopicState> {
        self.table.iter_mut()
    }
}
