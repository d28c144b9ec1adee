//! Without mq: a UART echo.

#![no_std]
#![no_main]

use embedded_io::{Read, ReadReady, Write};
use mq_size::Uart;

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut uart = Uart;
    loop {
        let mut buf = [0u8; 32];
        if uart.read_ready().unwrap_or(false)
            && let Ok(n) = uart.read(&mut buf)
        {
            let _ = uart.write(&buf[..n]);
        }
        cortex_m::asm::wfi();
    }
}
