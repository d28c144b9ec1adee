//! With mq: a SerialClient on the UART that subscribes to commands, acks
//! them, and publishes readings at QoS 1.

#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use mq_embedded::{Config, SerialClient, Storage};
use mq_size::{App, Uart, halt, now};

static mut STORAGE: Storage<2048, 2048, 1024, 1024> = Storage::new();

#[cortex_m_rt::entry]
fn main() -> ! {
    // SAFETY: the only user of this static.
    let storage = unsafe { &mut *addr_of_mut!(STORAGE) };
    let Ok(config) = Config::new("board-2") else {
        halt()
    };
    let client: Result<SerialClient<'_, Uart>, _> =
        SerialClient::new(config, Uart, storage.buffers());
    let Ok(mut client) = client else { halt() };
    let mut app = App::start(&mut client, "cmd.board-2");
    loop {
        let t = now();
        app.tick(&mut client, t);
        while let Some(event) = client.poll(t) {
            if let Some(id) = app.handle(event) {
                let _ = client.ack(id);
            }
        }
        let _ = client.poll_at();
        cortex_m::asm::wfi();
    }
}
