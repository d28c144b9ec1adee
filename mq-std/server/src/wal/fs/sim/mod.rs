//! The simulated disk: what the process sees kept apart from what is on the
//! platter; see [`SimDisk`] for the fault model.

mod cut;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{FileSystem, LogFile};
pub use cut::{Crash, Survival};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    File(u64),
    Dir,
}

/// An unsynced change to a file's bytes.
#[derive(Debug, Clone)]
enum Change {
    Write { at: u64, bytes: Vec<u8> },
    SetLen(u64),
}

impl Change {
    fn apply(&self, data: &mut Vec<u8>) {
        match self {
            Change::Write { at, bytes } => write_into(data, *at, bytes),
            Change::SetLen(len) => data.resize(*len as usize, 0),
        }
    }
}

fn write_into(data: &mut Vec<u8>, at: u64, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let at = at as usize;
    if data.len() < at + bytes.len() {
        data.resize(at + bytes.len(), 0);
    }
    data[at..at + bytes.len()].copy_from_slice(bytes);
}

#[derive(Debug, Default)]
struct Node {
    /// What the process reads.
    data: Vec<u8>,
    /// What a power cut keeps for sure.
    durable: Vec<u8>,
    /// What lies between, in the order written.
    unsynced: Vec<Change>,
}

/// An unsynced change to a directory.
#[derive(Debug, Clone)]
enum DirOp {
    Create(PathBuf, Entry),
    Remove(PathBuf),
    Rename(PathBuf, PathBuf),
}

impl DirOp {
    fn dir(&self) -> PathBuf {
        match self {
            DirOp::Create(p, _) | DirOp::Remove(p) | DirOp::Rename(_, p) => parent(p),
        }
    }

    /// Applies the change to a view of the names; a change that no longer
    /// fits (its source is gone) does nothing.
    fn apply(&self, names: &mut BTreeMap<PathBuf, Entry>) {
        match self {
            DirOp::Create(p, e) => {
                names.insert(p.clone(), *e);
            }
            DirOp::Remove(p) => {
                names.remove(p);
            }
            DirOp::Rename(from, to) => {
                if let Some(e) = names.remove(from) {
                    names.insert(to.clone(), e);
                }
            }
        }
    }
}

/// The directory a path is in; the root is the empty path.
fn parent(p: &Path) -> PathBuf {
    p.parent().map(dir_key).unwrap_or_default()
}

/// A directory as the disk names it: "", "/" and "." are the root.
fn dir_key(p: &Path) -> PathBuf {
    if p.as_os_str().is_empty() || p == Path::new("/") || p == Path::new(".") {
        PathBuf::new()
    } else {
        p.to_path_buf()
    }
}

pub(crate) struct Disk {
    generation: u64,
    nodes: BTreeMap<u64, Node>,
    next_node: u64,
    /// What the process sees.
    names: BTreeMap<PathBuf, Entry>,
    /// What a power cut keeps for sure.
    durable_names: BTreeMap<PathBuf, Entry>,
    /// Unsynced directory changes, in order.
    dir_ops: Vec<DirOp>,
    locks: BTreeSet<PathBuf>,
    /// Operations left before the power goes.
    fuse: Option<u64>,
    dead: bool,
    rng: SimRng,
    base: Instant,
    elapsed: Duration,
    trace: bool,
    ops: u64,
}

fn power_off() -> io::Error {
    io::Error::other("simulated power cut: the disk is off")
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: not found", p.display()),
    )
}

impl Disk {
    /// Counts an operation that changes or syncs something, failing once the
    /// power is off.
    fn op(&mut self, what: impl FnOnce() -> String) -> io::Result<()> {
        if self.dead {
            return Err(power_off());
        }
        if let Some(left) = &mut self.fuse {
            if *left == 0 {
                self.dead = true;
                if self.trace {
                    println!("    disk: power cut before {}", what());
                }
                return Err(power_off());
            }
            *left -= 1;
        }
        self.ops += 1;
        if self.trace {
            println!("    disk: {}", what());
        }
        Ok(())
    }

    fn alive(&self) -> io::Result<()> {
        if self.dead { Err(power_off()) } else { Ok(()) }
    }

    fn dir_exists(&self, dir: &Path) -> bool {
        let dir = dir_key(dir);
        dir.as_os_str().is_empty() || self.names.get(&dir) == Some(&Entry::Dir)
    }

    fn file(&self, p: &Path) -> io::Result<u64> {
        match self.names.get(p) {
            Some(Entry::File(n)) => Ok(*n),
            Some(Entry::Dir) => Err(io::Error::other(format!("{}: a directory", p.display()))),
            None => Err(not_found(p)),
        }
    }

    /// Checks that `p` may be created: nothing there, its directory exists.
    fn creatable(&self, p: &Path) -> io::Result<()> {
        if self.names.contains_key(p) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists", p.display()),
            ));
        }
        if !self.dir_exists(&parent(p)) {
            return Err(not_found(&parent(p)));
        }
        Ok(())
    }

    fn node(&mut self, handle: u64, generation: u64) -> io::Result<&mut Node> {
        if generation != self.generation {
            return Err(io::Error::other("file handle from before a power cut"));
        }
        self.alive()?;
        self.nodes
            .get_mut(&handle)
            .ok_or_else(|| io::Error::other("file handle of a vanished file"))
    }

    fn write(
        &mut self,
        node: u64,
        generation: u64,
        at: Option<u64>,
        bytes: &[u8],
    ) -> io::Result<()> {
        self.node(node, generation)?;
        self.op(|| format!("write node {node} at {at:?}, {} bytes", bytes.len()))?;
        let n = self.nodes.get_mut(&node).expect("checked");
        let at = at.unwrap_or(n.data.len() as u64);
        write_into(&mut n.data, at, bytes);
        n.unsynced.push(Change::Write {
            at,
            bytes: bytes.to_vec(),
        });
        Ok(())
    }

    fn set_len(&mut self, node: u64, generation: u64, len: u64) -> io::Result<()> {
        self.node(node, generation)?;
        self.op(|| format!("truncate node {node} to {len}"))?;
        let n = self.nodes.get_mut(&node).expect("checked");
        n.data.resize(len as usize, 0);
        n.unsynced.push(Change::SetLen(len));
        Ok(())
    }

    fn sync(&mut self, node: u64, generation: u64) -> io::Result<()> {
        self.node(node, generation)?;
        self.op(|| format!("sync node {node}"))?;
        let n = self.nodes.get_mut(&node).expect("checked");
        for change in n.unsynced.drain(..) {
            change.apply(&mut n.durable);
        }
        Ok(())
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

impl FileSystem for SimDisk {
    type File = SimFile;
    type Lock = SimLock;

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut d = self.lock_disk();
        d.alive()?;
        d.creatable(path)?;
        d.op(|| format!("mkdir {}", path.display()))?;
        d.names.insert(path.to_path_buf(), Entry::Dir);
        d.dir_ops
            .push(DirOp::Create(path.to_path_buf(), Entry::Dir));
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<SimLock> {
        let mut d = self.lock_disk();
        d.alive()?;
        if !d.dir_exists(&parent(path)) {
            return Err(not_found(path));
        }
        if !d.locks.insert(path.to_path_buf()) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked", path.display()),
            ));
        }
        Ok(SimLock {
            disk: self.0.clone(),
            path: path.to_path_buf(),
            generation: d.generation,
        })
    }

    fn create(&self, path: &Path) -> io::Result<SimFile> {
        let mut d = self.lock_disk();
        d.alive()?;
        d.creatable(path)?;
        d.op(|| format!("create {}", path.display()))?;
        let node = d.next_node;
        d.next_node += 1;
        d.nodes.insert(node, Node::default());
        d.names.insert(path.to_path_buf(), Entry::File(node));
        d.dir_ops
            .push(DirOp::Create(path.to_path_buf(), Entry::File(node)));
        Ok(SimFile {
            disk: self.0.clone(),
            node,
            generation: d.generation,
        })
    }

    fn open(&self, path: &Path) -> io::Result<SimFile> {
        let d = self.lock_disk();
        d.alive()?;
        let node = d.file(path)?;
        Ok(SimFile {
            disk: self.0.clone(),
            node,
            generation: d.generation,
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let d = self.lock_disk();
        d.alive()?;
        let node = d.file(path)?;
        Ok(d.nodes[&node].data.clone())
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        let d = self.lock_disk();
        d.alive()?;
        let node = d.file(path)?;
        Ok(d.nodes[&node].data.len() as u64)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut d = self.lock_disk();
        d.alive()?;
        d.file(from)?;
        if parent(from) != parent(to) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the simulated disk renames within a directory only",
            ));
        }
        if d.names.get(to) == Some(&Entry::Dir) {
            return Err(io::Error::other(format!("{}: a directory", to.display())));
        }
        d.op(|| format!("rename {} -> {}", from.display(), to.display()))?;
        let e = d.names.remove(from).expect("checked");
        d.names.insert(to.to_path_buf(), e);
        d.dir_ops
            .push(DirOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut d = self.lock_disk();
        d.alive()?;
        d.file(path)?;
        d.op(|| format!("remove {}", path.display()))?;
        d.names.remove(path);
        d.dir_ops.push(DirOp::Remove(path.to_path_buf()));
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let d = self.lock_disk();
        d.alive()?;
        if !d.dir_exists(dir) {
            return Err(not_found(dir));
        }
        let dir = dir_key(dir);
        Ok(d.names
            .keys()
            .filter(|p| parent(p) == dir)
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut d = self.lock_disk();
        d.alive()?;
        if !d.dir_exists(dir) {
            return Err(not_found(dir));
        }
        d.op(|| format!("sync dir {}", dir.display()))?;
        let dir = dir_key(dir);
        let ops = std::mem::take(&mut d.dir_ops);
        let (now, later): (Vec<DirOp>, Vec<DirOp>) =
            ops.into_iter().partition(|op| op.dir() == dir);
        for op in &now {
            op.apply(&mut d.durable_names);
        }
        d.dir_ops = later;
        Ok(())
    }

    fn now(&self) -> Instant {
        let d = self.lock_disk();
        d.base + d.elapsed
    }
}

impl SimFile {
    fn disk(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LogFile for SimFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.disk().write(self.node, self.generation, None, buf)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.disk()
            .write(self.node, self.generation, Some(offset), buf)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.disk().set_len(self.node, self.generation, len)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.disk().sync(self.node, self.generation)
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.disk().sync(self.node, self.generation)
    }
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut d = self.disk.lock().unwrap_or_else(|e| e.into_inner());
        if d.generation == self.generation {
            d.locks.remove(&self.path);
        }
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
