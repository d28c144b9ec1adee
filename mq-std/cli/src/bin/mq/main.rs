//! `mq`: the command-line client of `mqd`: publish, subscribe, request and
//! reply, benchmark, read the daemon's counters, and manage its topics and
//! sessions; and `mq peer`, a desktop peer of a mesh with no daemon. Built on the async client ([`mq_client::client`]).
//!
//! The daemon is found through `--server HOST:PORT`, else `MQ_SERVER`, else
//! [`mq_client::DEFAULT_ADDR`]; its HTTP endpoint (for `mq stat`) through `--http`,
//! else `MQ_HTTP`, else [`mq_server::DEFAULT_HTTP_ADDR`]. Exit codes: 0 on success,
//! 1 when the work failed (the reason is printed on one line), 2 for bad
//! arguments.

mod admin;
#[path = "../common/alloc.rs"]
mod alloc;
mod bench;
mod daemon;
mod digits;
mod fail;
mod histogram;
mod output;
mod peer;
mod publish;
mod qos;
mod request;
mod stat;
mod subscribe;
#[path = "../common/thp.rs"]
mod thp;
mod window;

use std::future::Future;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use daemon::Server;
use fail::Fail;

#[derive(Debug, Parser)]
#[command(
    name = "mq",
    version,
    about = "Publish, subscribe, request, benchmark, inspect and manage an mqd broker"
)]
struct Cli {
    #[command(flatten)]
    server: Server,
    #[command(subcommand)]
    command: Command,
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
    /// Run a desktop peer with no daemon: a mesh node in this process
    /// (optionally printing a subscription: `mq peer --id ID sub FILTER`).
    Peer(peer::PeerArgs),
    /// Send a request and print its reply.
    Req(request::ReqArgs),
    /// Answer the requests on a topic filter.
    Reply(request::ReplyArgs),
    /// List topics: sequence ranges, what they keep, subscribers, counts
    /// (needs a token with the admin permission).
    Topics(admin::JsonArg),
    /// List sessions and their queues (needs the admin permission).
    Sessions(admin::JsonArg),
    /// Count and list the messages a topic keeps (needs the admin permission).
    Messages(admin::MessagesArgs),
    /// Drop a topic's messages below a sequence number (needs the admin
    /// permission).
    Purge(admin::PurgeArgs),
    /// Delete a topic with its messages and numbering (needs the admin
    /// permission).
    Rm(admin::RmArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let server = &cli.server;
    let result = match cli.command {
        Command::Pub(args) => block_on(publish::run(server, args)),
        Command::Sub(args) => block_on(subscribe::run(server, args)),
        Command::Bench(args) => block_on(bench::run(server, args)),
        Command::Peer(args) => {
            thp::no_huge_pages();
            block_on(peer::run(server, args))
        }
        Command::Req(args) => block_on(request::request(server, args)),
        Command::Reply(args) => block_on(request::reply(server, args)),
        Command::Topics(a) => block_on(admin::run(server, admin::Ask::Topics(a))),
        Command::Sessions(a) => block_on(admin::run(server, admin::Ask::Sessions(a))),
        Command::Messages(a) => block_on(admin::run(server, admin::Ask::Messages(a))),
        Command::Purge(a) => block_on(admin::run(server, admin::Ask::Purge(a))),
        Command::Rm(a) => block_on(admin::run(server, admin::Ask::Rm(a))),
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
