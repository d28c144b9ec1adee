//! The file layer the log writes through: the few filesystem operations it
//! uses, behind a trait, so that the same log runs on the real filesystem
//! ([`OsFs`]) and, in tests, on a disk that forgets what was not synced
//! ([`SimDisk`]).
//!
//! # The contract (what a power cut keeps)
//!
//! The rules are POSIX's as a power cut or a kernel crash sees them, and the log
//! is written against them, not against what one filesystem happens to do:
//!
//! - bytes written to a file are durable once [`LogFile::sync_data`] or
//!   [`LogFile::sync_all`] of that file has returned;
//! - a name created, renamed or removed in a directory is durable once
//!   [`FileSystem::sync_dir`] of that directory has returned. Syncing a file
//!   does not make its name durable: a file created and synced, but whose
//!   directory was not, may be gone after a power cut, with its data;
//! - anything not yet durable may be lost, kept, or partly kept: a write may
//!   be torn (a prefix of it, or some of its sectors), later writes may survive
//!   where earlier ones did not, and each unsynced directory change may or may
//!   not survive, in any combination.
//!
//! A crash of the process alone (SIGKILL, a panic) loses nothing that was
//! written: the operating system still holds it.

mod os;
mod sim;

use std::io;
use std::path::Path;
use std::time::Instant;

pub use os::{OsFile, OsFs};
pub use sim::{Crash, SECTOR, SimDisk, SimFile, SimLock, SimRng, Survival, Unsynced};

/// The filesystem operations the log uses. Paths are the ones the log builds
/// from its directory; every directory change is made durable by
/// [`sync_dir`](Self::sync_dir) of its parent.
pub trait FileSystem: Send + 'static {
    /// A file open for writing.
    type File: LogFile;
    /// Held while a log has its directory open; dropping it unlocks.
    type Lock: Send + 'static;

    /// Creates the directory `path`: `AlreadyExists` when something is there,
    /// `NotFound` when its parent is missing. Durable once its parent is synced.
    fn create_dir(&self, path: &Path) -> io::Result<()>;

    /// Takes the exclusive lock `path` (a file created if missing), failing
    /// with `WouldBlock` while another holder has it.
    fn lock(&self, path: &Path) -> io::Result<Self::Lock>;

    /// Creates a new, empty file (`AlreadyExists` when there is one) and opens
    /// it for writing.
    fn create(&self, path: &Path) -> io::Result<Self::File>;

    /// Opens an existing file for writing; appends go to its end.
    fn open(&self, path: &Path) -> io::Result<Self::File>;

    /// The whole contents of a file, as the operating system has them (synced
    /// or not).
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// The size of a file.
    fn len(&self, path: &Path) -> io::Result<u64>;

    /// Renames `from` to `to` (same directory), replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// The names of the entries in a directory (names that are not UTF-8 are
    /// left out: the log names its files itself).
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Makes every creation, rename and removal in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// The clock the log's time-based sync policy reads (SQLite's VFS carries
    /// the clock too: a simulated disk runs on simulated time).
    fn now(&self) -> Instant;
}

/// A file open for writing.
pub trait LogFile: Send + 'static {
    /// Writes all of `buf` at the end of the file.
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;

    /// Writes all of `parts`, one after the other, at the end of the file:
    /// by default [`append`](Self::append) of them put together; a file
    /// with a gathered write takes them as they are.
    fn append_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        self.append(&parts.concat())
    }

    /// Writes all of `buf` at `offset`, extending the file (with zeroes) when
    /// that is past its end. The log only appends; this is for stores that
    /// rewrite in place.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()>;

    /// Cuts (or extends, with zeroes) the file to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;

    /// Makes the file's data (and the size needed to read it) durable.
    fn sync_data(&mut self) -> io::Result<()>;

    /// Makes the file's data and all its metadata durable.
    fn sync_all(&mut self) -> io::Result<()>;
}

/// Creates `dir` and any missing parents, syncing the parent of each one it
/// created: a log whose directory entry is lost is lost whole.
pub(crate) fn create_dir_all<F: FileSystem>(fs: &F, dir: &Path) -> io::Result<()> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        Some(_) => Path::new("."),
        None => return Ok(()),
    };
    match fs.create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dir_all(fs, parent)?;
            match fs.create_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    }
    fs.sync_dir(parent)
}
