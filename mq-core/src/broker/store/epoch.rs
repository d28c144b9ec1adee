//! The store's epoch: a random nonzero number a store gets with the first
//! record the broker writes to it, and keeps (restored at every start,
//! repeated in every snapshot). A node's peers file what it forwards under
//! its node id and this epoch (see [`crate::wire::mesh`]): a node whose
//! store starts empty again (a memory store at every start, a data dir
//! that is gone) hands out its message ids from 1 again, and must not be
//! taken for its old self, whose ids its peers still remember.
//!
//! The adapter supplies the randomness: the epoch of an empty store comes
//! from [`Config::seed`](crate::broker::Config::seed), which it picks at
//! random at every start. A log written before epochs existed has none: its
//! epoch is 0, under which its peers filed what it forwarded then.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Epoch {
    value: u64,
    /// Whether the store holds a record of it.
    written: bool,
    /// Whether any record was restored.
    restored: bool,
}

impl Epoch {
    /// The epoch an empty store gets, from the config's `seed`.
    pub(crate) fn new(seed: u64) -> Epoch {
        // SplitMix64's finaliser: spreads the seed over all bits.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Epoch {
            value: z.max(1),
            written: false,
            restored: false,
        }
    }

    /// The epoch now.
    pub(crate) fn get(&self) -> u64 {
        self.value
    }

    /// A record was restored: `Some` when it is the store's epoch. A log
    /// without one from its first record on was written before epochs: 0.
    pub(crate) fn restored(&mut self, epoch: Option<u64>) {
        match epoch {
            Some(e) => {
                self.value = e;
                self.written = true;
            }
            None if !self.restored && !self.written => self.value = 0,
            None => {}
        }
        self.restored = true;
    }

    /// Whether its record is still to write (before any other).
    pub(crate) fn is_due(&self) -> bool {
        !self.written
    }

    /// Its record is on its way to the store.
    pub(crate) fn written(&mut self) {
        self.written = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_store_s_epoch_comes_from_the_seed_and_is_never_zero() {
        assert_ne!(Epoch::new(1).get(), Epoch::new(2).get());
        assert_eq!(Epoch::new(1), Epoch::new(1));
        assert!((0..1000).all(|s| Epoch::new(s).get() != 0));
    }

    #[test]
    fn a_restored_epoch_is_kept_and_an_old_log_s_is_zero() {
        let mut e = Epoch::new(1);
        e.restored(Some(42));
        e.restored(None);
        assert_eq!((e.get(), e.is_due()), (42, false));
        let mut old = Epoch::new(1);
        old.restored(None);
        old.restored(None);
        assert_eq!((old.get(), old.is_due()), (0, true));
        // An old log that an upgraded node wrote its epoch into since.
        old.restored(Some(0));
        assert_eq!((old.get(), old.is_due()), (0, false));
    }
}
