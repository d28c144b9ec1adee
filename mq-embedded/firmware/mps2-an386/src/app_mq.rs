//! The mq application (`mode=mq`, the `mq` build): a device that talks to `mqd`
//! on the host through mq-embedded's [`TcpClient`] over smoltcp.
//!
//! It gets an address, opens a session under its id (`id`, persistent unless
//! `session=clean`), subscribes to `dev.<id>.cmd` (QoS 1), and publishes the
//! telemetry messages `1..=telemetry` to `dev.<id>.telemetry` at QoS 1, one
//! every `interval_ms` (or as fast as the outbox takes them). It executes each
//! command it receives (records its number, see `firmware::ledger`) and acks
//! it. When the broker goes away it keeps publishing into its outbox, and the
//! client reconnects with backoff and resumes the session: the broker delivers
//! what queued for the device meanwhile, the client resends what the broker
//! had not acknowledged. Delivery decisions are all mq-core's; the
//! application only counts.
//!
//! Once the broker has stored every telemetry message and every command
//! `1..=commands` is executed, it closes the session and exits 0; a deadline,
//! a refusal or a bad command ends it with the code that names it.
//!
//! Lines `cargo xtask qemu` reads (it acts on some):
//! - `mq: subscribed to dev.<id>.cmd`
//! - `mq: connected (session present: yes|no), N publishes outstanding` (queued
//!   or sent but not acknowledged: the client sends them now)
//! - `mq: disconnected (REASON), N publishes unacknowledged`
//! - `mq: marker: telemetry N queued` (with `marker=N`)
//! - `mq rate telemetry msgs=M micros=T rate=R msg/s` (first publish to the
//!   last acknowledgement) and `mq rate commands ...` (first command executed
//!   to the last)
//! - `mq: done telemetry=M duplicates=D commands=N again=A connections=C resumed=R`

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;
use core::time::Duration;

use firmware::board::{Board, ExitCode};
use firmware::config::{CommandStart, Config, MAX_PAYLOAD, Mode};
use firmware::lan9118::Lan9118;
use firmware::ledger::{Commands, Executed, telemetry_payload};
use firmware::run::{self, Network};
use firmware::stack;
use mq_embedded::smoltcp::iface::SocketHandle;
use mq_embedded::smoltcp::socket::{AnySocket, tcp};
use mq_embedded::smoltcp::time::Instant as NetInstant;
use mq_embedded::smoltcp::wire::{IpAddress, IpEndpoint};
use mq_embedded::{
    AckError, DeliveryId, Event, Instant, PublishError, PublishOptions, QoS, SessionMode, Start,
    Storage, SubId, SubscribeOptions, TcpClient,
};

use crate::console::{eprintln, println};
use crate::device::{self, Telemetry, Topic, device_topic};

/// Publishes until the broker has stored them: about 35 telemetry messages of
/// a few bytes (each takes its topic, payload, framing and 32 bytes).
const OUTBOX: usize = 2048;
/// Commands received, until the application takes them.
const INBOX: usize = 1024;
/// One frame each way. The client announces the largest frame `RX` holds and
/// fragments its publishes to what `TX` holds (it lowers
/// `Config::max_frame_out` to fit), so `mqd`'s 1 MiB limit costs nothing here.
const RX: usize = 1024;
const TX: usize = 640;
/// One subscription (the commands); commands held unacked at once, which is
/// also the credit the broker gets.
const SUBS: usize = 1;
const HELD: usize = 8;
/// No requests: the request-reply table and code compile away.
const REQS: usize = 0;

type Client = TcpClient<'static, SUBS, HELD, REQS>;

// Topics are `dev.<id>.cmd` and `dev.<id>.telemetry` (`device_topic`).

/// How long closing may take at the end before the run ends anyway.
const CLOSE_WAIT_MICROS: u64 = 1_000_000;

type Outcome<T = ()> = Result<T, ExitCode>;

pub fn run(board: &mut Board, eth: Lan9118<'static>, config: &Config) -> ExitCode {
    if config.mode != Mode::Mq {
        eprintln!("error: this firmware runs `mode=mq` only (the mq build)");
        return ExitCode::Config;
    }
    let Network { mut net, tcp, seed } = run::network(eth, config);
    let deadline = config.timeout_ms.saturating_mul(1000);
    let result = Device::new(config, tcp, seed).and_then(|(device, client)| {
        let startup = stack::checkpoint();
        let result = device
            .wait_for_address(board, &mut net, deadline)
            .and_then(|()| device.run(client, board, &mut net, deadline));
        println!(
            "mq: stack {startup} bytes at most until the client was built, {} bytes at most since",
            stack::since_checkpoint()
        );
        result
    });
    run::print_link(&net.device);
    match result {
        Ok(()) => ExitCode::Success,
        Err(code) => code,
    }
}

type Net = firmware::net::Net<'static, Lan9118<'static>>;

/// What to do with the client once an event (which borrows it) is gone.
enum FollowUp {
    Nothing,
    Ack(DeliveryId),
    Connected(bool),
    Disconnected(mq_embedded::Reason),
}

/// The application: its ledger and counters (the client is apart: the events
/// it returns borrow it).
struct Device {
    commands: Commands,
    command_topic: Topic,
    commands_sub: SubId,
    start: Start,
    first_command: Option<u64>,
    all_commands: Option<u64>,
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
        telemetry: Telemetry::IDLE,
        connections: 0,
        resumed: 0,
        closing: false,
        closed: false,
    };

    /// Not inlined: building the client takes a large stack frame for a
    /// moment, which must not stay allocated under the whole run.
    #[inline(never)]
    fn new(
        config: &Config,
        tcp: SocketHandle,
        seed: u64,
    ) -> Outcome<(&'static mut Device, &'static mut Client)> {
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
        mq.limits.keepalive_ms = 5_000;
        mq.limits.credit = HELD as u32;
        mq.reconnect_min = Duration::from_millis(50);
        mq.reconnect_max = Duration::from_millis(500);
        mq.connect_timeout = Duration::from_secs(2);
        // Fresh per boot, so the broker's duplicate filter never confuses two
        // boots' sequences.
        mq.producer = Some(seed | 1 << 63);
        mq.seed = seed;
        // A const-initialized static (all zeros, in .bss) rather than a
        // singleton: nothing this size passes through the stack.
        static mut MQ_STORAGE: Storage<OUTBOX, INBOX, RX, TX> = Storage::new();
        // SAFETY: `run` runs once (main calls it once), so this is the only
        // reference to the storage ever made.
        let storage = unsafe { &mut *addr_of_mut!(MQ_STORAGE) };
        let broker = IpEndpoint::new(IpAddress::Ipv4(config.host), config.port);
        // Built in the static itself: the client never passes through the
        // stack (built by value, it took a 5.4 KB stack frame once).
        static mut MQ_CLIENT: MaybeUninit<Client> = MaybeUninit::uninit();
        // SAFETY: as for the storage: the only reference ever made.
        let slot = unsafe { &mut *addr_of_mut!(MQ_CLIENT) };
        let client = match TcpClient::new_in(slot, mq, tcp, broker, storage.buffers()) {
            Ok(client) => client,
            Err(err) => {
                eprintln!("error: mq client: {err}");
                return Err(ExitCode::Config);
            }
        };
        println!(
            "mq: client {} bytes, buffers {} bytes (outbox {OUTBOX}, inbox {INBOX}, rx {RX}, tx {TX})",
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

    fn wait_for_address(&mut self, board: &mut Board, net: &mut Net, deadline: u64) -> Outcome {
        loop {
            let now = device::now_micros();
            // One reading of the clock a round, as in `run`.
            let net_now = NetInstant::from_micros(i64::try_from(now).unwrap_or(i64::MAX));
            if now >= deadline {
                eprintln!("error: deadline passed while waiting for an address");
                return Err(ExitCode::Timeout);
            }
            if let Some(event) = net.poll(net_now) {
                run::print_address(event);
            }
            if net.address().is_some() {
                return Ok(());
            }
            let delay = net.poll_delay(net_now).map(|d| d.total_micros());
            let until_deadline = deadline.saturating_sub(now);
            board.idle(Some(
                delay.map_or(until_deadline, |d| d.min(until_deadline)),
            ));
        }
    }

    /// Not inlined: its frame stays off the stack while the client is built.
    #[inline(never)]
    fn run(
        &mut self,
        client: &mut Client,
        board: &mut Board,
        net: &mut Net,
        deadline: u64,
    ) -> Outcome {
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
            // The network's time from the same reading: the board's clock
            // is read once a round until the sleep (each reading is inlined).
            let net_now = NetInstant::from_micros(i64::try_from(t).unwrap_or(i64::MAX));
            if t >= deadline {
                return Err(self.deadline_passed(client));
            }
            if self.closing && t >= close_by {
                eprintln!("warning: the session did not close within a second");
                break;
            }
            if let Some(event) = net.poll(net_now) {
                run::print_address(event);
            }
            if !self.closing {
                self.publish_due(client, now, t)?;
            }
            while let Some(event) =
                client.poll(now, &mut net.iface, &mut net.device, &mut net.sockets)
            {
                match self.on_event(&event, t)? {
                    FollowUp::Nothing => {}
                    FollowUp::Ack(id) => match client.ack(id) {
                        // Arrived on an earlier connection: the ack is sent
                        // when the broker redelivers it.
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
            if self.closed && socket_closed(client, net) {
                break;
            }
            let mut wake = deadline.min(close_by);
            // The session's timers: the interface's deadline is `poll_delay`'s
            // below (`client.poll_at` would ask the interface a second time).
            if let Some(at) = client.session().poll_timeout() {
                wake = wake.min(at.as_micros());
            }
            if let Some(delay) = net.poll_delay(net_now) {
                wake = wake.min(t.saturating_add(delay.total_micros()));
            }
            let telemetry = &self.telemetry;
            if !self.closing && telemetry.next <= telemetry.total && !telemetry.blocked {
                wake = wake.min(telemetry.next_at);
            }
            board.idle(Some(wake.saturating_sub(device::now_micros())));
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

    // By reference: taken by value, the event was copied into it (36
    // bytes more).
    fn on_event(&mut self, event: &Event<'_>, t: u64) -> Outcome<FollowUp> {
        Ok(match *event {
            Event::Connected { session_present } => {
                self.connections += 1;
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
        if let (Some(from), Some(to)) = (telemetry.first_queued, telemetry.all_stored) {
            print_rate("telemetry", telemetry.total, to - from);
        }
        if let (Some(from), Some(to)) = (self.first_command, self.all_commands) {
            print_rate("commands", self.commands.expected(), to - from);
        }
    }

    /// Says what is missing at the deadline.
    // Out of line: inlined into `run`'s loop it was 108 bytes more.
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
        ExitCode::Timeout
    }
}

/// The close handshake is over: the broker has had everything, acks too.
// Found by its handle among the set's sockets rather than with `get`, which
// panics for a handle of the wrong type: the same socket, in less code.
fn socket_closed(client: &Client, net: &Net) -> bool {
    net.sockets.iter().any(|(handle, socket)| {
        handle == client.socket()
            && tcp::Socket::downcast(socket)
                .is_some_and(|s| matches!(s.state(), tcp::State::TimeWait | tcp::State::Closed))
    })
}

/// `mq rate WHAT msgs=N micros=T rate=R msg/s`, which `cargo xtask qemu` collects.
fn print_rate(what: &str, msgs: u32, micros: u64) {
    let micros = micros.max(1);
    let rate = u64::from(msgs).saturating_mul(1_000_000) / micros;
    println!("mq rate {what} msgs={msgs} micros={micros} rate={rate} msg/s");
}
