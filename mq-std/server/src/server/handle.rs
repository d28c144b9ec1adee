//! What a user of the server holds: the options it starts with
//! ([`ServerOptions`]), the running server ([`ServerHandle`]) and cheap handles
//! that talk to it ([`ServerControl`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mq_client::client::Admin;
use mq_core::broker::admin::AdminReply;
use mq_core::broker::{Auth, Config as BrokerConfig, MeshStats, QueueInfo, Stats};
use mq_core::framing::Framing;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::command::{Cmd, Io, NodeLink};
use crate::metrics::CatalogMetrics;
use crate::store::{MemoryStore, Store, StoreMetrics};
use crate::tls::ServerTls;

/// How to run a server.
pub struct ServerOptions {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Address to serve the mq protocol over TLS on (needs `tls`); `None`:
    /// none.
    pub listen_tls: Option<SocketAddr>,
    /// Address to serve MQTT 3.1.1 and 5 on, into the same broker; `None`:
    /// no MQTT listener.
    pub mqtt: Option<SocketAddr>,
    /// Address to serve the NATS client protocol on, into the same broker;
    /// `None`: no NATS listener.
    pub nats: Option<SocketAddr>,
    /// Address to serve MQTT over TLS on (needs `tls`); `None`: none.
    pub mqtt_tls: Option<SocketAddr>,
    /// The certificate, key and client CA of the TLS listeners (shared, so
    /// [`ServerTls::reload`] swaps them for all of them).
    pub tls: Option<Arc<ServerTls>>,
    /// The broker's configuration.
    pub broker: BrokerConfig,
    /// Where records go; [`MemoryStore`] keeps nothing.
    pub store: Box<dyn Store>,
    /// Bytes read from one connection and not yet consumed by the broker, at most
    /// (raised to one maximum frame if smaller).
    pub input_budget: usize,
    /// Chunks queued for one connection's writer, at most.
    pub write_queue: usize,
    /// Size of a read, and of a chunk handed to a writer.
    pub chunk: usize,
    /// How long shutdown waits for the store and the writers.
    pub drain_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            listen_tls: None,
            mqtt: None,
            nats: None,
            mqtt_tls: None,
            tls: None,
            broker: BrokerConfig::default(),
            store: Box::new(MemoryStore),
            input_budget: 256 * 1024,
            write_queue: 16,
            chunk: 64 * 1024,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// The addresses a server listens on (a port asked for as 0 is the one it
/// got).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    /// The mq protocol, plain.
    pub listen: SocketAddr,
    /// The mq protocol over TLS.
    pub listen_tls: Option<SocketAddr>,
    /// MQTT, plain.
    pub mqtt: Option<SocketAddr>,
    /// MQTT over TLS.
    pub mqtt_tls: Option<SocketAddr>,
    /// The NATS client protocol, plain.
    pub nats: Option<SocketAddr>,
}

/// A running server.
pub struct ServerHandle {
    pub(super) addrs: Addrs,
    pub(super) tx: mpsc::UnboundedSender<Cmd>,
    pub(super) task: JoinHandle<io::Result<()>>,
    pub(super) accepted: Arc<AtomicU64>,
    pub(super) catalog: Arc<CatalogMetrics>,
}

impl ServerHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs.listen
    }

    /// The address it serves MQTT on, when it does.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.addrs.mqtt
    }

    /// Every address it listens on.
    pub fn addrs(&self) -> Addrs {
        self.addrs
    }

    /// The address it serves NATS on, when it does.
    pub fn nats_addr(&self) -> Option<SocketAddr> {
        self.addrs.nats
    }

    /// The broker's counters.
    pub async fn stats(&self) -> Stats {
        self.control().stats().await
    }

    /// Every queue's depth and bound.
    pub async fn queues(&self) -> Vec<QueueInfo> {
        self.control().queues().await
    }

    /// A handle that can ask for stats or shutdown from elsewhere.
    pub fn control(&self) -> ServerControl {
        ServerControl {
            tx: self.tx.clone(),
            accepted: self.accepted.clone(),
            catalog: self.catalog.clone(),
        }
    }

    /// Stops accepting, closes every connection with `ShuttingDown` after what was
    /// queued for it, waits (bounded) for the store to persist what it was given,
    /// and returns.
    pub async fn shutdown(self) -> io::Result<()> {
        self.control().shutdown().await;
        self.wait().await
    }

    /// Waits until the server stops (after a shutdown or a fatal store error).
    pub async fn wait(self) -> io::Result<()> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

/// Asks a running server for its counters or to shut down.
#[derive(Clone)]
pub struct ServerControl {
    pub(super) tx: mpsc::UnboundedSender<Cmd>,
    accepted: Arc<AtomicU64>,
    catalog: Arc<CatalogMetrics>,
}

impl ServerControl {
    /// The counters of the node task's troubles with the catalog (zero for
    /// a server that is no node).
    pub fn catalog_metrics(&self) -> &CatalogMetrics {
        &self.catalog
    }

    /// Connections its listeners accepted since it started (TCP, before
    /// any TLS handshake); streams given to [`attach`](Self::attach) and
    /// the links this node opened are not counted.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// The broker's counters (defaults when the server has stopped).
    pub async fn stats(&self) -> Stats {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::Stats(tx));
        rx.await.unwrap_or_default()
    }

    /// What the mesh did: links up, messages forwarded, received and
    /// deduplicated (defaults when the server has stopped).
    pub async fn mesh_stats(&self) -> MeshStats {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::MeshStats(tx));
        rx.await.unwrap_or_default()
    }

    /// Every queue's depth and bound.
    pub async fn queues(&self) -> Vec<QueueInfo> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::Queues(tx));
        rx.await.unwrap_or_default()
    }

    /// Answers an operator's request (see `mq_core::broker::admin`); a purge
    /// or delete once its record is stored. No permission is checked here:
    /// that is the caller's (the HTTP API checks its bearer token).
    pub async fn admin(&self, request: Admin) -> AdminReply {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::Admin(request, tx));
        rx.await.unwrap_or_else(|_| {
            AdminReply::refused(mq_core::Reason::ShuttingDown, "the server has stopped")
        })
    }

    /// The store's counters.
    pub async fn store_metrics(&self) -> Arc<StoreMetrics> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::StoreMetrics(tx));
        rx.await.unwrap_or_default()
    }

    /// Serves one connection over `stream` (a pipe, one connection of a serial
    /// line, a TLS stream, ...) with frames in `framing`, as if a client had
    /// connected: the broker expects `Hello` on it. When the connection ends
    /// the stream is shut down and dropped: reading it then ends, writing it
    /// fails. `name` appears in the logs. Returns `false` when the server has
    /// stopped (the stream is dropped).
    pub fn attach(&self, stream: impl Io, framing: Framing, name: String) -> bool {
        self.tx
            .send(Cmd::Attach(Box::new(stream), framing, name))
            .is_ok()
    }

    /// Serves one connection over the server's end of an in-memory pipe
    /// ([`crate::pipe::pipe`]) as [`attach`](Self::attach) serves a
    /// stream; the client's writes reach the broker as they were written
    /// (copied once, into a chunk) and its output reaches the client as the
    /// server's own chunks (copied once, into the client's read buffer).
    /// Returns `false` when the server has stopped (the end is dropped:
    /// the client's writes fail, its reads end).
    pub fn attach_pipe(&self, end: crate::pipe::PipeEnd, framing: Framing, name: String) -> bool {
        self.tx.send(Cmd::AttachPipe(end, framing, name)).is_ok()
    }

    /// Drives `stream`, a TCP connection this node (`node`) opened to node
    /// `peer`, as the node link on which this node receives what its local
    /// sessions want of the peer's messages (`Broker::connect_link`;
    /// `token` is what the link presents to the peer). The returned receiver
    /// resolves (with an error) once the link's connection is gone. `None`
    /// when the server has stopped.
    pub fn link(
        &self,
        node: &str,
        peer: &str,
        token: Option<&str>,
        stream: tokio::net::TcpStream,
    ) -> Option<oneshot::Receiver<()>> {
        let (closed, gone) = oneshot::channel();
        let link = NodeLink {
            node: node.to_owned(),
            peer: peer.to_owned(),
            token: token.map(str::to_owned),
            stream,
            closed,
        };
        self.tx.send(Cmd::Link(link)).ok()?;
        Some(gone)
    }

    /// Forgets node `peer` for good, its lease in the catalog having expired
    /// (`Broker::forget_node`): its link session and outbox, its interest,
    /// its group memberships. Resolves to whether the broker knew it.
    pub async fn forget_node(&self, peer: &str) -> bool {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::ForgetNode(peer.to_owned(), tx));
        rx.await.unwrap_or_default()
    }

    /// Replaces the tokens and identities under live connections (after
    /// reloading the TLS files with [`ServerTls::reload`], when they changed
    /// too): the broker checks every live session again and closes those
    /// whose credentials were revoked, with the reason; a TLS client whose
    /// certificate the reloaded client CA no longer trusts loses its identity
    /// first. Resolves to how many connections were closed.
    pub async fn reload(&self, auth: Auth) -> usize {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::Reload(auth, tx));
        rx.await.unwrap_or_default()
    }

    /// Starts a graceful shutdown; resolves when the broker has stopped accepting
    /// and closed its connections.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}
