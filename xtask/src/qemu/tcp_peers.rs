//! The `baseline` firmware's host peers: a TCP echo and a throughput
//! checker, each serving the firmware's connections on a thread, and a peer
//! that must see no connection at all.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::pattern::{self, EchoStream};
use crate::peer::Peer;

/// A peer that serves a number of TCP connections, one after the other, on a thread.
struct Connections {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Vec<String>, String>>>,
}

impl Connections {
    /// Listens on a free loopback port; the thread accepts `expected` connections
    /// in turn and runs `serve` on each, which sums it up in a line.
    fn start(
        expected: usize,
        mut serve: impl FnMut(TcpStream) -> Result<String, String> + Send + 'static,
    ) -> Result<(SocketAddr, Connections), String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|err| format!("listen: {err}"))?;
        let addr = listener.local_addr().map_err(|err| err.to_string())?;
        listener
            .set_nonblocking(true)
            .map_err(|err| err.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let mut seen = Vec::new();
            while seen.len() < expected {
                let stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        if stopped.load(Ordering::SeqCst) {
                            return Err(format!(
                                "the firmware made {} of {expected} connections",
                                seen.len()
                            ));
                        }
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(err) => return Err(format!("accept: {err}")),
                };
                stream
                    .set_nonblocking(false)
                    .map_err(|err| err.to_string())?;
                // The firmware's deadline ends a stalled run long before this.
                stream
                    .set_read_timeout(Some(Duration::from_secs(60)))
                    .map_err(|err| err.to_string())?;
                let n = seen.len() + 1;
                seen.push(serve(stream).map_err(|err| format!("connection {n}: {err}"))?);
            }
            Ok(seen)
        });
        Ok((
            addr,
            Connections {
                stop,
                thread: Some(thread),
            },
        ))
    }

    /// Waits for the connections' results (QEMU has exited, so they end soon);
    /// one line for all.
    fn finish(&mut self) -> Result<String, String> {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.take().ok_or("the peer was not started")?;
        let seen = thread
            .join()
            .map_err(|_| "the peer thread panicked".to_owned())??;
        Ok(match &seen[..] {
            [one] => one.clone(),
            [first, rest @ ..] if rest.iter().all(|line| line == first) => {
                format!("{} connections, each: {first}", seen.len())
            }
            _ => seen.join("; "),
        })
    }
}

/// Echoes every byte back while checking the stream is the expected frames;
/// optionally flips one bit of the echo at a byte offset (the firmware must notice).
pub(super) struct EchoPeer {
    count: u32,
    size: u16,
    corrupt_at: Option<u64>,
    connections: usize,
    served: Option<Connections>,
}

impl EchoPeer {
    pub(super) fn new(count: u32, size: u16, corrupt_at: Option<u64>) -> EchoPeer {
        EchoPeer {
            count,
            size,
            corrupt_at,
            connections: 1,
            served: None,
        }
    }

    /// Expects the frames `connections` times, each on a new connection.
    pub(super) fn connections(self, connections: usize) -> EchoPeer {
        EchoPeer {
            connections,
            ..self
        }
    }
}

impl Peer for EchoPeer {
    fn start(&mut self) -> Result<SocketAddr, String> {
        let (count, size, corrupt_at) = (self.count, self.size, self.corrupt_at);
        let (addr, served) = Connections::start(self.connections, move |stream| {
            echo(stream, count, size, corrupt_at)
        })?;
        self.served = Some(served);
        Ok(addr)
    }

    fn finish(&mut self) -> Result<String, String> {
        self.served.as_mut().ok_or("not started")?.finish()
    }
}

fn echo(
    mut stream: TcpStream,
    count: u32,
    size: u16,
    corrupt_at: Option<u64>,
) -> Result<String, String> {
    let mut expected = EchoStream::new(count, size);
    let mut buffer = vec![0; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            // The firmware exits at once on a mismatch: its connection is reset.
            Err(_) if corrupt_at.is_some_and(|at| at < total) => break,
            Err(err) => return Err(format!("read after {total} bytes: {err}")),
        };
        for (k, &got) in buffer[..n].iter().enumerate() {
            let (frame, at) = (expected.frame, expected.at);
            match expected.next_byte() {
                Some(want) if want == got => {}
                Some(want) => {
                    return Err(format!(
                        "frame {frame} byte {at}: got {got:#04x}, want {want:#04x}"
                    ));
                }
                None => return Err(format!("{} bytes after the last frame", n - k)),
            }
        }
        if let Some(at) = corrupt_at
            && (total..total + n as u64).contains(&at)
        {
            buffer[(at - total) as usize] ^= 0x40;
        }
        if stream.write_all(&buffer[..n]).is_err() && corrupt_at.is_some() {
            break;
        }
        total += n as u64;
    }
    match corrupt_at {
        Some(at) if total <= at => Err(format!(
            "the stream ended at byte {total}, before the corruption at {at}"
        )),
        Some(at) => Ok(format!(
            "flipped a bit of echo byte {at}; the firmware stopped after {total} bytes"
        )),
        None if expected.done() => Ok(format!(
            "{count} frames, {total} bytes checked and echoed, clean close"
        )),
        None => Err(format!(
            "connection closed at frame {} of {count} ({total} bytes)",
            expected.frame
        )),
    }
}

/// Receives `bytes` (checking the pattern), sends `bytes`, then expects the
/// firmware to close; optionally flips one bit of what it sends at a byte offset
/// (the firmware must notice).
pub(super) struct ThroughputPeer {
    bytes: u64,
    corrupt_at: Option<u64>,
    served: Option<Connections>,
}

impl ThroughputPeer {
    pub(super) fn new(bytes: u64, corrupt_at: Option<u64>) -> ThroughputPeer {
        ThroughputPeer {
            bytes,
            corrupt_at,
            served: None,
        }
    }
}

impl Peer for ThroughputPeer {
    fn start(&mut self) -> Result<SocketAddr, String> {
        let (bytes, corrupt_at) = (self.bytes, self.corrupt_at);
        let (addr, served) =
            Connections::start(1, move |stream| throughput(stream, bytes, corrupt_at))?;
        self.served = Some(served);
        Ok(addr)
    }

    fn finish(&mut self) -> Result<String, String> {
        self.served.as_mut().ok_or("not started")?.finish()
    }
}

fn throughput(
    mut stream: TcpStream,
    bytes: u64,
    corrupt_at: Option<u64>,
) -> Result<String, String> {
    let mut buffer = vec![0; 64 * 1024];
    let mut received = 0u64;
    let mut first = None;
    while received < bytes {
        let want = buffer.len().min((bytes - received) as usize);
        let n = stream
            .read(&mut buffer[..want])
            .map_err(|err| format!("read after {received} bytes: {err}"))?;
        if n == 0 {
            return Err(format!(
                "the firmware closed after sending {received} of {bytes} bytes"
            ));
        }
        first.get_or_insert_with(Instant::now);
        for (k, &got) in buffer[..n].iter().enumerate() {
            let at = received + k as u64;
            if got != pattern::stream_byte(at) {
                return Err(format!(
                    "stream byte {at}: got {got:#04x}, want {:#04x}",
                    pattern::stream_byte(at)
                ));
            }
        }
        received += n as u64;
    }
    let up = first.map_or(Duration::ZERO, |t| t.elapsed());

    let mut sent = 0u64;
    while sent < bytes {
        let n = buffer.len().min((bytes - sent) as usize);
        for (k, slot) in buffer[..n].iter_mut().enumerate() {
            let at = sent + k as u64;
            *slot = pattern::stream_byte(at) ^ if corrupt_at == Some(at) { 0x40 } else { 0 };
        }
        match stream.write_all(&buffer[..n]) {
            Ok(()) => sent += n as u64,
            // The firmware exits at once on a mismatch: its connection is reset.
            Err(_) if corrupt_at.is_some_and(|at| at < sent + n as u64) => break,
            Err(err) => return Err(format!("write after {sent} bytes: {err}")),
        }
    }
    if let Some(at) = corrupt_at {
        return Ok(format!(
            "flipped a bit of stream byte {at} sent to the firmware"
        ));
    }
    match stream.read(&mut buffer) {
        Ok(0) => {}
        Ok(n) => return Err(format!("{n} bytes more than expected from the firmware")),
        Err(err) => return Err(format!("waiting for the firmware to close: {err}")),
    }
    let rate = bytes as f64 / up.as_secs_f64().max(1e-9);
    Ok(format!(
        "{bytes} bytes each way checked; up seen from the host: {:.1} MiB/s",
        rate / f64::from(1 << 20)
    ))
}

/// For runs that must end before any connection: fails if one came.
#[derive(Default)]
pub(super) struct NoConnection {
    listener: Option<TcpListener>,
}

impl Peer for NoConnection {
    fn start(&mut self) -> Result<SocketAddr, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|err| format!("listen: {err}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|err| err.to_string())?;
        let addr = listener.local_addr().map_err(|err| err.to_string())?;
        self.listener = Some(listener);
        Ok(addr)
    }

    fn finish(&mut self) -> Result<String, String> {
        match self.listener.as_ref().ok_or("not started")?.accept() {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                Ok("no connection, as expected".to_owned())
            }
            Err(err) => Err(format!("accept: {err}")),
            Ok(_) => Err("the firmware connected".to_owned()),
        }
    }
}
