//! A forwarder in front of `mqd` for the restart scenario: while shut it takes
//! each connection and closes it at once, so a reconnecting device is kept out
//! while the scenario publishes what waits for it.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

/// A forwarder in front of `mqd` that can be shut: while shut it accepts each
/// connection and closes it at once, so the firmware's reconnects fail while
/// the scenario publishes the commands that wait for it.
pub struct Gate {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    pub refused: Arc<AtomicU32>,
    forwarded: Arc<AtomicU32>,
}

impl Gate {
    pub fn start(upstream: SocketAddr) -> Result<Gate, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|err| format!("gate: {err}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|err| err.to_string())?;
        let gate = Gate {
            addr: listener.local_addr().map_err(|err| err.to_string())?,
            open: Arc::new(AtomicBool::new(true)),
            stop: Arc::new(AtomicBool::new(false)),
            refused: Arc::new(AtomicU32::new(0)),
            forwarded: Arc::new(AtomicU32::new(0)),
        };
        let (open, stop) = (gate.open.clone(), gate.stop.clone());
        let (refused, forwarded) = (gate.refused.clone(), gate.forwarded.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    Err(_) => return,
                };
                let _ = client.set_nonblocking(false);
                let server = open
                    .load(Ordering::SeqCst)
                    .then(|| TcpStream::connect_timeout(&upstream, Duration::from_secs(2)).ok())
                    .flatten();
                match server {
                    Some(server) => {
                        forwarded.fetch_add(1, Ordering::SeqCst);
                        forward(client, server);
                    }
                    None => {
                        refused.fetch_add(1, Ordering::SeqCst);
                        let _ = client.shutdown(Shutdown::Both);
                    }
                }
            }
        });
        Ok(gate)
    }

    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Copies both ways between two connections; each end's close passes on.
fn forward(a: TcpStream, b: TcpStream) {
    let _ = a.set_nodelay(true);
    let _ = b.set_nodelay(true);
    for (from, to) in [(a.try_clone(), b.try_clone()), (Ok(b), Ok(a))] {
        let (Ok(mut from), Ok(mut to)) = (from, to) else {
            continue;
        };
        thread::spawn(move || {
            let ended = io::copy(&mut from, &mut to);
            let how = if ended.is_ok() {
                Shutdown::Write
            } else {
                Shutdown::Both
            };
            let _ = to.shutdown(how);
        });
    }
}
