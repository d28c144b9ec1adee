//! The disk's state: what the process sees, what is on the platter, and the
//! unsynced changes between them.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::SimRng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entry {
    File(u64),
    Dir,
}

/// An unsynced change to a file's bytes.
#[derive(Debug, Clone)]
pub(super) enum Change {
    Write { at: u64, bytes: Vec<u8> },
    SetLen(u64),
}

impl Change {
    pub(super) fn apply(&self, data: &mut Vec<u8>) {
        match self {
            Change::Write { at, bytes } => write_into(data, *at, bytes),
            Change::SetLen(len) => data.resize(*len as usize, 0),
        }
    }
}

pub(super) fn write_into(data: &mut Vec<u8>, at: u64, bytes: &[u8]) {
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
pub(super) struct Node {
    /// What the process reads.
    pub(super) data: Vec<u8>,
    /// What a power cut keeps for sure.
    pub(super) durable: Vec<u8>,
    /// What lies between, in the order written.
    pub(super) unsynced: Vec<Change>,
}

/// An unsynced change to a directory.
#[derive(Debug, Clone)]
pub(super) enum DirOp {
    Create(PathBuf, Entry),
    Remove(PathBuf),
    Rename(PathBuf, PathBuf),
}

impl DirOp {
    pub(super) fn dir(&self) -> PathBuf {
        match self {
            DirOp::Create(p, _) | DirOp::Remove(p) | DirOp::Rename(_, p) => parent(p),
        }
    }

    /// Applies the change to a view of the names; a change that no longer
    /// fits (its source is gone) does nothing.
    pub(super) fn apply(&self, names: &mut BTreeMap<PathBuf, Entry>) {
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
pub(super) fn parent(p: &Path) -> PathBuf {
    p.parent().map(dir_key).unwrap_or_default()
}

/// A directory as the disk names it: "", "/" and "." are the root.
pub(super) fn dir_key(p: &Path) -> PathBuf {
    if p.as_os_str().is_empty() || p == Path::new("/") || p == Path::new(".") {
        PathBuf::new()
    } else {
        p.to_path_buf()
    }
}

pub(super) struct Disk {
    pub(super) generation: u64,
    pub(super) nodes: BTreeMap<u64, Node>,
    pub(super) next_node: u64,
    /// What the process sees.
    pub(super) names: BTreeMap<PathBuf, Entry>,
    /// What a power cut keeps for sure.
    pub(super) durable_names: BTreeMap<PathBuf, Entry>,
    /// Unsynced directory changes, in order.
    pub(super) dir_ops: Vec<DirOp>,
    pub(super) locks: BTreeSet<PathBuf>,
    /// Operations left before the power goes.
    pub(super) fuse: Option<u64>,
    pub(super) dead: bool,
    pub(super) rng: SimRng,
    pub(super) base: Instant,
    pub(super) elapsed: Duration,
    pub(super) trace: bool,
    pub(super) ops: u64,
}

pub(super) fn power_off() -> io::Error {
    io::Error::other("simulated power cut: the disk is off")
}

pub(super) fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: not found", p.display()),
    )
}

impl Disk {
    /// Counts an operation that changes or syncs something, failing once the
    /// power is off.
    pub(super) fn op(&mut self, what: impl FnOnce() -> String) -> io::Result<()> {
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

    pub(super) fn alive(&self) -> io::Result<()> {
        if self.dead { Err(power_off()) } else { Ok(()) }
    }

    pub(super) fn dir_exists(&self, dir: &Path) -> bool {
        let dir = dir_key(dir);
        dir.as_os_str().is_empty() || self.names.get(&dir) == Some(&Entry::Dir)
    }

    pub(super) fn file(&self, p: &Path) -> io::Result<u64> {
        match self.names.get(p) {
            Some(Entry::File(n)) => Ok(*n),
            Some(Entry::Dir) => Err(io::Error::other(format!("{}: a directory", p.display()))),
            None => Err(not_found(p)),
        }
    }

    /// Checks that `p` may be created: nothing there, its directory exists.
    pub(super) fn creatable(&self, p: &Path) -> io::Result<()> {
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

    pub(super) fn node(&mut self, handle: u64, generation: u64) -> io::Result<&mut Node> {
        if generation != self.generation {
            return Err(io::Error::other("file handle from before a power cut"));
        }
        self.alive()?;
        self.nodes
            .get_mut(&handle)
            .ok_or_else(|| io::Error::other("file handle of a vanished file"))
    }

    pub(super) fn write(
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

    pub(super) fn set_len(&mut self, node: u64, generation: u64, len: u64) -> io::Result<()> {
        self.node(node, generation)?;
        self.op(|| format!("truncate node {node} to {len}"))?;
        let n = self.nodes.get_mut(&node).expect("checked");
        n.data.resize(len as usize, 0);
        n.unsynced.push(Change::SetLen(len));
        Ok(())
    }

    pub(super) fn sync(&mut self, node: u64, generation: u64) -> io::Result<()> {
        self.node(node, generation)?;
        self.op(|| format!("sync node {node}"))?;
        let n = self.nodes.get_mut(&node).expect("checked");
        for change in n.unsynced.drain(..) {
            change.apply(&mut n.durable);
        }
        Ok(())
    }
}
