//! A TCP proxy in front of a database server, so that a test can make the
//! server go away mid-use (every connection cut, the port closed) and come
//! back, without touching the machine's server.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    /// The URL to reach the server through the proxy.
    pub url: String,
    port: u16,
    upstream: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Tasks aborted by [`Proxy::stop`]: an abort takes effect when the
    /// runtime next reaches the task, so the listener may still hold the
    /// port until [`Proxy::restart`] has waited for them.
    stopped: Mutex<Vec<JoinHandle<()>>>,
    /// True while the server is silent: connections stay open, nothing
    /// passes either way, as over a network partition.
    silent: watch::Sender<bool>,
}

impl Proxy {
    /// A proxy on a free loopback port to the server `url` names.
    pub async fn start(url: &str) -> Proxy {
        let (upstream, rewrite) = split(url);
        let (listener, port) = listen_off_the_ephemeral_range().await;
        let proxy = Proxy {
            url: rewrite(&format!("127.0.0.1:{port}")),
            port,
            upstream,
            tasks: Arc::default(),
            stopped: Mutex::default(),
            silent: watch::Sender::new(false),
        };
        proxy.serve(listener);
        proxy
    }

    /// The server goes away: the port closes and every connection is cut.
    pub fn stop(&self) {
        let mut stopped = self.stopped.lock().expect("stopped");
        for task in self.tasks.lock().expect("tasks").drain(..) {
            task.abort();
            stopped.push(task);
        }
    }

    /// The network goes silent: every connection, open or new, stays open
    /// and nothing passes (no reset, no close), until [`Proxy::speak`].
    pub fn silence(&self) {
        self.silent.send_replace(true);
    }

    /// New connections pass again (the silenced ones stay silent).
    pub fn speak(&self) {
        self.silent.send_replace(false);
    }

    /// The server comes back on the same port.
    pub async fn restart(&self) {
        let stopped = std::mem::take(&mut *self.stopped.lock().expect("stopped"));
        for task in stopped {
            // Cancelled (or already ended): either way its sockets are closed.
            let _ = task.await;
        }
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the proxy's port again");
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = Arc::clone(&self.tasks);
        let upstream = self.upstream.clone();
        let silent = self.silent.subscribe();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let mut silent = silent.clone();
                let pipe = tokio::spawn(async move {
                    if *silent.borrow_and_update() {
                        let _held = inbound;
                        return std::future::pending().await;
                    }
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let silenced = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
                        _ = async { let _ = silent.wait_for(|silent| *silent).await; } => true,
                    };
                    if silenced {
                        let _held = (inbound, outbound);
                        std::future::pending::<()>().await;
                    }
                });
                tasks.lock().expect("tasks").push(pipe);
            }
        });
        self.tasks.lock().expect("tasks").push(accept);
    }
}

/// A loopback listener on a free port below Linux's ephemeral range (from
/// 32768): a port the kernel picked would be in that range, and while the
/// proxy is stopped any connection a test opens (to Redis, PostgreSQL,
/// another proxy) may be given it as its local port, so that `restart`
/// could not bind it again.
async fn listen_off_the_ephemeral_range() -> (TcpListener, u16) {
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20_000;
    const PORTS: u16 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = (std::process::id() % u32::from(PORTS)) as u16;
    for _ in 0..PORTS {
        let port = FIRST + (seed + NEXT.fetch_add(1, Ordering::Relaxed) % PORTS) % PORTS;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return (listener, port);
        }
    }
    panic!(
        "no free loopback port from {FIRST} to {}",
        FIRST + PORTS - 1
    );
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `scheme://[user@]host:port/rest` → (`host:port`, a function putting
/// another `host:port` in its place).
pub fn split(url: &str) -> (String, impl Fn(&str) -> String) {
    let (scheme, rest) = url.split_once("://").expect("a URL with ://");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (user, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    let (scheme, path) = (scheme.to_owned(), path.to_owned());
    (host.to_owned(), move |host: &str| {
        format!("{scheme}://{user}{host}{path}")
    })
}
