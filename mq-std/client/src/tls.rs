//! TLS settings of a client connection ([`TlsOptions`]) and the PEM files
//! both sides read: certificates, private keys, CA bundles.
//!
//! TLS is rustls with its `ring` provider. The clients run it as a sans-IO
//! layer between the socket and the driver (`driver/secure.rs`), so the async
//! and the blocking client, and through it C and Python, share it. The
//! server's certificate is verified against the CA given and the name the
//! client connects to (or [`TlsOptions::server_name`]); there is no switch to
//! turn that off.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

/// How a client speaks TLS to the broker.
///
/// `Debug` shows paths, never key material.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// PEM file with the CA certificate(s) the broker's certificate must chain
    /// to. Required: the clients carry no built-in roots.
    pub ca: Option<PathBuf>,
    /// PEM file with the client's certificate chain, for mutual TLS (with
    /// [`key`](Self::key)).
    pub cert: Option<PathBuf>,
    /// PEM file with the private key of [`cert`](Self::cert).
    pub key: Option<PathBuf>,
    /// The name the broker's certificate must carry; default: the host part
    /// of the address connected to (a DNS name or an IP address).
    pub server_name: Option<String>,
}

impl TlsOptions {
    /// TLS verified against the CA certificate(s) in `ca`.
    pub fn new(ca: impl Into<PathBuf>) -> Self {
        TlsOptions {
            ca: Some(ca.into()),
            ..TlsOptions::default()
        }
    }

    /// Presents `cert` (a PEM chain) with its `key` to the broker (mutual TLS).
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.cert = Some(cert.into());
        self.key = Some(key.into());
        self
    }

    /// Verifies the broker's certificate against `name` instead of the host
    /// connected to.
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// The rustls configuration and the name to verify, for connections to
    /// `addr` (`host:port`).
    pub(crate) fn client_config(&self, addr: &str) -> Result<ClientTls, TlsError> {
        let ca = self.ca.as_deref().ok_or_else(|| {
            TlsError::new("TLS needs the CA certificate(s) that signed the broker's (--ca FILE)")
        })?;
        let roots = load_roots(ca)?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::new(format!("TLS: {e}")))?
            .with_root_certificates(roots);
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
                .map_err(|e| {
                    TlsError::new(format!(
                        "the key in {} does not fit the certificate in {}: {e}",
                        key.display(),
                        cert.display()
                    ))
                })?,
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(TlsError::new(
                    "a client certificate needs its key, and a key its certificate (--cert and --key)",
                ));
            }
        };
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => host_of(addr).to_string(),
        };
        let name = ServerName::try_from(name.clone())
            .map_err(|_| TlsError::new(format!("{name:?} is not a valid server name")))?;
        Ok(ClientTls {
            config: Arc::new(config),
            name,
        })
    }
}

/// A client's TLS, ready for connections.
#[derive(Clone)]
pub(crate) struct ClientTls {
    pub config: Arc<ClientConfig>,
    pub name: ServerName<'static>,
}

/// The host part of `host:port`, `[v6]:port` or a bare host.
fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => host,
        _ => addr,
    }
}

/// The crypto provider everywhere in mq: ring (builds with MinGW; aws-lc-rs
/// needs cmake and NASM).
// rustls marks its ring provider deprecated to steer users to aws-lc-rs;
// mq stays on ring on purpose (see above).
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS settings that cannot be used: a file missing or not PEM, a key that
/// does not fit its certificate. The text names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(String);

impl TlsError {
    /// An error saying `what`.
    pub fn new(what: impl Into<String>) -> Self {
        TlsError(what.into())
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

impl From<TlsError> for io::Error {
    fn from(e: TlsError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// Every certificate in the PEM file at `path` (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::new(format!("reading certificates from {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError::new(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in the PEM file at `path`.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        TlsError::new(format!(
            "reading a private key from {}: {e}",
            path.display()
        ))
    })
}

/// The CA certificates in the PEM file at `path`, as trust anchors.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| {
            TlsError::new(format!(
                "a CA certificate in {} cannot be used: {e}",
                path.display()
            ))
        })?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn hosts() {
        assert_eq!(host_of("example.org:7410"), "example.org");
        assert_eq!(host_of("127.0.0.1:7410"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7410"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
        assert_eq!(host_of("::1"), "::1");
    }
}
