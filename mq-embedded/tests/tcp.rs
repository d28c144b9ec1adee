//! The smoltcp driver against a real `mqd`, without QEMU: the device's smoltcp
//! interface talks Ethernet over an in-memory wire to a second smoltcp
//! interface (the "gateway"), which accepts the TCP connection and relays its
//! bytes to and from a loopback connection to `mqd`.
//!
//! ```text
//! TcpClient ─ smoltcp ─ wire ─ smoltcp (gateway) ─ relay ─ TcpStream ─ mqd
//! 10.0.0.2                       10.0.0.1:7410                 127.0.0.1:port
//! ```

mod support;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use mq_embedded::{Storage, Tcp, TcpClient};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint};
use support::scenario::{
    Board, Seen, ack, board_config, qos1_both_ways_across_a_restart, request_reply_both_ways,
};

type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// One end of an in-memory Ethernet cable.
struct Port {
    rx: Queue,
    tx: Queue,
}

/// A cable: two ports whose queues cross.
fn wire() -> (Port, Port) {
    let a: Queue = Rc::default();
    let b: Queue = Rc::default();
    (
        Port {
            rx: a.clone(),
            tx: b.clone(),
        },
        Port { rx: b, tx: a },
    )
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a Queue);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.borrow_mut().push_back(frame);
        r
    }
}

impl Device for Port {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: smoltcp::time::Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.rx.borrow_mut().pop_front()?;
        Some((Rx(frame), Tx(&self.tx)))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Tx<'_>> {
        Some(Tx(&self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

fn stamp(now: mq_embedded::Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(now.as_micros() as i64)
}

fn interface(port: &mut Port, mac: u8, ip: u8, now: mq_embedded::Instant) -> Interface {
    let hw = HardwareAddress::Ethernet(EthernetAddress([2, 0, 0, 0, 0, mac]));
    let mut iface = Interface::new(IfaceConfig::new(hw), port, stamp(now));
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::v4(10, 0, 0, ip), 24))
            .unwrap()
    });
    iface
}

fn tcp_socket() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 8192]),
        tcp::SocketBuffer::new(vec![0; 8192]),
    )
}

const GATEWAY_PORT: u16 = 7410;

/// The far side: accepts one TCP connection at a time on 10.0.0.1:7410 and
/// relays it to `mqd`. When `mqd` is gone it refuses (resets) the connection;
/// when `mqd` closes, it closes.
struct Gateway {
    port: Port,
    iface: Interface,
    sockets: SocketSet<'static>,
    listener: SocketHandle,
    upstream: Option<TcpStream>,
    /// Bytes from `mqd` the socket had no room for yet.
    down: Vec<u8>,
    mqd: SocketAddr,
    /// Connections accepted and relayed.
    relayed: u32,
}

impl Gateway {
    fn new(port: Port, mqd: SocketAddr, now: mq_embedded::Instant) -> Gateway {
        let mut port = port;
        let iface = interface(&mut port, 1, 1, now);
        let mut sockets = SocketSet::new(vec![]);
        let listener = sockets.add(tcp_socket());
        Gateway {
            port,
            iface,
            sockets,
            listener,
            upstream: None,
            down: Vec::new(),
            mqd,
            relayed: 0,
        }
    }

    fn step(&mut self, now: mq_embedded::Instant) {
        self.iface
            .poll(stamp(now), &mut self.port, &mut self.sockets);
        let socket = self.sockets.get_mut::<tcp::Socket>(self.listener);
        if !socket.is_open() {
            self.upstream = None;
            self.down.clear();
            socket.listen(GATEWAY_PORT).unwrap();
        }
        if socket.state() == tcp::State::Established && self.upstream.is_none() {
            match TcpStream::connect_timeout(&self.mqd, Duration::from_secs(1)) {
                Ok(s) => {
                    s.set_nonblocking(true).unwrap();
                    s.set_nodelay(true).unwrap();
                    self.upstream = Some(s);
                    self.relayed += 1;
                }
                // mqd is down: refuse the device.
                Err(_) => socket.abort(),
            }
        }
        if let Some(up) = self.upstream.as_mut() {
            let mut ended = false;
            // device -> mqd
            while socket.can_recv() {
                let mut buf = [0u8; 4096];
                let n = socket.recv_slice(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                up.set_nonblocking(false).unwrap();
                if up.write_all(&buf[..n]).is_err() {
                    ended = true;
                }
                up.set_nonblocking(true).unwrap();
            }
            // mqd -> device
            loop {
                if !self.down.is_empty() {
                    let n = socket.send_slice(&self.down).unwrap_or(0);
                    self.down.drain(..n);
                    if !self.down.is_empty() {
                        break;
                    }
                }
                let mut buf = [0u8; 4096];
                match up.read(&mut buf) {
                    Ok(0) => {
                        ended = true;
                        break;
                    }
                    Ok(n) => self.down.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        ended = true;
                        break;
                    }
                }
            }
            if ended && self.down.is_empty() {
                socket.close();
                self.upstream = None;
            } else if !socket.may_recv() && !socket.may_send() {
                // The device went away.
                self.upstream = None;
                self.down.clear();
            }
        }
        self.iface
            .poll(stamp(now), &mut self.port, &mut self.sockets);
    }
}

/// The board: its interface, sockets and mq client, and the gateway at the
/// other end of its cable.
struct TcpBoard {
    port: Port,
    iface: Interface,
    sockets: SocketSet<'static>,
    client: TcpClient<'static>,
    gateway: Gateway,
}

impl TcpBoard {
    fn new(mqd: SocketAddr) -> TcpBoard {
        let (mut port, far) = wire();
        let now = mq_embedded::Instant::ZERO;
        let iface = interface(&mut port, 2, 2, now);
        let mut sockets = SocketSet::new(vec![]);
        let socket = sockets.add(tcp_socket());
        let storage: &'static mut Storage<8192, 2048, 1024, 600> =
            Box::leak(Box::new(Storage::new()));
        let broker = IpEndpoint::new(IpAddress::v4(10, 0, 0, 1), GATEWAY_PORT);
        let client = TcpClient::new(board_config(), socket, broker, storage.buffers()).unwrap();
        TcpBoard {
            port,
            iface,
            sockets,
            client,
            gateway: Gateway::new(far, mqd, now),
        }
    }

    fn poll(&mut self, now: mq_embedded::Instant, seen: &mut Seen) {
        while let Some(event) =
            self.client
                .poll(now, &mut self.iface, &mut self.port, &mut self.sockets)
        {
            if let Some(id) = seen.event(event) {
                ack(&mut self.client, id);
            }
        }
    }
}

impl Board for TcpBoard {
    type Transport = Tcp<'static>;

    fn client(&mut self) -> &mut TcpClient<'static> {
        &mut self.client
    }

    fn step(&mut self, now: mq_embedded::Instant, seen: &mut Seen) {
        self.poll(now, seen);
        self.gateway.step(now);
        self.poll(now, seen);
    }
}

#[test]
fn qos1_both_ways_across_an_mqd_restart() {
    let mut mqd = support::mqd("");
    let mut board = TcpBoard::new(mqd.addr);
    qos1_both_ways_across_a_restart(&mut mqd, &mut board);
    // Through the gateway: once before the crash, once after (at least).
    assert!(board.gateway.relayed >= 2);
}

#[test]
fn request_reply_both_ways_with_an_mq_std_client() {
    let mqd = support::mqd("");
    let mut board = TcpBoard::new(mqd.addr);
    let seen = request_reply_both_ways(&mqd, &mut board);
    assert_eq!(seen.replies.len(), 3);
}
