//! Without mq: a TCP connection that echoes what it receives.

#![no_std]
#![no_main]

use mq_size::{Mac, interface, now, tcp_socket};
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpEndpoint};

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut mac = Mac;
    let mut iface = interface(&mut mac);
    let (mut sockets, handle) = tcp_socket();
    let broker = IpEndpoint::new(IpAddress::v4(10, 0, 2, 2), 7410);
    let mut port = 49152;
    loop {
        let t = smoltcp::time::Instant::from_micros(now().as_micros() as i64);
        iface.poll(t, &mut mac, &mut sockets);
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        if !socket.is_open() {
            port += 1;
            let _ = socket.connect(iface.context(), broker, port);
        }
        let mut buf = [0u8; 512];
        if let Ok(n) = socket.recv_slice(&mut buf) {
            let _ = socket.send_slice(&buf[..n]);
        }
        cortex_m::asm::wfi();
    }
}
