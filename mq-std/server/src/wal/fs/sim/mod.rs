//! The simulated disk: what the process sees kept apart from what is on the
//! platter; see [`SimDisk`] for the fault model.

mod cut;
mod ops;
mod state;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use cut::{Crash, Survival};
use state::{DirOp, Disk, Entry};

/// The unit a torn write keeps or loses pieces of.
pub const SECTOR: u64 = 512;

/// A simulated disk with a write-back cache, for tests: it keeps what the
/// process sees apart from what is on the platter, and at a simulated power
/// cut ([`SimDisk::crash`]) keeps only what was synced, plus (chosen from the
/// seed) some of what was not. Deterministic: the same seed and the same calls
/// give the same disk.
///
/// # The fault model
///
/// - A file's bytes are durable once the file is synced; its name (and a
///   rename or removal of it) once its directory is synced. Directories are
///   entries of their parent like files; the root always exists.
/// - At a power cut each unsynced change is kept, lost or torn, in one of
///   three ways per cut (see [`Crash`]): nothing unsynced survives; or, per
///   file, a prefix of its unsynced writes survives and the next one may be
///   torn; or each unsynced write is independently kept, lost or torn
///   (later writes surviving earlier ones: reordering). A torn write keeps a
///   prefix of its bytes, or some of its [`SECTOR`]-sized pieces. Bytes past
///   a file's end that a kept write skipped over read as zeroes.
/// - Directory changes not yet synced are likewise all lost, kept in order up
///   to a point (an ordered journal), or each kept or lost (no ordering). An
///   entry whose directory is gone is gone with it, and so is a file whose
///   name is gone.
/// - [`SimDisk::fail_after`] stops everything after a number of further
///   operations: that one and every later one fail, until [`SimDisk::crash`]
///   (the power went) or [`SimDisk::process_crash`] (only the process died:
///   nothing written is lost). Handles opened before either fail forever.
///
/// Locks live in memory only (a crash releases them), and the clock
/// ([`FileSystem::now`](super::FileSystem::now)) moves only by [`SimDisk::advance`].
///
/// Clones share the disk: the test keeps one to cut the power while the log
/// holds another.
#[derive(Clone)]
pub struct SimDisk(Arc<Mutex<Disk>>);

/// A file of a [`SimDisk`], open for writing.
pub struct SimFile {
    disk: Arc<Mutex<Disk>>,
    node: u64,
    generation: u64,
}

/// A lock on a [`SimDisk`]; dropping it unlocks.
pub struct SimLock {
    disk: Arc<Mutex<Disk>>,
    path: PathBuf,
    generation: u64,
}

/// Changes not yet durable, as the process sees the disk now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unsynced {
    /// Unsynced writes (and truncations) to files that have a name.
    pub writes: usize,
    /// Files and directories created, their directory not synced since.
    pub created: usize,
    /// Renames not yet durable.
    pub renamed: usize,
    /// Removals not yet durable.
    pub removed: usize,
}

impl Unsynced {
    /// Whether everything the process wrote and every name it created or
    /// renamed would survive a power cut now (removals may still come undone).
    pub fn is_durable(&self) -> bool {
        self.writes == 0 && self.created == 0 && self.renamed == 0
    }
}

impl SimDisk {
    /// An empty disk (only the root directory) whose power cuts are chosen
    /// from `seed`.
    pub fn new(seed: u64) -> SimDisk {
        SimDisk(Arc::new(Mutex::new(Disk {
            generation: 0,
            nodes: BTreeMap::new(),
            next_node: 1,
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            dir_ops: Vec::new(),
            locks: BTreeSet::new(),
            fuse: None,
            dead: false,
            rng: SimRng::new(seed),
            base: Instant::now(),
            elapsed: Duration::ZERO,
            trace: false,
            ops: 0,
        })))
    }

    fn lock_disk(&self) -> MutexGuard<'_, Disk> {
        // A test that panicked while holding it leaves a usable disk.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Prints every operation and what each power cut kept.
    pub fn set_trace(&self, on: bool) {
        self.lock_disk().trace = on;
    }

    /// Cuts the power after `ops` more operations (writes, syncs, creations,
    /// renames, removals): that operation and every later one fail.
    pub fn fail_after(&self, ops: u64) {
        self.lock_disk().fuse = Some(ops);
    }

    /// Whether the power is off (the fuse set by [`fail_after`](Self::fail_after) blew).
    pub fn is_dead(&self) -> bool {
        self.lock_disk().dead
    }

    /// Operations done since the disk was made.
    pub fn ops(&self) -> u64 {
        self.lock_disk().ops
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.lock_disk().elapsed += by;
    }

    /// What a power cut now could take.
    pub fn unsynced(&self) -> Unsynced {
        let d = self.lock_disk();
        let mut u = Unsynced::default();
        for e in d.names.values() {
            if let Entry::File(n) = e {
                u.writes += d.nodes.get(n).map_or(0, |n| n.unsynced.len());
            }
        }
        for op in &d.dir_ops {
            match op {
                DirOp::Create(..) => u.created += 1,
                DirOp::Rename(..) => u.renamed += 1,
                DirOp::Remove(..) => u.removed += 1,
            }
        }
        u
    }

    /// A power cut: keeps what was synced and, chosen from the seed, some of
    /// what was not (see [`SimDisk`]); then the power comes back.
    pub fn crash(&self) -> Crash {
        self.lock_disk().power_cut(true)
    }

    /// A power cut that keeps exactly what was synced.
    pub fn crash_keeping_only_synced(&self) -> Crash {
        self.lock_disk().power_cut(false)
    }

    /// The process dies (SIGKILL, a panic) and a new one starts; the power
    /// stays on: the operating system keeps everything it was given, synced
    /// or not, but the old process's handles and locks are gone.
    pub fn process_crash(&self) {
        let mut d = self.lock_disk();
        if d.trace {
            println!("    disk: the process dies; the cache stays");
        }
        d.locks.clear();
        d.generation += 1;
        d.fuse = None;
        d.dead = false;
    }
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.lock_disk();
        f.debug_struct("SimDisk")
            .field("files", &d.names.len())
            .field("unsynced_dir_ops", &d.dir_ops.len())
            .field("dead", &d.dead)
            .finish_non_exhaustive()
    }
}

/// A small seeded generator (SplitMix64) for the disk's choices, and for
/// tests that drive a disk from the same seed.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}
