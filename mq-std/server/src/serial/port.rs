//! The terminal device under a serial line: [`open`] puts a UART (or a
//! pseudo-terminal) in raw mode at a baud rate, and [`SerialPort`] reads and
//! writes it under tokio. Unix only; elsewhere `open` fails with
//! [`io::ErrorKind::Unsupported`].

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A terminal device opened by [`open`], for [`serve_line`](super::serve_line).
pub struct SerialPort {
    #[cfg(unix)]
    fd: tokio::io::unix::AsyncFd<std::fs::File>,
    #[cfg(not(unix))]
    never: std::convert::Infallible,
}

/// Opens the terminal device at `path` in raw mode (8 data bits, no parity, one
/// stop bit, no flow control, no echo) at `baud`, and discards what queued on
/// it before. A pseudo-terminal works too (its baud rate means nothing).
#[cfg(unix)]
pub fn open(path: &Path, baud: u32) -> io::Result<SerialPort> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    let speed = unix::speed(baud)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)?;
    unix::raw_mode(file.as_raw_fd(), speed)?;
    // SAFETY: the `File` owns its descriptor: it stays open, and the same, for
    // as long as the `AsyncFd` holds the `File`.
    let fd = unsafe { tokio::io::unix::AsyncFd::register(file) }?;
    Ok(SerialPort { fd })
}

/// Opens a serial line: supported on Unix only. On Windows a COM port
/// (`COM3`) needs overlapped I/O on a file handle, which tokio offers only for
/// named pipes; until mq has its own driver for it, `mqd` refuses the line
/// with this error instead of half-serving it.
#[cfg(not(unix))]
pub fn open(path: &Path, _baud: u32) -> io::Result<SerialPort> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "{}: serial lines are not supported on {} yet (only on Unix); \
             devices can reach this mqd over TCP",
            path.display(),
            std::env::consts::OS
        ),
    ))
}

#[cfg(unix)]
mod unix {
    use std::io;
    use std::os::fd::RawFd;

    /// The termios speed for `baud`.
    pub(super) fn speed(baud: u32) -> io::Result<libc::speed_t> {
        Ok(match baud {
            1200 => libc::B1200,
            2400 => libc::B2400,
            4800 => libc::B4800,
            9600 => libc::B9600,
            19200 => libc::B19200,
            38400 => libc::B38400,
            57600 => libc::B57600,
            115_200 => libc::B115200,
            230_400 => libc::B230400,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            460_800 => libc::B460800,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            921_600 => libc::B921600,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            1_000_000 => libc::B1000000,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            2_000_000 => libc::B2000000,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            3_000_000 => libc::B3000000,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            4_000_000 => libc::B4000000,
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("baud rate {other} is not supported here"),
                ));
            }
        })
    }

    /// Raw 8N1 at `speed`, receiver on, modem lines ignored; pending input and
    /// output discarded.
    pub(super) fn raw_mode(fd: RawFd, speed: libc::speed_t) -> io::Result<()> {
        let check = |r: libc::c_int| {
            if r == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        // SAFETY: termios is plain data, filled in by tcgetattr before use; the
        // calls only read and write the struct and act on `fd`, which is open.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            check(libc::tcgetattr(fd, &mut t))?;
            libc::cfmakeraw(&mut t);
            t.c_cflag |= libc::CLOCAL | libc::CREAD;
            t.c_cflag &= !(libc::CSTOPB | libc::PARENB);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            check(libc::cfsetispeed(&mut t, speed))?;
            check(libc::cfsetospeed(&mut t, speed))?;
            check(libc::tcsetattr(fd, libc::TCSANOW, &t))?;
            check(libc::tcflush(fd, libc::TCIOFLUSH))?;
        }
        Ok(())
    }
}

#[cfg(unix)]
impl AsyncRead for SerialPort {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        use std::io::Read;
        loop {
            let mut guard = std::task::ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|file| file.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // The other end of a pseudo-terminal is gone: the line ended.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(unix)]
impl AsyncWrite for SerialPort {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        use std::io::Write;
        loop {
            let mut guard = std::task::ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|file| file.get_ref().write(buf)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(not(unix))]
impl AsyncRead for SerialPort {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.never {}
    }
}

#[cfg(not(unix))]
impl AsyncWrite for SerialPort {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.never {}
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.never {}
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.never {}
    }
}
