//! A thread that blocked `SIGPIPE` (`block_sigpipe_in_this_thread`, as the
//! threads libmq starts do) gets an error from a write to a socket whose
//! other end is gone, and the process lives on, though the signal's action
//! is the default one (as in a C host; Rust programs ignore it). Run in a
//! child process, whose death by the signal would otherwise end the test
//! runner.
#![cfg(unix)]

use std::io::{IoSlice, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

const CHILD: &str = "MQ_SIGPIPE_CHILD";
const NAME: &str = "a_write_to_a_closed_socket_fails_and_the_process_lives";

#[test]
fn a_write_to_a_closed_socket_fails_and_the_process_lives() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let out = Command::new(std::env::current_exe().expect("the test executable"))
        .args(["--exact", NAME, "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .output()
        .expect("the child runs");
    assert!(
        out.status.success(),
        "the child: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn child() {
    // SAFETY: setting a signal's action to its default, before any thread
    // of this test writes to a socket.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let writer = std::thread::spawn(|| {
        mq_client::block_sigpipe_in_this_thread();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let mut stream = TcpStream::connect(listener.local_addr().unwrap()).expect("connects");
        drop(listener.accept().expect("accepted"));
        // The first writes may still be taken (the reset comes back after
        // them); vectored, as the clients write: `writev` has no
        // MSG_NOSIGNAL.
        for _ in 0..200 {
            let bufs = [IoSlice::new(b"frame "), IoSlice::new(&[0; 1024])];
            if let Err(e) = stream.write_vectored(&bufs) {
                return e.kind();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("every write to the closed socket was taken");
    });
    let kind = writer.join().expect("the writer ends");
    assert!(
        matches!(
            kind,
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "{kind:?}"
    );
}
