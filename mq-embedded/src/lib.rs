//! mq on microcontrollers: the mq-core client [`Session`](mq_core::client::Session)
//! over a smoltcp TCP socket or a UART, `no_std`, without allocation.
//!
//! The application sees a small API: [`connect`](Client::connect),
//! [`publish`](Client::publish), [`subscribe`](Client::subscribe),
//! `poll` for events and deliveries, [`ack`](Client::ack), and
//! [`request`](Client::request) / [`reply`](Client::reply). Delivery decisions
//! (QoS 1 resends, redelivery, duplicate suppression, credit, keepalive,
//! reconnect backoff, session resume, request-reply) are the session's; the
//! drivers only move bytes and time.
//!
//! - [`TcpClient`] (feature `tcp`): over a TCP socket of the caller's smoltcp
//!   [`SocketSet`](smoltcp::iface::SocketSet), generic over smoltcp's
//!   [`Device`](smoltcp::phy::Device). It opens the connection, polls the
//!   interface, reconnects with the session's backoff after a loss and resumes
//!   the session.
//! - [`SerialClient`] (feature `serial`): over any `embedded-io` byte stream
//!   (`Read + Write + ReadReady`, a UART) with the COBS + CRC framing that
//!   `mqd --serial` speaks. How a line without connect and close still has
//!   connections, and notices a lost broker, is told in [`serial`]'s docs.
//! - `defmt` (or `log`) logging behind the features of those names.
//!
//! Both are a [`Client`] (one set of commands) with a different transport.
//!
//! # Memory
//!
//! Everything lives in the caller's [`Buffers`] (or a [`Storage`] in a
//! `static`) and in the client value itself; nothing grows:
//!
//! - `outbox`: publishes until written (QoS 0) or stored by the broker (QoS 1);
//! - `inbox`: received messages until `poll` hands them out;
//! - `rx` / `tx`: one frame each way. The client announces the largest frame
//!   `rx` holds (the broker fragments deliveries to it) and fragments its own
//!   publishes to what `tx` holds
//!   ([`Config::max_frame_out`](mq_core::client::Config::max_frame_out)), so a
//!   large broker limit (1 MiB for `mqd`) costs the device nothing. Each is at
//!   least [`MIN_FRAME`] plus framing (514 bytes over TCP, 520 on a serial
//!   line).
//!
//! The client value holds the session's tables (subscriptions, held deliveries,
//! the ring of the 64 messages acked last, events, pending requests): 7,456
//! bytes for a [`TcpClient`] on Cortex-M with the default `SUBS = 8`,
//! `HELD = 32`, `REQS = 4`, and 4,656 bytes with `TcpClient<'_, 2, 8, 0>` (a
//! board that makes no requests sets `REQS = 0`, and the request-reply code
//! compiles away); `size_of` tells the figure for yours. The TCP socket's own buffers come on top (keep its receive window
//! modest on small MACs).
//!
//! # Code size
//!
//! Measured with `mq-embedded/size` (tiny Cortex-M4 programs over fake
//! devices, each built with and without the client; release, LTO,
//! `codegen-units = 1`, `panic = "abort"`; `arm-none-eabi-size`, Rust 1.95):
//!
//! | program | opt-level `"s"` | opt-level `"z"` |
//! | --- | --- | --- |
//! | TCP echo (smoltcp) | 19,900 B | 22,184 B |
//! | the same with a [`TcpClient`] | 57,336 B (+37.4 KB) | 53,908 B (+31.7 KB) |
//! | UART echo | 1,424 B | 1,436 B |
//! | the same with a [`SerialClient`] | 41,260 B (+39.8 KB) | 34,572 B (+33.1 KB) |
//!
//! About 18 KB of that is the wire codec (serde-derived encoding and decoding
//! of every frame type, postcard, COBS, CRC), the rest the session and the
//! driver. No formatting machinery is linked (`core::fmt` stays out; panics
//! carry no message).
//!
//! # The loop, over TCP
//!
//! ```no_run
//! use core::ptr::addr_of_mut;
//! use core::time::Duration;
//!
//! use mq_embedded::{Config, Event, Instant, PublishOptions, QoS, Storage};
//! use mq_embedded::{SubscribeOptions, TcpClient};
//! use smoltcp::iface::{Interface, SocketSet, SocketStorage};
//! use smoltcp::phy::Device;
//! use smoltcp::socket::tcp;
//! use smoltcp::wire::{IpAddress, IpEndpoint};
//!
//! static mut STORAGE: Storage<2048, 2048, 1024, 1024> = Storage::new();
//! static mut SOCKETS: [SocketStorage<'static>; 2] = [SocketStorage::EMPTY; 2];
//! static mut TCP_RX: [u8; 4096] = [0; 4096];
//! static mut TCP_TX: [u8; 4096] = [0; 4096];
//!
//! /// Runs the application on an interface that has (or will get, through a
//! /// DHCP socket in the same set) an address. `now` reads a monotonic clock;
//! /// `wait` sleeps until the given time or an interrupt (WFI).
//! fn run<D: Device>(
//!     device: &mut D,
//!     iface: &mut Interface,
//!     now: impl Fn() -> Instant,
//!     wait: impl Fn(Instant),
//! ) -> ! {
//!     // SAFETY: called once; nothing else touches these statics.
//!     let (storage, sockets, tcp_rx, tcp_tx) = unsafe {
//!         (
//!             &mut *addr_of_mut!(STORAGE),
//!             &mut *addr_of_mut!(SOCKETS),
//!             &mut *addr_of_mut!(TCP_RX),
//!             &mut *addr_of_mut!(TCP_TX),
//!         )
//!     };
//!     let mut sockets = SocketSet::new(&mut sockets[..]);
//!     let socket = sockets.add(tcp::Socket::new(
//!         tcp::SocketBuffer::new(&mut tcp_rx[..]),
//!         tcp::SocketBuffer::new(&mut tcp_tx[..]),
//!     ));
//!
//!     // A persistent session (the default): subscriptions, unacked deliveries
//!     // and messages queued while the board is away survive reconnects.
//!     let mut config = Config::new("board-1").unwrap();
//!     config.limits.keepalive_ms = 10_000;
//!     config.seed = 0x5eed; // jitters reconnects; use something per-board
//!     let broker = IpEndpoint::new(IpAddress::v4(10, 0, 2, 2), 7410);
//!     let mut client: TcpClient<'_> =
//!         TcpClient::new(config, socket, broker, storage.buffers()).unwrap();
//!
//!     client.connect(now());
//!     // Sent once connected; a resumed session keeps it.
//!     let commands = client
//!         .subscribe(now(), "cmd.board-1", &SubscribeOptions::default())
//!         .unwrap();
//!     let qos1 = PublishOptions {
//!         qos: QoS::AtLeastOnce,
//!         ..PublishOptions::default()
//!     };
//!     let mut next_reading = now();
//!     loop {
//!         let t = now();
//!         if t >= next_reading {
//!             // Queued even while disconnected; an error means the outbox is
//!             // full (the broker has been away long): skip this reading.
//!             let _ = client.publish(t, "telemetry.board-1", b"21.5", &qos1);
//!             next_reading = t + Duration::from_secs(1);
//!         }
//!         while let Some(event) = client.poll(t, iface, device, &mut sockets) {
//!             let executed = match event {
//!                 Event::Message(m) if m.sub == commands => {
//!                     // ... execute m.payload ...
//!                     Some(m.id)
//!                 }
//!                 Event::Connected { session_present } => {
//!                     let _ = session_present; // false: the broker forgot us
//!                     None
//!                 }
//!                 Event::Published { .. } => None, // a reading is stored
//!                 _ => None,
//!             };
//!             // The event borrowed the client; it is gone now.
//!             if let Some(id) = executed {
//!                 let _ = client.ack(id);
//!             }
//!         }
//!         let wake = client.poll_at(t, iface, &sockets).unwrap_or(next_reading);
//!         wait(wake.min(next_reading));
//!     }
//! }
//! ```
//!
//! # The loop, over a UART
//!
//! ```no_run
//! use core::ptr::addr_of_mut;
//! use core::time::Duration;
//!
//! use embedded_io::{Read, ReadReady, Write};
//! use mq_embedded::{Config, Event, Instant, PublishOptions, QoS, SerialClient};
//! use mq_embedded::{Storage, SubscribeOptions};
//!
//! static mut STORAGE: Storage<2048, 2048, 1024, 1024> = Storage::new();
//!
//! /// `uart` is the line to `mqd --serial /dev/ttyUSB0` (raw, 8N1, any baud
//! /// both ends agree on). `wait` sleeps until the given time or a UART
//! /// receive interrupt.
//! fn run<U: Read + Write + ReadReady>(
//!     uart: U,
//!     now: impl Fn() -> Instant,
//!     wait: impl Fn(Instant),
//! ) -> ! {
//!     // SAFETY: called once; nothing else touches this static.
//!     let storage = unsafe { &mut *addr_of_mut!(STORAGE) };
//!     let mut config = Config::new("board-2").unwrap();
//!     // A line has no "closed": a lost broker is noticed by keepalive
//!     // (after 1.5 intervals) or by a Hello left unanswered.
//!     config.limits.keepalive_ms = 5_000;
//!     config.connect_timeout = Duration::from_secs(2);
//!     let mut client: SerialClient<'_, U> =
//!         SerialClient::new(config, uart, storage.buffers()).unwrap();
//!     client.connect(now());
//!     let commands = client
//!         .subscribe(now(), "cmd.board-2", &SubscribeOptions::default())
//!         .unwrap();
//!     let qos1 = PublishOptions {
//!         qos: QoS::AtLeastOnce,
//!         ..PublishOptions::default()
//!     };
//!     let mut next_reading = now();
//!     loop {
//!         let t = now();
//!         if t >= next_reading {
//!             let _ = client.publish(t, "telemetry.board-2", b"21.5", &qos1);
//!             next_reading = t + Duration::from_secs(1);
//!         }
//!         while let Some(event) = client.poll(t) {
//!             let executed = match event {
//!                 Event::Message(m) if m.sub == commands => Some(m.id),
//!                 _ => None,
//!             };
//!             if let Some(id) = executed {
//!                 let _ = client.ack(id);
//!             }
//!         }
//!         wait(client.poll_at().unwrap_or(next_reading).min(next_reading));
//!     }
//! }
//! ```
//!
//! # Contract
//!
//! - Call `poll` until it returns `None` after anything happened (an
//!   interrupt, a command such as `publish` or `ack`, a timer) and at the time
//!   `poll_at` returns. Each call does all that is due before returning the
//!   next event; `None` means nothing is left to do now.
//! - An [`Event::Message`] or [`Event::Chunk`] borrows the client until the
//!   next `poll`: copy out the [`DeliveryId`], let the event go, then ack.
//!   QoS 1 deliveries are redelivered until acked (also across reconnects);
//!   acks of messages that arrived on an earlier connection are remembered and
//!   sent when the broker redelivers ([`AckError::Stale`]).
//! - [`Event::Connect`] and [`Event::Disconnected`] report what the driver does
//!   by itself; [`Event::Closed`] means the session ended for good (after
//!   [`close`](Client::close), or when the broker refused the client id or
//!   token).

#![no_std]
#![deny(missing_docs)]
// Without a transport the client has nothing to drive.
#![cfg_attr(not(any(feature = "tcp", feature = "serial")), allow(dead_code))]

#[cfg(test)]
extern crate std;

mod buffers;
mod client;
#[cfg(feature = "serial")]
pub mod serial;
#[cfg(feature = "tcp")]
mod tcp;

pub use buffers::{BufferError, Buffers, MIN_FRAME, Storage};
pub use client::{Client, ClientSession, Transport};
#[cfg(feature = "serial")]
pub use serial::{LineStats, Serial, SerialClient};
#[cfg(feature = "tcp")]
pub use tcp::{Tcp, TcpClient};

pub use mq_core;
pub use mq_core::Instant;
pub use mq_core::client::{
    AckError, Chunk, Config, ConfigError, CreditError, Delivery, DeliveryId, Event, PublishError,
    PublishId, PublishOptions, ReplyAddress, RequestError, RequestFailure, RequestId,
    RequestOptions, State, Stats, SubId, SubscribeError, SubscribeOptions, UnsubscribeError,
};
pub use mq_core::wire::{Meta, QoS, Reason, SessionMode, Start};

#[cfg(feature = "serial")]
pub use embedded_io;
#[cfg(feature = "tcp")]
pub use smoltcp;
