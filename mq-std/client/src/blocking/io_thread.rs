//! The blocking client's I/O thread: one mio poll over the socket and a waker,
//! moving commands, bytes and time into the driver and doing what it wants,
//! until the session is closed.

use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant as StdInstant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tracing::error;

use crate::clock::Clock;
use crate::driver::{Command, Driver, Received};

const SOCKET: Token = Token(0);
/// The token of the waker the command channel wakes the poll with.
pub(super) const WAKER: Token = Token(1);
/// How long closing waits for the socket to take the last bytes.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The socket and what mio last said about it.
struct Conn {
    stream: TcpStream,
    connected: bool,
    readable: bool,
    writable: bool,
    /// Addresses still to try if this one fails.
    rest: Vec<SocketAddr>,
}

/// Starts connecting to the first address of `addrs` that takes it.
fn open(poll: &Poll, mut addrs: Vec<SocketAddr>) -> io::Result<Conn> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the address resolved to nothing");
    addrs.reverse();
    while let Some(addr) = addrs.pop() {
        match TcpStream::connect(addr) {
            Ok(mut stream) => {
                poll.registry().register(
                    &mut stream,
                    SOCKET,
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                addrs.reverse();
                return Ok(Conn {
                    stream,
                    connected: false,
                    readable: false,
                    writable: false,
                    rest: addrs,
                });
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Resolves `addr` (this blocks the I/O thread for the lookup) and starts
/// connecting.
fn start_connect(poll: &Poll, addr: &str) -> io::Result<Conn> {
    open(poll, addr.to_socket_addrs()?.collect())
}

/// After a writable event on a connecting socket: `Ok(true)` once connected.
fn finish_connect(c: &mut Conn) -> io::Result<bool> {
    if let Some(e) = c.stream.take_error()? {
        return Err(e);
    }
    match c.stream.peer_addr() {
        Ok(_) => {
            c.stream.set_nodelay(true)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

fn close(poll: &Poll, conn: &mut Option<Conn>) {
    if let Some(mut c) = conn.take() {
        let _ = poll.registry().deregister(&mut c.stream);
    }
}

/// Reads once (if readable and the driver has room). `Ok(true)` when bytes
/// moved; `Err(None)` when the broker closed the connection.
fn read(c: &mut Conn, driver: &mut Driver) -> Result<bool, Option<io::Error>> {
    if !c.readable || !driver.wants_read() {
        return Ok(false);
    }
    match driver.read_from(&mut c.stream).map_err(Some)? {
        Received::Closed => Err(None),
        Received::Some => Ok(true),
        Received::WouldBlock => {
            c.readable = false;
            Ok(false)
        }
    }
}

/// Writes while the socket takes it. `Ok(true)` when bytes moved.
fn write(c: &mut Conn, driver: &mut Driver) -> Result<bool, Option<io::Error>> {
    if !c.writable || !driver.wants_write() {
        return Ok(false);
    }
    let sent = driver.write_to(&mut c.stream).map_err(Some)?;
    if sent.blocked {
        c.writable = false;
    }
    Ok(sent.moved)
}

/// Writes what is left, for at most [`FLUSH_TIMEOUT`], and closes the socket.
fn flush(poll: &mut Poll, events: &mut Events, conn: &mut Option<Conn>, driver: &mut Driver) {
    if let Some(c) = conn.as_mut().filter(|c| c.connected) {
        let deadline = StdInstant::now() + FLUSH_TIMEOUT;
        c.writable = true;
        driver.close_tls();
        while driver.wants_write() {
            if write(c, driver).is_err() {
                break;
            }
            if !driver.wants_write() {
                break;
            }
            let left = deadline.saturating_duration_since(StdInstant::now());
            if left.is_zero() || poll.poll(events, Some(left)).is_err() {
                break;
            }
            c.writable = true;
        }
        let _ = c.stream.shutdown(Shutdown::Write);
    }
    close(poll, conn);
}

/// The I/O thread: moves commands, bytes and time into the driver and does what
/// it wants, until the session is closed.
pub(super) fn run(
    mut driver: Driver,
    commands: mpsc::Receiver<Command>,
    awake: &AtomicBool,
    mut poll: Poll,
    addr: &str,
    clock: Clock,
) {
    let mut events = Events::with_capacity(16);
    let mut conn: Option<Conn> = None;
    let mut deadline = None;
    loop {
        let now = clock.now();
        // Commands sent from here on wake the poll again.
        awake.store(false, Ordering::SeqCst);
        loop {
            match commands.try_recv() {
                Ok(cmd) => driver.handle_command(now, cmd),
                Err(mpsc::TryRecvError::Empty) => break,
                // Unreachable while the driver holds a sender; close if it happens.
                Err(mpsc::TryRecvError::Disconnected) => {
                    driver.handle_command(now, Command::Close(None));
                    break;
                }
            }
        }
        if deadline.is_some_and(|d| now >= d) {
            driver.handle_timeout(now);
        }
        let mut moved = false;
        if let Some(c) = conn.as_mut().filter(|c| !c.connected && c.writable) {
            {
                c.writable = false;
                match finish_connect(c) {
                    Ok(true) => {
                        c.connected = true;
                        c.writable = true;
                        driver.handle_connected(now);
                    }
                    Ok(false) => {}
                    Err(e) => {
                        let rest = std::mem::take(&mut c.rest);
                        close(&poll, &mut conn);
                        match open(&poll, rest) {
                            Ok(next) => conn = Some(next),
                            // Report the first address's error if all failed.
                            Err(_) => driver.handle_disconnected(now, Some(e)),
                        }
                    }
                }
            }
        }
        if let Some(c) = conn.as_mut().filter(|c| c.connected) {
            match read(c, &mut driver) {
                Ok(m) => moved |= m,
                Err(e) => {
                    close(&poll, &mut conn);
                    driver.handle_disconnected(now, e);
                }
            }
        }
        let wants = driver.poll(now);
        deadline = wants.timeout;
        if wants.stop {
            flush(&mut poll, &mut events, &mut conn, &mut driver);
            driver.finish();
            return;
        }
        if wants.disconnect && conn.is_some() {
            if let Some(c) = conn.as_mut().filter(|c| c.connected) {
                // Best effort: an error frame the session wants the broker to see.
                let _ = driver.write_to(&mut c.stream);
            }
            close(&poll, &mut conn);
            driver.handle_disconnected(now, None);
            continue;
        }
        if wants.connect {
            close(&poll, &mut conn);
            match start_connect(&poll, addr) {
                Ok(c) => conn = Some(c),
                Err(e) => driver.handle_disconnected(now, Some(e)),
            }
            continue;
        }
        if let Some(c) = conn.as_mut().filter(|c| c.connected) {
            match write(c, &mut driver) {
                Ok(m) => moved |= m,
                Err(e) => {
                    close(&poll, &mut conn);
                    driver.handle_disconnected(now, e);
                    continue;
                }
            }
        }
        if moved {
            continue;
        }
        let timeout =
            deadline.map(|d| clock.to_std(d).saturating_duration_since(StdInstant::now()));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            error!("the I/O thread cannot wait for events: {e}");
            driver.finish();
            return;
        }
        if let Some(c) = conn.as_mut() {
            for ev in events.iter().filter(|ev| ev.token() == SOCKET) {
                c.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
                c.writable |= ev.is_writable() || ev.is_write_closed() || ev.is_error();
            }
        }
    }
}
