//! `mq_peer`: a desktop peer with no daemon (`mq_std::peer`), a mesh node in
//! the application's process. Made stopped by `mq_peer_new`, started with
//! `mq_peer_start` (its own log, its own listening address, registered in
//! the catalog and linked to the live peers), stopped by `mq_peer_stop` (it
//! may then start again) or `mq_peer_free`. The application reaches it with
//! the ordinary client: `mq_peer_connect` connects an `mq_client` to it.
//!
//! The peer runs on a tokio runtime of its own (two worker threads), made
//! by `mq_peer_start` and ended by `mq_peer_stop`.

use std::ffi::c_char;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use ::mq_client::blocking::Client;
use mq_std::catalog::Error as CatalogError;
use mq_std::peer::{Peer, PeerError, PeerOptions};

use crate::client::mq_client;
use crate::error::*;

/// A desktop peer (opaque): a mesh node in this process. Thread-safe: every
/// function taking a `mq_peer *` may be called from any thread,
/// concurrently, except `mq_peer_free`, which must be the last call on it.
pub struct mq_peer {
    running: Mutex<Option<Running>>,
    error: LastError,
}

/// A started peer and the runtime it runs on.
struct Running {
    runtime: tokio::runtime::Runtime,
    peer: Peer,
}

impl Running {
    /// Leaves the mesh, stops the broker, ends the runtime.
    fn stop(self) -> Result<(), Fail> {
        let Running { runtime, peer } = self;
        let stopped = runtime.block_on(peer.stop());
        runtime.shutdown_timeout(Duration::from_secs(5));
        stopped.map_err(Fail::from)
    }
}

/// How to start a peer. Fill it with `mq_peer_options_init`, then set fields.
/// The strings are borrowed for the duration of `mq_peer_start` only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct mq_peer_options {
    /// The peer's node id: printable ASCII without spaces, up to 100 bytes,
    /// unique in the catalog (starting a peer whose id is live elsewhere
    /// fences the other one off). Required.
    pub id: *const c_char,
    /// The catalog: `sqlite:PATH`, `redis://HOST:PORT/DB` or
    /// `postgres://USER@HOST:PORT/DB`. NULL: the SQLite file `mq-mesh.db` in
    /// the temporary directory, shared by the peers of this machine.
    pub catalog: *const c_char,
    /// The directory of the peer's write-ahead log. NULL: `mq-peer-<id>` in
    /// the temporary directory.
    pub data_dir: *const c_char,
    /// Where the peer listens for the other peers' links and for clients,
    /// `host:port` with a numeric host. NULL: `127.0.0.1:0` (a free port).
    pub listen: *const c_char,
    /// The address the other peers connect to. NULL: the listen address.
    pub advertise: *const c_char,
    /// How long the catalog lists the peer after a heartbeat, in ms. 0: the
    /// default (5 s).
    pub lease_ms: u32,
    /// How often the lease is renewed and the live peers read, in ms (less
    /// than the lease). 0: the default (1 s).
    pub heartbeat_ms: u32,
    /// How long one call to the catalog may take, in ms (shorter than the
    /// lease): a call that does not answer in time fails and is tried again
    /// at the next heartbeat. 0: the default (half the lease, at most the
    /// lease less a heartbeat).
    pub call_timeout_ms: u32,
}

/// Fills `*opts` with the defaults: no id (required), the machine's SQLite
/// catalog, the log in the temporary directory, loopback on a free port.
///
/// # Safety
/// `opts` must be NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_peer_options_init(opts: *mut mq_peer_options) -> mq_result {
    run_bare(|| unsafe {
        put(
            opts,
            mq_peer_options {
                id: std::ptr::null(),
                catalog: std::ptr::null(),
                data_dir: std::ptr::null(),
                listen: std::ptr::null(),
                advertise: std::ptr::null(),
                lease_ms: 0,
                heartbeat_ms: 0,
                call_timeout_ms: 0,
            },
            "opts",
        )
    })
}

impl mq_peer_options {
    /// The Rust options these describe.
    unsafe fn to_options(self) -> Result<PeerOptions, Fail> {
        let id = unsafe { str_arg(self.id, "opts->id") }?;
        let mut opts = PeerOptions::new(id);
        if let Some(catalog) = unsafe { opt_str_arg(self.catalog, "opts->catalog") }? {
            opts.node.catalog = catalog.to_owned();
        }
        if let Some(dir) = unsafe { opt_str_arg(self.data_dir, "opts->data_dir") }? {
            opts.data_dir = PathBuf::from(dir);
        }
        if let Some(listen) = unsafe { opt_str_arg(self.listen, "opts->listen") }? {
            opts.listen = listen.parse().map_err(|e| {
                Fail::invalid(format!(
                    "opts->listen {listen:?} is not an address (IP:PORT): {e}"
                ))
            })?;
        }
        opts.node.advertise =
            unsafe { opt_str_arg(self.advertise, "opts->advertise") }?.map(str::to_owned);
        if self.lease_ms > 0 {
            opts.node.lease = Duration::from_millis(self.lease_ms.into());
        }
        if self.heartbeat_ms > 0 {
            opts.node.heartbeat = Duration::from_millis(self.heartbeat_ms.into());
        }
        if self.call_timeout_ms > 0 {
            opts.node.call_timeout = Some(Duration::from_millis(self.call_timeout_ms.into()));
        }
        opts.node
            .check()
            .map_err(|e| Fail::invalid(e.to_string()))?;
        Ok(opts)
    }
}

impl From<PeerError> for Fail {
    fn from(e: PeerError) -> Fail {
        let code = match &e {
            PeerError::Io(_) => mq_result::MQ_ERR_IO,
            PeerError::Catalog(c) => match c {
                CatalogError::Url(_) | CatalogError::Invalid(_) => mq_result::MQ_ERR_INVALID,
                CatalogError::Unavailable { .. } => mq_result::MQ_ERR_IO,
                CatalogError::Fenced { .. } | CatalogError::LeaseExpired { .. } => {
                    mq_result::MQ_ERR_REFUSED
                }
                _ => mq_result::MQ_ERR_OTHER,
            },
            _ => mq_result::MQ_ERR_OTHER,
        };
        Fail::new(code, e.to_string())
    }
}

/// Makes a stopped peer and stores it in `*out`. Free it with
/// `mq_peer_free`.
///
/// # Safety
/// `out` must be NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_peer_new(out: *mut *mut mq_peer) -> mq_result {
    run_bare(|| {
        need(out, "out")?;
        let peer = Box::new(mq_peer {
            running: Mutex::new(None),
            error: LastError::default(),
        });
        unsafe { put(out, Box::into_raw(peer), "out") }
    })
}

/// Starts the peer and blocks until it runs: opens its log (replaying it),
/// listens, registers in the catalog and starts linking to the live peers.
/// Fails with `MQ_ERR_INVALID` for bad options (no id, a listen address
/// that is not IP:PORT, a catalog URL of no known kind, a heartbeat not
/// shorter than the lease) or a peer that runs already, `MQ_ERR_IO` when the
/// log cannot be opened, the address not bound or the catalog's database
/// not reached, `MQ_ERR_REFUSED` when the catalog refuses the registration;
/// the error text says which.
///
/// # Safety
/// `peer` must be NULL or a live peer; `opts` NULL or valid for reads, with
/// its strings NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_peer_start(
    peer: *const mq_peer,
    opts: *const mq_peer_options,
) -> mq_result {
    on(unsafe { handle(peer) }, |peer| {
        let opts = unsafe { handle(opts) }.ok_or_else(|| Fail::null("opts"))?;
        let opts = unsafe { opts.to_options() }?;
        let mut running = peer.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running.is_some() {
            return Err(Fail::invalid("the peer runs already (stop it first)"));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mq-peer")
            // Its links write to other peers' sockets: in a C host a peer
            // gone would otherwise end the program with SIGPIPE.
            .on_thread_start(::mq_client::block_sigpipe_in_this_thread)
            .enable_all()
            .build()
            .map_err(|e| Fail::new(mq_result::MQ_ERR_IO, format!("peer: no runtime: {e}")))?;
        let started = runtime.block_on(Peer::start(opts));
        match started {
            Ok(p) => {
                *running = Some(Running { runtime, peer: p });
                Ok(())
            }
            Err(e) => {
                runtime.shutdown_timeout(Duration::from_secs(5));
                Err(e.into())
            }
        }
    })
}

/// Copies the address the peer listens on (`127.0.0.1:40123`) and a NUL
/// into `buf` of `cap` bytes, its length without the NUL into `*len` (if
/// `len` is not NULL), as `mq_client_error` does its text. Clients of other
/// processes connect there (with `mq_client_connect`). `MQ_ERR_CLOSED` when
/// the peer does not run.
///
/// # Safety
/// `peer` must be NULL or a live peer; `buf` NULL or valid for `cap` bytes;
/// `len` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_peer_address(
    peer: *const mq_peer,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> mq_result {
    on(unsafe { handle(peer) }, |peer| {
        let addr = peer.address()?;
        unsafe { copy_text(&addr, buf, cap, len) }
    })
}

impl mq_peer {
    fn address(&self) -> Result<String, Fail> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running
            .as_ref()
            .map(|r| r.peer.local_addr().to_string())
            .ok_or_else(|| Fail::new(mq_result::MQ_ERR_CLOSED, "the peer does not run"))
    }
}

/// Connects `client` (from `mq_client_new`, not connected) to the peer with
/// a persistent session keyed by `client_id` (its subscriptions and unacked
/// messages outlive a disconnect), and blocks until the peer welcomes it.
/// From then on every `mq_client_*` call works on it as against `mqd`. For
/// other options (credit, keepalive), connect with `mq_client_connect` to
/// `mq_peer_address`. Failures (`MQ_ERR_CLOSED`: the peer does not run; the
/// codes of `mq_client_connect`) leave their text in the peer.
///
/// # Safety
/// `peer` must be NULL or a live peer; `client` NULL or a live client;
/// `client_id` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_peer_connect(
    peer: *const mq_peer,
    client: *const mq_client,
    client_id: *const c_char,
) -> mq_result {
    on(unsafe { handle(peer) }, |peer| {
        let client = unsafe { handle(client) }.ok_or_else(|| Fail::null("client"))?;
        let id = unsafe { str_arg(client_id, "client_id") }?;
        let opts = {
            let running = peer.running.lock().unwrap_or_else(PoisonError::into_inner);
            let running = running
                .as_ref()
                .ok_or_else(|| Fail::new(mq_result::MQ_ERR_CLOSED, "the peer does not run"))?;
            running.peer.client_options(id)
        };
        client.attach(|| Client::connect(opts).map_err(Fail::from))
    })
}

/// Stops the peer: leaves the mesh (deregisters from the catalog), stops its
/// broker (its clients' connections close; they reconnect once it starts
/// again on the same address), ends its runtime. The peer may start again;
/// its log keeps its sessions. Stopping a peer that does not run succeeds
/// and does nothing. A catalog that cannot be reached to deregister gives
/// `MQ_ERR_IO` (the peer is stopped all the same).
///
/// # Safety
/// `peer` must be NULL or a live peer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_peer_stop(peer: *const mq_peer) -> mq_result {
    on(unsafe { handle(peer) }, |peer| {
        let running = peer
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        running.map_or(Ok(()), Running::stop)
    })
}

/// Stops the peer if it runs (as `mq_peer_stop`, ignoring failures) and frees
/// it. NULL is fine. Clients connected to it stay valid handles (and must
/// still be freed).
///
/// # Safety
/// `peer` must be NULL or a peer from `mq_peer_new` not freed yet, and no
/// other thread may use it during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_peer_free(peer: *mut mq_peer) {
    if peer.is_null() {
        return;
    }
    let peer = unsafe { Box::from_raw(peer) };
    let _ = guard(|| {
        let running = peer
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(peer);
        running.map_or(Ok(()), Running::stop)
    });
}

/// Copies the text of the peer's last failure (empty if none yet), as
/// `mq_client_error` does.
///
/// # Safety
/// `peer` must be NULL or a live peer; `buf` NULL or valid for `cap` bytes;
/// `len` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_peer_error(
    peer: *const mq_peer,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> mq_result {
    unsafe { error_of(peer, buf, cap, len) }
}

impl KeepsError for mq_peer {
    fn last_error(&self) -> &LastError {
        &self.error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_errors_map_to_their_codes() {
        let cases = [
            (CatalogError::Url("x".into()), mq_result::MQ_ERR_INVALID),
            (
                CatalogError::Unavailable {
                    backend: "sqlite",
                    detail: "gone".into(),
                },
                mq_result::MQ_ERR_IO,
            ),
            (
                CatalogError::Fenced {
                    node: "a".into(),
                    held: 1,
                    current: 2,
                },
                mq_result::MQ_ERR_REFUSED,
            ),
        ];
        for (error, code) in cases {
            let fail = Fail::from(PeerError::Catalog(error.clone()));
            assert_eq!(fail.code, code, "{error}");
            assert!(fail.text.starts_with("peer: catalog: "), "{}", fail.text);
        }
    }
}
