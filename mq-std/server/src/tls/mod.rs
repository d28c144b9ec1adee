//! TLS on the server's listeners: the settings ([`TlsSettings`]), the
//! certificate, key and client CA loaded into a reloadable [`ServerTls`], and
//! the one function every listener uses to turn an accepted TCP stream into a
//! plain or TLS stream ([`secure`], in `tls/stream.rs`), with the identity of
//! a verified client certificate (`tls/identity.rs`).
//!
//! TLS is an adapter concern: the broker never sees it. What reaches the
//! broker is the identity string of a verified client certificate
//! ([`Broker::accept_with_identity`](mq_core::broker::Broker::accept_with_identity)),
//! and the core's auth decides what that identity may do.
//!
//! rustls with the `ring` provider, no OpenSSL.

mod identity;
mod stream;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use mq_client::tls::{TlsError, load_certs, load_key, load_roots, provider};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

pub use identity::identity_of;
pub use stream::{HANDSHAKE_TIMEOUT, Secured, Stream, secure};

/// Where a listener's TLS material is, as files (PEM) read at start and again
/// on every [`ServerTls::reload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The server's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of `cert`.
    pub key: PathBuf,
    /// CA certificate(s) client certificates are verified against (mutual
    /// TLS); `None`: clients are not asked for a certificate.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: refuse clients without a certificate (else a client
    /// may connect without one and authenticate with a token).
    pub require_client_cert: bool,
}

/// A listener's TLS: the rustls configuration built from [`TlsSettings`],
/// swapped whole by [`reload`](Self::reload). Connections accepted before a
/// reload keep the session they negotiated.
pub struct ServerTls {
    settings: TlsSettings,
    current: RwLock<Loaded>,
}

#[derive(Clone)]
struct Loaded {
    config: Arc<ServerConfig>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("settings", &self.settings)
            .finish()
    }
}

impl ServerTls {
    /// Reads the files `settings` names; fails with an error naming the file
    /// that is missing, not PEM, or does not fit.
    pub fn load(settings: TlsSettings) -> Result<Self, TlsError> {
        let loaded = build(&settings)?;
        Ok(ServerTls {
            settings,
            current: RwLock::new(loaded),
        })
    }

    /// Reads the files again (a rotated certificate, key or client CA). On an
    /// error the configuration in use stays as it was.
    pub fn reload(&self) -> Result<(), TlsError> {
        let loaded = build(&self.settings)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }

    /// The settings it was loaded from.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The configuration new connections are accepted with.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.loaded().config
    }

    /// Whether a client certificate chain (leaf first) still verifies against
    /// the client CA now loaded; `true` when clients are not verified.
    pub fn still_trusted(&self, chain: &[CertificateDer<'static>]) -> bool {
        let Some(verifier) = self.loaded().verifier else {
            return true;
        };
        let Some((leaf, intermediates)) = chain.split_first() else {
            return false;
        };
        verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .is_ok()
    }

    fn loaded(&self) -> Loaded {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn build(s: &TlsSettings) -> Result<Loaded, TlsError> {
    let certs = load_certs(&s.cert)?;
    let key = load_key(&s.key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::new(format!("TLS: {e}")))?;
    let (builder, verifier) = match &s.client_ca {
        Some(ca) => {
            let roots = Arc::new(load_roots(ca)?);
            let mut v = WebPkiClientVerifier::builder_with_provider(roots, provider());
            if !s.require_client_cert {
                v = v.allow_unauthenticated();
            }
            let v = v.build().map_err(|e| {
                TlsError::new(format!(
                    "the client CA in {} cannot be used: {e}",
                    ca.display()
                ))
            })?;
            (builder.with_client_cert_verifier(v.clone()), Some(v))
        }
        None => (builder.with_no_client_auth(), None),
    };
    let config = builder.with_single_cert(certs, key).map_err(|e| {
        TlsError::new(format!(
            "the key in {} does not fit the certificate in {}: {e}",
            s.key.display(),
            s.cert.display()
        ))
    })?;
    Ok(Loaded {
        config: Arc::new(config),
        verifier,
    })
}
