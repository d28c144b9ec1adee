//! The filesystem operations on a [`SimDisk`]: each changes what the process
//! sees and records what is not durable yet.

use std::io;
use std::path::Path;
use std::sync::MutexGuard;
use std::time::Instant;

use super::state::{DirOp, Disk, Entry, Node, dir_key, not_found, parent};
use super::{SimDisk, SimFile, SimLock};
use crate::wal::fs::{FileSystem, LogFile};

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
