//! The file layer over `std::fs`: what `mqd` runs on.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

use super::{FileSystem, LogFile};

/// The real filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsFs;

/// A file of [`OsFs`], open for writing; its cursor stays at the end.
#[derive(Debug)]
pub struct OsFile(File);

impl FileSystem for OsFs {
    type File = OsFile;
    type Lock = File;

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }

    fn lock(&self, path: &Path) -> io::Result<File> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked by another process", path.display()),
            )),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    fn create(&self, path: &Path) -> io::Result<OsFile> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(OsFile(file))
    }

    fn open(&self, path: &Path) -> io::Result<OsFile> {
        let mut file = OpenOptions::new().write(true).open(path)?;
        file.seek(SeekFrom::End(0))?;
        Ok(OsFile(file))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        fs::metadata(path).map(|m| m.len())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        sync_dir(dir)
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

impl LogFile for OsFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    /// Gathered writes (`writev`), as few as the system allows.
    fn append_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        write_all_vectored(&mut self.0, parts)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.0.seek(SeekFrom::Start(offset))?;
        let written = self.0.write_all(buf);
        self.0.seek(SeekFrom::End(0))?;
        written
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)?;
        self.0.seek(SeekFrom::End(0))?;
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
}

/// Writes all of `parts`, in order, with gathered writes: std hands the
/// system at most its limit of pieces a call (`IOV_MAX`), and a call may
/// write less than it was given (a short write), or be interrupted; both go
/// on where it stopped. Empty parts are left out: a call of only empty
/// pieces writes nothing, which would read as a failed write.
fn write_all_vectored(w: &mut impl Write, parts: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = (parts.iter())
        .filter(|p| !p.is_empty())
        .map(|p| IoSlice::new(p))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match w.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// fsync of the directory: what makes a creation, rename or removal in it
/// survive a power cut.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Makes the directory's entries durable: `FlushFileBuffers` on the directory.
///
/// On Windows `sync_all` and `sync_data` on a file are both
/// `FlushFileBuffers`: the file's data and its own metadata (size,
/// allocation) reach the disk, and the disk is told to flush its cache. A
/// file's name, though, is an entry in its directory's index: a new segment or
/// a snapshot renamed into place (`MoveFileExW` with
/// `MOVEFILE_REPLACE_EXISTING`, which is what `std::fs::rename` does) is
/// durable once the directory is flushed too. A directory opens as a handle
/// only with `FILE_FLAG_BACKUP_SEMANTICS`, and flushes only with write
/// access. NTFS does that; a file system that cannot flush a directory (FAT,
/// some network shares) refuses, and then the entries are as durable as that
/// file system makes them: it says so once and goes on.
#[cfg(windows)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    use std::os::windows::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicBool, Ordering};

    const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
    const ERROR_INVALID_FUNCTION: i32 = 1;
    const ERROR_ACCESS_DENIED: i32 = 5;
    const ERROR_NOT_SUPPORTED: i32 = 50;
    static REFUSED: AtomicBool = AtomicBool::new(false);

    let flushed = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
        .open(dir)
        .and_then(|handle| handle.sync_all());
    match flushed {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(ERROR_INVALID_FUNCTION | ERROR_ACCESS_DENIED | ERROR_NOT_SUPPORTED)
            ) =>
        {
            if !REFUSED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "this file system cannot flush a directory: new file names in the log \
                     are as durable as it makes them"
                );
            }
            Ok(())
        }
        other => other,
    }
}

/// Neither Unix nor Windows: nothing known to sync a directory with.
#[cfg(not(any(unix, windows)))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A fresh directory of this process for test `name`, and a new file
    /// `f` in it.
    fn scratch(name: &str) -> (PathBuf, PathBuf, OsFile) {
        let dir = std::env::temp_dir().join(format!("mq-osfs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        super::super::create_dir_all(&OsFs, &dir).unwrap();
        let path = dir.join("f");
        let f = OsFs.create(&path).unwrap();
        (dir, path, f)
    }

    #[test]
    fn a_gathered_append_of_more_parts_than_one_call_takes() {
        let (dir, path, mut f) = scratch("parts");
        let fs = OsFs;
        // Some empty, more than Linux's `IOV_MAX` (1,024) of them.
        let parts: Vec<Vec<u8>> = (0..2 * 1024 + 500)
            .map(|i| vec![(i % 251) as u8; i % 7])
            .collect();
        let parts: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
        f.append(b"<").unwrap();
        f.append_parts(&parts).unwrap();
        f.append(b">").unwrap();
        f.sync_data().unwrap();
        let want = [&b"<"[..], &parts.concat(), b">"].concat();
        assert_eq!(fs.read(&path).unwrap(), want);
        drop(f);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Takes at most 3 bytes of the first piece a call, and is
    /// interrupted every other call.
    struct Short {
        got: Vec<u8>,
        calls: usize,
    }

    impl Write for Short {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(2) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            let n = first.len().min(3);
            self.got.extend_from_slice(&first[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn gathered_writes_go_on_after_short_and_interrupted_calls() {
        let parts: [&[u8]; 5] = [b"", b"hello", b"", b" gathered", b" world"];
        let mut w = Short {
            got: Vec::new(),
            calls: 0,
        };
        write_all_vectored(&mut w, &parts).unwrap();
        assert_eq!(w.got, b"hello gathered world");
        // Only empty parts: nothing to write, and no error.
        write_all_vectored(&mut w, &[b"", b""]).unwrap();
        assert_eq!(w.got, b"hello gathered world");
    }

    #[test]
    fn appends_go_to_the_end_after_a_write_at_and_a_truncate() {
        let (dir, path, mut f) = scratch("appends");
        let fs = OsFs;
        assert_eq!(
            fs.create(&path).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        f.append(b"hello").unwrap();
        f.write_at(0, b"J").unwrap();
        f.append(b" world").unwrap();
        f.sync_data().unwrap();
        drop(f);
        let mut f = fs.open(&path).unwrap();
        f.truncate(5).unwrap();
        f.append(b"!").unwrap();
        f.sync_all().unwrap();
        assert_eq!(fs.read(&path).unwrap(), b"Jello!");
        assert_eq!(fs.len(&path).unwrap(), 6);
        fs.rename(&path, &dir.join("g")).unwrap();
        assert_eq!(fs.list(&dir).unwrap(), vec!["g".to_string()]);
        fs.sync_dir(&dir).unwrap();
        let lock = fs.lock(&dir.join("LOCK")).unwrap();
        let e = fs.lock(&dir.join("LOCK")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(lock);
        fs.remove(&dir.join("g")).unwrap();
        // Windows (Wine at least) may still hold the lock file's handle of
        // the refused attempt for a moment: cleaning up is not the test.
        let _ = fs::remove_dir_all(&dir);
    }
}
