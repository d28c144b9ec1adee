use std::io;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::wal::fs::{FileSystem, LogFile};

fn dir(disk: &SimDisk) -> &'static Path {
    let d = Path::new("/d");
    disk.create_dir(d).unwrap();
    disk.sync_dir(Path::new("/")).unwrap();
    d
}

#[test]
fn synced_bytes_and_names_survive_and_nothing_else_does() {
    let disk = SimDisk::new(1);
    let d = dir(&disk);
    let mut f = disk.create(&d.join("a")).unwrap();
    f.append(b"synced").unwrap();
    f.sync_data().unwrap();
    disk.sync_dir(d).unwrap();
    f.append(b" lost").unwrap();
    let mut g = disk.create(&d.join("b")).unwrap();
    g.append(b"synced, but not its name").unwrap();
    g.sync_all().unwrap();
    assert_eq!(
        disk.unsynced(),
        Unsynced {
            writes: 1,
            created: 1,
            renamed: 0,
            removed: 0
        }
    );

    let crash = disk.crash_keeping_only_synced();
    assert_eq!((crash.writes_lost, crash.dir_changes_lost), (1, 1));
    assert_eq!(disk.read(&d.join("a")).unwrap(), b"synced");
    assert_eq!(disk.list(d).unwrap(), vec!["a".to_string()]);
    assert!(disk.unsynced().is_durable());
    // Handles from before the cut are dead.
    assert!(f.append(b"x").is_err());
}

#[test]
fn a_directory_whose_creation_was_not_synced_is_lost_with_its_files() {
    let disk = SimDisk::new(2);
    disk.create_dir(Path::new("/d")).unwrap();
    let mut f = disk.create(Path::new("/d/a")).unwrap();
    f.append(b"x").unwrap();
    f.sync_all().unwrap();
    disk.sync_dir(Path::new("/d")).unwrap();
    disk.crash_keeping_only_synced();
    assert_eq!(
        disk.list(Path::new("/d")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}

#[test]
fn renames_and_removals_need_the_directory_synced() {
    let disk = SimDisk::new(3);
    let d = dir(&disk);
    for name in ["old", "tmp"] {
        let mut f = disk.create(&d.join(name)).unwrap();
        f.append(name.as_bytes()).unwrap();
        f.sync_all().unwrap();
    }
    disk.sync_dir(d).unwrap();
    disk.rename(&d.join("tmp"), &d.join("new")).unwrap();
    disk.remove(&d.join("old")).unwrap();
    assert_eq!(disk.list(d).unwrap(), vec!["new".to_string()]);
    disk.crash_keeping_only_synced();
    let mut names = disk.list(d).unwrap();
    names.sort();
    assert_eq!(names, vec!["old".to_string(), "tmp".to_string()]);
    assert_eq!(disk.read(&d.join("tmp")).unwrap(), b"tmp");
}

#[test]
fn random_cuts_keep_the_synced_part_and_tear_at_most_what_was_not() {
    let mut seen = BTreeSet::new();
    for seed in 0..300 {
        let disk = SimDisk::new(seed);
        let d = dir(&disk);
        let mut f = disk.create(&d.join("f")).unwrap();
        disk.sync_dir(d).unwrap();
        let synced: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        f.append(&synced).unwrap();
        f.sync_data().unwrap();
        let more = vec![0xeeu8; 3 * SECTOR as usize];
        f.append(&more).unwrap();
        f.append(&more).unwrap();
        let crash = disk.crash();
        seen.insert((crash.writes, crash.writes_torn > 0));
        let got = disk.read(&d.join("f")).unwrap();
        assert_eq!(
            &got[..1000],
            &synced[..],
            "seed {seed}: synced bytes changed"
        );
        assert!(got.len() <= 1000 + 2 * more.len());
        assert!(got[1000..].iter().all(|&b| b == 0xee || b == 0));
        assert_eq!(crash.writes_kept + crash.writes_torn + crash.writes_lost, 2);
    }
    // Every way of surviving happened.
    for writes in [Survival::Nothing, Survival::InOrder, Survival::Scattered] {
        assert!(seen.contains(&(writes, false)), "{writes:?}");
    }
    assert!(seen.contains(&(Survival::InOrder, true)));
    assert!(seen.contains(&(Survival::Scattered, true)));
}

#[test]
fn the_same_seed_cuts_the_same_way() {
    let run = |seed| {
        let disk = SimDisk::new(seed);
        let d = dir(&disk);
        let mut out = Vec::new();
        for round in 0..20u8 {
            let mut f = disk
                .create(&d.join(format!("f{round}")))
                .or_else(|_| disk.open(&d.join(format!("f{round}"))))
                .unwrap();
            f.append(&vec![round; 700]).unwrap();
            if round % 3 == 0 {
                disk.sync_dir(d).unwrap();
            }
            let c = disk.crash();
            out.push((c, disk.list(d).unwrap()));
        }
        out
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn the_fuse_cuts_the_power_and_a_crash_restores_it() {
    let disk = SimDisk::new(4);
    let d = dir(&disk);
    let mut f = disk.create(&d.join("f")).unwrap();
    disk.fail_after(2);
    f.append(b"a").unwrap();
    f.append(b"b").unwrap();
    assert!(f.append(b"c").is_err());
    assert!(disk.is_dead());
    assert!(disk.read(&d.join("f")).is_err());
    assert!(f.sync_data().is_err());
    disk.crash();
    assert!(!disk.is_dead());
    let _ = disk.create(&d.join("g")).unwrap();
}

#[test]
fn locks_clock_and_the_write_calls() {
    let disk = SimDisk::new(5);
    let d = dir(&disk);
    let lock = disk.lock(&d.join("LOCK")).unwrap();
    assert_eq!(
        disk.lock(&d.join("LOCK")).err().unwrap().kind(),
        io::ErrorKind::WouldBlock
    );
    drop(lock);
    let lock = disk.lock(&d.join("LOCK")).unwrap();
    disk.crash();
    // The process that held it is gone.
    let _again = disk.lock(&d.join("LOCK")).unwrap();
    drop(lock);

    let t = disk.now();
    disk.advance(Duration::from_millis(5));
    assert_eq!(disk.now() - t, Duration::from_millis(5));

    let mut f = disk.create(&d.join("f")).unwrap();
    f.append(b"hello").unwrap();
    f.write_at(7, b"!").unwrap();
    assert_eq!(disk.read(&d.join("f")).unwrap(), b"hello\0\0!");
    f.truncate(4).unwrap();
    f.append(b"o").unwrap();
    assert_eq!(disk.read(&d.join("f")).unwrap(), b"hello");
    assert_eq!(disk.len(&d.join("f")).unwrap(), 5);
    assert_eq!(
        disk.create(&d.join("f")).err().unwrap().kind(),
        io::ErrorKind::AlreadyExists
    );
    assert_eq!(
        disk.create(Path::new("/nowhere/f")).err().unwrap().kind(),
        io::ErrorKind::NotFound
    );
}

#[test]
fn a_process_crash_keeps_what_was_written_and_ends_its_handles() {
    let disk = SimDisk::new(6);
    let d = dir(&disk);
    let mut f = disk.create(&d.join("f")).unwrap();
    let _lock = disk.lock(&d.join("LOCK")).unwrap();
    f.append(b"not synced").unwrap();
    disk.fail_after(0);
    assert!(f.sync_data().is_err());
    disk.process_crash();
    assert_eq!(disk.read(&d.join("f")).unwrap(), b"not synced");
    assert!(f.append(b"x").is_err(), "the old process's handle");
    let _again = disk.lock(&d.join("LOCK")).unwrap();
    assert_eq!(disk.unsynced().writes, 1);
    disk.crash_keeping_only_synced();
    assert!(disk.list(d).unwrap().is_empty());
}
