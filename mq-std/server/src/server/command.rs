//! The broker task's one input channel: what the acceptor, each connection's
//! reader and writer, the store thread and the [`ServerControl`](super::ServerControl)
//! handles tell it ([`Cmd`]), and the byte streams a handle can attach ([`Io`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use mq_client::client::Admin;
use mq_core::broker::admin::AdminReply;
use mq_core::broker::{Auth, ConnId, MeshStats, Protocol, QueueInfo, Stats};
use mq_core::framing::Framing;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::store::StoreMetrics;
use crate::tls::{Secured, ServerTls};

/// A connection a listener accepted (after its TLS handshake, on a TLS
/// listener).
pub(super) struct Accepted {
    pub secured: Secured,
    pub peer: SocketAddr,
    pub protocol: Protocol,
    /// The listener's TLS, when it has one.
    pub tls: Option<Arc<ServerTls>>,
}

/// A TCP stream this node opened to a peer, to drive as a node link.
pub(super) struct NodeLink {
    pub node: String,
    pub peer: String,
    pub token: Option<String>,
    pub stream: TcpStream,
    /// Dropped when the link's connection is gone.
    pub closed: oneshot::Sender<()>,
}

/// A byte stream [`ServerControl::attach`](super::ServerControl::attach) can serve.
pub trait Io: AsyncRead + AsyncWrite + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + 'static> Io for T {}

/// What the broker task hears: from the acceptor, the connections' readers and
/// writers, the store thread and the handles.
pub(super) enum Cmd {
    Accept(Accepted),
    /// New tokens and identities; answers how many connections were closed.
    Reload(Auth, oneshot::Sender<usize>),
    Attach(Box<dyn Io>, Framing, String),
    AttachPipe(crate::pipe::PipeEnd, Framing, String),
    Link(NodeLink),
    /// Forget a node whose lease expired; answers whether the broker knew it.
    ForgetNode(String, oneshot::Sender<bool>),
    /// Offline queues: peers away, their items, this node's drained ones.
    Offline(super::offline::OfflineCmd),
    Input(ConnId, Bytes),
    Closed(ConnId),
    Writable(ConnId),
    Persisted(u64),
    StoreFailed(io::Error),
    /// The store would like a snapshot to compact into.
    CompactionWanted,
    /// The store is (or is no longer) at its size limit.
    StoreFull(bool),
    Stats(oneshot::Sender<Stats>),
    MeshStats(oneshot::Sender<MeshStats>),
    StoreMetrics(oneshot::Sender<Arc<StoreMetrics>>),
    Queues(oneshot::Sender<Vec<QueueInfo>>),
    Admin(Admin, oneshot::Sender<AdminReply>),
    Shutdown(oneshot::Sender<()>),
}
