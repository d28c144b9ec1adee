//! What the power-cut seeds found, each as a test of its own that fails
//! without its fix (the seeds themselves run again in `main.rs`).

use std::path::Path;

use mq_server::store::Store;
use mq_server::wal::fs::{FileSystem, LogFile, SimDisk};
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

/// The newest segment in `dir`.
fn newest_segment(disk: &SimDisk, dir: &str) -> std::path::PathBuf {
    let mut names = disk.list(Path::new(dir)).unwrap();
    names.retain(|n| n.ends_with(".wal"));
    names.sort();
    Path::new(dir).join(names.last().expect("a segment"))
}

/// Overwrites `len` bytes at `at` with zeroes, durably.
fn zero(disk: &SimDisk, path: &Path, at: u64, len: usize) {
    let mut f = disk.open(path).unwrap();
    f.write_at(at, &vec![0; len]).unwrap();
    f.sync_data().unwrap();
}

/// Seed 4 (`always`): a batch write torn at sector granularity, its first
/// sector lost and a later one kept, left valid records after a hole. Recovery
/// took the hole for damage in the middle of the log: it reported records
/// lost, restored records that came after a gap, and left the hole to be
/// reported again at every start. Past the last sync point the segment
/// records, damage is a torn write: cut there, report no loss.
#[test]
fn a_torn_write_with_a_surviving_later_sector_is_a_torn_tail() {
    let disk = disk();
    let dir = "/srv/mq";
    let (mut wal, _) = reopen(&disk, dir, FsyncPolicy::Always);
    let ops = publish_ops(0, 20);
    wal.write(&ops[..10]).unwrap();
    let seg = newest_segment(&disk, dir);
    let synced = disk.len(&seg).unwrap();
    wal.write(&ops[10..]).unwrap();
    drop(wal);
    // What a power cut in the middle of the second write may leave: its
    // first sector never made it.
    zero(&disk, &seg, synced, 100);

    let (wal, records) = reopen(&disk, dir, FsyncPolicy::Always);
    assert_eq!(payloads(&records), (0..10).collect::<Vec<_>>());
    let r = wal.recovery();
    assert_eq!(r.corrupt_records, 0, "{r:?}");
    assert!(r.torn_tail_bytes > 100 && r.torn_tail_bytes == r.skipped_bytes);
    assert_eq!(disk.len(&seg).unwrap(), synced, "cut where the tear starts");
    drop(wal);
    let (wal, records) = reopen(&disk, dir, FsyncPolicy::Always);
    assert_eq!(records.len(), 10);
    assert_eq!(wal.recovery().skipped_bytes, 0, "the file is whole again");
}

/// Seed 3 (`every`): the first write to a new segment was lost and later ones
/// kept; its sync mark had gone with it, so recovery could not tell a torn
/// write from damage. The first mark is synced when the segment is created.
#[test]
fn a_segment_whose_first_write_was_lost_still_has_its_sync_mark() {
    let disk = disk();
    let dir = "/srv/mq";
    let every = FsyncPolicy::EveryRecords(1000);
    let (mut wal, _) = reopen(&disk, dir, every);
    let ops = publish_ops(0, 20);
    wal.write(&ops[..10]).unwrap();
    let seg = newest_segment(&disk, dir);
    wal.write(&ops[10..]).unwrap();
    let written = disk.read(&seg).unwrap();
    // Nothing was synced but what the log synced itself; then the first
    // write's bytes are gone and the second's made it.
    disk.crash_keeping_only_synced();
    drop(wal);
    let mut f = disk.open(&seg).unwrap();
    let head = disk.len(&seg).unwrap() as usize;
    let first = head + frame_bytes(&ops[..10]);
    f.write_at(first as u64, &written[first..]).unwrap();
    f.sync_data().unwrap();

    let (wal, records) = reopen(&disk, dir, every);
    assert!(
        records.is_empty(),
        "nothing that followed the hole comes back"
    );
    let r = wal.recovery();
    assert_eq!(r.corrupt_records, 0, "{r:?}");
    assert!(r.torn_tail_bytes > 0);
}

/// Bytes the log's frames for `ops` take.
fn frame_bytes(ops: &[mq_core::broker::StoreOp]) -> usize {
    ops.iter().map(|op| 17 + op.bytes().len()).sum()
}

/// The other side of the same rule: damage before the segment's last sync
/// point is damage to durable data, skipped and counted, and what follows it
/// is kept.
#[test]
fn damage_before_the_last_sync_point_loses_only_the_damaged_record() {
    let disk = disk();
    let dir = "/srv/mq";
    let (mut wal, _) = reopen(&disk, dir, FsyncPolicy::Always);
    let ops = publish_ops(0, 20);
    wal.write(&ops[..5]).unwrap();
    let seg = newest_segment(&disk, dir);
    let at = disk.len(&seg).unwrap();
    for op in &ops[5..] {
        wal.write(std::slice::from_ref(op)).unwrap();
    }
    drop(wal);
    // A flipped byte in record 5, which later writes' sync marks cover.
    let mut bytes = disk.read(&seg).unwrap();
    bytes[at as usize + 30] ^= 0x40;
    let mut f = disk.open(&seg).unwrap();
    f.write_at(0, &bytes).unwrap();
    f.sync_data().unwrap();

    let (wal, records) = reopen(&disk, dir, FsyncPolicy::Always);
    let mut want: Vec<u32> = (0..20).collect();
    want.remove(5);
    assert_eq!(payloads(&records), want);
    assert_eq!(wal.recovery().corrupt_records, 1);
    assert_eq!(wal.recovery().torn_tail_bytes, 0);
}

/// Seed 0 (`always`, after process crashes were added to the model): the
/// process died between a batch's write and its sync; the next mqd recovered
/// that batch from the operating system's cache and restored it, and nothing
/// ever synced it. A publisher's retry with the same producer sequence was
/// then acknowledged at once (the broker knew it as stored), and a power cut
/// took it. What recovery reads is synced before the log is used.
#[test]
fn what_recovery_restores_after_a_process_crash_survives_a_power_cut() {
    let disk = disk();
    let dir = "/srv/mq";
    let (mut wal, _) = reopen(&disk, dir, FsyncPolicy::Always);
    let ops = publish_ops(0, 20);
    wal.write(&ops[..10]).unwrap();
    // The write goes to the cache; the process dies before the sync.
    disk.fail_after(1);
    assert!(wal.write(&ops[10..]).is_err());
    disk.process_crash();
    drop(wal);
    let (wal, records) = reopen(&disk, dir, FsyncPolicy::Always);
    assert_eq!(payloads(&records), (0..20).collect::<Vec<_>>());
    // The broker rebuilt from them acknowledges on top of them; the power goes.
    disk.crash_keeping_only_synced();
    drop(wal);
    let (_, records) = reopen(&disk, dir, FsyncPolicy::Always);
    assert_eq!(payloads(&records), (0..20).collect::<Vec<_>>());
}

/// Seed 7 (`interval`, 20 ms): the policy synced only when a write found the
/// interval elapsed, so records written soon after a sync waited for the next
/// write, for as long as the log stayed quiet, and a power cut 36 ms after
/// one was acknowledged took it. The log now says when its records must be
/// synced ([`Store::sync_deadline`]) and the store thread wakes up for it.
#[test]
fn under_fsync_interval_a_quiet_log_is_synced_one_interval_later() {
    let disk = disk();
    let dir = "/srv/mq";
    let interval = std::time::Duration::from_millis(20);
    let (mut wal, _) = reopen(&disk, dir, FsyncPolicy::Interval(interval));
    assert_eq!(wal.sync_deadline(), None, "nothing waits");
    wal.write(&publish_ops(0, 5)).unwrap();
    let due = wal.sync_deadline().expect("the records wait for a sync");
    assert!(due <= disk.now() + interval);
    disk.advance(interval);
    wal.sync().unwrap();
    assert_eq!(wal.sync_deadline(), None);
    disk.crash_keeping_only_synced();
    drop(wal);
    let (_, records) = reopen(&disk, dir, FsyncPolicy::Interval(interval));
    assert_eq!(payloads(&records), (0..5).collect::<Vec<_>>());
}
