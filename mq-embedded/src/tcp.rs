//! The driver over a smoltcp TCP socket: connects to the broker, reconnects
//! after a loss with the session's backoff, and resumes the session.

use core::mem::MaybeUninit;
use mq_core::__mq_debug as debug;

use mq_core::Instant;
use mq_core::client::{Config, Event, Framer, StreamOnly};
use mq_core::framing::stream::{Split, StreamDecoder};
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::tcp::{self, State as TcpState};
use smoltcp::wire::IpEndpoint;

use crate::buffers::{BufferError, Buffers};
use crate::client::{Client, ClientSession, Link, LinkStatus, Transport, sealed};

/// Local ports are taken from the dynamic range, one per connection attempt.
const FIRST_PORT: u16 = 49_152;
const PORTS: u16 = 16_384;

/// An mq client over a smoltcp TCP socket (see the crate docs for the loop).
pub type TcpClient<'a, const SUBS: usize = 8, const HELD: usize = 32, const REQS: usize = 4> =
    Client<'a, Tcp<'a>, SUBS, HELD, REQS>;

/// The TCP half of a [`TcpClient`]: which socket, which broker, and the receive
/// buffer.
pub struct Tcp<'a> {
    socket: SocketHandle,
    broker: IpEndpoint,
    rx: &'a mut [u8],
    rx_len: usize,
    port: u16,
}

impl sealed::Sealed for Tcp<'_> {}

/// A TCP client's session writes stream framing only.
impl Transport for Tcp<'_> {
    type Framer = StreamOnly;
    const FRAMER: StreamOnly = StreamOnly;
}

impl Tcp<'_> {
    /// The next local port, never 0.
    fn next_port(&mut self) -> u16 {
        self.port = FIRST_PORT + (self.port.wrapping_add(1) % PORTS);
        self.port
    }

    /// Whether `rx` holds a whole frame (which the session will take once the
    /// application drained its events).
    fn holds_frame(&self) -> bool {
        let input = self.rx.get(..self.rx_len).unwrap_or(&[]);
        matches!(
            StreamDecoder::new(u32::MAX).split(input),
            Ok(Split::Whole { .. })
        )
    }
}

/// The socket and the interface, for one poll.
struct TcpLink<'x, 'a, 's> {
    tcp: &'x mut Tcp<'a>,
    iface: &'x mut Interface,
    sockets: &'x mut SocketSet<'s>,
}

impl<'s> TcpLink<'_, '_, 's> {
    fn socket(&mut self) -> &mut tcp::Socket<'s> {
        self.sockets.get_mut::<tcp::Socket>(self.tcp.socket)
    }
}

impl Link for TcpLink<'_, '_, '_> {
    fn open(&mut self, _now: Instant) -> bool {
        self.tcp.rx_len = 0;
        let port = self.tcp.next_port();
        let broker = self.tcp.broker;
        let socket = self.sockets.get_mut::<tcp::Socket>(self.tcp.socket);
        if socket.is_open() {
            // What is left of the last connection (a FIN never answered).
            socket.abort();
        }
        socket.set_nagle_enabled(false);
        debug!("connecting to the broker from port {}", port);
        socket.connect(self.iface.context(), broker, port).is_ok()
    }

    fn status(&mut self) -> LinkStatus {
        let holds_frame = self.tcp.holds_frame();
        let socket = self.socket();
        match socket.state() {
            TcpState::SynSent | TcpState::SynReceived => LinkStatus::Opening,
            TcpState::Established => LinkStatus::Up,
            // The broker closed: up while what it sent before is still being read.
            _ if socket.may_recv() || holds_frame => LinkStatus::Up,
            _ => LinkStatus::Down,
        }
    }

    fn close(&mut self) {
        self.socket().close();
    }

    // One contiguous piece of the socket's ring a call (`send_slice`, which
    // fills both pieces, had the ring's copy inlined twice); the engine asks
    // again for the rest.
    const SEND_AGAIN: bool = true;

    fn send(&mut self, bytes: &[u8]) -> usize {
        self.socket()
            .send(|free| {
                let n = free.len().min(bytes.len());
                if let (Some(to), Some(from)) = (free.get_mut(..n), bytes.get(..n)) {
                    to.copy_from_slice(from);
                }
                (n, n)
            })
            .unwrap_or(0)
    }

    fn receive<const SUBS: usize, const HELD: usize, const REQS: usize, F: Framer>(
        &mut self,
        now: Instant,
        session: &mut ClientSession<'_, SUBS, HELD, REQS, F>,
    ) {
        let socket = self.sockets.get_mut::<tcp::Socket>(self.tcp.socket);
        let tcp = &mut *self.tcp;
        loop {
            // One contiguous piece of the socket's ring a round (`recv_slice`,
            // which takes both, had the ring's copy inlined twice): a round
            // that took bytes is followed by another.
            let mut took = 0;
            if let Some(free) = tcp.rx.get_mut(tcp.rx_len..)
                && !free.is_empty()
                && socket.can_recv()
            {
                took = socket
                    .recv(|ring| {
                        let n = ring.len().min(free.len());
                        if let (Some(to), Some(from)) = (free.get_mut(..n), ring.get(..n)) {
                            to.copy_from_slice(from);
                        }
                        (n, n)
                    })
                    .unwrap_or(0);
                tcp.rx_len += took;
            }
            let input = tcp.rx.get(..tcp.rx_len).unwrap_or(&[]);
            if input.is_empty() {
                return;
            }
            // Whole frames only; fewer when the session is backed up.
            let used = session.handle_input(now, input).min(input.len());
            // `used <= rx_len <= rx.len()`: in range, and seen to be (no
            // panicking path).
            if let Some(held) = tcp.rx.get_mut(..tcp.rx_len)
                && used <= held.len()
            {
                held.copy_within(used.., 0);
            }
            tcp.rx_len -= used;
            if used == 0 && took == 0 {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;

fn timestamp(now: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(i64::try_from(now.as_micros()).unwrap_or(i64::MAX))
}

impl<'a, const SUBS: usize, const HELD: usize, const REQS: usize>
    Client<'a, Tcp<'a>, SUBS, HELD, REQS>
{
    /// A client that will connect `socket` (a TCP socket in the caller's
    /// [`SocketSet`], with its own buffers) to the broker at `broker`, working
    /// in `buffers`. The largest frames each way are what `rx` and `tx` hold.
    /// Nothing happens until [`connect`](Self::connect) and
    /// [`poll`](Self::poll); attempts made before the interface has an
    /// address (DHCP still running) fail and are retried with backoff.
    ///
    /// Name the type where the client is bound (`let client: TcpClient<'_> =
    /// TcpClient::new(..)?`, or `TcpClient<'_, SUBS, HELD>`): Rust does not
    /// infer the table sizes from the alias's defaults.
    pub fn new(
        config: Config,
        socket: SocketHandle,
        broker: IpEndpoint,
        buffers: Buffers<'a>,
    ) -> Result<Self, BufferError> {
        let port = (config.seed % u64::from(PORTS)) as u16;
        Client::new_with(config, buffers, |rx| Tcp {
            socket,
            broker,
            rx,
            rx_len: 0,
            port,
        })
    }

    /// [`new`](Self::new), built in `slot` rather than returned: the client
    /// (several KB, the session's tables) never passes through the stack,
    /// which building it by value makes as deep as it is large, once. For a
    /// client in a `static`.
    pub fn new_in<'s>(
        slot: &'s mut MaybeUninit<Self>,
        config: Config,
        socket: SocketHandle,
        broker: IpEndpoint,
        buffers: Buffers<'a>,
    ) -> Result<&'s mut Self, BufferError> {
        let port = (config.seed % u64::from(PORTS)) as u16;
        Client::new_in_with(slot, config, buffers, |rx| Tcp {
            socket,
            broker,
            rx,
            rx_len: 0,
            port,
        })
    }

    /// Does everything that is due, then returns the next event; call it until
    /// it returns `None` (the interface and the socket are then idle), then
    /// sleep until [`poll_at`](Self::poll_at) or the network wakes you.
    ///
    /// Each call polls `iface` (so the other sockets in `sockets` are served
    /// too), moves received bytes into the session, runs its timers (keepalive,
    /// reconnect, connect timeout), opens or closes the TCP connection as the
    /// session asks, and queues what the session sends. A message borrows the
    /// client until the next call: copy the [`DeliveryId`](crate::DeliveryId)
    /// out, let the event go, then [`ack`](Self::ack).
    ///
    /// [`Event::Connect`] (the connection is being opened) and
    /// [`Event::Disconnected`] (it ended; a reconnect follows) are for
    /// information: the client acts on them itself.
    ///
    /// # Panics
    ///
    /// If the socket handle given to [`new`](Self::new) is not a TCP socket in
    /// `sockets`.
    pub fn poll<D: Device + ?Sized>(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        device: &mut D,
        sockets: &mut SocketSet<'_>,
    ) -> Option<Event<'_>> {
        let at = timestamp(now);
        iface.poll(at, device, sockets);
        let mut link = TcpLink {
            tcp: &mut self.transport,
            iface,
            sockets,
        };
        if self.engine.drive(now, &mut link) {
            // Out at once, rather than at the next call.
            iface.poll(at, device, sockets);
        }
        self.engine.session.poll_event()
    }

    /// When to call [`poll`](Self::poll) next at the latest (a time at or
    /// before `now` means at once): the session's timers and the interface's.
    pub fn poll_at(
        &self,
        now: Instant,
        iface: &mut Interface,
        sockets: &SocketSet<'_>,
    ) -> Option<Instant> {
        let net = iface
            .poll_at(timestamp(now), sockets)
            .map(|t| Instant::from_micros(u64::try_from(t.total_micros()).unwrap_or(0)));
        match (self.engine.session.poll_timeout(), net) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The socket the client uses.
    pub fn socket(&self) -> SocketHandle {
        self.transport.socket
    }

    /// The broker's address.
    pub fn broker(&self) -> IpEndpoint {
        self.transport.broker
    }

    /// Connect to another address from the next connection on (the current
    /// one, if any, is kept).
    pub fn set_broker(&mut self, broker: IpEndpoint) {
        self.transport.broker = broker;
    }
}
