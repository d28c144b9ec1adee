//! A desktop peer with no daemon: a mesh node in the application's own
//! process.
//!
//! [`Peer::start`] runs what `mqd --node` runs, in-process: a broker on its
//! own write-ahead log, listening on its own address for the other peers'
//! links (and for other processes' clients), registered in the catalog and
//! linked to every live peer (`mq_server::node`). The application talks to
//! it with the ordinary client ([`Peer::connect`]): publish, subscribe,
//! groups, QoS 1, persistent sessions, exactly as against `mqd`. A message
//! goes from the publisher's peer straight to each peer with interest in it:
//! one network hop. A peer whose lease expired (closed, or killed) is away:
//! what it wants goes to its offline queue in the catalog (acknowledged once
//! in the sender's log, removed from there once in the catalog), and the peer
//! drains that queue when it starts again, whether or not the senders are
//! still there (`mq_server::node`).
//!
//! [`Peer::connect`]'s client reaches the peer's broker through an
//! in-memory pipe, not loopback TCP: each connection of its session (the
//! first and every reconnect) is a fresh pipe attached to the peer's server
//! (`ServerControl::attach_pipe`, a pipe of `Bytes` chunks:
//! `mq_server::pipe`), so the messages between the application and
//! its own peer cost no system call and no trip through the kernel (which,
//! measured, was not where the peers' time goes: BENCHMARKS.md). The
//! session is the same as over TCP (persistent, QoS 1 with its outbox,
//! groups); only the bytes travel differently. Once the peer has stopped,
//! the client dials the address the peer listened on instead: a peer
//! started again there takes the client back over TCP, its session resumed
//! from the log. Other processes' clients reach the peer over TCP
//! ([`Peer::client_options`]).
//!
//! The catalog is by default one SQLite file in the temporary directory,
//! shared by the peers of one machine; Redis or PostgreSQL (a URL in
//! [`PeerOptions::node`]) link peers across machines. The log is needed, not
//! a nicety: the peers that receive a peer's messages drop those whose topic
//! sequence they saw already, so a peer must keep its sequences across a
//! restart.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use mq_client::client::{self, Client, ClientOptions, Connector, SessionMode, Tcp};
use mq_core::broker::Config as BrokerConfig;
use mq_core::framing::Framing;
use mq_server::node::{self, NodeHandle, NodeOptions};
use mq_server::server::{self, ServerControl, ServerHandle, ServerOptions};
use mq_server::wal::{Wal, WalOptions};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How to start a [`Peer`].
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// The node: its id, catalog, advertised address, lease and heartbeat.
    pub node: NodeOptions,
    /// Where the peer listens for links and clients (`127.0.0.1:0`: a free
    /// port, advertised in the catalog).
    pub listen: SocketAddr,
    /// The peer's write-ahead log.
    pub data_dir: PathBuf,
    /// How the log writes: by default it fsyncs every group commit before
    /// anything in it is acknowledged ([`FsyncPolicy::Always`]); see
    /// [`FsyncPolicy`] for what each policy gives up on a power cut.
    ///
    /// [`FsyncPolicy`]: mq_server::wal::FsyncPolicy
    /// [`FsyncPolicy::Always`]: mq_server::wal::FsyncPolicy::Always
    pub wal: WalOptions,
    /// The broker's configuration.
    pub broker: BrokerConfig,
}

impl PeerOptions {
    /// Peer `id` on loopback, its log in `<temp>/mq-peer-<id>`, in the
    /// machine's shared SQLite catalog `<temp>/mq-mesh.db`.
    pub fn new(id: &str) -> PeerOptions {
        let tmp = std::env::temp_dir();
        let catalog = format!("sqlite:{}", tmp.join("mq-mesh.db").display());
        PeerOptions {
            node: NodeOptions::new(id, catalog),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: tmp.join(format!("mq-peer-{id}")),
            wal: WalOptions::default(),
            broker: BrokerConfig::default(),
        }
    }
}

/// Why a peer did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum PeerError {
    /// Its log could not be opened, or its address not bound.
    Io(io::Error),
    /// The catalog could not be opened or refused the registration.
    Catalog(mq_catalog::Error),
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerError::Io(e) => write!(f, "peer: {e}"),
            PeerError::Catalog(e) => write!(f, "peer: catalog: {e}"),
        }
    }
}

impl std::error::Error for PeerError {}

/// A running peer (see the module docs): its broker, its node task.
pub struct Peer {
    server: ServerHandle,
    id: String,
    node: Watched,
}

/// The node task, watched: should a newer incarnation of the node register
/// (the same id started elsewhere), this one must not act for the node any
/// more, so the watch stops the peer's broker, as `mqd` stops: its clients
/// are disconnected and its links closed. [`Peer::stop`] then reports
/// [`mq_catalog::Error::Fenced`].
struct Watched {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), mq_catalog::Error>>,
}

impl Watched {
    fn start(node: NodeHandle, server: ServerControl) -> Watched {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut node = Some(node);
            let failed = async {
                match node.as_mut() {
                    Some(n) => n.failed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stopped => match node.take() {
                    Some(n) => n.stop().await,
                    None => Ok(()),
                },
                e = failed => {
                    server.shutdown().await;
                    Err(e)
                }
            }
        });
        Watched { stop, task }
    }

    async fn stop(self) -> Result<(), mq_catalog::Error> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(left) => left,
            Err(e) => Err(mq_catalog::Error::Invalid(format!(
                "the node task failed: {e}"
            ))),
        }
    }
}

impl Peer {
    /// Opens the log (replaying it into the broker), listens, registers in
    /// the catalog and starts linking. Must run inside a tokio runtime.
    pub async fn start(opts: PeerOptions) -> Result<Peer, PeerError> {
        let (dir, wal) = (opts.data_dir.clone(), opts.wal.clone());
        let wal = tokio::task::spawn_blocking(move || Wal::open(&dir, wal))
            .await
            .map_err(|e| PeerError::Io(io::Error::other(e)))?
            .map_err(PeerError::Io)?;
        let server = server::spawn(ServerOptions {
            listen: opts.listen,
            broker: opts.node.broker_config(opts.broker),
            store: Box::new(wal),
            ..ServerOptions::default()
        })
        .await
        .map_err(PeerError::Io)?;
        let listen = server.local_addr();
        let node = match node::spawn(server.control(), listen, opts.node).await {
            Ok(node) => node,
            Err(e) => {
                let _ = server.shutdown().await;
                return Err(PeerError::Catalog(e));
            }
        };
        let id = node.registration().node.clone();
        let node = Watched::start(node, server.control());
        Ok(Peer { server, id, node })
    }

    /// The node id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Client options for a session `client_id` at this peer (persistent:
    /// its subscriptions and unacked messages outlive a disconnect).
    pub fn client_options(&self, client_id: &str) -> ClientOptions {
        let mut opts = ClientOptions::new(self.local_addr().to_string());
        opts.client_id = client_id.to_owned();
        opts.session = SessionMode::Resume;
        opts
    }

    /// Connects a client with [`client_options`](Self::client_options),
    /// over an in-memory pipe to this peer while it runs (see the module
    /// docs).
    pub async fn connect(&self, client_id: &str) -> Result<Client, client::Error> {
        let pipe = Pipe {
            server: self.server.control(),
            addr: self.local_addr(),
            name: format!("in-process client {client_id}"),
        };
        Client::connect_with(self.client_options(client_id), pipe).await
    }

    /// A handle to the peer's server: its counters, queues and admin
    /// requests.
    pub fn server(&self) -> ServerControl {
        self.server.control()
    }

    /// Leaves the mesh (deregisters), then stops the broker gracefully.
    /// A peer fenced off by a newer incarnation of its node has stopped
    /// its broker already: this reports [`mq_catalog::Error::Fenced`].
    pub async fn stop(self) -> Result<(), PeerError> {
        let left = self.node.stop().await;
        self.server.shutdown().await.map_err(PeerError::Io)?;
        left.map_err(PeerError::Catalog)
    }
}

/// Bytes in flight each way in a client's pipe to its peer (64 KiB and
/// 2 MiB measured no different).
const PIPE_BYTES: usize = 256 * 1024;

/// [`Peer::connect`]'s connections: a pipe attached to the peer's server
/// while it runs, TCP to where it listened once it stopped.
struct Pipe {
    server: ServerControl,
    addr: SocketAddr,
    name: String,
}

/// The stream of one of a [`Pipe`]'s connections: in memory or TCP.
trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for T {}

impl Connector for Pipe {
    type Stream = Box<dyn PeerStream>;

    async fn connect(&self) -> io::Result<Box<dyn PeerStream>> {
        let (near, far) = mq_server::pipe::pipe(PIPE_BYTES);
        if self
            .server
            .attach_pipe(far, Framing::Stream, self.name.clone())
        {
            return Ok(Box::new(near));
        }
        Ok(Box::new(Tcp(self.addr.to_string()).connect().await?))
    }
}
