//! The firmware's entry: read the arguments, bring the board up, run the
//! application, and end QEMU with the application's exit code.
//!
//! `board` (in the library) owns the hardware; `app` is what runs on it: the TCP
//! smoke test (`app.rs`), or with the `mq` feature the mq application
//! (`app_mq.rs`), or with the `serial` feature the mq application over UART0
//! (`app_serial.rs`). An application is `app::run(&mut Board, Lan9118, &Config) ->
//! ExitCode`: it builds the network on the driver and reports through the code.

#![no_std]
#![no_main]

#[cfg(not(any(feature = "mq", feature = "serial")))]
mod app;
#[cfg(all(feature = "mq", not(feature = "serial")))]
#[path = "app_mq.rs"]
mod app;
#[cfg(all(feature = "serial", not(feature = "mq")))]
#[path = "app_serial.rs"]
mod app;
#[cfg(any(feature = "mq", feature = "serial"))]
mod console;
#[cfg(any(feature = "mq", feature = "serial"))]
mod device;
#[cfg(all(feature = "mq", feature = "serial"))]
compile_error!("the `mq` (TCP) and `serial` builds are two applications: pick one feature");

use cortex_m_rt::{ExceptionFrame, entry, exception};
use firmware::board::{self, ExitCode};
use firmware::config::Config;
use firmware::stack;
use semihosting::{eprintln, println};

/// Bytes for the semihosting command line (all `arg=` values joined by spaces).
const ARGS_BUFFER: usize = 1024;

#[entry]
fn main() -> ! {
    board::exit(run())
}

fn run() -> ExitCode {
    stack::paint();
    let args = match semihosting::experimental::env::args::<ARGS_BUFFER>() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("error: cannot read the semihosting arguments: {err}");
            return ExitCode::Config;
        }
    };
    // The first argument names the program.
    let words = (&args).skip(1).map(|arg| arg.unwrap_or("<not UTF-8>"));
    let config = match Config::parse(words) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::Config;
        }
    };
    let (mut board, eth) = match board::init() {
        Ok(parts) => parts,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::Board;
        }
    };
    let [a, b, c, d, e, f] = eth.mac_address();
    println!("mps2-an386: LAN9118 up, MAC {a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}");
    let code = app::run(&mut board, eth, &config);
    println!("stack: {} bytes at most", stack::peak());
    code
}

#[exception]
fn SysTick() {
    board::on_systick();
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    #[cfg(feature = "serial")]
    if firmware::uart::on_interrupt(irqn) {
        return;
    }
    if !board::on_interrupt(irqn) {
        eprintln!("error: unexpected interrupt {irqn}");
        board::exit(ExitCode::Fault);
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    eprintln!("error: hard fault at pc {:#010x}", frame.pc());
    board::exit(ExitCode::Fault)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    eprintln!("panic: {info}");
    board::exit(ExitCode::Panic)
}
