//! The tokio broker server: one task owns the [`Broker`] and moves bytes, time and
//! store records between it and the sockets. Nothing here decides anything about
//! delivery.
//!
//! Tasks:
//! - the **broker task** owns the broker and every connection's bookkeeping; it
//!   feeds input, drains `poll_store` / `poll_transmit` / `poll_event`, and sleeps
//!   until the next input or `poll_timeout`;
//! - one **reader** and one **writer** task per connection (`server/reader.rs`,
//!   `server/writer.rs`). A reader may have at most `input_budget` bytes
//!   handed to the broker task and not yet consumed (a semaphore of bytes), so
//!   a connection whose input the broker cannot take (its publish is held, its
//!   output backed up) stops being read; a writer's queue holds at most
//!   `write_queue` chunks, and when it is full the broker pauses that
//!   connection's output, which in turn stops its deliveries. On plain TCP the
//!   broker task writes to the socket itself while its writer has nothing
//!   queued, and hands the writer only what the socket did not take;
//! - an **acceptor** per listener (the mq protocol's, and MQTT's and NATS's
//!   when configured, mq and MQTT each plain or TLS or both; each tells the
//!   broker which protocol its connections speak and, for mutual TLS, the
//!   identity of the client's certificate; `server/accept.rs`), and for a durable store a **store thread** that writes each
//!   batch that accumulated meanwhile as one group and reports it persisted.
//!
//! Besides TCP connections, [`ServerControl::attach`] serves one connection over
//! any byte stream in either framing; [`serial`](crate::serial) uses it to serve
//! serial lines.
//!
//! This file is the broker task and its connections; what users hold
//! ([`ServerOptions`], [`ServerHandle`], [`ServerControl`]) is in
//! `server/handle.rs`, the task's input channel in `server/command.rs`, the
//! store thread in `server/store_thread.rs`.

mod accept;
mod admin;
mod command;
mod handle;
mod input;
mod offline;
mod reader;
mod store_thread;
mod writer;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mq_client::clock::Clock;
use mq_core::broker::{Auth, Broker, ConnId, Event, Protocol};
use mq_core::framing::stream;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

#[cfg(feature = "node")]
pub(crate) use self::sleep as sleep_until;
use crate::pipe::PipeEnd;
use crate::store::StoreMetrics;
use crate::tls::{ServerTls, Stream};
pub use command::Io;
use command::{Accepted, Cmd, NodeLink};
pub use handle::{Addrs, ServerControl, ServerHandle, ServerOptions};
pub use offline::{Drained, Handed, NodeInterest};
use reader::Source;
use store_thread::{StoreLink, ToStore, spawn_store_thread};
use writer::{Queued, SharedTcp, Sink};

/// Binds, restores the broker from the store, and starts serving.
pub async fn spawn(mut opts: ServerOptions) -> io::Result<ServerHandle> {
    let bound = accept::bind(&opts).await?;
    let clock = Clock::new();
    // A new seed at every start: an empty store's epoch comes from it (a
    // memory store is empty at every start), see `mq_core::wire::mesh`.
    let mut cfg = opts.broker.clone();
    cfg.seed ^= mq_client::random_u64();
    let mut broker = Broker::new(cfg);
    let records = opts.store.load()?;
    let now = clock.now();
    let mut skipped = 0usize;
    for r in &records {
        if broker.restore(now, r).is_err() {
            skipped += 1;
        }
    }
    if !records.is_empty() {
        tracing::info!(records = records.len(), skipped, "restored broker state");
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let store_metrics = opts.store.metrics();
    if opts.store.is_full() {
        broker.set_store_full(true);
    }
    let addrs = bound.addrs;
    let accepted = Arc::new(AtomicU64::new(0));
    let acceptors = bound
        .listeners
        .into_iter()
        .map(|l| tokio::spawn(accept::accept_loop(l, tx.clone(), accepted.clone())))
        .collect();
    let (store, store_thread) = if opts.store.is_durable() {
        let (batches, thread) = spawn_store_thread(opts.store, tx.clone())?;
        (StoreLink::Thread(batches), Some(thread))
    } else {
        (StoreLink::Memory, None)
    };
    let broker_task = BrokerTask {
        broker,
        clock,
        links: std::collections::HashMap::new(),
        tx: tx.clone(),
        rx,
        store,
        // A whole frame of the largest size must fit, or it never
        // completes (a NATS operation: its control line, payload, CRLF).
        input_budget: opts.input_budget.max(
            opts.broker.limits.max_frame as usize
                + stream::MAX_PREFIX.max(mq_core::nats::MAX_CONTROL_LINE + 2),
        ),
        write_queue: opts.write_queue,
        chunk: opts.chunk,
        drain_timeout: opts.drain_timeout,
        out: BytesMut::new(),
        acceptors,
        submitted: 0,
        flushing: Vec::new(),
        closing: false,
        store_metrics,
        compaction_pending: false,
        admin_waiters: Vec::new(),
        drain_waiters: Vec::new(),
    };
    // The task ends once the store is closed too: whoever waited for it may
    // open the same store again at once.
    let task = tokio::spawn(async move {
        let result = broker_task.run().await;
        if let Some(thread) = store_thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        result
    });
    Ok(ServerHandle {
        addrs,
        tx,
        task,
        accepted,
        catalog: Arc::default(),
    })
}

/// The broker task's view of one connection.
struct Link {
    /// Bytes received and not yet consumed by the broker (an incomplete frame,
    /// or input the broker holds back until `Event::Readable`).
    input: BytesMut,
    budget: Arc<Semaphore>,
    writer: Option<mpsc::Sender<Bytes>>,
    /// A chunk the writer's queue had no room for.
    pending: Option<Bytes>,
    /// Plain TCP: the socket, written from the broker task while `queued`
    /// is empty.
    direct: Option<SharedTcp>,
    queued: Queued,
    paused: Arc<AtomicBool>,
    reader: JoinHandle<()>,
    writer_task: JoinHandle<()>,
    /// A TLS client's certificate chain and the listener's TLS, to check the
    /// chain again when the client CA is reloaded.
    trust: Option<(Arc<ServerTls>, Arc<[CertificateDer<'static>]>)>,
    /// For a node link this node opened: dropped (so its receiver wakes) when
    /// the connection is gone.
    _on_close: Option<oneshot::Sender<()>>,
}

struct BrokerTask {
    broker: Broker,
    clock: Clock,
    links: std::collections::HashMap<ConnId, Link>,
    tx: mpsc::UnboundedSender<Cmd>,
    rx: mpsc::UnboundedReceiver<Cmd>,
    store: StoreLink,
    input_budget: usize,
    write_queue: usize,
    chunk: usize,
    drain_timeout: Duration,
    out: BytesMut,
    acceptors: Vec<JoinHandle<()>>,
    /// Last token handed to the store thread.
    submitted: u64,
    /// Writers of closed connections still sending their last bytes.
    flushing: Vec<JoinHandle<()>>,
    /// Shutdown has closed the connections.
    closing: bool,
    store_metrics: Arc<StoreMetrics>,
    /// The store asked for a snapshot that has not been taken yet.
    compaction_pending: bool,
    /// Answers to purges and deletes, waiting for their record to be stored.
    admin_waiters: Vec<admin::Waiter>,
    /// Messages drained from the catalog, waiting for the store.
    drain_waiters: Vec<offline::DrainWaiter>,
}

impl BrokerTask {
    async fn run(mut self) -> io::Result<()> {
        let mut shutdown_reply: Option<oneshot::Sender<()>> = None;
        let mut shutdown_deadline: Option<tokio::time::Instant> = None;
        loop {
            let timeout = self.broker.poll_timeout().map(|t| self.clock.to_std(t));
            let sleep_until = match (timeout, shutdown_deadline) {
                (Some(a), Some(b)) => Some(a.min(b.into_std())),
                (a, b) => a.or(b.map(|b| b.into_std())),
            };
            let cmd = tokio::select! {
                cmd = self.rx.recv() => cmd,
                _ = sleep(sleep_until) => None,
            };
            let now = self.clock.now();
            match cmd {
                Some(cmd) => {
                    if let Some(reply) = self.handle(cmd, now)? {
                        shutdown_reply = Some(reply);
                        shutdown_deadline = Some(tokio::time::Instant::now() + self.drain_timeout);
                    }
                    // Take everything that is already waiting before flushing.
                    for _ in 0..1024 {
                        let Ok(cmd) = self.rx.try_recv() else { break };
                        if let Some(reply) = self.handle(cmd, now)? {
                            shutdown_reply = Some(reply);
                            shutdown_deadline =
                                Some(tokio::time::Instant::now() + self.drain_timeout);
                        }
                    }
                }
                None => self.broker.handle_timeout(now),
            }
            self.flush(now);
            self.answer_admins();
            self.answer_drains();
            if let Some(deadline) = shutdown_deadline {
                // Once everything owed to connected subscribers is acked (or time is
                // up), close the connections.
                if !self.closing
                    && (self.broker.is_drained() || tokio::time::Instant::now() >= deadline)
                {
                    self.closing = true;
                    tracing::info!(drained = self.broker.is_drained(), "closing connections");
                    self.broker.shutdown(self.clock.now());
                    self.flush(self.clock.now());
                }
                let unpersisted = self.submitted > self.broker.persisted_token();
                let drained = self.closing && self.links.is_empty() && !unpersisted;
                if drained || tokio::time::Instant::now() >= deadline {
                    if !drained {
                        tracing::warn!(
                            connections = self.links.len(),
                            unpersisted,
                            "shutdown deadline reached"
                        );
                    }
                    // Let closed connections' writers send their last bytes.
                    let writers = std::mem::take(&mut self.flushing);
                    let _ = tokio::time::timeout_at(deadline, async {
                        for w in writers {
                            let _ = w.await;
                        }
                    })
                    .await;
                    if let Some(reply) = shutdown_reply.take() {
                        let _ = reply.send(());
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Returns the reply channel when the command starts a shutdown.
    fn handle(
        &mut self,
        cmd: Cmd,
        now: mq_core::Instant,
    ) -> io::Result<Option<oneshot::Sender<()>>> {
        match cmd {
            Cmd::Accept(accepted) => self.accept(accepted, now),
            Cmd::Reload(auth, reply) => {
                let _ = reply.send(self.reload(auth, now));
            }
            Cmd::Attach(stream, framing, name) => {
                let (read, write) = tokio::io::split(Box::into_pin(stream));
                let peer = Peer::named(&name);
                if let Some(conn) = self.open_link(read, write, None, framing, &peer, now) {
                    tracing::debug!(%name, conn = conn.0, "attached");
                }
            }
            Cmd::AttachPipe(end, framing, name) => {
                let PipeEnd { read, write } = end;
                let peer = Peer::named(&name);
                if let Some(conn) = self.open(read, write, None, framing, &peer, now) {
                    tracing::debug!(%name, conn = conn.0, "attached a pipe");
                }
            }
            Cmd::Link(link) => self.connect_link(link, now),
            Cmd::ForgetNode(peer, reply) => {
                let _ = reply.send(self.broker.forget_node(now, &peer));
            }
            Cmd::Offline(cmd) => self.offline(cmd, now),
            Cmd::Input(conn, bytes) => self.input(conn, bytes, now),
            Cmd::Closed(conn) => {
                if let Some(link) = self.links.remove(&conn) {
                    link.reader.abort();
                    self.broker.handle_closed(conn, now);
                }
            }
            Cmd::Writable(conn) => {
                if let Some(link) = self.links.get_mut(&conn) {
                    if let (Some(chunk), Some(w)) = (link.pending.take(), &link.writer)
                        && let Err(mpsc::error::TrySendError::Full(chunk)) = w.try_send(chunk)
                    {
                        link.pending = Some(chunk);
                        return Ok(None);
                    }
                    link.paused.store(false, Ordering::Release);
                    self.broker.resume_transmit(conn);
                }
            }
            Cmd::Persisted(token) => self.broker.handle_persisted(token, now),
            Cmd::CompactionWanted => self.compaction_pending = true,
            Cmd::StoreFull(full) => {
                if full {
                    tracing::warn!("store full: refusing QoS 1 publishes until it has room");
                } else {
                    tracing::info!("store has room again");
                }
                self.broker.set_store_full(full);
            }
            Cmd::StoreMetrics(reply) => {
                let _ = reply.send(self.store_metrics.clone());
            }
            Cmd::StoreFailed(e) => {
                tracing::error!(error = %e, "store failed; stopping: acknowledged messages must not be lost");
                return Err(e);
            }
            Cmd::Stats(reply) => {
                let _ = reply.send(self.broker.stats());
            }
            Cmd::MeshStats(reply) => {
                let _ = reply.send(self.broker.mesh_stats());
            }
            Cmd::Admin(request, reply) => self.admin(&request, reply, now),
            Cmd::Queues(reply) => {
                let _ = reply.send(self.broker.queues());
            }
            Cmd::Shutdown(reply) => {
                tracing::info!("shutting down: refusing new work, delivering what is owed");
                for a in self.acceptors.drain(..) {
                    a.abort();
                }
                self.broker.begin_shutdown();
                return Ok(Some(reply));
            }
        }
        Ok(None)
    }

    fn accept(&mut self, a: Accepted, now: mq_core::Instant) {
        let peer = Peer {
            name: &a.peer,
            identity: a.secured.identity.as_deref(),
        };
        let conn = match a.secured.stream {
            Stream::Plain(tcp) => {
                let (read, write) = tcp.into_split();
                let write = SharedTcp::new(write);
                let direct = Some(write.clone());
                self.open_link(read, write, direct, a.protocol, &peer, now)
            }
            Stream::Tls(tls) => {
                let (read, write) = tokio::io::split(tls);
                self.open_link(read, write, None, a.protocol, &peer, now)
            }
        };
        let Some(conn) = conn else { return };
        tracing::debug!(peer = %a.peer, identity = ?peer.identity, conn = conn.0, "accepted");
        if let (Some(link), Some(tls), Some(chain)) =
            (self.links.get_mut(&conn), a.tls, a.secured.chain)
        {
            link.trust = Some((tls, chain));
        }
    }

    /// New auth (a reload): the broker checks live sessions against it, and a
    /// TLS client whose certificate the reloaded client CA no longer trusts
    /// loses its identity (the broker then decides whether its token still
    /// lets it stay). Returns how many connections were closed.
    fn reload(&mut self, auth: Auth, now: mq_core::Instant) -> usize {
        let mut closed = self.broker.set_auth(now, auth);
        let distrusted: Vec<ConnId> = self
            .links
            .iter()
            .filter(|(_, l)| {
                l.trust
                    .as_ref()
                    .is_some_and(|(tls, chain)| !tls.still_trusted(chain))
            })
            .map(|(&c, _)| c)
            .collect();
        for conn in distrusted {
            tracing::info!(
                conn = conn.0,
                "its client certificate is no longer trusted by the reloaded CA"
            );
            if let Some(l) = self.links.get_mut(&conn) {
                l.trust = None;
            }
            if self.broker.set_identity(now, conn, None) {
                closed += 1;
            }
        }
        self.flush(now);
        tracing::info!(closed, "auth reloaded");
        closed
    }

    /// A new connection over `read` and `write` (`direct`: the same socket,
    /// for writes from the broker task): the broker's side, a reader and a
    /// writer task. `None` when the broker refuses it (the halves are
    /// dropped).
    fn open_link<R, W>(
        &mut self,
        read: R,
        write: W,
        direct: Option<SharedTcp>,
        protocol: impl Into<Protocol>,
        peer: &Peer<'_>,
        now: mq_core::Instant,
    ) -> Option<ConnId>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let read = reader::Stream::new(read, self.chunk);
        self.open(read, writer::Stream(write), direct, protocol, peer, now)
    }

    /// [`open_link`](Self::open_link) over any source and sink (an
    /// in-memory pipe's halves).
    fn open(
        &mut self,
        read: impl Source,
        write: impl Sink,
        direct: Option<SharedTcp>,
        protocol: impl Into<Protocol>,
        peer: &Peer<'_>,
        now: mq_core::Instant,
    ) -> Option<ConnId> {
        let conn = match self
            .broker
            .accept_with_identity(now, protocol, peer.identity)
        {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(peer = %peer.name, error = %e, "connection refused");
                return None;
            }
        };
        self.serve(conn, read, write, direct, None);
        Some(conn)
    }

    /// A node link this node opened (see `crate::node`): the broker says
    /// `Hello` on it, and the connection is driven as any other.
    fn connect_link(&mut self, link: NodeLink, now: mq_core::Instant) {
        let conn =
            match self
                .broker
                .connect_link(now, &link.node, &link.peer, link.token.as_deref())
            {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(peer = %link.peer, error = %e, "link refused");
                    return;
                }
            };
        tracing::debug!(peer = %link.peer, conn = conn.0, "link connected");
        let (read, write) = link.stream.into_split();
        let write = SharedTcp::new(write);
        let direct = Some(write.clone());
        let read = reader::Stream::new(read, self.chunk);
        self.serve(conn, read, writer::Stream(write), direct, Some(link.closed));
    }

    /// Spawns the reader and writer of connection `conn`.
    fn serve(
        &mut self,
        conn: ConnId,
        read: impl Source,
        write: impl Sink,
        direct: Option<SharedTcp>,
        on_close: Option<oneshot::Sender<()>>,
    ) {
        let budget = Arc::new(Semaphore::new(self.input_budget));
        let paused = Arc::new(AtomicBool::new(false));
        let (wtx, wrx) = mpsc::channel(self.write_queue);
        let queued = Queued::default();
        let writer_task = tokio::spawn(writer::write_loop(
            write,
            wrx,
            conn,
            queued.clone(),
            paused.clone(),
            self.tx.clone(),
        ));
        let reader = tokio::spawn(reader::read_loop(
            read,
            conn,
            budget.clone(),
            self.chunk,
            self.tx.clone(),
        ));
        self.links.insert(
            conn,
            Link {
                input: BytesMut::new(),
                budget,
                writer: Some(wtx),
                pending: None,
                direct,
                queued,
                paused,
                reader,
                writer_task,
                trust: None,
                _on_close: on_close,
            },
        );
    }

    fn input(&mut self, conn: ConnId, bytes: Bytes, now: mq_core::Instant) {
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        let broker = &mut self.broker;
        let taken = input::feed(&mut link.input, &bytes, |b| {
            broker.handle_input(conn, now, b)
        });
        link.budget.add_permits(taken);
    }

    /// The broker held `conn`'s input back and may take it now.
    fn readable(&mut self, conn: ConnId, now: mq_core::Instant) {
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        if link.input.is_empty() {
            return;
        }
        let used = self.broker.handle_input(conn, now, &link.input);
        let _ = link.input.split_to(used);
        link.budget.add_permits(used);
    }

    /// Drains everything the broker wants done.
    fn flush(&mut self, now: mq_core::Instant) {
        loop {
            let mut progress = false;
            // Sized once: pushed one by one from empty, the batch grew
            // (and was copied) several times a flush.
            let mut batch = Vec::with_capacity(self.broker.store_pending());
            while let Some(op) = self.broker.poll_store() {
                batch.push(op);
            }
            if let Some(last) = batch.last().map(|op| op.token) {
                progress = true;
                match &self.store {
                    StoreLink::Memory => self.broker.handle_persisted(last, now),
                    StoreLink::Thread(tx) => {
                        self.submitted = last;
                        if tx.send(ToStore::Records(batch)).is_err() {
                            tracing::error!("store thread is gone");
                        }
                    }
                }
            }
            loop {
                if self.out.len() < self.chunk {
                    self.out.reserve(self.chunk * 4);
                    let cap = self.out.capacity();
                    self.out.resize(cap, 0);
                }
                let Some(t) = self.broker.poll_transmit(now, &mut self.out) else {
                    break;
                };
                progress = true;
                let Some(link) = self.links.get_mut(&t.conn) else {
                    continue;
                };
                let Some(writer) = &link.writer else { continue };
                // The socket takes what it can from here while the writer
                // has nothing queued: no hop to the writer task, and the
                // buffer is used again as it is.
                let mut written = 0;
                if link.pending.is_none()
                    && link.queued.is_empty()
                    && let Some(tcp) = &link.direct
                {
                    written = tcp.try_write(&self.out[..t.len]);
                }
                if written == t.len {
                    continue;
                }
                let chunk = self.out.split_to(t.len).freeze().slice(written..);
                link.queued.add();
                match writer.try_send(chunk) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(chunk)) => {
                        link.pending = Some(chunk);
                        link.paused.store(true, Ordering::Release);
                        self.broker.pause_transmit(t.conn);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
            while let Some(event) = self.broker.poll_event() {
                progress = true;
                match event {
                    Event::Close(conn) => {
                        if let Some(link) = self.links.remove(&conn) {
                            // The writer sends what it has, then closes the socket.
                            drop(link.writer);
                            link.reader.abort();
                            self.flushing.retain(|w| !w.is_finished());
                            self.flushing.push(link.writer_task);
                        }
                        self.broker.handle_closed(conn, now);
                    }
                    Event::Readable(conn) => self.readable(conn, now),
                    _ => {}
                }
            }
            if !progress {
                break;
            }
        }
        // Everything emitted has been handed to the store: a snapshot now covers
        // exactly that.
        if self.compaction_pending
            && let StoreLink::Thread(tx) = &self.store
            && let Some(snapshot) = self.broker.snapshot()
        {
            self.compaction_pending = false;
            tracing::info!(
                records = snapshot.records.len(),
                upto = snapshot.upto,
                "compacting the store"
            );
            let _ = tx.send(ToStore::Compact(snapshot));
        }
    }
}

/// Who is at the other end of a new connection, for the broker and the logs.
struct Peer<'a> {
    name: &'a dyn std::fmt::Display,
    identity: Option<&'a str>,
}

impl<'a> Peer<'a> {
    fn named(name: &'a dyn std::fmt::Display) -> Self {
        Peer {
            name,
            identity: None,
        }
    }
}

/// Sleeps until `until`, or forever.
pub(crate) async fn sleep(until: Option<std::time::Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
