//! The TCP link's `send` over smoltcp's loopback: bytes handed to a socket
//! whose transmit ring has its free space in two pieces.

use std::vec;
use std::vec::Vec;

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use super::*;

const PORT: u16 = 7410;

struct Net {
    device: Loopback,
    iface: Interface,
    sockets: SocketSet<'static>,
    server: SocketHandle,
}

impl Net {
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

    /// What the server received so far.
    fn received(&mut self) -> Vec<u8> {
        let server = self.sockets.get_mut::<tcp::Socket>(self.server);
        let mut buf = [0u8; 1024];
        let n = server.recv_slice(&mut buf).unwrap_or(0);
        buf[..n].to_vec()
    }
}

#[test]
fn bytes_sent_around_the_end_of_the_ring_arrive_whole_and_in_order() {
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
    // A transmit ring of 64 bytes.
    let client = sockets.add(tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 1024]),
        tcp::SocketBuffer::new(vec![0; 64]),
    ));
    let mut net = Net {
        device,
        iface,
        sockets,
        server,
    };
    let mut tcp = Tcp {
        socket: client,
        broker: IpEndpoint::new(IpAddress::v4(127, 0, 0, 1), PORT),
        rx: &mut [],
        rx_len: 0,
        port: 0,
    };
    let opened = TcpLink {
        tcp: &mut tcp,
        iface: &mut net.iface,
        sockets: &mut net.sockets,
    }
    .open(Instant::ZERO);
    assert!(opened);
    net.poll();
    let send = |net: &mut Net, tcp: &mut Tcp<'_>, bytes: &[u8]| {
        TcpLink {
            tcp,
            iface: &mut net.iface,
            sockets: &mut net.sockets,
        }
        .send(bytes)
    };
    let all: Vec<u8> = (0..100u8).collect();
    let (a, rest) = all.split_at(40);
    let (b, c) = rest.split_at(10);
    // 40 bytes go out; 10 more queue behind them before the ack of the 40
    // frees the ring's front: its free space is then 14 bytes at its end
    // and 40 at its start.
    assert_eq!(send(&mut net, &mut tcp, a), 40);
    net.round();
    assert_eq!(send(&mut net, &mut tcp, b), 10);
    // Polled one round at a time until the 40 are acknowledged, before the 10.
    for _ in 0..8 {
        if net.sockets.get::<tcp::Socket>(client).send_queue() <= 10 {
            break;
        }
        net.round();
    }
    assert_eq!(net.sockets.get::<tcp::Socket>(client).send_queue(), 10);
    let mut received = net.received();
    // One piece a call: the end of the ring first, then its start.
    let first = send(&mut net, &mut tcp, c);
    assert!(first < c.len(), "the ring's free space was in one piece");
    assert_eq!(send(&mut net, &mut tcp, &c[first..]), c.len() - first);
    net.poll();
    received.extend(net.received());
    assert_eq!(received, all);
}
