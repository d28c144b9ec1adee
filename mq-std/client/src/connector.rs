//! Where the async client's connections come from: a [`Connector`] opens a
//! fresh byte stream to the broker each time the session wants one (the
//! first connect and every reconnect). [`Tcp`] dials an address and is what
//! [`Client::connect`](crate::client::Client::connect) uses; other connectors
//! hand the client another stream, such as an in-memory pipe to a broker in
//! the same process. A connector only opens streams: when to connect again,
//! what to resend and in which order stay the session's.

use std::future::Future;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Opens the byte streams a [`Client`](crate::client::Client) talks to its
/// broker over, one per connection.
pub trait Connector: Send + Sync + 'static {
    /// The stream of one connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Opens a new connection. An error counts as a failed connection
    /// attempt: the session tries again after its reconnect delay (or, for
    /// the first connection, the client reports it).
    fn connect(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// Dials a TCP address (`host:port`), with Nagle's algorithm off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tcp(pub String);

impl Connector for Tcp {
    type Stream = TcpStream;

    async fn connect(&self) -> io::Result<TcpStream> {
        let s = TcpStream::connect(self.0.as_str()).await?;
        s.set_nodelay(true)?;
        Ok(s)
    }
}
