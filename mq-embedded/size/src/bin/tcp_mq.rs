//! With mq: the same connection driven by a TcpClient that subscribes to
//! commands, acks them, and publishes readings at QoS 1.

#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use mq_embedded::{Config, Storage, TcpClient};
use mq_size::{App, Mac, halt, interface, now, tcp_socket};
use smoltcp::wire::{IpAddress, IpEndpoint};

static mut STORAGE: Storage<2048, 2048, 1024, 1024> = Storage::new();

#[cortex_m_rt::entry]
fn main() -> ! {
    // SAFETY: the only user of this static.
    let storage = unsafe { &mut *addr_of_mut!(STORAGE) };
    let mut mac = Mac;
    let mut iface = interface(&mut mac);
    let (mut sockets, handle) = tcp_socket();
    let broker = IpEndpoint::new(IpAddress::v4(10, 0, 2, 2), 7410);
    let Ok(config) = Config::new("board-1") else {
        halt()
    };
    let client: Result<TcpClient<'_>, _> =
        TcpClient::new(config, handle, broker, storage.buffers());
    let Ok(mut client) = client else { halt() };
    let mut app = App::start(&mut client, "cmd.board-1");
    loop {
        let t = now();
        app.tick(&mut client, t);
        while let Some(event) = client.poll(t, &mut iface, &mut mac, &mut sockets) {
            if let Some(id) = app.handle(event) {
                let _ = client.ack(id);
            }
        }
        let _ = client.poll_at(t, &mut iface, &sockets);
        cortex_m::asm::wfi();
    }
}
