//! Reloading credentials without a restart: the TLS listeners' certificate,
//! key and client CA, and the tokens and identities with their permissions.
//!
//! What triggers it: SIGHUP on Unix; on every platform, with
//! `reload_watch_ms` > 0, a change of the config file or of one of the TLS
//! files (their size or modification time, checked that often). Windows has
//! no SIGHUP, so that is its way; a rotation tool that rewrites the files needs
//! nothing else.
//!
//! A reload reads the whole configuration again as at start (file,
//! environment, flags) and applies it only if all of it is valid: first the
//! TLS files (new connections get the new certificate; live ones keep the
//! session they have), then the tokens and identities, which the broker checks
//! every live session against, closing those whose credentials were revoked
//! (with the reason). When anything is wrong, the running configuration stays
//! and the error is logged. Other settings (addresses, limits) need a restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mq_server::http::SharedAuth;
use mq_server::server::ServerControl;
use mq_server::tls::ServerTls;

use crate::Args;

/// What a reload needs: how `mqd` was started, and what it applies to.
pub struct Reloader {
    pub args: Args,
    pub tls: Option<Arc<ServerTls>>,
    pub control: ServerControl,
    /// The tokens the HTTP API checks.
    pub http_auth: SharedAuth,
}

impl Reloader {
    async fn reload(&self, why: &str) {
        match self.apply().await {
            Ok(closed) => tracing::info!(why, closed, "reloaded TLS files, tokens and identities"),
            Err(e) => {
                tracing::error!(why, "reload failed, the running configuration stays: {e}");
            }
        }
    }

    async fn apply(&self) -> Result<usize, String> {
        let cfg = crate::configure(&self.args)?;
        if let Some(tls) = &self.tls {
            if cfg.tls.as_ref() != Some(tls.settings()) {
                tracing::warn!("the [tls] file names changed: that takes a restart");
            }
            tls.reload().map_err(|e| format!("TLS: {e}"))?;
        } else if cfg.tls.is_some() {
            tracing::warn!("TLS listeners are added by a restart, not a reload");
        }
        self.http_auth.set(cfg.broker.auth.clone());
        Ok(self.control.reload(cfg.broker.auth).await)
    }

    /// The files whose change triggers a reload when watching.
    fn watched(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.args.config.iter().cloned().collect();
        if let Some(tls) = &self.tls {
            let s = tls.settings();
            files.extend([s.cert.clone(), s.key.clone()]);
            files.extend(s.client_ca.clone());
        }
        files
    }
}

/// What a file looks like from outside: size and modification time.
fn stamp(files: &[PathBuf]) -> Vec<Option<(u64, SystemTime)>> {
    files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok()?;
            Some((m.len(), m.modified().ok()?))
        })
        .collect()
}

/// Reloads on every SIGHUP (Unix) and, with `watch`, whenever a watched
/// file changed; runs until `mqd` stops.
pub async fn serve(r: Reloader, watch: Option<Duration>) {
    let files = r.watched();
    let mut last = stamp(&files);
    let mut hangup = hangups();
    loop {
        let tick = async {
            match watch {
                Some(every) => tokio::time::sleep(every).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            got = next_hangup(&mut hangup) => {
                if got {
                    r.reload("SIGHUP").await;
                    last = stamp(&files);
                } else {
                    hangup = None;
                }
            }
            () = tick => {
                let now = stamp(&files);
                if now != last {
                    last = now;
                    r.reload("a watched file changed").await;
                }
            }
        }
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

#[cfg(unix)]
fn hangups() -> Hangups {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot listen for SIGHUP, reload only by reload_watch_ms: {e}");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangups() -> Hangups {
    None
}

/// The next SIGHUP; `false` when none can come any more.
#[cfg(unix)]
async fn next_hangup(h: &mut Hangups) -> bool {
    match h {
        Some(s) => s.recv().await.is_some(),
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangups) -> bool {
    std::future::pending().await
}
