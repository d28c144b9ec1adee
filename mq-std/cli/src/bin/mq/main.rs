//! `mq`: the command-line client of `mqd`: publish, subscribe, benchmark, and
//! read the daemon's counters. Built on the async client ([`mq_client::client`]).
//!
//! The daemon is found through `--server HOST:PORT`, else `MQ_SERVER`, else
//! [`mq_client::DEFAULT_ADDR`]; its HTTP endpoint (for `mq stat`) through `--http`,
//! else `MQ_HTTP`, else [`mq_server::DEFAULT_HTTP_ADDR`]. Exit codes: 0 on success,
//! 1 when the work failed (the reason is printed on one line), 2 for bad
//! arguments.

#[path = "../common/alloc.rs"]
mod alloc;
mod bench;
mod digits;
mod histogram;
mod output;
mod publish;
mod stat;
mod subscribe;
mod window;

use std::fmt;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mq_client::client::{Client, ClientOptions, Error, QoS, Reason};

#[derive(Debug, Parser)]
#[command(
    name = "mq",
    version,
    about = "Publish, subscribe, benchmark and inspect an mqd broker"
)]
struct Cli {
    #[command(flatten)]
    server: Server,
    #[command(subcommand)]
    command: Command,
}

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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish a message, each line of stdin, or generated payloads.
    Pub(publish::PubArgs),
    /// Print the messages of a subscription, one per line.
    Sub(subscribe::SubArgs),
    /// Measure throughput and end-to-end latency with many clients.
    Bench(bench::BenchArgs),
    /// Print the daemon's counters and queue depths.
    Stat(stat::StatArgs),
}

/// Why a command failed: printed as `mq: <text>`, exit code 1.
#[derive(Debug)]
pub struct Fail(pub String);

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Server {
    /// The client options for this daemon.
    pub fn options(&self) -> ClientOptions {
        let mut opts = ClientOptions::new(self.server.clone());
        opts.token = self.token.clone();
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

/// `0` or `1` as a QoS.
pub fn parse_qos(s: &str) -> Result<QoS, String> {
    match s {
        "0" => Ok(QoS::AtMostOnce),
        "1" => Ok(QoS::AtLeastOnce),
        _ => Err("QoS is 0 (at most once) or 1 (at least once)".to_string()),
    }
}

/// The QoS as the number users type.
pub fn qos_number(qos: QoS) -> u8 {
    match qos {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let server = &cli.server;
    let result = match cli.command {
        Command::Pub(args) => block_on(publish::run(server, args)),
        Command::Sub(args) => block_on(subscribe::run(server, args)),
        Command::Bench(args) => block_on(bench::run(server, args)),
        // Plain std I/O: no runtime needed.
        Command::Stat(args) => stat::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(fail) => {
            eprintln!("mq: {fail}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `work` on a multi-threaded runtime.
fn block_on(work: impl Future<Output = Result<(), Fail>>) -> Result<(), Fail> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail(format!("cannot start the runtime: {e}")))?
        .block_on(work)
}
