//! The power cut: what of the unsynced state survives it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::state::{Change, Disk, Entry, Node, dir_key, write_into};
use super::{SECTOR, SimRng};

/// How a power cut treats a kind of unsynced change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Survival {
    /// None of it survives.
    Nothing,
    /// A prefix of it survives (per file for writes; the next write may be
    /// torn), as with a disk or journal that keeps order.
    InOrder,
    /// Each change survives, is lost, or (a write) is torn, independently of
    /// the others: later ones may survive where earlier ones did not.
    Scattered,
}

/// What a power cut did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crash {
    /// How unsynced writes were treated.
    pub writes: Survival,
    /// How unsynced directory changes were treated.
    pub dir_changes: Survival,
    /// Unsynced writes (and truncations) kept whole.
    pub writes_kept: u64,
    /// Unsynced writes kept in part.
    pub writes_torn: u64,
    /// Unsynced writes lost.
    pub writes_lost: u64,
    /// Unsynced directory changes kept.
    pub dir_changes_kept: u64,
    /// Unsynced directory changes lost.
    pub dir_changes_lost: u64,
}

impl fmt::Display for Crash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "writes {:?}: {} kept, {} torn, {} lost; directory changes {:?}: {} kept, {} lost",
            self.writes,
            self.writes_kept,
            self.writes_torn,
            self.writes_lost,
            self.dir_changes,
            self.dir_changes_kept,
            self.dir_changes_lost
        )
    }
}

fn pick(rng: &mut SimRng, random: bool) -> Survival {
    if !random {
        return Survival::Nothing;
    }
    match rng.below(10) {
        0..=2 => Survival::Nothing,
        3..=5 => Survival::InOrder,
        _ => Survival::Scattered,
    }
}

impl Disk {
    pub(super) fn power_cut(&mut self, random: bool) -> Crash {
        let mut crash = Crash {
            writes: pick(&mut self.rng, random),
            dir_changes: pick(&mut self.rng, random),
            writes_kept: 0,
            writes_torn: 0,
            writes_lost: 0,
            dir_changes_kept: 0,
            dir_changes_lost: 0,
        };

        // The directories first: which names survive.
        let mut names = std::mem::take(&mut self.durable_names);
        let ops = std::mem::take(&mut self.dir_ops);
        let prefix = self.rng.below(ops.len() as u64 + 1) as usize;
        for (i, op) in ops.iter().enumerate() {
            let keep = match crash.dir_changes {
                Survival::Nothing => false,
                Survival::InOrder => i < prefix,
                Survival::Scattered => self.rng.chance(1, 2),
            };
            if keep {
                op.apply(&mut names);
                crash.dir_changes_kept += 1;
            } else {
                crash.dir_changes_lost += 1;
            }
            if self.trace {
                println!(
                    "    power cut: {op:?} {}",
                    if keep { "kept" } else { "lost" }
                );
            }
        }
        // An entry whose directory did not survive is gone too.
        let dirs: Vec<PathBuf> = names
            .iter()
            .filter(|(_, e)| **e == Entry::Dir)
            .map(|(p, _)| p.clone())
            .collect();
        let reachable = |p: &PathBuf| {
            p.ancestors()
                .skip(1)
                .map(dir_key)
                .all(|a| a.as_os_str().is_empty() || dirs.contains(&a))
        };
        names.retain(|p, _| reachable(p));

        // Then the bytes of every file that still has a name.
        let mut nodes = BTreeMap::new();
        for e in names.values() {
            let Entry::File(id) = *e else { continue };
            if nodes.contains_key(&id) {
                continue;
            }
            let node = self.nodes.remove(&id).unwrap_or_default();
            let data = self.settle(id, node, &mut crash);
            nodes.insert(
                id,
                Node {
                    data: data.clone(),
                    durable: data,
                    unsynced: Vec::new(),
                },
            );
        }
        if self.trace {
            println!("    power cut: {crash}");
        }
        self.nodes = nodes;
        self.names = names.clone();
        self.durable_names = names;
        self.locks.clear();
        self.generation += 1;
        self.fuse = None;
        self.dead = false;
        crash
    }

    /// The bytes a file keeps: what was synced, then some of the rest.
    fn settle(&mut self, id: u64, node: Node, crash: &mut Crash) -> Vec<u8> {
        let mut data = node.durable;
        let prefix = self.rng.below(node.unsynced.len() as u64 + 1) as usize;
        for (i, change) in node.unsynced.into_iter().enumerate() {
            // 0: lost, 1: torn, 2: kept.
            let fate = match crash.writes {
                Survival::Nothing => 0,
                Survival::InOrder if i < prefix => 2,
                Survival::InOrder if i == prefix => self.rng.below(2),
                Survival::InOrder => 0,
                Survival::Scattered => [0, 0, 0, 1, 1, 1, 2, 2, 2, 2][self.rng.below(10) as usize],
            };
            let fate = match (&change, fate) {
                // A truncation cannot be torn.
                (Change::SetLen(_), 1) => 0,
                (_, f) => f,
            };
            if self.trace {
                let what = match &change {
                    Change::Write { at, bytes } => format!("write at {at}, {} bytes", bytes.len()),
                    Change::SetLen(len) => format!("truncate to {len}"),
                };
                let fate = ["lost", "torn", "kept"][fate as usize];
                println!("    power cut: node {id}: {what} {fate}");
            }
            match fate {
                2 => {
                    change.apply(&mut data);
                    crash.writes_kept += 1;
                }
                1 => {
                    let Change::Write { at, bytes } = change else {
                        unreachable!("only writes are torn")
                    };
                    self.tear(&mut data, at, &bytes);
                    crash.writes_torn += 1;
                }
                _ => crash.writes_lost += 1,
            }
        }
        data
    }

    /// Keeps part of a write: a prefix of its bytes, or some of its sectors.
    fn tear(&mut self, data: &mut Vec<u8>, at: u64, bytes: &[u8]) {
        if self.rng.chance(1, 2) {
            let keep = self.rng.below(bytes.len() as u64) as usize;
            write_into(data, at, &bytes[..keep]);
            return;
        }
        let end = at + bytes.len() as u64;
        let mut from = at;
        while from < end {
            let to = ((from / SECTOR + 1) * SECTOR).min(end);
            if self.rng.chance(1, 2) {
                write_into(data, from, &bytes[(from - at) as usize..(to - at) as usize]);
            }
            from = to;
        }
    }
}
