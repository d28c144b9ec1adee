//! Where the daemon is and how to reach it: the `--server`, `--token` and TLS
//! (`--tls`, `--ca`, `--cert`, `--key`) options every subcommand shares ([`Server`]), and connecting with them.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use mq_client::client::{Client, ClientOptions, Error, Reason, TlsOptions};

use crate::fail::Fail;

/// Where the daemon is and how to authenticate.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub struct Server {
    /// The daemon's address.
    #[arg(long, global = true, env = "MQ_SERVER", value_name = "HOST:PORT",
          default_value = mq_client::DEFAULT_ADDR)]
    pub server: String,
    /// Auth token, if the daemon requires one.
    #[arg(long, global = true, env = "MQ_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Connect over TLS (to mqd's `listen_tls` port), verifying the daemon's
    /// certificate against --ca and the host name of --server.
    #[arg(long, global = true, env = "MQ_TLS")]
    pub tls: bool,
    /// CA certificate(s) (PEM) the daemon's certificate must chain to;
    /// implies --tls.
    #[arg(long, global = true, env = "MQ_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS, with --key; implies --tls.
    #[arg(long, global = true, env = "MQ_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, global = true, env = "MQ_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The name the daemon's certificate must carry, when it is not the host
    /// of --server.
    #[arg(long, global = true, env = "MQ_SERVER_NAME", value_name = "NAME")]
    pub server_name: Option<String>,
}

impl Server {
    /// The client options for this daemon.
    pub fn options(&self) -> ClientOptions {
        let mut opts = ClientOptions::new(self.server.clone());
        opts.token = self.token.clone();
        if self.tls || self.ca.is_some() || self.cert.is_some() || self.key.is_some() {
            let mut tls = TlsOptions::default();
            tls.ca = self.ca.clone();
            tls.cert = self.cert.clone();
            tls.key = self.key.clone();
            tls.server_name = self.server_name.clone();
            opts.tls = Some(tls);
        }
        opts
    }

    /// Connects with `opts` (made by [`options`](Self::options)), turning a
    /// failure into a message that names the daemon.
    pub async fn connect_with(&self, opts: ClientOptions) -> Result<Client, Fail> {
        let timeout = opts.connect_timeout;
        Client::connect(opts)
            .await
            .map_err(|e| self.connect_error(e, timeout))
    }

    /// Connects with the default options.
    pub async fn connect(&self) -> Result<Client, Fail> {
        self.connect_with(self.options()).await
    }

    fn connect_error(&self, e: Error, timeout: Duration) -> Fail {
        let addr = &self.server;
        Fail(match e {
            Error::Io(e) => format!("cannot reach mqd at {addr}: {e}"),
            Error::Timeout | Error::Refused(Reason::Timeout) => format!(
                "cannot reach mqd at {addr}: no answer within {} s",
                timeout.as_secs_f64()
            ),
            Error::Refused(reason) => format!("mqd at {addr} refused the connection: {reason}"),
            e => format!("cannot connect to mqd at {addr}: {e}"),
        })
    }
}
