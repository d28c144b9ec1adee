//! The socket side of the driver with TLS in between when configured: both
//! loops read and write the socket only through [`Driver::read_from`] and
//! [`Driver::write_to`], which move bytes between the socket and the
//! session's buffers either directly or through a rustls client connection
//! (a sans-IO state machine like the session: ciphertext in and out, plaintext
//! in and out).
//!
//! Plaintext rustls decrypted but the read buffer had no room for stays in
//! rustls, and [`Driver::poll`] moves it in as room appears (the socket will
//! not wake the loop for bytes already read). rustls takes output before its
//! handshake completes and sends it after, so the session's `Hello` needs no
//! waiting.

use std::io::{self, Read, Write};

use rustls::ClientConnection;

use super::Driver;

/// What one [`Driver::read_from`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    /// Bytes for the session arrived (or TLS made progress without any).
    Some,
    /// Nothing was there.
    WouldBlock,
    /// The broker closed the connection.
    Closed,
}

/// What one [`Driver::write_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sent {
    /// Some bytes went out.
    pub moved: bool,
    /// The socket took no more: wait until it is writable.
    pub blocked: bool,
}

impl Driver {
    /// Starts TLS on a connection that just opened (when configured).
    pub(super) fn start_tls(&mut self) -> io::Result<()> {
        self.tls_conn = match &self.tls {
            Some(tls) => Some(
                ClientConnection::new(tls.config.clone(), tls.name.clone())
                    .map_err(|e| io::Error::other(format!("TLS: {e}")))?,
            ),
            None => None,
        };
        Ok(())
    }

    /// Whether the loop must wait for the socket to be writable: output is
    /// waiting, or TLS has records to send.
    pub(crate) fn wants_write(&self) -> bool {
        !self.output().is_empty() || self.tls_conn.as_ref().is_some_and(|c| c.wants_write())
    }

    /// Whether the loop should wait for the socket to be readable: the
    /// session has room for input, or TLS needs the peer's handshake.
    pub(crate) fn wants_read(&mut self) -> bool {
        let handshaking = self.tls_conn.as_ref().is_some_and(|c| c.is_handshaking());
        handshaking || !self.read_buf().is_empty()
    }

    /// Reads once from `sock` (non-blocking) into the session's input.
    pub(crate) fn read_from(&mut self, sock: &mut impl Read) -> io::Result<Received> {
        if self.tls_conn.is_none() {
            let buf = self.read_buf();
            if buf.is_empty() {
                return Ok(Received::WouldBlock);
            }
            return match sock.read(buf) {
                Ok(0) => Ok(Received::Closed),
                Ok(n) => {
                    self.handle_read(n);
                    Ok(Received::Some)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Received::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Received::Some),
                Err(e) => Err(e),
            };
        }
        if self.plaintext_in()? {
            return Ok(Received::Some);
        }
        let Some(conn) = self.tls_conn.as_mut() else {
            return Ok(Received::WouldBlock);
        };
        let ended = match conn.read_tls(sock) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Received::WouldBlock),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Received::Some),
            Err(e) => return Err(e),
        };
        if let Err(e) = conn.process_new_packets() {
            return Err(tls_failure(e));
        }
        let got = self.plaintext_in()?;
        Ok(if ended && !got {
            Received::Closed
        } else {
            Received::Some
        })
    }

    /// Moves plaintext rustls holds into the read buffer while it has room;
    /// true when some moved.
    pub(super) fn plaintext_in(&mut self) -> io::Result<bool> {
        if self.tls_conn.is_none() {
            return Ok(false);
        }
        self.make_read_room();
        let Some(conn) = self.tls_conn.as_mut() else {
            return Ok(false);
        };
        let mut moved = false;
        while self.rx_len < self.rx.len() {
            match conn.reader().read(&mut self.rx[self.rx_len..]) {
                Ok(0) => break,
                Ok(n) => {
                    self.rx_len += n;
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // The broker ended without close_notify: what came is still good.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }

    /// Writes output to `sock` (non-blocking) while it takes it.
    pub(crate) fn write_to(&mut self, sock: &mut impl Write) -> io::Result<Sent> {
        let mut sent = Sent {
            moved: false,
            blocked: false,
        };
        loop {
            let taken = match self.tls_conn.as_mut() {
                None => {
                    let out = &self.tx[self.tx_start..self.tx_end];
                    if out.is_empty() {
                        break;
                    }
                    match sock.write(out) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            sent.blocked = true;
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                        Err(e) => return Err(e),
                    }
                }
                Some(conn) => {
                    let out = &self.tx[self.tx_start..self.tx_end];
                    let taken = if out.is_empty() {
                        0
                    } else {
                        conn.writer().write(out)?
                    };
                    if !conn.wants_write() {
                        if taken == 0 {
                            break;
                        }
                    } else {
                        match conn.write_tls(sock) {
                            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                            Ok(_) => sent.moved = true,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                sent.blocked = true;
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                    taken
                }
            };
            if taken > 0 {
                self.handle_written(taken);
                sent.moved = true;
            }
            if sent.blocked {
                break;
            }
        }
        Ok(sent)
    }

    /// Queues TLS's close_notify (before the last [`write_to`](Self::write_to)).
    pub(crate) fn close_tls(&mut self) {
        if let Some(conn) = self.tls_conn.as_mut() {
            conn.send_close_notify();
        }
    }
}

/// A TLS failure as the error the first connect reports: rustls' words
/// (`invalid peer certificate: UnknownIssuer`, `... NotValidForName`, ...).
fn tls_failure(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}"))
}
