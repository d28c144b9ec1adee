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
use std::collections::{BTreeSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use mq_embedded::{
    Config, Event, PublishOptions, QoS, SessionMode, State, Storage, SubscribeOptions, TcpClient,
};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint};
use support::{Clock, Mqd, host_client};

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

/// The device: its interface, sockets and mq client.
struct Board {
    port: Port,
    iface: Interface,
    sockets: SocketSet<'static>,
    client: TcpClient<'static>,
}

/// What the board saw.
#[derive(Default)]
struct Seen {
    commands: BTreeSet<String>,
    published: u32,
    connected: Vec<bool>,
    disconnected: u32,
}

impl Board {
    fn new(port: Port, clock: &Clock) -> Board {
        let mut port = port;
        let now = clock.now();
        let iface = interface(&mut port, 2, 2, now);
        let mut sockets = SocketSet::new(vec![]);
        let socket = sockets.add(tcp_socket());
        let storage: &'static mut Storage<8192, 2048, 1024, 600> =
            Box::leak(Box::new(Storage::new()));
        let mut config = Config::new("board-1").unwrap();
        config.mode = SessionMode::Resume;
        config.limits.keepalive_ms = 2_000;
        config.reconnect_min = Duration::from_millis(20);
        config.reconnect_max = Duration::from_millis(300);
        config.connect_timeout = Duration::from_secs(2);
        config.producer = Some(0x000B_0A2D_0000 + u64::from(std::process::id()));
        config.seed = 42;
        let broker = IpEndpoint::new(IpAddress::v4(10, 0, 0, 1), GATEWAY_PORT);
        let client = TcpClient::new(config, socket, broker, storage.buffers()).unwrap();
        Board {
            port,
            iface,
            sockets,
            client,
        }
    }

    /// Polls the client until it is idle, acking every command it is given.
    fn step(&mut self, now: mq_embedded::Instant, seen: &mut Seen) {
        while let Some(event) =
            self.client
                .poll(now, &mut self.iface, &mut self.port, &mut self.sockets)
        {
            let ack = match event {
                Event::Message(m) => {
                    assert_eq!(m.topic, "cmd.board-1");
                    seen.commands
                        .insert(String::from_utf8(m.payload.to_vec()).unwrap());
                    Some(m.id)
                }
                Event::Published { .. } => {
                    seen.published += 1;
                    None
                }
                Event::Connected { session_present } => {
                    seen.connected.push(session_present);
                    None
                }
                Event::Disconnected { .. } => {
                    seen.disconnected += 1;
                    None
                }
                Event::PublishRejected { id, reason } => {
                    panic!("publish {id:?} rejected: {reason}")
                }
                Event::SubscribeRejected { reason, .. } => panic!("subscribe rejected: {reason}"),
                _ => None,
            };
            if let Some(id) = ack {
                self.client.ack(id).unwrap();
            }
        }
    }
}

/// Board, wire, gateway and host on one clock.
struct Net {
    clock: Clock,
    board: Board,
    gateway: Gateway,
    seen: Seen,
    host_sub: mq_std::blocking::Subscription,
    telemetry: BTreeSet<Vec<u8>>,
}

impl Net {
    fn step(&mut self) {
        let now = self.clock.now();
        self.board.step(now, &mut self.seen);
        self.gateway.step(now);
        self.board.step(now, &mut self.seen);
        while let Ok(m) = self.host_sub.try_recv() {
            self.telemetry.insert(m.payload.to_vec());
            m.ack().unwrap();
        }
        std::thread::sleep(Duration::from_micros(500));
    }

    /// Steps until `done` holds; panics with `what` and the broker's log after
    /// `limit`.
    fn until(&mut self, mqd: &Mqd, what: &str, limit: Duration, done: impl Fn(&Net) -> bool) {
        let deadline = std::time::Instant::now() + limit;
        while !done(self) {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; state {:?}, stats {:?}\n{}",
                self.board.client.state(),
                self.board.client.stats(),
                mqd.log()
            );
            self.step();
        }
    }

    fn publish(&mut self, payload: &[u8]) {
        let now = self.clock.now();
        let opts = PublishOptions {
            qos: QoS::AtLeastOnce,
            ..PublishOptions::default()
        };
        self.board
            .client
            .publish(now, "telemetry.board-1", payload, &opts)
            .unwrap();
    }
}

fn reading(n: u32) -> Vec<u8> {
    if n == 7 {
        // Larger than the 600-byte transmit buffer: fragmented on the way.
        (0..3000u32).map(|i| (i % 251) as u8).collect()
    } else {
        format!("t{n}").into_bytes()
    }
}

#[test]
fn qos1_both_ways_across_an_mqd_restart() {
    let mut mqd = Mqd::start("");
    let clock = Clock::new();
    let (board_port, gateway_port) = wire();
    let host = host_client(mqd.addr, "host");
    let host_sub = host
        .subscribe("telemetry.>", &mq_std::client::SubscribeOptions::default())
        .unwrap();
    let mut net = Net {
        board: Board::new(board_port, &clock),
        gateway: Gateway::new(gateway_port, mqd.addr, clock.now()),
        clock,
        seen: Seen::default(),
        host_sub,
        telemetry: BTreeSet::new(),
    };

    // Connect, subscribe.
    let now = net.clock.now();
    net.board.client.connect(now);
    net.board
        .client
        .subscribe(now, "cmd.board-1", &SubscribeOptions::default())
        .unwrap();
    net.until(&mqd, "connected", Duration::from_secs(10), |n| {
        n.board.client.is_connected() && n.board.client.session().subscriptions() == 1
    });
    net.until(&mqd, "subscribed", Duration::from_secs(10), |n| {
        n.board.client.stats().frames_in >= 2
    });
    assert_eq!(net.seen.connected, [false]);

    // Device -> broker -> host, QoS 1 (one message fragmented).
    for n in 0..20 {
        net.publish(&reading(n));
    }
    net.until(
        &mqd,
        "20 readings stored and seen",
        Duration::from_secs(10),
        |n| n.seen.published == 20 && n.telemetry.len() == 20,
    );
    assert!(net.telemetry.contains(&reading(7)));
    assert_eq!(net.board.client.session().outbox_len(), 0);

    // Host -> broker -> device, QoS 1, acked by the device.
    let qos1 = mq_std::client::PublishOptions::new(QoS::AtLeastOnce);
    for n in 0..10 {
        host.publish("cmd.board-1", format!("c{n}"), &qos1).unwrap();
    }
    net.until(&mqd, "10 commands", Duration::from_secs(10), |n| {
        n.seen.commands.len() == 10
    });

    // Commands stored but not yet delivered (or not yet acked), and readings
    // not yet acknowledged, when mqd crashes; more readings while it is away.
    for n in 10..15 {
        host.publish("cmd.board-1", format!("c{n}"), &qos1).unwrap();
    }
    for n in 20..30 {
        net.publish(&reading(n));
    }
    net.step();
    let unacked = net.board.client.session().outbox_len();
    assert!(unacked > 0, "readings in flight at the crash");
    let missing = 15 - net.seen.commands.len();
    mqd.kill();
    net.until(&mqd, "the loss noticed", Duration::from_secs(10), |n| {
        n.seen.disconnected >= 1
    });
    for n in 30..40 {
        net.publish(&reading(n));
    }
    for _ in 0..20 {
        net.step();
    }
    assert!(!net.board.client.is_connected());
    mqd.restart();
    // Commands published while the board is away (it is not stepped here):
    // they wait in its persistent session.
    for n in 15..20 {
        host.publish("cmd.board-1", format!("c{n}"), &qos1).unwrap();
    }
    net.until(
        &mqd,
        "everything, both ways",
        Duration::from_secs(30),
        |n| {
            n.seen.commands.len() == 20
                && n.telemetry.len() == 40
                && n.board.client.session().outbox_len() == 0
        },
    );

    let expected: BTreeSet<String> = (0..20).map(|n| format!("c{n}")).collect();
    assert_eq!(net.seen.commands, expected);
    let expected: BTreeSet<Vec<u8>> = (0..40).map(reading).collect();
    assert_eq!(net.telemetry, expected);
    assert_eq!(net.seen.connected.last(), Some(&true), "session resumed");
    assert!(net.board.client.stats().reconnects >= 1);
    assert!(net.gateway.relayed >= 2);
    eprintln!(
        "at the crash: {unacked} readings unacknowledged, {missing} commands undelivered; \
         board stats after: {:?}",
        net.board.client.stats()
    );
    assert_eq!(net.board.client.state(), State::Connected);
    host.close();
}
