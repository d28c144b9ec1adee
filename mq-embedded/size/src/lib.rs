//! Fake devices backed by volatile registers (so nothing is optimised away),
//! a clock, and the panic handler the four programs share.

#![no_std]

use core::ptr::{read_volatile, write_volatile};

use core::ptr::addr_of_mut;
use core::time::Duration;

use embedded_io::{ErrorType, Read, ReadReady, Write};
use mq_embedded::{
    Client, DeliveryId, Event, Instant, PublishOptions, QoS, SubId, SubscribeOptions,
};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, Ipv4Address};

const REG: usize = 0x4020_0000;

fn reg(offset: usize) -> u32 {
    // SAFETY: a register of the fake device; these programs never run.
    unsafe { read_volatile((REG + offset) as *const u32) }
}

fn set_reg(offset: usize, value: u32) {
    // SAFETY: as above.
    unsafe { write_volatile((REG + offset) as *mut u32, value) }
}

/// The clock: a free-running microsecond counter.
pub fn now() -> Instant {
    Instant::from_micros(u64::from(reg(0x9C)))
}

/// An Ethernet MAC whose frames come from and go to a data register.
pub struct Mac;

pub struct Rx(usize);
pub struct Tx;

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let mut frame = [0u8; 1514];
        for b in frame.iter_mut().take(self.0) {
            *b = reg(0x00) as u8;
        }
        f(&frame[..self.0.min(1514)])
    }
}

impl TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = [0u8; 1514];
        let r = f(&mut frame[..len.min(1514)]);
        for b in &frame[..len.min(1514)] {
            set_reg(0x20, u32::from(*b));
        }
        r
    }
}

impl Device for Mac {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _: smoltcp::time::Instant) -> Option<(Rx, Tx)> {
        let len = reg(0x40) as usize;
        (len > 0).then_some((Rx(len), Tx))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Tx> {
        Some(Tx)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

/// An interface with a static address and a default route.
pub fn interface(mac: &mut Mac) -> Interface {
    let hw = EthernetAddress([2, 0, 0, 0, 0, 1]).into();
    let t = smoltcp::time::Instant::from_micros(now().as_micros() as i64);
    let mut iface = Interface::new(Config::new(hw), mac, t);
    iface.update_ip_addrs(|a| {
        let _ = a.push(IpCidr::new(IpAddress::v4(10, 0, 2, 15), 24));
    });
    let _ = iface
        .routes_mut()
        .add_default_ipv4_route(Ipv4Address::new(10, 0, 2, 2));
    iface
}

static mut SOCKETS: [SocketStorage<'static>; 1] = [SocketStorage::EMPTY; 1];
static mut TCP_RX: [u8; 4096] = [0; 4096];
static mut TCP_TX: [u8; 4096] = [0; 4096];

/// A socket set with one TCP socket (4 KiB each way). Call it once.
pub fn tcp_socket() -> (SocketSet<'static>, SocketHandle) {
    // SAFETY: called once; the only users of these statics.
    let (sockets, rx, tx) = unsafe {
        (
            &mut *addr_of_mut!(SOCKETS),
            &mut *addr_of_mut!(TCP_RX),
            &mut *addr_of_mut!(TCP_TX),
        )
    };
    let mut set = SocketSet::new(&mut sockets[..]);
    let handle = set.add(tcp::Socket::new(
        tcp::SocketBuffer::new(&mut rx[..]),
        tcp::SocketBuffer::new(&mut tx[..]),
    ));
    (set, handle)
}

/// What both mq programs do: subscribe to commands and ack them, publish a
/// reading at QoS 1 every second.
pub struct App {
    commands: SubId,
    next: Instant,
}

impl App {
    /// Connects and subscribes to `commands`.
    pub fn start<T: mq_embedded::Transport>(client: &mut Client<'_, T>, commands: &str) -> App {
        client.connect(now());
        let Ok(commands) = client.subscribe(now(), commands, &SubscribeOptions::default()) else {
            halt()
        };
        App {
            commands,
            next: now(),
        }
    }

    /// Publishes a reading when one is due.
    pub fn tick<T: mq_embedded::Transport>(&mut self, client: &mut Client<'_, T>, t: Instant) {
        if t >= self.next {
            let qos1 = PublishOptions {
                qos: QoS::AtLeastOnce,
                ..PublishOptions::default()
            };
            let _ = client.publish(t, "telemetry.board", b"21.5", &qos1);
            self.next = t + Duration::from_secs(1);
        }
    }

    /// The command to ack, if the event is one.
    pub fn handle(&self, event: Event<'_>) -> Option<DeliveryId> {
        match event {
            Event::Message(m) if m.sub == self.commands => Some(m.id),
            _ => None,
        }
    }
}

/// A UART with a data and a status register.
pub struct Uart;

#[derive(Debug)]
pub struct UartError;

impl embedded_io::Error for UartError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

impl ErrorType for Uart {
    type Error = UartError;
}

impl ReadReady for Uart {
    fn read_ready(&mut self) -> Result<bool, UartError> {
        Ok(reg(0x104) & 1 != 0)
    }
}

impl Read for Uart {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, UartError> {
        let mut n = 0;
        while n < buf.len() && reg(0x104) & 1 != 0 {
            buf[n] = reg(0x100) as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl Write for Uart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, UartError> {
        for b in buf {
            set_reg(0x100, u32::from(*b));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), UartError> {
        Ok(())
    }
}

/// Stops for good.
pub fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    halt()
}

/// The size of the client values on this target, kept in the image so that
/// `arm-none-eabi-nm -S` shows them (the value is the symbol's content).
#[unsafe(no_mangle)]
#[used]
pub static MQ_TCP_CLIENT_SIZE: usize = core::mem::size_of::<mq_embedded::TcpClient<'static>>();

/// See [`MQ_TCP_CLIENT_SIZE`].
#[unsafe(no_mangle)]
#[used]
pub static MQ_SERIAL_CLIENT_SIZE: usize =
    core::mem::size_of::<mq_embedded::SerialClient<'static, Uart>>();

/// See [`MQ_TCP_CLIENT_SIZE`]: with room for 2 subscriptions and 8 unacked
/// deliveries.
#[unsafe(no_mangle)]
#[used]
pub static MQ_SMALL_CLIENT_SIZE: usize =
    core::mem::size_of::<mq_embedded::TcpClient<'static, 2, 8>>();
