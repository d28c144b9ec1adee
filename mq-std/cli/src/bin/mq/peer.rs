//! `mq peer`: a desktop peer with no daemon (`mq_std::peer`), in the
//! foreground: it listens on its own address, registers in the catalog and
//! links to the live peers. Alone it serves until Ctrl-C (other programs'
//! clients reach it with `--server` at the address it prints); with `sub`
//! it also prints a subscription's messages, as `mq sub` against `mqd` does.
//! Ctrl-C leaves the mesh and stops the peer.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use mq_std::peer::{Peer, PeerOptions};

use crate::daemon::Server;
use crate::fail::Fail;
use crate::subscribe::{self, SubArgs};

#[derive(Debug, Args)]
pub struct PeerArgs {
    /// The peer's node id, unique in the catalog.
    #[arg(long, value_name = "ID")]
    id: String,
    /// The catalog: sqlite:PATH, redis://HOST:PORT/DB or
    /// postgres://USER@HOST:PORT/DB [default: one SQLite file in the
    /// temporary directory, shared by the peers of this machine].
    #[arg(long, env = "MQ_CATALOG", value_name = "URL")]
    catalog: Option<String>,
    /// Where to listen for the other peers' links and for clients.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// The address the other peers connect to [default: the listen address].
    #[arg(long, value_name = "ADDR")]
    advertise: Option<String>,
    /// The peer's log [default: mq-peer-ID in the temporary directory].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    then: Option<Then>,
}

/// What to do with the peer besides serving.
#[derive(Debug, Subcommand)]
enum Then {
    /// Print the messages of a subscription, one per line.
    Sub(SubArgs),
}

pub async fn run(server: &Server, args: PeerArgs) -> Result<(), Fail> {
    let mut opts = PeerOptions::new(&args.id);
    if let Some(catalog) = args.catalog {
        opts.node.catalog = catalog;
    }
    if let Some(dir) = args.data_dir {
        opts.data_dir = dir;
    }
    opts.node.advertise = args.advertise;
    opts.listen = args.listen;
    let catalog = opts.node.catalog.clone();
    let peer = Peer::start(opts)
        .await
        .map_err(|e| Fail(format!("peer {}: {e}", args.id)))?;
    eprintln!(
        "mq: peer {} listening on {} (catalog {catalog})",
        peer.id(),
        peer.local_addr()
    );
    let result = match args.then {
        Some(Then::Sub(sub)) => {
            let mut at = server.clone();
            at.server = peer.local_addr().to_string();
            subscribe::run(&at, sub).await
        }
        None => tokio::signal::ctrl_c()
            .await
            .map_err(|e| Fail(format!("cannot wait for Ctrl-C: {e}"))),
    };
    let stopped = peer
        .stop()
        .await
        .map_err(|e| Fail(format!("peer {}: {e}", args.id)));
    result.and(stopped)
}
