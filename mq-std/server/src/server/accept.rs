//! The listeners: binding each configured address (the mq protocol's and
//! MQTT's, each plain, TLS or both, and NATS's), and one acceptor task per listener that
//! hands what it accepts to the broker task. A TLS handshake runs in a task of
//! its own, so a slow or hostile client holds up no one; one that fails is
//! logged with why and never reaches the broker.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mq_core::broker::Protocol;
use mq_core::framing::Framing;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::command::{Accepted, Cmd};
use super::handle::{Addrs, ServerOptions};
use crate::tls::{ServerTls, secure};

/// One bound listener.
pub(super) struct Listener {
    tcp: TcpListener,
    protocol: Protocol,
    tls: Option<Arc<ServerTls>>,
}

pub(super) struct Bound {
    pub listeners: Vec<Listener>,
    pub addrs: Addrs,
}

/// Binds every listener `opts` asks for.
pub(super) async fn bind(opts: &ServerOptions) -> io::Result<Bound> {
    let tls = |what: &str| {
        opts.tls.clone().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what} needs TLS settings (a certificate and its key)"),
            )
        })
    };
    let mut listeners = Vec::new();
    let mut add = async |addr: SocketAddr, protocol: Protocol, tls: Option<Arc<ServerTls>>| {
        let tcp = TcpListener::bind(addr).await?;
        let at = tcp.local_addr()?;
        listeners.push(Listener { tcp, protocol, tls });
        io::Result::Ok(at)
    };
    let mq = Protocol::Mq(Framing::Stream);
    let listen = add(opts.listen, mq, None).await?;
    let listen_tls = match opts.listen_tls {
        Some(at) => Some(add(at, mq, Some(tls("the mq TLS listener")?)).await?),
        None => None,
    };
    let mqtt = match opts.mqtt {
        Some(at) => Some(add(at, Protocol::Mqtt, None).await?),
        None => None,
    };
    let mqtt_tls = match opts.mqtt_tls {
        Some(at) => Some(add(at, Protocol::Mqtt, Some(tls("the MQTT TLS listener")?)).await?),
        None => None,
    };
    let nats = match opts.nats {
        Some(at) => Some(add(at, Protocol::Nats, None).await?),
        None => None,
    };
    Ok(Bound {
        listeners,
        addrs: Addrs {
            listen,
            listen_tls,
            mqtt,
            mqtt_tls,
            nats,
        },
    })
}

/// Accepts on `l` until the broker task is gone, counting each connection
/// in `accepted`.
pub(super) async fn accept_loop(
    l: Listener,
    tx: mpsc::UnboundedSender<Cmd>,
    accepted: Arc<AtomicU64>,
) {
    loop {
        match l.tcp.accept().await {
            Ok((stream, peer)) => {
                accepted.fetch_add(1, Ordering::Relaxed);
                let (protocol, tls, to_broker) = (l.protocol, l.tls.clone(), tx.clone());
                let handover = async move {
                    match secure(stream, tls.as_deref()).await {
                        Ok(secured) => {
                            let _ = to_broker.send(Cmd::Accept(Accepted {
                                secured,
                                peer,
                                protocol,
                                tls,
                            }));
                        }
                        Err(e) => tracing::warn!(%peer, error = %e, "connection refused"),
                    }
                };
                if l.tls.is_some() {
                    tokio::spawn(handover);
                } else {
                    handover.await;
                }
                if tx.is_closed() {
                    return;
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
