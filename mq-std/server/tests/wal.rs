//! The write-ahead log at file level: what it gives back after torn writes, flipped
//! bits, missing files and a long run with compaction. Records come from a real
//! in-process `Broker`, the way the server produces them.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant as Clock};

use mq_core::broker::Config;
use mq_core::wire::*;
use mq_server::store::Store;
use mq_server::wal::{FsyncPolicy, Wal, WalOptions};
use support::{Sim, payloads, publish_ops};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "mq-wal-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn opts(segment_bytes: u64) -> WalOptions {
    WalOptions {
        fsync: FsyncPolicy::Never,
        segment_bytes,
        max_bytes: None,
        compact_min_bytes: 64 << 20,
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

fn reopen(dir: &Path, o: WalOptions) -> (Wal, Vec<Vec<u8>>) {
    let mut wal = Wal::open(dir, o).unwrap();
    let records = wal.load().unwrap();
    (wal, records)
}

#[test]
fn records_come_back_in_order_across_restarts() {
    let dir = TempDir::new();
    let (mut wal, records) = reopen(&dir.0, opts(4096));
    assert!(records.is_empty());
    // Each run's broker numbers its store operations from 1 again.
    let ops = publish_ops(0, 300);
    for batch in ops.chunks(7) {
        wal.write(batch).unwrap();
    }
    drop(wal);
    let (mut wal, records) = reopen(&dir.0, opts(4096));
    assert_eq!(payloads(&records), (0..300).collect::<Vec<_>>());
    wal.write(&publish_ops(300, 100)).unwrap();
    drop(wal);
    let (wal, records) = reopen(&dir.0, opts(4096));
    assert_eq!(payloads(&records), (0..400).collect::<Vec<_>>());
    let r = wal.recovery();
    assert_eq!((r.corrupt_records, r.skipped_bytes), (0, 0));
    assert!(r.missing_segments.is_empty());
    assert!(wal.segment_count() > 3, "segments rotate at 4 KiB");
    let m = wal.metrics();
    assert_eq!(m.recovered_records.load(Ordering::Relaxed), 400);
}

#[test]
fn torn_tail_is_truncated_and_the_rest_kept() {
    let dir = TempDir::new();
    let (mut wal, _) = reopen(&dir.0, opts(1 << 20));
    wal.write(&publish_ops(0, 100)).unwrap();
    drop(wal);
    // The crash tore the last write: half of the last record made it.
    let seg = segments(&dir.0).pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 10).unwrap();
    drop(f);

    let (mut wal, records) = reopen(&dir.0, opts(1 << 20));
    assert_eq!(payloads(&records), (0..99).collect::<Vec<_>>());
    let r = wal.recovery().clone();
    assert_eq!(r.corrupt_records, 0, "a torn tail is not corruption");
    assert!(r.torn_tail_bytes > 0 && r.torn_tail_bytes == r.skipped_bytes);
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len(),
        len - 10 - r.torn_tail_bytes,
        "the torn record is cut off"
    );
    // Writing on is clean: the next start finds nothing wrong.
    wal.write(&publish_ops(1000, 5)).unwrap();
    drop(wal);
    let (wal, records) = reopen(&dir.0, opts(1 << 20));
    let mut want: Vec<u32> = (0..99).collect();
    want.extend(1000..1005);
    assert_eq!(payloads(&records), want);
    assert_eq!(wal.recovery().skipped_bytes, 0);
}

#[test]
fn flipped_bit_mid_segment_loses_only_that_record() {
    let dir = TempDir::new();
    let (mut wal, _) = reopen(&dir.0, opts(1 << 20));
    let ops = publish_ops(0, 200);
    wal.write(&ops[..100]).unwrap();
    // Where record 100 starts: everything written so far.
    let seg = segments(&dir.0).pop().unwrap();
    let at = std::fs::metadata(&seg).unwrap().len() as usize;
    wal.write(&ops[100..]).unwrap();
    drop(wal);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[at + 30] ^= 0x10;
    std::fs::write(&seg, &bytes).unwrap();

    let (wal, records) = reopen(&dir.0, opts(1 << 20));
    let mut want: Vec<u32> = (0..200).collect();
    want.remove(100);
    assert_eq!(payloads(&records), want, "records before and after survive");
    let r = wal.recovery();
    assert_eq!(r.corrupt_records, 1);
    assert_eq!(r.torn_tail_bytes, 0);
    assert!(r.skipped_bytes > 0 && r.skipped_bytes < 100);
    let m = wal.metrics();
    assert_eq!(m.corrupt_records.load(Ordering::Relaxed), 1);
    assert_eq!(m.skipped_bytes.load(Ordering::Relaxed), r.skipped_bytes);
    assert_eq!(m.recovered_records.load(Ordering::Relaxed), 199);
}

#[test]
fn damage_through_a_stretch_of_records_is_counted() {
    let dir = TempDir::new();
    let (mut wal, _) = reopen(&dir.0, opts(1 << 20));
    let ops = publish_ops(0, 100);
    wal.write(&ops[..40]).unwrap();
    let seg = segments(&dir.0).pop().unwrap();
    let at = std::fs::metadata(&seg).unwrap().len() as usize;
    wal.write(&ops[40..]).unwrap();
    drop(wal);
    // Zeroes over a few records' worth (a bad sector, say).
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[at + 5..at + 200].fill(0);
    std::fs::write(&seg, &bytes).unwrap();

    let (wal, records) = reopen(&dir.0, opts(1 << 20));
    let got = payloads(&records);
    let lost = 100 - got.len() as u64;
    assert!(lost >= 3, "{lost} lost");
    assert_eq!(&got[..40], &(0..40).collect::<Vec<_>>()[..]);
    assert_eq!(*got.last().unwrap(), 99);
    assert_eq!(wal.recovery().corrupt_records, lost);
}

#[test]
fn missing_segment_is_reported_and_loading_continues() {
    let dir = TempDir::new();
    let (mut wal, _) = reopen(&dir.0, opts(4096));
    wal.write(&publish_ops(0, 600)).unwrap();
    drop(wal);
    let segs = segments(&dir.0);
    assert!(segs.len() >= 4, "{} segments", segs.len());
    std::fs::remove_file(&segs[1]).unwrap();

    let (mut wal, records) = reopen(&dir.0, opts(4096));
    let got = payloads(&records);
    let r = wal.recovery().clone();
    assert_eq!(r.missing_segments, vec![2]);
    assert!(r.missing_records > 0);
    assert_eq!(got.len() as u64 + r.missing_records, 600);
    // What came before and after the gap is there, in order.
    assert_eq!(got[0], 0);
    assert_eq!(*got.last().unwrap(), 599);
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    // And the log goes on.
    wal.write(&publish_ops(600, 1)).unwrap();
    drop(wal);
    let (_, records) = reopen(&dir.0, opts(4096));
    assert_eq!(*payloads(&records).last().unwrap(), 600);
}

#[test]
fn damaged_snapshot_and_stray_files_never_stop_the_open() {
    let dir = TempDir::new();
    let (mut wal, _) = reopen(&dir.0, opts(4096));
    wal.write(&publish_ops(0, 50)).unwrap();
    drop(wal);
    std::fs::write(dir.0.join("snap-00000000000000000099.snap"), b"garbage").unwrap();
    std::fs::write(dir.0.join("snap-00000000000000000100.snap.tmp"), b"half").unwrap();
    std::fs::write(dir.0.join("notes.txt"), b"hello").unwrap();
    let (wal, records) = reopen(&dir.0, opts(4096));
    assert_eq!(payloads(&records), (0..50).collect::<Vec<_>>());
    assert_eq!(wal.recovery().damaged_snapshots.len(), 1);
    assert!(!dir.0.join("snap-00000000000000000100.snap.tmp").exists());
    assert!(dir.0.join("notes.txt").exists());
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = TempDir::new();
    let (_wal, _) = reopen(&dir.0, opts(4096));
    let e = Wal::open(&dir.0, opts(4096)).unwrap_err();
    assert!(e.to_string().contains("in use"), "{e}");
}

/// A server that has shut down has closed its log: an application that
/// restarts its broker in-process (a desktop peer) opens it again at once.
#[test]
fn a_server_that_shut_down_has_closed_its_log() {
    let dir = TempDir::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for _ in 0..3 {
            let wal = Wal::open(&dir.0, opts(4096)).expect("the log opens");
            let server = mq_server::server::spawn(mq_server::server::ServerOptions {
                store: Box::new(wal),
                ..Default::default()
            })
            .await
            .expect("serves");
            server.shutdown().await.expect("stops");
        }
    });
}

#[test]
fn fsync_policies_sync_as_documented() {
    let syncs = |fsync: FsyncPolicy| {
        let dir = TempDir::new();
        let (mut wal, _) = reopen(
            &dir.0,
            WalOptions {
                fsync,
                ..opts(1 << 20)
            },
        );
        for op in publish_ops(0, 100) {
            wal.write(&[op]).unwrap();
        }
        wal.metrics().syncs.load(Ordering::Relaxed)
    };
    // One per batch (or per ten records), plus one for the segment started.
    assert_eq!(syncs(FsyncPolicy::Always), 101);
    assert_eq!(syncs(FsyncPolicy::EveryRecords(10)), 11);
    assert_eq!(syncs(FsyncPolicy::Never), 0);
    assert!(syncs(FsyncPolicy::Interval(Duration::from_secs(3600))) <= 1);
}

#[test]
fn reservations_of_ids_and_numbers_are_synced_by_every_policy_that_syncs() {
    // The store's epoch, the reservations (message ids, the topic's
    // sequence numbers), the message.
    let mut sim = Sim::new();
    let c = sim.connect("p", SessionMode::Clean);
    sim.publish(c, 1, b"x");
    let ops = sim.take_ops();
    assert_eq!(ops.iter().filter(|op| op.must_sync()).count(), 2);
    // Each op in a batch of its own.
    let syncs = |fsync: FsyncPolicy| {
        let dir = TempDir::new();
        let o = WalOptions {
            fsync,
            ..opts(1 << 20)
        };
        let (mut wal, _) = reopen(&dir.0, o);
        for op in &ops {
            wal.write(std::slice::from_ref(op)).unwrap();
        }
        wal.metrics().syncs.load(Ordering::Relaxed)
    };
    // The segment started, then the two reservations' batches, long before
    // either policy's turn.
    assert_eq!(syncs(FsyncPolicy::EveryRecords(1000)), 3);
    assert_eq!(syncs(FsyncPolicy::Interval(Duration::from_secs(3600))), 3);
    assert_eq!(syncs(FsyncPolicy::Always), 1 + ops.len() as u64);
    assert_eq!(syncs(FsyncPolicy::Never), 0);
}

#[test]
fn disk_limit_turns_full_until_compaction_frees_room() {
    let dir = TempDir::new();
    let o = WalOptions {
        max_bytes: Some(64 << 10),
        ..opts(8 << 10)
    };
    let (mut wal, _) = reopen(&dir.0, o.clone());
    // No retention: a message is dead once acked.
    let mut cfg = Config::default();
    cfg.default_retention.max_messages = 0;
    let mut sim = Sim::with(cfg);
    let sub = sim.connect("sub", SessionMode::Resume);
    sim.send(
        sub,
        &Frame::Subscribe(Subscribe {
            sub: 1,
            filter: "t",
            group: None,
            start: Start::New,
            qos: QoS::AtLeastOnce,
            credit: 10_000,
        }),
    );
    let publisher = sim.connect("pub", SessionMode::Clean);
    let payload = [7u8; 256];
    let mut id = 0;
    while !wal.is_full() {
        id += 1;
        sim.publish(publisher, id, &payload);
        let ops = sim.take_ops();
        wal.write(&ops).unwrap();
        sim.b.handle_persisted(ops.last().unwrap().token, sim.now);
        assert!(id < 1000, "never full");
    }
    assert!(wal.disk_bytes() >= 64 << 10);
    // Full, and everything is still wanted: acks still go in.
    sim.pump(&mut wal);
    let (delivered, _) = sim.ack_all(sub);
    assert_eq!(delivered as u32, id);
    sim.pump(&mut wal);
    assert!(wal.metrics().compactions.load(Ordering::Relaxed) >= 1);
    assert!(
        !wal.is_full(),
        "{} bytes after compaction",
        wal.disk_bytes()
    );
    drop(wal);
    // What is left restores to a broker that owes nothing.
    let (_, records) = reopen(&dir.0, o);
    let sim = Sim::restored(&records);
    assert_eq!(sim.b.stats().current_queued, 0);
}

/// A million acknowledged 100 B messages (100,000 in a debug build) through a
/// broker and the log with compaction: the log stays a few segments, and
/// recovery reads only the live state.
#[test]
fn long_run_with_compaction_keeps_disk_and_recovery_bounded() {
    let total: u32 = if cfg!(debug_assertions) {
        100_000
    } else {
        1_000_000
    };
    let dir = TempDir::new();
    let o = WalOptions {
        fsync: FsyncPolicy::Never,
        segment_bytes: 1 << 20,
        max_bytes: None,
        compact_min_bytes: 4 << 20,
    };
    let (mut wal, _) = reopen(&dir.0, o.clone());
    let mut sim = Sim::new();
    let sub = sim.connect("sub", SessionMode::Resume);
    sim.send(
        sub,
        &Frame::Subscribe(Subscribe {
            sub: 1,
            filter: "t",
            group: None,
            start: Start::New,
            qos: QoS::AtLeastOnce,
            credit: 4096,
        }),
    );
    let publisher = sim.connect("pub", SessionMode::Clean);
    sim.pump(&mut wal);
    sim.inbox.clear();
    let payload = [0x5au8; 100];
    let started = Clock::now();
    let (mut delivered, mut acked) = (0usize, 0usize);
    let mut max_disk = 0;
    let mut max_segments = 0;
    let mut sent = 0u32;
    while sent < total {
        for _ in 0..1000.min(total - sent) {
            sent += 1;
            sim.publish(publisher, sent, &payload);
        }
        sim.pump(&mut wal);
        let (d, _) = sim.ack_all(sub);
        let (_, a) = sim.ack_all(publisher);
        delivered += d;
        acked += a;
        sim.pump(&mut wal);
        max_disk = max_disk.max(wal.disk_bytes());
        max_segments = max_segments.max(wal.segment_count());
    }
    // The last deliveries' acks.
    for _ in 0..3 {
        let (d, _) = sim.ack_all(sub);
        delivered += d;
        sim.pump(&mut wal);
    }
    let run = started.elapsed();
    assert_eq!(acked as u32, total);
    assert_eq!(delivered as u32, total);
    let written = wal.metrics().bytes_written.load(Ordering::Relaxed);
    let compactions = wal.metrics().compactions.load(Ordering::Relaxed);
    let (disk, segments) = (wal.disk_bytes(), wal.segment_count());
    drop(wal);

    let started = Clock::now();
    let (wal, records) = reopen(&dir.0, o);
    let recovery = started.elapsed();
    let sim = Sim::restored(&records);
    println!(
        "{total} messages in {run:?}: {written} bytes written, {compactions} compactions, \
         at most {max_disk} bytes / {max_segments} segments on disk, {disk} bytes / \
         {segments} segments at the end; recovery read {} records in {recovery:?}",
        records.len()
    );
    assert!(compactions >= 3, "{compactions} compactions");
    // Bounded by the compaction trigger (4 MiB of log past a small snapshot) plus
    // the segment being filled: nothing like the hundreds of MB written.
    assert!(max_disk < 8 << 20, "{max_disk} bytes on disk");
    assert!(max_segments <= 8, "{max_segments} segments");
    assert!(disk < 6 << 20);
    assert!(written > 3 * max_disk);
    // Recovery reads what is live plus the tail since the last compaction.
    assert!(wal.recovery().records < 60_000, "{} records", records.len());
    assert_eq!(sim.b.stats().current_queued, 0, "everything was acked");
    assert!(sim.b.has_session("sub"));
}

#[test]
fn compaction_survives_reopen_and_a_damaged_snapshot_record_is_skipped() {
    let dir = TempDir::new();
    let (mut wal, _) = reopen(&dir.0, opts(4096));
    // Nobody subscribes: the broker retains the last 1000 messages of the topic,
    // so its snapshot holds those.
    let mut sim = Sim::new();
    let c = sim.connect("p", SessionMode::Clean);
    for i in 0..1500u32 {
        sim.publish(c, i, &i.to_le_bytes());
    }
    sim.pump(&mut wal);
    let snapshot = sim.b.snapshot().unwrap();
    wal.compact(&snapshot).unwrap();
    assert_eq!(wal.segment_count(), 0, "every segment is covered");
    for i in 1500..1510u32 {
        sim.publish(c, i, &i.to_le_bytes());
    }
    sim.pump(&mut wal);
    drop(wal);

    let (wal, records) = reopen(&dir.0, opts(4096));
    assert_eq!(payloads(&records), (500..1510).collect::<Vec<_>>());
    assert_eq!(wal.recovery().snapshot_records, snapshot.records.len());
    drop(wal);

    // A flipped bit inside the snapshot loses that record only.
    let snap = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "snap"))
        .unwrap();
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&snap, &bytes).unwrap();
    let (wal, records) = reopen(&dir.0, opts(4096));
    assert_eq!(payloads(&records).len(), 1009);
    assert_eq!(wal.recovery().corrupt_records, 1);
}
