//! The host side of a QEMU scenario: what `qemu` asks of a peer while the
//! firmware runs ([`Peer`]); `qemu` has the echo and throughput peers, `mqd` the
//! broker.

use std::net::SocketAddr;

/// The host side of a scenario.
pub trait Peer {
    /// Builds or sets up what it needs, before any scenario boots (so that a
    /// build's time is not counted as a scenario's).
    fn prepare(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Starts serving; returns the loopback address guest connections go to.
    fn start(&mut self) -> Result<SocketAddr, String>;

    /// Called about every 20 ms while QEMU runs, with the lines the firmware
    /// printed since the last call, and once more with the last lines after
    /// QEMU exited; may act (restart a server, publish) or fail.
    fn poll(&mut self, _lines: &[String]) -> Result<(), String> {
        Ok(())
    }

    /// QEMU has exited: checks what the peer saw; a one-line summary.
    fn finish(&mut self) -> Result<String, String>;
}
