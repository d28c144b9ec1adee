//! What the power-cut seeds found, each as a test of its own that fails
//! without its fix (the seeds themselves run again in `main.rs`).

use std::path::Path;

use mq_server::store::Store;
use mq_server::wal::fs::{FileSystem, SimDisk};
use mq_server::wal::{FsyncPolicy, Wal, WalOptions};

use crate::support::{payloads, publish_ops};

fn opts(fsync: FsyncPolicy) -> WalOptions {
    WalOptions {
        fsync,
        segment_bytes: 1024,
        max_bytes: None,
        compact_min_bytes: 1 << 20,
    }
}

/// A disk with `/srv` on it.
fn disk() -> SimDisk {
    let disk = SimDisk::new(1);
    disk.create_dir(Path::new("/srv")).unwrap();
    disk.sync_dir(Path::new("/")).unwrap();
    disk
}

fn reopen(disk: &SimDisk, dir: &str, fsync: FsyncPolicy) -> (Wal<SimDisk>, Vec<Vec<u8>>) {
    let mut wal = Wal::open_in(disk.clone(), dir, opts(fsync)).expect("the log opens");
    let records = wal.load().unwrap();
    (wal, records)
}

/// Seed 0 (`always`): the log created its directory and never synced the
/// parent, so a power cut could take the directory, and every acknowledged
/// record in it, away.
#[test]
fn the_log_directory_itself_survives_a_power_cut() {
    let disk = disk();
    let (mut wal, _) = reopen(&disk, "/srv/mq/data", FsyncPolicy::Always);
    wal.write(&publish_ops(0, 10)).unwrap();
    disk.crash_keeping_only_synced();
    drop(wal);
    let (_, records) = reopen(&disk, "/srv/mq/data", FsyncPolicy::Always);
    assert_eq!(payloads(&records), (0..10).collect::<Vec<_>>());
}
