//! The serial driver against a real `mqd` over a pseudo-terminal: `mqd` serves
//! the terminal end (`[serial] path = "/dev/pts/N"`), the board's
//! `SerialClient` speaks COBS frames on the controlling end.
//!
//! The test keeps a descriptor of the terminal end open itself, so the line
//! stays up while `mqd` is down (as a UART would), and raw (no echo) before
//! `mqd` first sets it up. What the board writes while `mqd` is down is
//! discarded when `mqd` opens the line again, as a real line would lose it.

#![cfg(unix)]

mod support;

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use embedded_io::{ErrorType, Read, ReadReady, Write};
use mq_embedded::{Serial, SerialClient, Storage};
use support::scenario::{Board, Seen, ack, board_config, qos1_both_ways_across_a_restart};

/// A pseudo-terminal pair: the controlling end (the board's UART) and the
/// terminal end's path (for `mqd`), with one terminal descriptor held open.
struct Pty {
    controller: OwnedFd,
    _terminal: OwnedFd,
    path: String,
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Pty {
    fn open() -> Pty {
        let (mut controller, mut terminal): (RawFd, RawFd) = (-1, -1);
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: openpty writes two descriptors and the terminal's name into
        // the buffers given, which are large enough; the termios is plain
        // data, made raw before it is used.
        unsafe {
            let mut raw: libc::termios = std::mem::zeroed();
            libc::cfmakeraw(&mut raw);
            check(libc::openpty(
                &mut controller,
                &mut terminal,
                name.as_mut_ptr(),
                &raw,
                std::ptr::null(),
            ))
            .expect("openpty");
            let flags = check(libc::fcntl(controller, libc::F_GETFL)).unwrap();
            check(libc::fcntl(
                controller,
                libc::F_SETFL,
                flags | libc::O_NONBLOCK,
            ))
            .unwrap();
            Pty {
                controller: OwnedFd::from_raw_fd(controller),
                _terminal: OwnedFd::from_raw_fd(terminal),
                path: CStr::from_ptr(name.as_ptr()).to_str().unwrap().to_owned(),
            }
        }
    }
}

/// The board's UART: the controlling end, non-blocking, as `embedded-io`.
struct Uart(OwnedFd);

impl Uart {
    /// Runs `op` (a `read` or `write` of the descriptor) until it does not
    /// block, waiting up to `ms` for `events` each time; `None` when a wait
    /// timed out.
    fn retry(
        &self,
        events: libc::c_short,
        ms: libc::c_int,
        mut op: impl FnMut(RawFd) -> isize,
    ) -> io::Result<Option<usize>> {
        loop {
            let n = op(self.0.as_raw_fd());
            if n >= 0 {
                return Ok(Some(n as usize));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock {
                return Err(e);
            }
            if !self.wait(events, ms)? {
                return Ok(None);
            }
        }
    }

    /// Waits up to `ms` for `events` on the descriptor.
    fn wait(&self, events: libc::c_short, ms: libc::c_int) -> io::Result<bool> {
        let mut p = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = check(unsafe { libc::poll(&mut p, 1, ms) })?;
        Ok(n > 0 && p.revents & events != 0)
    }
}

impl ErrorType for Uart {
    type Error = io::Error;
}

impl ReadReady for Uart {
    fn read_ready(&mut self) -> io::Result<bool> {
        self.wait(libc::POLLIN, 0)
    }
}

impl Read for Uart {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: reads into `buf`, within its length.
        let read = |fd| unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        Ok(self.retry(libc::POLLIN, -1, read)?.unwrap_or(0))
    }
}

impl Write for Uart {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: writes from `buf`, within its length.
        let write = |fd| unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        // Nobody reads the line for a while (mqd is down and the buffer is
        // full): a UART would send the bytes into the void.
        Ok(self.retry(libc::POLLOUT, 200, write)?.unwrap_or(buf.len()))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct SerialBoard {
    client: SerialClient<'static, Uart>,
}

impl Board for SerialBoard {
    type Transport = Serial<'static, Uart>;

    fn client(&mut self) -> &mut SerialClient<'static, Uart> {
        &mut self.client
    }

    fn step(&mut self, now: mq_embedded::Instant, seen: &mut Seen) {
        while let Some(event) = self.client.poll(now) {
            if let Some(id) = seen.event(event) {
                ack(&mut self.client, id);
            }
        }
    }
}

#[test]
fn qos1_both_ways_across_an_mqd_restart() {
    let pty = Pty::open();
    let mut mqd = support::mqd(&format!("[serial]\npath = \"{}\"\n", pty.path));
    let storage: &'static mut Storage<8192, 2048, 1024, 600> = Box::leak(Box::new(Storage::new()));
    let uart = Uart(pty.controller.try_clone().unwrap());
    let client = SerialClient::new(board_config(), uart, storage.buffers()).unwrap();
    let mut board = SerialBoard { client };
    let seen = qos1_both_ways_across_a_restart(&mut mqd, &mut board);
    // The board noticed the crash by itself (keepalive or an unanswered
    // Hello): a serial line never closes.
    assert!(seen.disconnected >= 1);
    let line = board.client.line_stats();
    assert!(line.decoder.frames > 60, "{line:?}");
    assert_eq!(
        line.decoder.crc_errors + line.decoder.cobs_errors,
        0,
        "{line:?}"
    );
    eprintln!("line: {line:?}");
}
