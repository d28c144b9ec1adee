//! Firmware for QEMU's `mps2-an386` board (Cortex-M4): the board support that the
//! applications in `main.rs` run on.
//!
//! - [`lan9118`]: the Ethernet controller as a smoltcp `Device`;
//! - [`clock`]: a 64-bit monotonic clock from the controller's 25 MHz counter;
//! - [`net`]: the smoltcp interface with DHCP, static or fallback addressing;
//! - [`config`]: the run's settings from the semihosting arguments;
//! - [`pattern`]: the byte patterns the TCP smoke test checks;
//! - [`ledger`]: what the mq application executed and publishes;
//! - [`exit_code`]: how a run ends, as QEMU's exit status;
//! - [`uart`]: UART0 (CMSDK APB UART) as an `embedded-io` byte stream, for the serial build;
//! - `board` (only for the board): bring-up, WFI idle, exit codes through semihosting;
//! - `run` (only for the board): the network every application runs on;
//! - `stack` (only for the board): how deep the stack went.
//!
//! Everything but `board`, `run`, `stack` and `uart`'s registers also builds on the host, where its unit tests run
//! (`cargo xtask firmware` runs them).

#![no_std]

#[cfg(test)]
extern crate std;

#[cfg(target_os = "none")]
pub mod board;
pub mod clock;
pub mod config;
pub mod exit_code;
pub mod lan9118;
pub mod ledger;
pub mod net;
pub mod pattern;
#[cfg(target_os = "none")]
pub mod run;
#[cfg(target_os = "none")]
pub mod stack;
pub mod uart;
