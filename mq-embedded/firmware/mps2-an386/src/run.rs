//! What every application does around its own work: the network it runs on
//! (the same in every build, so that builds differ only in the application)
//! and the lines it prints about it.

use semihosting::println;
use smoltcp::iface::{SocketHandle, SocketStorage};
use smoltcp::socket::tcp;

use crate::board;
use crate::clock;
use crate::config::Config;
use crate::lan9118::Lan9118;
use crate::net::{AddressEvent, Net};

/// TCP receive buffer (the window): QEMU's LAN9118 FIFO drops frames beyond
/// about 10 KiB, so more than 8 KiB makes TCP retransmit instead of going faster.
pub const TCP_RX: usize = 8 * 1024;
/// TCP send buffer.
pub const TCP_TX: usize = 16 * 1024;

/// The interface with room for DHCP and one TCP socket, and that socket.
pub struct Network {
    pub net: Net<'static, Lan9118<'static>>,
    /// The application's TCP socket (buffers [`TCP_RX`] and [`TCP_TX`]).
    pub tcp: SocketHandle,
    /// Differs from boot to boot: TCP sequence numbers and ports come from it.
    pub seed: u64,
}

/// Builds the network on the LAN9118 as `config` says. Call once.
pub fn network(eth: Lan9118<'static>, config: &Config) -> Network {
    let sockets =
        cortex_m::singleton!(SOCKETS: [SocketStorage<'static>; 2] = [SocketStorage::EMPTY; 2])
            .expect("run::network runs once");
    let rx = cortex_m::singleton!(TCP_RX_BUFFER: [u8; TCP_RX] = [0; TCP_RX]).expect("once");
    let tx = cortex_m::singleton!(TCP_TX_BUFFER: [u8; TCP_TX] = [0; TCP_TX]).expect("once");
    let mac = eth.mac_address();
    let seed = clock::now_ticks() ^ mac.iter().fold(0, |seed, &b| seed << 8 | u64::from(b));
    let mut net = Net::new(
        eth,
        mac,
        config.addressing,
        config.dhcp_ms,
        seed,
        sockets,
        clock::now(),
    );
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(&mut rx[..]),
        tcp::SocketBuffer::new(&mut tx[..]),
    );
    socket.set_nagle_enabled(false);
    let tcp = net.sockets.add(socket);
    Network { net, tcp, seed }
}

/// Prints an address change, with the time since boot.
pub fn print_address(event: AddressEvent) {
    println!("{event} at {} ms", clock::now_micros() / 1000);
}

/// Prints the controller's frame counters and how the board idled (`cargo
/// xtask qemu` reads the `idle:` line).
pub fn print_link(eth: &Lan9118<'_>) {
    let counters = eth.counters();
    println!(
        "lan9118: rx {} frames ({} errors, {} bad length discarded), tx {} frames ({} errors)",
        counters.rx_frames,
        counters.rx_errors,
        counters.rx_bad_length,
        counters.tx_frames,
        counters.tx_errors
    );
    let idle = board::idle_counters();
    println!(
        "idle: {} sleeps, {} LAN9118 interrupts",
        idle.sleeps, idle.eth_interrupts
    );
}
