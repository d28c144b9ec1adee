//! mqd's HTTP port: the Prometheus metrics (`GET /metrics`), a health check
//! (`GET /health`), the admin JSON API (`/api/...`, see [`api`]) and the web
//! console (`GET /`, see [`console`]).
//!
//! A deliberately small HTTP/1.1 server: one request per connection
//! (`Connection: close`), a bounded head and body, read with a deadline. A
//! bad request gets a clear JSON (or text) error and the connection ends;
//! nothing a client sends can stop the port serving others.

pub mod api;
pub mod console;
mod request;

use std::io;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use mq_core::broker::Auth;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::metrics::render;
use crate::server::ServerControl;
use crate::tls::{ServerTls, Stream, secure};
pub use request::{Method, Request};

/// How long a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the HTTP port serves from.
#[derive(Clone)]
pub struct HttpOptions {
    /// The running server.
    pub control: ServerControl,
    /// The broker's tokens: a purge or delete needs one with the admin
    /// permission as `Authorization: Bearer TOKEN` (with no tokens configured
    /// the broker is open, and so is the API, as the wire protocol is).
    /// Shared with whoever reloads the tokens, so that a revoked token stops
    /// working here too.
    pub auth: SharedAuth,
    /// Serve HTTPS with these (`None`: plain HTTP).
    pub tls: Option<Arc<ServerTls>>,
}

/// The broker's current tokens, shared between the HTTP port and a reload.
#[derive(Debug, Clone, Default)]
pub struct SharedAuth(Arc<RwLock<Auth>>);

impl SharedAuth {
    pub fn new(auth: Auth) -> Self {
        SharedAuth(Arc::new(RwLock::new(auth)))
    }

    /// Replaces the tokens (after a reload).
    pub fn set(&self, auth: Auth) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = auth;
    }

    /// The tokens now.
    pub fn get(&self) -> Auth {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// An answer: status, content type, body.
pub struct Response {
    /// Status line after `HTTP/1.1 `.
    pub status: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON answer.
    pub fn json(status: &'static str, value: &serde_json::Value) -> Self {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            body,
        }
    }

    /// A JSON error: `{"error": text}`.
    pub fn error(status: &'static str, text: &str) -> Self {
        Response::json(status, &serde_json::json!({ "error": text }))
    }

    fn text(status: &'static str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            body: body.into(),
        }
    }
}

/// Serves the HTTP port on `listener` until it fails.
pub async fn serve(listener: TcpListener, opts: HttpOptions) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let opts = opts.clone();
        tokio::spawn(async move {
            let stream = match secure(stream, opts.tls.as_deref()).await {
                Ok(s) => s.stream,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "http connection refused");
                    return;
                }
            };
            if let Err(e) = answer(stream, &opts).await {
                tracing::debug!(error = %e, "http connection failed");
            }
        });
    }
}

async fn answer(mut stream: Stream, opts: &HttpOptions) -> io::Result<()> {
    let response = match tokio::time::timeout(READ_TIMEOUT, Request::read(&mut stream)).await {
        Err(_) => Response::error("408 Request Timeout", "no whole request within 5 s"),
        Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
            Response::error("400 Bad Request", &e.to_string())
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(request)) => route(&request, opts).await,
    };
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&response.body).await?;
    stream.shutdown().await
}

async fn route(request: &Request, opts: &HttpOptions) -> Response {
    let path = request.path.as_str();
    if let Some(rest) = path.strip_prefix("/api/") {
        return api::route(request, rest, opts).await;
    }
    match (request.method, path) {
        (Method::Get, "/metrics") => {
            let c = &opts.control;
            let store = c.store_metrics().await;
            let mesh = c.mesh_stats().await;
            let body = render(
                &c.stats().await,
                &c.queues().await,
                &store,
                &mesh,
                c.catalog_metrics(),
            );
            Response::text("200 OK", "text/plain; version=0.0.4", body)
        }
        (Method::Get, "/health") => Response::text("200 OK", "text/plain", "ok\n"),
        (Method::Get, _) => match console::file(path) {
            Some((content_type, body)) => Response::text("200 OK", content_type, body),
            None => Response::text(
                "404 Not Found",
                "text/plain",
                "not found: try /, /metrics, /health or /api/topics\n",
            ),
        },
        _ => Response::error(
            "405 Method Not Allowed",
            "only GET outside /api (POST and DELETE are for /api/topics/...)",
        ),
    }
}
