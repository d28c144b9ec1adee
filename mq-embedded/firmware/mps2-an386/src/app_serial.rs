//! The mq application over a serial line (`mode=mq`, the `serial` build): the
//! device of `app_mq.rs` (same work, same keys, same lines for `cargo xtask
//! qemu`), talking to `mqd --serial` through UART0 with mq-embedded's
//! [`SerialClient`] instead of TCP. The network is not used; the LAN9118 is
//! brought up only for the board's clock.
//!
//! A serial line tells nothing when the broker goes away: the session notices
//! by its keepalive, so this build pings every half second ([`KEEPALIVE_MS`]);
//! a restarted broker answers the next frame with an error. Either way the
//! client re-handshakes with backoff and resumes the session, as over TCP.
//! The telemetry rate counts from the first connection (or the first publish,
//! if later): the first handshake goes out before `mqd` has opened the line.
//!
//! Besides `app_mq.rs`'s lines it prints, at the end:
//! - `mq: line frames=F noise=N overflows=O stale=S read_errors=R write_errors=W`
//! - `idle: N sleeps, M UART interrupts`

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;
use core::time::Duration;

use crate::console::{eprintln, println};
use crate::device::{self, Telemetry, Topic, device_topic};
use firmware::board::{Board, ExitCode};
use firmware::clock;
use firmware::config::{CommandStart, Config, MAX_PAYLOAD, Mode};
use firmware::lan9118::Lan9118;
use firmware::ledger::{Commands, Executed, telemetry_payload};
use firmware::stack;
use firmware::uart::{self, Uart};
use mq_embedded::{
    AckError, DeliveryId, Event, Instant, PublishError, PublishOptions, QoS, SerialClient,
    SessionMode, Start, Storage, SubId, SubscribeOptions,
};

/// The line's speed. QEMU's UART does not pace bytes by it: what limits the
/// rate there is the emulation (one byte per register access and interrupt).
const BAUD: u32 = 115_200;

/// A serial line only notices a silent broker by the keepalive: 1 s, so a
/// restart is noticed within 1.5 s (a ping of about 20 bytes every 0.5 s).
const KEEPALIVE_MS: u32 = 1_000;

/// The buffers and tables of `app_mq.rs`; the frame buffers hold the serial
/// framing's few bytes more (COBS, CRC, delimiter).
const OUTBOX: usize = 2048;
const INBOX: usize = 1024;
const RX: usize = 1024;
const TX: usize = 640;
const SUBS: usize = 1;
const HELD: usize = 8;
const REQS: usize = 0;

type Client = SerialClient<'static, Uart, SUBS, HELD, REQS>;

// Topics are `dev.<id>.cmd` and `dev.<id>.telemetry` (`device_topic`).

/// How long closing may take at the end before the run ends anyway.
const CLOSE_WAIT_MICROS: u64 = 1_000_000;

/// How long the line stays up after the close frame went out. A serial line
/// has no close handshake telling that the host read everything, and QEMU
/// ending the run closes the terminal, which drops what the host had not read
/// yet (the last acks, the close).
const LINGER_MICROS: u64 = 300_000;

type Outcome<T = ()> = Result<T, ExitCode>;

pub fn run(board: &mut Board, eth: Lan9118<'static>, config: &Config) -> ExitCode {
    // The board's clock runs on the LAN9118's counter; the network is unused.
    // Differs from boot to boot, as the TCP build's (`run::network`).
    let mac = eth.mac_address();
    let seed = clock::now_ticks() ^ mac.iter().fold(0, |seed, &b| seed << 8 | u64::from(b));
    if config.mode != Mode::Mq {
        eprintln!("error: this firmware runs `mode=mq` only (the serial build)");
        return ExitCode::Config;
    }
    let deadline = config.timeout_ms.saturating_mul(1000);
    let result = Device::new(config, seed).and_then(|(device, client)| {
        let startup = stack::checkpoint();
        let result = device.run(client, board, deadline);
        println!(
            "mq: stack {startup} bytes at most until the client was built, {} bytes at most since",
            stack::since_checkpoint()
        );
        print_line(client);
        result
    });
    let idle = firmware::board::idle_counters();
    println!(
        "idle: {} sleeps, {} UART interrupts",
        idle.sleeps,
        uart::rx_interrupts()
    );
    match result {
        Ok(()) => ExitCode::Success,
        Err(code) => code,
    }
}

/// `mq: line ...`: what the line saw.
fn print_line(client: &Client) {
    let line = client.line_stats();
    let d = line.decoder;
    println!(
        "mq: line frames={} noise={} overflows={} stale={} read_errors={} write_errors={}",
        d.frames,
        d.cobs_errors + d.crc_errors + d.malformed,
        d.overflows,
        line.stale_frames,
        line.read_errors,
        line.write_errors
    );
}

/// What to do with the client once an event (which borrows it) is gone.
enum FollowUp {
    Nothing,
    Ack(DeliveryId),
    Connected(bool),
    Disconnected(mq_embedded::Reason),
}

/// The application: its ledger and counters.
struct Device {
    commands: Commands,
    command_topic: Topic,
    commands_sub: SubId,
    start: Start,
    first_command: Option<u64>,
    all_commands: Option<u64>,
    /// When the first connection came up: the telemetry rate counts from
    /// there (`mqd` opens the line only after QEMU started, so the first
    /// handshake times out, which is no measure of the line).
    first_connected: Option<u64>,
    telemetry: Telemetry,
    connections: u32,
    resumed: u32,
    closing: bool,
    closed: bool,
}

impl Device {
    /// Before [`new`](Self::new): no topics, nothing expected, nothing done;
    /// all zeros, so that its static is in .bss.
    const IDLE: Device = Device {
        commands: Commands::new(0),
        command_topic: Topic::new(),
        commands_sub: SubId(0),
        start: Start::New,
        first_command: None,
        all_commands: None,
        first_connected: None,
        telemetry: Telemetry::IDLE,
        connections: 0,
        resumed: 0,
        closing: false,
        closed: false,
    };

    /// Not inlined, as in `app_mq.rs`: its frame must not stay allocated.
    #[inline(never)]
    fn new(config: &Config, seed: u64) -> Outcome<(&'static mut Device, &'static mut Client)> {
        let settings = &config.mq;
        let id = settings.id.as_str();
        let mut mq = mq_embedded::Config::new(id).map_err(|err| {
            eprintln!("error: client id `{}`: {}", id, err.as_str());
            ExitCode::Config
        })?;
        mq.mode = if settings.resume {
            SessionMode::Resume
        } else {
            SessionMode::Clean
        };
        mq.limits.keepalive_ms = KEEPALIVE_MS;
        mq.limits.credit = HELD as u32;
        mq.reconnect_min = Duration::from_millis(50);
        mq.reconnect_max = Duration::from_millis(500);
        mq.connect_timeout = Duration::from_secs(1);
        // Fresh per boot, so the broker's duplicate filter never confuses two
        // boots' sequences.
        mq.producer = Some(seed | 1 << 63);
        mq.seed = seed;
        static mut MQ_STORAGE: Storage<OUTBOX, INBOX, RX, TX> = Storage::new();
        // SAFETY: `run` runs once (main calls it once), so this is the only
        // reference to the storage ever made.
        let storage = unsafe { &mut *addr_of_mut!(MQ_STORAGE) };
        // Built in the static itself: the client never passes through the stack.
        static mut MQ_CLIENT: MaybeUninit<Client> = MaybeUninit::uninit();
        // SAFETY: as for the storage: the only reference ever made.
        let slot = unsafe { &mut *addr_of_mut!(MQ_CLIENT) };
        let client = match SerialClient::new_in(slot, mq, Uart::uart0(BAUD), storage.buffers()) {
            Ok(client) => client,
            Err(err) => {
                eprintln!("error: mq client: {err}");
                return Err(ExitCode::Config);
            }
        };
        println!(
            "mq: serial client {} bytes, buffers {} bytes (outbox {OUTBOX}, inbox {INBOX}, rx {RX}, tx {TX}), UART0 at {BAUD} baud",
            core::mem::size_of::<Client>(),
            core::mem::size_of::<Storage<OUTBOX, INBOX, RX, TX>>()
        );
        // The device in a static too, as it is before the run (`IDLE`: in
        // .bss): only what differs is written, and nothing is returned by
        // value.
        static mut DEVICE: Device = Device::IDLE;
        // SAFETY: as for the storage.
        let device = unsafe { &mut *addr_of_mut!(DEVICE) };
        device.commands.expect(settings.commands);
        device_topic(&mut device.command_topic, id, "cmd");
        if let CommandStart::Seq(seq) = settings.from {
            device.start = Start::Seq(seq);
        }
        let telemetry = &mut device.telemetry;
        device_topic(&mut telemetry.topic, id, "telemetry");
        telemetry.total = settings.telemetry;
        telemetry.next = 1;
        telemetry.interval = settings.interval_ms.saturating_mul(1000);
        telemetry.size = settings.payload;
        telemetry.marker = settings.marker;
        Ok((device, client))
    }

    fn run(&mut self, client: &mut Client, board: &mut Board, deadline: u64) -> Outcome {
        let now = Instant::from_micros(device::now_micros());
        client.connect(now);
        let options = SubscribeOptions {
            start: self.start,
            credit: HELD as u32,
            ..SubscribeOptions::default()
        };
        self.commands_sub = client
            .subscribe(now, &self.command_topic, &options)
            .map_err(|err| {
                eprintln!(
                    "error: subscribe to {}: {}",
                    self.command_topic,
                    err.as_str()
                );
                ExitCode::Config
            })?;
        let mut close_by = deadline;
        loop {
            let t = device::now_micros();
            let now = Instant::from_micros(t);
            if t >= deadline {
                return Err(self.deadline_passed(client));
            }
            if self.closing && t >= close_by {
                eprintln!("warning: the session did not close within a second");
                break;
            }
            if !self.closing {
                self.publish_due(client, now, t)?;
            }
            while let Some(event) = client.poll(now) {
                match self.on_event(&event, t)? {
                    FollowUp::Nothing => {}
                    FollowUp::Ack(id) => match client.ack(id) {
                        // Arrived on an earlier connection: acked when redelivered.
                        Ok(()) | Err(AckError::Stale) => {}
                        Err(err) => {
                            eprintln!("error: ack: {}", err.as_str());
                            return Err(ExitCode::Mismatch);
                        }
                    },
                    FollowUp::Connected(present) => println!(
                        "mq: connected (session present: {}), {} publishes outstanding",
                        if present { "yes" } else { "no" },
                        client.session().outbox_len()
                    ),
                    FollowUp::Disconnected(reason) => println!(
                        "mq: disconnected ({}), {} publishes unacknowledged",
                        reason.as_str(),
                        client.session().outbox_len()
                    ),
                }
            }
            if !self.closing && self.done() {
                self.report();
                self.closing = true;
                close_by = t + CLOSE_WAIT_MICROS;
                client.close(now);
                continue;
            }
            if self.closed {
                // The close frame is written; let the UART finish it, and the
                // host read it.
                let _ = mq_embedded::embedded_io::Write::flush(client.io_mut());
                linger(board);
                break;
            }
            let mut wake = deadline.min(close_by);
            if let Some(at) = client.poll_at() {
                wake = wake.min(at.as_micros());
            }
            let telemetry = &self.telemetry;
            if !self.closing && telemetry.next <= telemetry.total && !telemetry.blocked {
                wake = wake.min(telemetry.next_at);
            }
            board.idle_unless(
                Some(wake.saturating_sub(device::now_micros())),
                uart::rx_waiting,
            );
        }
        println!(
            "mq: done telemetry={} duplicates={} commands={} again={} connections={} resumed={}",
            self.telemetry.stored,
            self.telemetry.duplicates,
            self.commands.executed(),
            self.commands.again(),
            self.connections,
            self.resumed
        );
        Ok(())
    }

    fn done(&self) -> bool {
        self.telemetry.stored >= self.telemetry.total && self.commands.done()
    }

    /// Queues the telemetry messages that are due, until the outbox is full.
    fn publish_due(&mut self, client: &mut Client, now: Instant, t: u64) -> Outcome {
        let qos1 = PublishOptions {
            qos: QoS::AtLeastOnce,
            ..PublishOptions::default()
        };
        let telemetry = &mut self.telemetry;
        // On the stack: in the device's static it would count as static RAM
        // the mq build adds.
        let mut buf = [0; MAX_PAYLOAD as usize];
        while telemetry.next <= telemetry.total && t >= telemetry.next_at {
            let n = telemetry.next;
            let payload = telemetry_payload(n, telemetry.size, &mut buf);
            match client.publish(now, &telemetry.topic, payload, &qos1) {
                Ok(_) => {
                    telemetry.blocked = false;
                    telemetry.first_queued.get_or_insert(t);
                    if n == telemetry.marker {
                        println!("mq: marker: telemetry {n} queued");
                    }
                    telemetry.next += 1;
                    telemetry.next_at = t + telemetry.interval;
                }
                // Queued again once the broker acknowledges earlier ones.
                Err(PublishError::OutboxFull) => {
                    telemetry.blocked = true;
                    return Ok(());
                }
                Err(err) => {
                    eprintln!("error: publish telemetry {n}: {}", err.as_str());
                    return Err(ExitCode::Config);
                }
            }
        }
        Ok(())
    }

    // By reference, as in the TCP application.
    fn on_event(&mut self, event: &Event<'_>, t: u64) -> Outcome<FollowUp> {
        Ok(match *event {
            Event::Connected { session_present } => {
                self.connections += 1;
                self.first_connected.get_or_insert(t);
                self.resumed += u32::from(session_present);
                FollowUp::Connected(session_present)
            }
            Event::Disconnected { reason } => FollowUp::Disconnected(reason),
            Event::Subscribed { sub } if sub == self.commands_sub => {
                println!("mq: subscribed to {}", self.command_topic);
                FollowUp::Nothing
            }
            Event::Published { duplicate, .. } => {
                let telemetry = &mut self.telemetry;
                telemetry.stored += 1;
                telemetry.duplicates += u32::from(duplicate);
                telemetry.blocked = false;
                if telemetry.stored == telemetry.total {
                    telemetry.all_stored = Some(t);
                }
                FollowUp::Nothing
            }
            Event::Message(ref m) => {
                match self.commands.execute(m.payload) {
                    Ok(Executed::New(_)) => {
                        self.first_command.get_or_insert(t);
                        if self.commands.done() {
                            self.all_commands = Some(t);
                        }
                    }
                    Ok(Executed::Again(_)) => {}
                    Err(err) => {
                        eprintln!("error: command {} on {}: {err}", m.seq, m.topic);
                        return Err(ExitCode::Mismatch);
                    }
                }
                if m.id.needs_ack() {
                    FollowUp::Ack(m.id)
                } else {
                    FollowUp::Nothing
                }
            }
            Event::Chunk(ref c) => {
                eprintln!(
                    "error: command {} on {} is {} bytes: not a command",
                    c.seq, c.topic, c.total
                );
                return Err(ExitCode::Mismatch);
            }
            Event::PublishRejected { id, reason } => {
                eprintln!(
                    "error: the broker refused publish {}: {} (code {})",
                    id.0,
                    reason.as_str(),
                    reason.code()
                );
                return Err(ExitCode::Refused);
            }
            Event::SubscribeRejected { reason, .. } => {
                eprintln!(
                    "error: the broker refused the subscription: {} (code {})",
                    reason.as_str(),
                    reason.code()
                );
                return Err(ExitCode::Refused);
            }
            Event::Closed if self.closing => {
                self.closed = true;
                FollowUp::Nothing
            }
            Event::Closed => {
                eprintln!("error: the broker ended the session");
                return Err(ExitCode::Refused);
            }
            _ => FollowUp::Nothing,
        })
    }

    fn report(&self) {
        let telemetry = &self.telemetry;
        if let (Some(queued), Some(to)) = (telemetry.first_queued, telemetry.all_stored) {
            let from = queued.max(self.first_connected.unwrap_or(queued));
            print_rate("telemetry", telemetry.total, to.saturating_sub(from));
        }
        if let (Some(from), Some(to)) = (self.first_command, self.all_commands) {
            print_rate("commands", self.commands.expected(), to - from);
        }
    }

    /// Says what is missing at the deadline.
    // Out of line, as in the TCP application.
    #[inline(never)]
    fn deadline_passed(&self, client: &Client) -> ExitCode {
        let telemetry = &self.telemetry;
        eprintln!(
            "error: deadline passed: telemetry {} of {} stored ({} queued, {} unacknowledged), \
             commands {} of {} executed (first missing: {}), state {}, {} connections",
            telemetry.stored,
            telemetry.total,
            telemetry.next - 1,
            client.session().outbox_len(),
            self.commands.executed(),
            self.commands.expected(),
            self.commands.first_missing().unwrap_or(0),
            client.state().as_str(),
            self.connections
        );
        print_line(client);
        ExitCode::Timeout
    }
}

/// Idles for [`LINGER_MICROS`] (see there).
fn linger(board: &mut Board) {
    let until = device::now_micros().saturating_add(LINGER_MICROS);
    loop {
        let now = device::now_micros();
        if now >= until {
            return;
        }
        board.idle(Some(until - now));
    }
}

/// `mq rate WHAT msgs=N micros=T rate=R msg/s`, which `cargo xtask qemu` collects.
fn print_rate(what: &str, msgs: u32, micros: u64) {
    let micros = micros.max(1);
    let rate = u64::from(msgs).saturating_mul(1_000_000) / micros;
    println!("mq rate {what} msgs={msgs} micros={micros} rate={rate} msg/s");
}
