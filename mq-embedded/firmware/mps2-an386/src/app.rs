//! The application: a TCP smoke test against the host peer of `cargo xtask qemu`.
//!
//! It gets an address (DHCP, static or fallback), connects to `host:port`, then
//! - `echo`: sends `count` length-prefixed frames (see `firmware::pattern`) while
//!   reading the echo back, and checks every byte;
//! - `throughput`: sends `bytes` bytes, waits until they are acknowledged, then
//!   receives `bytes` bytes, checking them, and prints the rate of each direction;
//!
//! then closes the connection and waits for the peer to close too; `connections`
//! times over, each a new connection; then exits 0.
//! Anything else exits with the code that names it (`board::ExitCode`).

use core::fmt;

use firmware::board::{Board, ExitCode};
use firmware::clock;
use firmware::config::{Config, Mode};
use firmware::lan9118::Lan9118;
use firmware::net::Net;
use firmware::pattern::{self, EchoStream};
use firmware::run::{self, Network};
use semihosting::{eprintln, println};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, State};

/// What a step of the application did.
enum Step {
    /// Finished.
    Done,
    /// Moved bytes: poll again before sleeping.
    Progress,
    /// Nothing to do until the network brings something.
    Wait,
}

type Outcome<T = ()> = Result<T, ExitCode>;

/// Prints `error: ...` and returns `code` as the error.
fn fail<T>(code: ExitCode, message: fmt::Arguments<'_>) -> Outcome<T> {
    eprintln!("error: {message}");
    Err(code)
}

pub fn run(board: &mut Board, eth: Lan9118<'static>, config: &Config) -> ExitCode {
    if config.mode == Mode::Mq {
        eprintln!("error: `mode=mq` needs the firmware built with the `mq` feature");
        return ExitCode::Config;
    }
    let Network { net, tcp, seed } = run::network(eth, config);
    let mut stack = Stack {
        board,
        net,
        tcp,
        deadline: config.timeout_ms.saturating_mul(1000),
    };
    let first_port = 49152 + (seed % 16000) as u16;
    let result = (0..config.connections).try_for_each(|n| {
        // A new local port per connection: the peer may still hold the last one.
        stack.connect(config, first_port + n % 300)?;
        match config.mode {
            Mode::Echo => echo(&mut stack, config.count, config.size),
            Mode::Throughput => throughput(&mut stack, config.bytes),
            Mode::Mq => Err(ExitCode::Config),
        }?;
        stack.close()
    });
    run::print_link(&stack.net.device);
    match result {
        Ok(()) => ExitCode::Success,
        Err(code) => code,
    }
}

/// The network with the application's one TCP socket, and the run's deadline.
struct Stack<'b> {
    board: &'b mut Board,
    net: Net<'static, Lan9118<'static>>,
    tcp: SocketHandle,
    /// Microseconds on the board clock.
    deadline: u64,
}

impl Stack<'_> {
    fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.net.sockets.get_mut(self.tcp)
    }

    /// Polls the network and runs `step` until it is done, sleeping whenever
    /// neither made progress; fails with `Timeout` at the deadline.
    fn drive(&mut self, what: &str, mut step: impl FnMut(&mut Self) -> Outcome<Step>) -> Outcome {
        loop {
            let now = clock::now_micros();
            if now >= self.deadline {
                return fail(
                    ExitCode::Timeout,
                    format_args!("deadline passed while {what}"),
                );
            }
            if let Some(event) = self.net.poll(clock::now()) {
                run::print_address(event);
            }
            match step(self)? {
                Step::Done => return Ok(()),
                Step::Progress => continue,
                Step::Wait => {}
            }
            let now = clock::now_micros();
            let network = self.net.poll_delay(clock::now()).map(|d| d.total_micros());
            let until_deadline = self.deadline.saturating_sub(now);
            self.board.idle(Some(
                network.map_or(until_deadline, |d| d.min(until_deadline)),
            ));
        }
    }

    fn connect(&mut self, config: &Config, local_port: u16) -> Outcome {
        self.drive("waiting for an address", |stack| {
            Ok(if stack.net.address().is_some() {
                Step::Done
            } else {
                Step::Wait
            })
        })?;
        let remote = (config.host, config.port);
        let started = clock::now_micros();
        let Stack { net, tcp, .. } = self;
        if let Err(err) = net.sockets.get_mut::<tcp::Socket>(*tcp).connect(
            net.iface.context(),
            remote,
            local_port,
        ) {
            return fail(
                ExitCode::Network,
                format_args!("connect to {}:{}: {err}", config.host, config.port),
            );
        }
        self.drive("connecting", |stack| match stack.socket().state() {
            State::Established => Ok(Step::Done),
            State::SynSent | State::SynReceived => Ok(Step::Wait),
            state => fail(
                ExitCode::Network,
                format_args!(
                    "connecting to {}:{} failed ({state})",
                    config.host, config.port
                ),
            ),
        })?;
        println!(
            "connected to {}:{} in {} ms",
            config.host,
            config.port,
            (clock::now_micros() - started) / 1000
        );
        Ok(())
    }

    /// Closes our side, then waits for the peer to close its side.
    fn close(&mut self) -> Outcome {
        self.socket().close();
        self.drive("closing", |stack| {
            let socket = stack.socket();
            if socket.can_recv() {
                let mut byte = [0];
                let _ = socket.recv_slice(&mut byte);
                return fail(
                    ExitCode::Mismatch,
                    format_args!("the peer sent more than expected"),
                );
            }
            Ok(match socket.state() {
                State::TimeWait | State::Closed => Step::Done,
                _ => Step::Wait,
            })
        })
    }
}

fn echo(stack: &mut Stack<'_>, count: u32, size: u16) -> Outcome {
    let started = clock::now_micros();
    let mut sending = EchoStream::new(count, size);
    let mut checking = EchoStream::new(count, size);
    let mut bytes = 0u64;
    stack.drive("echoing frames", |stack| {
        let socket = stack.socket();
        let mut progress = false;
        if socket.can_send() && !sending.done() {
            let sent = socket.send(|free| {
                let n = free
                    .iter_mut()
                    .map_while(|slot| sending.next_byte().map(|byte| *slot = byte))
                    .count();
                (n, n)
            });
            progress |= matches!(sent, Ok(n) if n > 0);
        }
        if socket.can_recv() {
            let checked = socket.recv(|data| {
                for (n, &got) in data.iter().enumerate() {
                    let (frame, at) = (checking.frame, checking.at);
                    match checking.next_byte() {
                        Some(want) if want == got => {}
                        want => return (n, Err((frame, at, got, want))),
                    }
                }
                (data.len(), Ok(data.len()))
            });
            match checked {
                Ok(Ok(n)) => {
                    bytes += n as u64;
                    progress = true;
                }
                Ok(Err((frame, at, got, Some(want)))) => {
                    return fail(
                        ExitCode::Mismatch,
                        format_args!(
                            "echo frame {frame} byte {at}: got {got:#04x}, sent {want:#04x}"
                        ),
                    );
                }
                Ok(Err((frame, _, _, None))) => {
                    return fail(
                        ExitCode::Mismatch,
                        format_args!("bytes after the last frame ({frame})"),
                    );
                }
                Err(err) => return fail(ExitCode::Network, format_args!("receive: {err}")),
            }
        } else if !socket.may_recv() {
            return fail(
                ExitCode::Network,
                format_args!(
                    "connection closed after {} of {count} frames echoed",
                    checking.frame
                ),
            );
        }
        Ok(if checking.done() {
            Step::Done
        } else if progress {
            Step::Progress
        } else {
            Step::Wait
        })
    })?;
    let micros = (clock::now_micros() - started).max(1);
    println!(
        "echo: {count} frames, {bytes} bytes sent and verified in {} ms",
        micros / 1000
    );
    Ok(())
}

fn throughput(stack: &mut Stack<'_>, bytes: u64) -> Outcome {
    // Up: from the first byte queued until the last one is acknowledged.
    let started = clock::now_micros();
    let mut sent = 0u64;
    stack.drive("sending", |stack| {
        let socket = stack.socket();
        if sent < bytes && socket.can_send() {
            let n = socket
                .send(|free| {
                    let n = free
                        .len()
                        .min(usize::try_from(bytes - sent).unwrap_or(usize::MAX));
                    for (k, slot) in free[..n].iter_mut().enumerate() {
                        *slot = pattern::stream_byte(sent + k as u64);
                    }
                    (n, n)
                })
                .map_err(|err| {
                    eprintln!("error: send: {err}");
                    ExitCode::Network
                })?;
            sent += n as u64;
            return Ok(Step::Progress);
        }
        if !socket.may_send() {
            return fail(
                ExitCode::Network,
                format_args!("connection closed after {sent} bytes sent"),
            );
        }
        Ok(if sent == bytes && socket.send_queue() == 0 {
            Step::Done
        } else {
            Step::Wait
        })
    })?;
    print_rate("up", bytes, clock::now_micros() - started);

    // Down: from the first byte received to the last.
    let mut first = None;
    let mut received = 0u64;
    stack.drive("receiving", |stack| {
        let socket = stack.socket();
        if socket.can_recv() {
            first.get_or_insert_with(clock::now_micros);
            let checked = socket.recv(|data| {
                let n = data
                    .len()
                    .min(usize::try_from(bytes - received).unwrap_or(usize::MAX));
                let bad = data[..n]
                    .iter()
                    .enumerate()
                    .find(|&(k, &got)| got != pattern::stream_byte(received + k as u64));
                match bad {
                    None => (n, Ok(n)),
                    Some((k, &got)) => (k, Err((received + k as u64, got))),
                }
            });
            match checked {
                Ok(Ok(n)) => received += n as u64,
                Ok(Err((at, got))) => {
                    let want = pattern::stream_byte(at);
                    return fail(
                        ExitCode::Mismatch,
                        format_args!("stream byte {at}: got {got:#04x}, want {want:#04x}"),
                    );
                }
                Err(err) => return fail(ExitCode::Network, format_args!("receive: {err}")),
            }
            return Ok(if received == bytes {
                Step::Done
            } else {
                Step::Progress
            });
        }
        if !socket.may_recv() {
            return fail(
                ExitCode::Network,
                format_args!("connection closed after {received} bytes received"),
            );
        }
        Ok(if received == bytes {
            Step::Done
        } else {
            Step::Wait
        })
    })?;
    let from = first.unwrap_or_else(clock::now_micros);
    print_rate("down", bytes, clock::now_micros() - from);
    Ok(())
}

/// One line `cargo xtask qemu` reads: `throughput DIR bytes=N micros=M rate=R B/s`.
fn print_rate(direction: &str, bytes: u64, micros: u64) {
    let micros = micros.max(1);
    let rate = bytes.saturating_mul(1_000_000) / micros;
    println!("throughput {direction} bytes={bytes} micros={micros} rate={rate} B/s");
}
