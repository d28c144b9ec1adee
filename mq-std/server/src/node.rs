//! The server as a node of a mesh: a task that keeps it registered in the
//! catalog and its links to the other nodes open.
//!
//! It registers the node (under a new incarnation) and renews its lease
//! every heartbeat; after each heartbeat it reads the catalog's live nodes
//! and hands them to the core's [`Roster`], which decides which peers to
//! link to, when to connect a closed link again and which peer to forget.
//! The task carries those decisions out: it opens a TCP stream to the peer
//! and gives it to the broker task as a node link
//! ([`ServerControl::link`], driven like every other connection), and calls
//! [`ServerControl::node_away`] for a peer whose lease expired (its outbox
//! goes to the catalog from then on). The peers' links to this node arrive
//! on the server's listener as ordinary connections.
//!
//! After each heartbeat it also keeps the offline queues (`node/offline.rs`,
//! carrying out what the core's [`CatalogRound`] decides): it writes the
//! interest this node declares on its links to the catalog (session
//! `$node.<id>`), hands the catalog's interest of the other nodes to the
//! broker (kept for those not linked to it), stores the broker's items for
//! away peers in their queues (each reported back, so it leaves the outbox
//! only once stored),
//! and drains this node's own queue into the broker, removing each message
//! from the catalog once its local publish is stored. This happens before
//! the roster's links are connected, so at start what waited in the catalog
//! comes first.
//!
//! A heartbeat answered with [`Error::Fenced`] means a newer incarnation of
//! this node registered: this one stops linking (no link is connected again)
//! and the task ends with that error, logged, which
//! [`NodeHandle::failed`] returns; the server must then stop acting for the
//! node (`mqd` shuts down). Now and then, after a heartbeat, it removes
//! the catalog's rows of nodes whose lease expired (`node/reap.rs`; never
//! their offline queues or interest). A lease that ran out (the process
//! was paused, the catalog unreachable for too long) is registered again
//! under a new incarnation; when the reply of that register is lost, a
//! Fenced that follows is checked first (`node/lease.rs`: the newer
//! incarnation may be this node's own). A catalog that cannot be reached
//! leaves the links as they are until it answers again. The catalog calls
//! that fail, the registrations again and a fence are counted
//! ([`ServerControl::catalog_metrics`]).

mod lease;
mod offline;
mod reap;
#[cfg(test)]
mod tests;
mod unreadable;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use mq_catalog::{Catalog, Error, Registration};
use mq_client::clock::Clock;
use mq_core::broker::{CatalogRound, Roster, RosterAction};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::server::{ServerControl, sleep_until};

/// How a server joins a mesh.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The node id: printable ASCII without spaces, up to 100 bytes, unique
    /// in the catalog.
    pub id: String,
    /// The catalog: `sqlite:PATH`, `redis://…` or `postgres://…`.
    pub catalog: String,
    /// The catalog's namespace (its tables' or keys' prefix): meshes that
    /// share a database keep apart by it. `None`: the catalog's default.
    pub namespace: Option<String>,
    /// The address the other nodes connect to (`host:port`); `None`: the
    /// address the server listens on.
    pub advertise: Option<String>,
    /// How long the catalog lists the node after a heartbeat.
    pub lease: Duration,
    /// How often the lease is renewed and the live nodes read (less than the
    /// lease, so one late heartbeat does not end it).
    pub heartbeat: Duration,
    /// How long one catalog call may take before it fails (and is done
    /// again at a later heartbeat), below the lease; for SQLite, how long a
    /// call waits for another process's write lock. `None`: half the lease,
    /// at most the lease less one heartbeat period (2.5 s with the default
    /// lease): a heartbeat that hangs fails while the lease it renews still
    /// holds, rather than taking as long as the lease with no call failing,
    /// and a catalog that is slow but healthy (a busy SQLite file shared by
    /// several peers, PostgreSQL over a WAN, a large hand-on batch) has
    /// time to answer. The calls of one round after a heartbeat (live
    /// nodes, interest, hand-on, drain) each have this time, and the next
    /// heartbeat waits for the round. See
    /// [`Options::call_timeout`](mq_catalog::Options::call_timeout).
    pub call_timeout: Option<Duration>,
    /// What this node's links present to their peers.
    pub token: Option<String>,
    /// A closed link is connected again after this, doubling...
    pub reconnect_min: Duration,
    /// ...up to this.
    pub reconnect_max: Duration,
}

impl NodeOptions {
    /// Node `id` in the catalog at `catalog`, with a lease of 5 s renewed
    /// every second.
    pub fn new(id: impl Into<String>, catalog: impl Into<String>) -> NodeOptions {
        NodeOptions {
            id: id.into(),
            catalog: catalog.into(),
            namespace: None,
            advertise: None,
            lease: Duration::from_secs(5),
            heartbeat: Duration::from_secs(1),
            call_timeout: None,
            token: None,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
        }
    }

    /// The catalog call timeout in effect (see
    /// [`call_timeout`](Self::call_timeout)).
    pub fn call_timeout_or_default(&self) -> Duration {
        (self.call_timeout)
            .unwrap_or_else(|| (self.lease / 2).min(self.lease.saturating_sub(self.heartbeat)))
    }

    /// Whether the periods fit together: the heartbeat and the call timeout
    /// are positive and shorter than the lease.
    pub fn check(&self) -> Result<(), Error> {
        if self.heartbeat.is_zero() || self.heartbeat >= self.lease {
            return Err(Error::Invalid(format!(
                "the heartbeat ({:?}) must be shorter than the lease ({:?})",
                self.heartbeat, self.lease
            )));
        }
        let call_timeout = self.call_timeout_or_default();
        if call_timeout.is_zero() || call_timeout >= self.lease {
            return Err(Error::Invalid(format!(
                "the catalog call timeout ({call_timeout:?}) must be positive and shorter \
                 than the lease ({:?}): a call as long as the lease can lose it",
                self.lease
            )));
        }
        Ok(())
    }

    /// The options the node opens its catalog with.
    fn catalog_options(&self) -> mq_catalog::Options {
        let mut options = mq_catalog::Options {
            call_timeout: self.call_timeout_or_default(),
            ..mq_catalog::Options::default()
        };
        if let Some(namespace) = &self.namespace {
            options.namespace.clone_from(namespace);
        }
        options
    }

    /// The broker configuration `broker` of a server that becomes this
    /// node: its clients' QoS 1 publishes wait for the node's first round
    /// with the catalog, for up to a lease
    /// ([`Config::await_catalog`](mq_core::broker::Config::await_catalog)),
    /// and a live peer whose link stays down for a lease gets what it wants
    /// through the catalog
    /// ([`Config::link_grace`](mq_core::broker::Config::link_grace)).
    /// [`spawn`] refuses a server whose broker was not configured so.
    pub fn broker_config(&self, mut broker: mq_core::broker::Config) -> mq_core::broker::Config {
        broker.await_catalog = Some(self.lease);
        broker.link_grace = Some(self.lease);
        broker
    }
}

/// A running node task: [`stop`](Self::stop) it to leave the mesh.
pub struct NodeHandle {
    registration: Registration,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), Error>>,
}

impl NodeHandle {
    /// The node id and the incarnation it registered under first.
    pub fn registration(&self) -> &Registration {
        &self.registration
    }

    /// Closes the links and deregisters the node (the other nodes forget it
    /// at their next look at the catalog).
    pub async fn stop(self) -> Result<(), Error> {
        let _ = self.stop.send(());
        join(&mut { self.task }).await
    }

    /// Waits until the task ends by itself: with [`Error::Fenced`] when a
    /// newer incarnation of the node registered. (Dropping the handle stops
    /// the node as [`stop`](Self::stop) does.) Call it once.
    pub async fn failed(&mut self) -> Error {
        match join(&mut self.task).await {
            Ok(()) => Error::Invalid("the node task ended".into()),
            Err(e) => e,
        }
    }
}

async fn join(task: &mut JoinHandle<Result<(), Error>>) -> Result<(), Error> {
    match task.await {
        Ok(r) => r,
        Err(e) => Err(Error::Invalid(format!("the node task failed: {e}"))),
    }
}

/// Opens the catalog, registers the node of the server `control` drives
/// (listening on `listen`) and starts linking it to the live nodes.
///
/// The server's broker must have been configured with
/// [`NodeOptions::broker_config`]: a node refuses to start beside one that
/// does not hold its clients' QoS 1 publishes until the catalog's first
/// listing (see that method).
pub async fn spawn(
    control: ServerControl,
    listen: SocketAddr,
    opts: NodeOptions,
) -> Result<NodeHandle, Error> {
    opts.check()?;
    // Without the hold, a QoS 1 publish accepted before the first listing
    // goes only where the interest known then says, and a peer away whose
    // interest only the catalog knows loses it. The server has been taking
    // publishes since it started, so setting it now would come too late.
    // (A stopped server takes none.)
    if control.awaits_catalog().await == Some(false) {
        return Err(Error::Invalid(
            "the server's broker does not hold QoS 1 publishes until the catalog's \
             first listing: start the server with NodeOptions::broker_config"
                .into(),
        ));
    }
    let catalog = Catalog::open_with(&opts.catalog, opts.catalog_options()).await?;
    let addr = opts.advertise.clone().unwrap_or_else(|| listen.to_string());
    let registration = catalog.register(&opts.id, &addr, opts.lease).await?;
    tracing::info!(
        node = %opts.id,
        incarnation = registration.incarnation,
        %addr,
        catalog = catalog.backend(),
        "registered in the catalog"
    );
    let (stop, stopped) = oneshot::channel();
    let (closed_tx, closed_rx) = mpsc::unbounded_channel();
    let mut roster = Roster::new(
        &opts.id,
        opts.reconnect_min,
        opts.reconnect_max,
        registration.incarnation,
    );
    // Peers whose link sessions the store brought back: the catalog says
    // whether they are still there.
    let queues = control.queues().await;
    roster.handle_known(
        queues
            .iter()
            .filter_map(|q| q.owner.strip_prefix(mq_core::wire::mesh::NODE_PREFIX)),
    );
    let round = control.catalog_round(&opts.id).await;
    let node = Node {
        catalog,
        registration: registration.clone(),
        first_incarnation: registration.incarnation,
        addr,
        roster,
        links: HashMap::new(),
        generation: 0,
        closed_tx,
        control,
        clock: Clock::new(),
        opts,
        round,
        unsure: None,
        unreadable: unreadable::Reports::default(),
        renewals_to_reap: 0,
    };
    let task = tokio::spawn(node.run(stopped, closed_rx));
    Ok(NodeHandle {
        registration,
        stop,
        task,
    })
}

/// A link task's report: the link to `peer` (of this generation) is up
/// (`true`) or gone.
struct LinkReport {
    peer: String,
    generation: u64,
    up: bool,
}

struct Node {
    catalog: Catalog,
    registration: Registration,
    /// The incarnation this process registered under first: with a message
    /// id, the origin of its offline items (ids a restart hands out again
    /// get another key).
    first_incarnation: u64,
    addr: String,
    roster: Roster,
    /// The task connecting or watching each peer's link, by generation.
    links: HashMap<String, (u64, JoinHandle<()>)>,
    generation: u64,
    closed_tx: mpsc::UnboundedSender<LinkReport>,
    control: ServerControl,
    clock: Clock,
    opts: NodeOptions,
    /// What the rounds with the catalog decide.
    round: CatalogRound,
    /// A register whose reply was lost, and what the catalog listed of the
    /// newer incarnation since (see `node/lease.rs`).
    unsure: Option<lease::Unsure>,
    /// The catalog's rows this node could not decode, reported.
    unreadable: unreadable::Reports,
    /// Renewed leases until the next reap of expired nodes (`node/reap.rs`).
    renewals_to_reap: u64,
}

impl Node {
    async fn run(
        mut self,
        mut stopped: oneshot::Receiver<()>,
        mut reports: mpsc::UnboundedReceiver<LinkReport>,
    ) -> Result<(), Error> {
        let mut heartbeat = tokio::time::interval(self.opts.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let retry = self.roster.poll_timeout().map(|t| self.clock.to_std(t));
            tokio::select! {
                _ = &mut stopped => {
                    self.close_links();
                    return self.catalog.deregister(&self.registration).await;
                }
                _ = heartbeat.tick() => {
                    if let Err(e) = self.renew().await {
                        self.close_links();
                        return Err(e);
                    }
                }
                Some(r) = reports.recv() => self.report(r),
                _ = sleep_until(retry) => self.roster.handle_timeout(self.clock.now()),
            }
            self.act().await;
        }
    }

    fn report(&mut self, r: LinkReport) {
        if self.links.get(&r.peer).map(|l| l.0) != Some(r.generation) {
            return;
        }
        if r.up {
            self.roster.handle_link_up(&r.peer);
        } else {
            self.roster.handle_link_closed(self.clock.now(), &r.peer);
        }
    }

    /// Carries out what the roster decided.
    async fn act(&mut self) {
        while let Some(action) = self.roster.poll_action() {
            match action {
                RosterAction::Connect { peer, addr } => {
                    self.generation += 1;
                    let task = tokio::spawn(link(
                        self.control.clone(),
                        self.opts.clone(),
                        peer.clone(),
                        addr,
                        self.generation,
                        self.closed_tx.clone(),
                    ));
                    self.control.node_live(&peer);
                    if let Some((_, old)) = self.links.insert(peer, (self.generation, task)) {
                        old.abort();
                    }
                }
                RosterAction::Forget { peer } => {
                    if let Some((_, task)) = self.links.remove(&peer) {
                        task.abort();
                    }
                    let known = self.control.node_away(&peer).await;
                    tracing::info!(
                        %peer,
                        known,
                        "the peer's lease expired: what it wants goes to its offline queue"
                    );
                }
            }
        }
    }

    fn close_links(&mut self) {
        for (_, (_, task)) in self.links.drain() {
            task.abort();
        }
    }
}

/// Connects to `peer` at `addr`, hands the stream to the broker task as a
/// link, and reports when it is up and when it is gone. Aborting it leaves
/// the connection to the broker task (which closes it when the peer does).
async fn link(
    control: ServerControl,
    opts: NodeOptions,
    peer: String,
    addr: String,
    generation: u64,
    reports: mpsc::UnboundedSender<LinkReport>,
) {
    let report = |up| {
        let _ = reports.send(LinkReport {
            peer: peer.clone(),
            generation,
            up,
        });
    };
    let stream = match TcpStream::connect(&addr).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%peer, %addr, error = %e, "cannot connect the link");
            report(false);
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let Some(gone) = control.link(&opts.id, &peer, opts.token.as_deref(), stream) else {
        return;
    };
    tracing::info!(%peer, %addr, "linked");
    report(true);
    let _ = gone.await;
    tracing::info!(%peer, "link closed");
    report(false);
}
