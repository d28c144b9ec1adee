//! One accepted connection, plain or TLS ([`Stream`]), and [`secure`], which
//! every listener calls on what it accepted: the mq protocol's, MQTT's, the
//! HTTP endpoint's, and any listener added later, with one line.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::ServerTls;
use super::identity::identity_of;

/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of a TLS record carrying a handshake (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

/// An accepted connection, plain or TLS.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, its handshake done.
    Tls(Box<TlsStream<TcpStream>>),
}

/// What [`secure`] made of an accepted connection.
pub struct Secured {
    /// The stream to read and write.
    pub stream: Stream,
    /// The identity of the client's verified certificate (mutual TLS).
    pub identity: Option<String>,
    /// The client's certificate chain, leaf first, to check again after the
    /// client CA is reloaded.
    pub chain: Option<Arc<[CertificateDer<'static>]>>,
}

/// Turns a TCP stream a listener accepted into the stream to serve: as it is
/// when `tls` is `None`, else after a TLS handshake (within
/// [`HANDSHAKE_TIMEOUT`]) with the client's verified certificate, if it sent
/// one. Errors say what went wrong in words for the log: a plaintext client
/// on a TLS port, an unknown CA, an expired certificate, a timeout.
pub async fn secure(stream: TcpStream, tls: Option<&ServerTls>) -> io::Result<Secured> {
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(Secured {
            stream: Stream::Plain(stream),
            identity: None,
            chain: None,
        });
    };
    let handshake = async {
        let mut first = [0u8; 1];
        let n = stream.peek(&mut first).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the TLS handshake",
            ));
        }
        if first[0] != TLS_HANDSHAKE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a plaintext client on a TLS listener (its first bytes are not a TLS handshake)",
            ));
        }
        TlsAcceptor::from(tls.config())
            .accept(stream)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake failed: {e}")))
    };
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no TLS handshake in time"))??;
    let chain: Option<Arc<[CertificateDer<'static>]>> = stream
        .get_ref()
        .1
        .peer_certificates()
        .filter(|c| !c.is_empty())
        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect());
    let identity = chain.as_deref().and_then(|c| identity_of(&c[0]));
    Ok(Secured {
        stream: Stream::Tls(Box::new(stream)),
        identity,
        chain,
    })
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}
