//! `mqd`, the mq broker daemon.
//!
//! Configuration comes from the embedded defaults, then a TOML file
//! (`--config`), then `MQ_*` environment variables, then the flags below, each
//! overriding the one before (see `mq_cli::config`). SIGINT or SIGTERM on Unix,
//! and on Windows the console's Ctrl-C, Ctrl-Break, closing or the system
//! shutting down, stop it gracefully: it stops accepting, closes every connection
//! after what was queued for it, waits for the store, and exits 0. Windows ends a
//! process 5 s after its console closed: that stop is cut short after 4 s (what
//! was acknowledged is already in the log).
//!
//! Records go to the write-ahead log in the data directory (`mq_server::wal`), which
//! is read back before anything is accepted; `[store] kind = "memory"` keeps
//! nothing on disk. Logs go to stderr.
//!
//! TLS listeners (`--listen-tls`, `--mqtt-tls`, `--http-tls`, `[tls]`) serve
//! the same broker with the certificate given; SIGHUP (and, with
//! `reload_watch_ms`, a change of the config or TLS files: the way on Windows)
//! reloads the TLS files, tokens and identities without a restart
//! (`mqd/reload.rs`).
//!
//! Serial lines (`--serial PATH`, `[serial]` in the file) carry devices that
//! speak the COBS framing into the same broker (`mq_server::serial`); they are
//! opened before anything listens, and a line that cannot be opened stops `mqd`.

#[path = "common/alloc.rs"]
mod alloc;
#[path = "mqd/reload.rs"]
mod reload;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use mq_cli::config::{DEFAULT_BAUD, FileConfig, SerialSection, StoreConfig};
use mq_server::server::{self, ServerOptions};
use mq_server::store::{MemoryStore, Store};
use mq_server::tls::ServerTls;
use mq_server::wal::Wal;

#[derive(Parser, Debug, Clone)]
#[command(name = "mqd", version, about = "The mq broker daemon")]
struct Args {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7410].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Address for the web console, /api, /metrics and /health; "" disables it [default: 127.0.0.1:7411].
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// Serve MQTT 3.1.1 and 5 on this address too (1883 by convention; off
    /// unless given here or in `[mqtt]`; "" turns it off).
    #[arg(long, value_name = "ADDR")]
    mqtt: Option<String>,
    /// Serve the NATS client protocol on this address too (4222 by
    /// convention; off unless given here or in `[nats]`; "" turns it off).
    #[arg(long, value_name = "ADDR")]
    nats: Option<String>,
    /// Serve the mq protocol over TLS on this address too (needs --tls-cert
    /// and --tls-key, or `[tls]`); "" turns it off.
    #[arg(long, value_name = "ADDR")]
    listen_tls: Option<String>,
    /// Serve /metrics and /health over TLS (HTTPS) on this address too.
    #[arg(long, value_name = "ADDR")]
    http_tls: Option<String>,
    /// Serve MQTT over TLS on this address too (8883 by convention).
    #[arg(long, value_name = "ADDR")]
    mqtt_tls: Option<String>,
    /// The TLS listeners' certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Ask TLS clients for a certificate that chains to this CA (PEM): mutual
    /// TLS. Its identity (subject CN) gets the permissions `[[identities]]`
    /// gives it.
    #[arg(long, value_name = "FILE")]
    tls_client_ca: Option<PathBuf>,
    /// Directory for the broker's data [default: ./mq-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log filter, e.g. "info" or "mq_server=debug" [default: info].
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
    /// Serve a device on this serial line (a terminal device or a
    /// pseudo-terminal) at 115200 baud; repeat for more lines. Unix only.
    #[arg(long, value_name = "PATH")]
    serial: Vec<PathBuf>,
    /// Print the resolved configuration and exit.
    #[arg(long)]
    check_config: bool,
    /// Once serving, write the addresses it listens on to FILE (lines
    /// `listen=ADDR` and, with HTTP, `http=ADDR`, with MQTT, `mqtt=ADDR`, with
    /// NATS, `nats=ADDR`, and `listen_tls=`, `mqtt_tls=`, `http_tls=` for the
    /// TLS listeners): how
    /// a script or a test that asks for port 0 learns which ports it got.
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// Join a mesh as this node id (needs --catalog, or `[node]`).
    #[arg(long, value_name = "ID")]
    node: Option<String>,
    /// The mesh's catalog: sqlite:PATH, redis://HOST:PORT/DB or
    /// postgres://USER@HOST:PORT/DB.
    #[arg(long, value_name = "URL")]
    catalog: Option<String>,
    /// The address the other nodes connect to [default: the listen address].
    #[arg(long, value_name = "ADDR")]
    advertise: Option<String>,
}

/// The configuration from the embedded defaults, the file, the environment
/// and the flags, in that order (also what a reload reads again).
fn configure(args: &Args) -> Result<mq_cli::config::DaemonConfig, String> {
    let mut file = match &args.config {
        Some(path) => FileConfig::read(path).map_err(|e| e.to_string())?,
        None => FileConfig::default(),
    };
    file.apply_env(|k| std::env::var(k).ok())
        .map_err(|e| e.to_string())?;
    let args = args.clone();
    if let Some(v) = args.listen {
        file.listen = Some(v);
    }
    if let Some(v) = args.http {
        file.http = Some(v);
    }
    if let Some(v) = args.mqtt {
        file.mqtt.get_or_insert_with(Default::default).listen = Some(v);
    }
    if let Some(v) = args.nats {
        file.nats.get_or_insert_with(Default::default).listen = Some(v);
    }
    if let Some(v) = args.listen_tls {
        file.listen_tls = Some(v);
    }
    if let Some(v) = args.http_tls {
        file.http_tls = Some(v);
    }
    if let Some(v) = args.mqtt_tls {
        file.mqtt.get_or_insert_with(Default::default).listen_tls = Some(v);
    }
    if args.tls_cert.is_some() || args.tls_key.is_some() || args.tls_client_ca.is_some() {
        let tls = file.tls.get_or_insert_with(Default::default);
        tls.cert = args.tls_cert.or(tls.cert.take());
        tls.key = args.tls_key.or(tls.key.take());
        tls.client_ca = args.tls_client_ca.or(tls.client_ca.take());
    }
    if let Some(v) = args.data_dir {
        file.data_dir = Some(v);
    }
    if let Some(v) = args.log {
        file.log = Some(v);
    }
    if let Some(v) = args.node {
        file.node_mut().id = Some(v);
    }
    if let Some(v) = args.catalog {
        file.node_mut().catalog = Some(v);
    }
    if let Some(v) = args.advertise {
        file.node_mut().advertise = Some(v);
    }
    file.serial
        .extend(args.serial.into_iter().map(|path| SerialSection {
            path,
            baud: Some(DEFAULT_BAUD),
        }));
    file.resolve().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match configure(&args) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    if args.check_config {
        println!("{cfg:#?}");
        return ExitCode::SUCCESS;
    }
    let filter = match tracing_subscriber::EnvFilter::try_new(&cfg.log) {
        Ok(f) => f,
        Err(e) => return fail(&format!("log filter {:?}: {e}", cfg.log)),
    };
    // Logs go to stderr; stdout is for what was asked for (`--check-config`).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(cfg, args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("mqd: {e}");
    ExitCode::from(2)
}

async fn run(cfg: mq_cli::config::DaemonConfig, args: Args) -> Result<(), String> {
    let memory = cfg.connection_memory;
    let tls = match &cfg.tls {
        Some(settings) => Some(Arc::new(
            ServerTls::load(settings.clone()).map_err(|e| format!("TLS: {e}"))?,
        )),
        None => None,
    };
    // Recovery runs here, before anything is accepted; a damaged log is reported
    // and skipped, never fatal.
    let (store, described): (Box<dyn Store>, String) = match &cfg.store {
        StoreConfig::Memory => (
            Box::new(MemoryStore),
            "memory (messages are kept while mqd runs)".into(),
        ),
        StoreConfig::Wal(opts) => {
            let dir = cfg.data_dir.clone();
            let opts = opts.clone();
            let wal = tokio::task::spawn_blocking(move || Wal::open(&dir, opts))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("cannot open the log in {}: {e}", cfg.data_dir.display()))?;
            let o = wal.options();
            let described = format!(
                "wal {} (fsync {}, segments of {} bytes, limit {}, {} records recovered)",
                wal.dir().display(),
                o.fsync,
                o.segment_bytes,
                o.max_bytes
                    .map_or_else(|| "none".to_string(), |m| format!("{m} bytes")),
                wal.recovery().records,
            );
            (Box::new(wal), described)
        }
    };
    let mut lines = Vec::new();
    for line in &cfg.serial {
        let port = mq_server::serial::open(&line.path, line.baud)
            .map_err(|e| format!("cannot open serial line {}: {e}", line.path.display()))?;
        lines.push((line.path.display().to_string(), port));
    }
    let opts = ServerOptions {
        listen: cfg.listen,
        listen_tls: cfg.listen_tls,
        mqtt: cfg.mqtt,
        nats: cfg.nats,
        mqtt_tls: cfg.mqtt_tls,
        tls: tls.clone(),
        broker: match &cfg.node {
            Some(node) => node.broker_config(cfg.broker.clone()),
            None => cfg.broker.clone(),
        },
        store,
        input_budget: memory / 4,
        write_queue: (memory * 3 / 4 / (64 * 1024)).max(2),
        chunk: 64 * 1024,
        drain_timeout: cfg.shutdown_timeout,
    };
    let handle = server::spawn(opts)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    tracing::info!(
        listen = %handle.local_addr(),
        store = %described,
        "mqd ready"
    );
    let addrs = handle.addrs();
    if let Some(mqtt) = addrs.mqtt {
        tracing::info!(%mqtt, "serving MQTT 3.1.1 and 5");
    }
    if let Some(nats) = addrs.nats {
        tracing::info!(%nats, "serving the NATS client protocol");
    }
    if let Some(at) = addrs.listen_tls {
        tracing::info!(listen_tls = %at, "serving the mq protocol over TLS");
    }
    if let Some(at) = addrs.mqtt_tls {
        tracing::info!(mqtt_tls = %at, "serving MQTT over TLS");
    }
    let control = handle.control();
    for (name, port) in lines {
        tracing::info!(line = %name, "serving serial line");
        let serve = mq_server::serial::serve_line(
            control.clone(),
            port,
            name.clone(),
            cfg.broker.limits.max_frame,
        );
        tokio::spawn(async move {
            if let Err(e) = serve.await {
                tracing::error!(line = %name, error = %e, "serial line failed");
            }
        });
    }
    let mut http_addr = None;
    let mut http_tls_addr = None;
    let http_auth = mq_server::http::SharedAuth::new(cfg.broker.auth.clone());
    for (at, tls, scheme) in [
        (cfg.http, None, "http"),
        (cfg.http_tls, tls.clone(), "https"),
    ] {
        let Some(at) = at else { continue };
        let listener = tokio::net::TcpListener::bind(at)
            .await
            .map_err(|e| format!("cannot listen on {at} for {scheme}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(%addr, scheme, "console on /, metrics on /metrics, health on /health, API on /api");
        if tls.is_some() {
            http_tls_addr = Some(addr);
        } else {
            http_addr = Some(addr);
        }
        let opts = mq_server::http::HttpOptions {
            control: control.clone(),
            auth: http_auth.clone(),
            tls,
        };
        tokio::spawn(async move {
            if let Err(e) = mq_server::http::serve(listener, opts).await {
                tracing::error!(error = %e, scheme, "http endpoint stopped");
            }
        });
    }
    tokio::spawn(reload::serve(
        reload::Reloader {
            args: args.clone(),
            tls,
            control: control.clone(),
            http_auth,
        },
        cfg.reload_watch,
    ));
    // Registered (and linking) before the ready file says it serves.
    let mut node = match cfg.node.clone() {
        Some(opts) => {
            let id = opts.id.clone();
            let started = mq_server::node::spawn(control.clone(), addrs.listen, opts).await;
            Some(started.map_err(|e| format!("node {id}: {e}"))?)
        }
        None => None,
    };
    if let Some(path) = &args.ready_file {
        let mut ready = vec![("listen", Some(addrs.listen)), ("http", http_addr)];
        ready.extend([
            ("mqtt", addrs.mqtt),
            ("nats", addrs.nats),
            ("listen_tls", addrs.listen_tls),
            ("mqtt_tls", addrs.mqtt_tls),
            ("http_tls", http_tls_addr),
        ]);
        write_ready(path, &ready)
            .map_err(|e| format!("cannot write the ready file {}: {e}", path.display()))?;
    }
    let mut stopped = std::pin::pin!(handle.wait());
    let node_failed = async {
        match node.as_mut() {
            Some(n) => n.failed().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        stop = shutdown_signal() => {
            tracing::info!(signal = stop.signal, "stopping");
            let graceful = async {
                if let Some(node) = node.take()
                    && let Err(e) = node.stop().await
                {
                    tracing::warn!(error = %e, "cannot leave the mesh");
                }
                control.shutdown().await;
                stopped.await
            };
            match stop.grace {
                None => graceful.await.map_err(|e| e.to_string())?,
                Some(grace) => match tokio::time::timeout(grace, graceful).await {
                    Ok(result) => result.map_err(|e| e.to_string())?,
                    Err(_) => {
                        tracing::warn!(
                            grace_ms = grace.as_millis() as u64,
                            "not stopped in time: Windows is about to end the process"
                        );
                        return Ok(());
                    }
                },
            }
        }
        // The server stops by itself only on a fatal store error.
        result = &mut stopped => return result.map_err(|e| format!("broker stopped: {e}")),
        // A newer incarnation of this node registered: it must not act for
        // the node any more.
        e = node_failed => {
            control.shutdown().await;
            let _ = stopped.await;
            return Err(format!("left the mesh: {e}"));
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Writes `--ready-file`: under a temporary name first, then renamed, so that
/// whoever waits for it never reads half of it.
fn write_ready(path: &Path, addrs: &[(&str, Option<SocketAddr>)]) -> std::io::Result<()> {
    let mut text = String::new();
    for (key, addr) in addrs {
        if let Some(addr) = addr {
            text.push_str(&format!("{key}={addr}\n"));
        }
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// What asked `mqd` to stop, and how long it may take when the system ends the
/// process regardless.
struct Stop {
    signal: &'static str,
    grace: Option<Duration>,
}

/// How long `mqd` takes at most to stop after its console closed (or the
/// system shuts down): Windows ends the process 5 s after the event.
#[cfg(windows)]
const CLOSE_GRACE: Duration = Duration::from_millis(4_000);

#[cfg(unix)]
async fn shutdown_signal() -> Stop {
    use tokio::signal::unix::{SignalKind, signal};
    let stop = |signal| Stop {
        signal,
        grace: None,
    };
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return stop("SIGINT");
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => stop("SIGINT"),
        _ = term.recv() => stop("SIGTERM"),
    }
}

/// The console's control events (tokio registers one `SetConsoleCtrlHandler`
/// routine for them). Ctrl-Break is what another program can send to one
/// process group (`GenerateConsoleCtrlEvent`); close and shutdown come with a
/// deadline, after which Windows ends the process. Logoff is not a reason to
/// stop: a service receives it whenever any user logs off.
#[cfg(windows)]
async fn shutdown_signal() -> Stop {
    use tokio::signal::windows;
    let stop = |signal, grace| Stop { signal, grace };
    let (mut ctrl_break, mut ctrl_close, mut ctrl_shutdown) = match (
        windows::ctrl_break(),
        windows::ctrl_close(),
        windows::ctrl_shutdown(),
    ) {
        (Ok(b), Ok(c), Ok(s)) => (b, c, s),
        _ => {
            tracing::warn!("cannot register for the console's events but Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return stop("Ctrl-C", None);
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => stop("Ctrl-C", None),
        _ = ctrl_break.recv() => stop("Ctrl-Break", None),
        _ = ctrl_close.recv() => stop("console closed", Some(CLOSE_GRACE)),
        _ = ctrl_shutdown.recv() => stop("system shutdown", Some(CLOSE_GRACE)),
    }
}

/// Neither Unix nor Windows: Ctrl-C as tokio knows it.
#[cfg(not(any(unix, windows)))]
async fn shutdown_signal() -> Stop {
    let _ = tokio::signal::ctrl_c().await;
    Stop {
        signal: "Ctrl-C",
        grace: None,
    }
}
