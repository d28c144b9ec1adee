//! Offline queues through the broker task (see `mq_core::broker::mesh`'s
//! offline module): the node task asks, the broker decides, and a drained
//! message is answered only once its local publish is stored.

pub use mq_core::broker::Handed;
use mq_core::broker::{CatalogRound, Config, OfflineError, OfflineItem, OfflineMessage};
use tokio::sync::oneshot;

use super::BrokerTask;
use super::command::Cmd;
use super::handle::ServerControl;

/// A node's interest in a filter, as a member of a group or not (`None`):
/// (filter, group).
pub type NodeInterest = (String, Option<String>);

/// (filter, group) borrowed.
fn borrowed(interest: &[NodeInterest]) -> Vec<(&str, Option<&str>)> {
    (interest.iter())
        .map(|(f, g)| (f.as_str(), g.as_deref()))
        .collect()
}

/// A message from this node's catalog queue, owned for the trip to the
/// broker task.
#[derive(Debug, Clone)]
pub struct Drained {
    /// The node it was published at.
    pub origin: String,
    /// Its id there.
    pub id: u64,
    /// The topic.
    pub topic: String,
    /// Its encoded meta.
    pub meta: Vec<u8>,
    /// The payload.
    pub payload: Vec<u8>,
}

/// What the node task asks of the broker task about offline queues.
pub(super) enum OfflineCmd {
    Away(String, oneshot::Sender<bool>),
    Live(String),
    AwayInterest(String, Vec<NodeInterest>),
    LiveInterest(String, Vec<NodeInterest>),
    DeclaredInterest(oneshot::Sender<Vec<NodeInterest>>),
    Poll(usize, oneshot::Sender<Vec<OfflineItem>>),
    Results(Vec<(String, u64, Handed)>),
    /// The nodes with interest in the catalog, and the live ones.
    Listing(Vec<String>, Vec<String>),
    Deliver(Vec<Drained>, oneshot::Sender<Vec<Result<(), OfflineError>>>),
    /// The catalog rounds of the node with this id.
    Round(String, oneshot::Sender<CatalogRound>),
    /// Whether the broker holds QoS 1 publishes for the first listing.
    AwaitsCatalog(oneshot::Sender<bool>),
}

/// Drained messages waiting for their local publishes to be stored.
pub(super) struct DrainWaiter {
    /// The highest ticket among them; 0 when none was taken.
    token: u64,
    results: Vec<Result<(), OfflineError>>,
    to: oneshot::Sender<Vec<Result<(), OfflineError>>>,
}

impl BrokerTask {
    pub(super) fn offline(&mut self, cmd: OfflineCmd, now: mq_core::Instant) {
        match cmd {
            OfflineCmd::Away(peer, reply) => {
                let _ = reply.send(self.broker.node_away(now, &peer));
            }
            OfflineCmd::Live(peer) => self.broker.node_live(now, &peer),
            OfflineCmd::AwayInterest(peer, interest) => {
                self.broker
                    .set_away_interest(now, &peer, &borrowed(&interest));
            }
            OfflineCmd::LiveInterest(peer, interest) => {
                self.broker
                    .set_live_interest(now, &peer, &borrowed(&interest));
            }
            OfflineCmd::DeclaredInterest(reply) => {
                let _ = reply.send(self.broker.declared_interest());
            }
            OfflineCmd::Poll(max, reply) => {
                let items = std::iter::from_fn(|| self.broker.poll_offline(now));
                let _ = reply.send(items.take(max).collect());
            }
            OfflineCmd::Results(results) => {
                for (recipient, id, handed) in results {
                    self.broker
                        .handle_offline_handed(now, &recipient, id, handed);
                }
            }
            OfflineCmd::Listing(listed, live) => {
                let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
                let live: Vec<&str> = live.iter().map(String::as_str).collect();
                self.broker.handle_catalog_listing(now, &listed, &live);
            }
            OfflineCmd::Deliver(messages, to) => {
                let mut token = 0;
                let mut results = Vec::with_capacity(messages.len());
                for m in &messages {
                    let message = OfflineMessage {
                        origin: &m.origin,
                        id: m.id,
                        topic: &m.topic,
                        meta: &m.meta,
                        payload: &m.payload,
                    };
                    results.push(match self.broker.deliver_offline(now, &message) {
                        Ok(ticket) => {
                            token = token.max(ticket.token());
                            Ok(())
                        }
                        Err(e) => Err(e),
                    });
                }
                self.drain_waiters.push(DrainWaiter { token, results, to });
            }
            OfflineCmd::Round(node, reply) => {
                let _ = reply.send(CatalogRound::new(&node, self.broker.config()));
            }
            OfflineCmd::AwaitsCatalog(reply) => {
                let _ = reply.send(self.broker.config().await_catalog.is_some());
            }
        }
    }

    /// Answers the drained batches whose publishes are stored.
    pub(super) fn answer_drains(&mut self) {
        if self.drain_waiters.is_empty() {
            return;
        }
        let stored = self.broker.persisted_token();
        let (done, waiting) = std::mem::take(&mut self.drain_waiters)
            .into_iter()
            .partition(|w| w.token <= stored);
        self.drain_waiters = waiting;
        for w in done {
            let _ = w.to.send(w.results);
        }
    }
}

/// The offline queues of a mesh node (the node task's side; see
/// `mq_core::broker::Broker::node_away` and what follows it).
impl ServerControl {
    fn offline(&self, cmd: OfflineCmd) {
        let _ = self.tx.send(Cmd::Offline(cmd));
    }

    /// Node `peer`'s lease expired: its outbox goes to the catalog from now
    /// on (`Broker::node_away`). Resolves to whether the broker knew it.
    pub async fn node_away(&self, peer: &str) -> bool {
        let (tx, rx) = oneshot::channel();
        self.offline(OfflineCmd::Away(peer.to_owned(), tx));
        rx.await.unwrap_or_default()
    }

    /// Node `peer` is live again (`Broker::node_live`).
    pub fn node_live(&self, peer: &str) {
        self.offline(OfflineCmd::Live(peer.to_owned()));
    }

    /// The catalog's interest of node `peer`, which is not live, as
    /// (filter, group) (`Broker::set_away_interest`).
    pub fn set_away_interest(&self, peer: &str, interest: Vec<NodeInterest>) {
        self.offline(OfflineCmd::AwayInterest(peer.to_owned(), interest));
    }

    /// The catalog's interest of node `peer`, which is live: kept while it
    /// is not linked to this node (`Broker::set_live_interest`).
    pub fn set_live_interest(&self, peer: &str, interest: Vec<NodeInterest>) {
        self.offline(OfflineCmd::LiveInterest(peer.to_owned(), interest));
    }

    /// The filters and groups this node declares on its links, for the
    /// catalog (`Broker::declared_interest`); `None` when the server has
    /// stopped, which declares nothing new (an empty list would read as
    /// "interested in nothing" and clear the node's interest from the
    /// catalog).
    pub async fn declared_interest(&self) -> Option<Vec<NodeInterest>> {
        let (tx, rx) = oneshot::channel();
        self.offline(OfflineCmd::DeclaredInterest(tx));
        rx.await.ok()
    }

    /// Up to `max` messages to store in the catalog for peers that are away
    /// (`Broker::poll_offline`); report each with
    /// [`offline_results`](Self::offline_results).
    pub async fn poll_offline(&self, max: usize) -> Vec<OfflineItem> {
        let (tx, rx) = oneshot::channel();
        self.offline(OfflineCmd::Poll(max, tx));
        rx.await.unwrap_or_default()
    }

    /// Whether the broker holds its clients' QoS 1 publishes until the
    /// catalog's first listing (`Config::await_catalog`); `None` when the
    /// server has stopped.
    pub async fn awaits_catalog(&self) -> Option<bool> {
        let (tx, rx) = oneshot::channel();
        self.offline(OfflineCmd::AwaitsCatalog(tx));
        rx.await.ok()
    }

    /// The decisions of node `node`'s rounds with the catalog, sized to
    /// the broker's configuration (a stopped server takes no drained
    /// message, so its rounds are sized to the default one).
    pub async fn catalog_round(&self, node: &str) -> CatalogRound {
        let (tx, rx) = oneshot::channel();
        self.offline(OfflineCmd::Round(node.to_owned(), tx));
        rx.await
            .unwrap_or_else(|_| CatalogRound::new(node, &Config::default()))
    }

    /// What became of each item, as (recipient, id, what)
    /// ([`HandOn::into_results`](mq_core::broker::HandOn::into_results)).
    pub fn offline_results(&self, results: Vec<(String, u64, Handed)>) {
        self.offline(OfflineCmd::Results(results));
    }

    /// The nodes whose interest the catalog lists, and the live ones
    /// (`Broker::handle_catalog_listing`: away peers whose interest left
    /// the catalog are forgotten).
    pub fn catalog_listing(&self, listed: Vec<String>, live: Vec<String>) {
        self.offline(OfflineCmd::Listing(listed, live));
    }

    /// Publishes messages from this node's catalog queue locally
    /// (`Broker::deliver_offline`); resolves once those taken are stored,
    /// with each one's result: remove from the catalog those that are `Ok`.
    /// Every one fails with `Refused` when the server has stopped.
    pub async fn deliver_offline(&self, messages: Vec<Drained>) -> Vec<Result<(), OfflineError>> {
        let n = messages.len();
        let (tx, rx) = oneshot::channel();
        self.offline(OfflineCmd::Deliver(messages, tx));
        rx.await
            .unwrap_or_else(|_| vec![Err(OfflineError::Refused); n])
    }
}
