//! The TCP link over smoltcp's loopback: bytes handed to a socket whose
//! transmit ring has its free space in two pieces, and bytes taken from one
//! whose receive ring holds them in two.

use core::mem::MaybeUninit;
use std::vec;
use std::vec::Vec;

use mq_core::client::StreamOnly;
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use super::*;
use crate::Storage;
use crate::client::Engine;

const PORT: u16 = 7410;

/// One interface on the loopback with a listening server socket and the
/// client's, whose rings are 64 bytes each way.
struct Net {
    device: Loopback,
    iface: Interface,
    sockets: SocketSet<'static>,
    server: SocketHandle,
    client: SocketHandle,
}

impl Net {
    fn new() -> Net {
        let mut device = Loopback::new(Medium::Ethernet);
        let hw = HardwareAddress::Ethernet(EthernetAddress([2, 0, 0, 0, 0, 1]));
        let mut iface = Interface::new(
            IfaceConfig::new(hw),
            &mut device,
            smoltcp::time::Instant::ZERO,
        );
        iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).unwrap());
        let mut sockets = SocketSet::new(vec![]);
        let mut server = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 1024]),
            tcp::SocketBuffer::new(vec![0; 1024]),
        );
        server.set_ack_delay(None);
        server.listen(PORT).unwrap();
        let server = sockets.add(server);
        let mut client = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 64]),
            tcp::SocketBuffer::new(vec![0; 64]),
        );
        client.set_ack_delay(None);
        let client = sockets.add(client);
        Net {
            device,
            iface,
            sockets,
            server,
            client,
        }
    }

    /// The client's TCP half over `rx`, connected to the server.
    fn connect<'a>(&mut self, rx: &'a mut [u8]) -> Tcp<'a> {
        let mut tcp = Tcp {
            socket: self.client,
            broker: IpEndpoint::new(IpAddress::v4(127, 0, 0, 1), PORT),
            rx,
            rx_len: 0,
            port: 0,
        };
        assert!(self.link(&mut tcp).open(Instant::ZERO));
        self.poll();
        assert_eq!(self.link(&mut tcp).status(), LinkStatus::Up);
        tcp
    }

    fn link<'x, 'a>(&'x mut self, tcp: &'x mut Tcp<'a>) -> TcpLink<'x, 'a, 'static> {
        TcpLink {
            tcp,
            iface: &mut self.iface,
            sockets: &mut self.sockets,
        }
    }

    /// One round of the interface: what is queued goes out, what arrived in.
    fn round(&mut self) {
        self.iface.poll(
            smoltcp::time::Instant::ZERO,
            &mut self.device,
            &mut self.sockets,
        );
    }

    /// Rounds until it settles.
    fn poll(&mut self) {
        for _ in 0..8 {
            self.round();
        }
    }

    fn queued(&self, socket: SocketHandle) -> (usize, usize) {
        let socket = self.sockets.get::<tcp::Socket>(socket);
        (socket.send_queue(), socket.recv_queue())
    }

    /// What the server received so far.
    fn received(&mut self) -> Vec<u8> {
        let server = self.sockets.get_mut::<tcp::Socket>(self.server);
        let mut buf = [0u8; 1024];
        let n = server.recv_slice(&mut buf).unwrap_or(0);
        buf[..n].to_vec()
    }

    /// The server sends `bytes`, and they arrive.
    fn server_sends(&mut self, bytes: &[u8]) {
        let server = self.sockets.get_mut::<tcp::Socket>(self.server);
        assert_eq!(server.send_slice(bytes), Ok(bytes.len()));
        self.poll();
    }
}

#[test]
fn bytes_sent_around_the_end_of_the_ring_arrive_whole_and_in_order() {
    let mut net = Net::new();
    let mut tcp = net.connect(&mut []);
    let all: Vec<u8> = (0..100u8).collect();
    let (a, rest) = all.split_at(40);
    let (b, c) = rest.split_at(10);
    // 40 bytes go out; 10 more queue behind them before the ack of the 40
    // frees the ring's front: its free space is then 14 bytes at its end
    // and 40 at its start.
    assert_eq!(net.link(&mut tcp).send(a), 40);
    net.round();
    assert_eq!(net.link(&mut tcp).send(b), 10);
    // Polled one round at a time until the 40 are acknowledged, before the 10.
    for _ in 0..8 {
        if net.queued(net.client).0 <= 10 {
            break;
        }
        net.round();
    }
    assert_eq!(net.queued(net.client).0, 10);
    let mut received = net.received();
    // One piece a call: the end of the ring first, then its start.
    let first = net.link(&mut tcp).send(c);
    assert!(first < c.len(), "the ring's free space was in one piece");
    assert_eq!(net.link(&mut tcp).send(&c[first..]), c.len() - first);
    net.poll();
    received.extend(net.received());
    assert_eq!(received, all);
}

#[test]
fn bytes_received_around_the_end_of_the_ring_are_all_taken_in_one_poll() {
    let mut storage: Storage<2048, 2048, 1024, 1024> = Storage::new();
    let mut slot = MaybeUninit::uninit();
    let config = Config::new("board-1").unwrap();
    let (engine, _) =
        Engine::<StreamOnly, 1, 1, 0>::new_in(&mut slot, config, StreamOnly, storage.buffers())
            .unwrap();
    let session = &mut engine.session;
    session.connect(Instant::ZERO);
    session.handle_connected(Instant::ZERO);
    let mut net = Net::new();
    let mut rx = [0u8; 256];
    let mut tcp = net.connect(&mut rx);
    // The start of a frame of 200 bytes: the session takes none of it.
    let mut bytes = vec![0xC8, 0x01];
    bytes.extend((0..88).map(|i| i as u8));
    let (a, b) = bytes.split_at(40);
    // The first 40 bytes are read out of the ring, so the next 50 go 24 at
    // its end and 26 at its start.
    net.server_sends(a);
    net.link(&mut tcp).receive(Instant::ZERO, session);
    assert_eq!((tcp.rx_len, net.queued(net.client).1), (40, 0));
    net.server_sends(b);
    assert_eq!(net.queued(net.client).1, 50);
    net.link(&mut tcp).receive(Instant::ZERO, session);
    assert_eq!((tcp.rx_len, net.queued(net.client).1), (90, 0));
    assert_eq!(tcp.rx[..90], bytes[..]);
}
