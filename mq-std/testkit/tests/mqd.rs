//! The harness itself: `mqd` on ports it bound itself, several at once, and
//! restarts and crashes that keep what they should.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use mq_testkit::Mqd;

/// `mqd` answers on both of its addresses.
fn serves(mqd: &Mqd) {
    let mut s = TcpStream::connect_timeout(&mqd.addr, Duration::from_secs(5)).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Not a Hello: mqd answers with an error frame and closes.
    s.write_all(&[0xff; 8]).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(!answer.is_empty(), "mqd on {} said nothing", mqd.addr);
    assert_eq!(mqd.http_get("/health").as_deref(), Ok("ok\n"));
}

#[test]
fn concurrent_starts_each_get_ports_of_their_own() {
    let all: Vec<Mqd> = std::thread::scope(|s| {
        let starting: Vec<_> = (0..4)
            .map(|_| s.spawn(|| Mqd::start("[store]\nkind = \"memory\"\n")))
            .collect();
        starting.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut ports: Vec<u16> = all
        .iter()
        .flat_map(|m| [m.addr.port(), m.http.port()])
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 8, "{ports:?}");
    for mqd in &all {
        serves(mqd);
    }
}

#[test]
fn restart_keeps_the_ports_and_the_data() {
    let mut mqd = Mqd::start("");
    let (addr, http) = (mqd.addr, mqd.http);
    mqd.restart();
    assert_eq!((mqd.addr, mqd.http), (addr, http));
    serves(&mqd);
    let log = mqd.log();
    assert!(log.contains("--- mqd run 2"), "{log}");
    // The second run opened the first one's write-ahead log.
    assert!(log.contains("recovered the log"), "{log}");
}

#[test]
fn a_crash_leaves_the_directory_for_the_next_start() {
    let mqd = Mqd::start("");
    let dir = mqd.crash();
    assert!(dir.join("data").is_dir());
    let mqd = Mqd::start_in(dir.clone(), "");
    assert_eq!(mqd.dir, dir);
    serves(&mqd);
    drop(mqd);
    assert!(!dir.exists(), "a clean drop removes the directory");
}

#[test]
fn a_failed_start_says_why() {
    let err = Mqd::builder("colour = \"blue\"\n").try_start().unwrap_err();
    assert!(
        err.contains("mqd exited") && err.contains("colour"),
        "{err}"
    );
}
