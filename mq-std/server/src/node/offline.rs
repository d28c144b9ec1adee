//! The node task's side of the offline queues: after each heartbeat it
//! writes this node's interest to the catalog, hands the interest of nodes
//! that are not live to the broker, stores the broker's offline items in the
//! recipients' queues, and drains this node's own queue. Every decision
//! (what is away, what to hand on, when an item may leave the outbox, what a
//! drained message is a duplicate of) is the broker's; this moves data
//! between it and the catalog.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use mq_catalog::{Envelope, Error, Interest, Origin};
use mq_core::QoS;
use mq_core::broker::{OFFLINE_BATCH, OfflineError};
use mq_core::wire::mesh::NODE_PREFIX;

use super::Node;
use crate::server::{Drained, Handed};

/// Items handed on, or messages drained, per heartbeat: one batch each, so
/// a backlog never holds the heartbeat (and this node's lease) back.
const BATCH: usize = OFFLINE_BATCH;

impl Node {
    /// One round with the catalog (see the module docs); `live` are the
    /// live nodes' ids. Errors are logged: what failed is done again at the
    /// next heartbeat, and nothing leaves the outbox or the catalog unless
    /// it is stored on the other side.
    pub(super) async fn sync_catalog(&mut self, live: &HashSet<String>) {
        let interests = match self.catalog.interests().await {
            Ok(i) => {
                let listed: BTreeSet<String> = i.iter().map(|i| i.node.clone()).collect();
                let live = live.iter().cloned().collect();
                self.control
                    .catalog_listing(listed.into_iter().collect(), live);
                i
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the interest in the catalog");
                Vec::new()
            }
        };
        self.write_interest(&interests).await;
        self.feed_away_interest(&interests, live);
        self.hand_on().await;
        self.drain().await;
    }

    /// This node's link session id, under which its interest is written.
    fn session(&self) -> String {
        format!("{NODE_PREFIX}{}", self.opts.id)
    }

    /// Makes the catalog's interest of this node what it declares now.
    async fn write_interest(&mut self, interests: &[Interest]) {
        let session = self.session();
        let Some(declared) = self.control.declared_interest().await else {
            tracing::debug!("the server has stopped: this node's interest stays as written");
            return;
        };
        let declared: BTreeSet<String> = declared.into_iter().collect();
        let written: BTreeSet<String> = match &self.written {
            Some(w) => w.clone(),
            None => (interests.iter())
                .filter(|i| i.session == session)
                .map(|i| i.filter.clone())
                .collect(),
        };
        let result: Result<(), Error> = async {
            for filter in declared.difference(&written) {
                let interest = Interest {
                    session: session.clone(),
                    node: self.opts.id.clone(),
                    filter: filter.clone(),
                    group: None,
                    qos: QoS::AtLeastOnce,
                };
                self.catalog.add_interest(&interest).await?;
            }
            for filter in written.difference(&declared) {
                self.catalog.remove_interest(&session, filter).await?;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => self.written = Some(declared),
            Err(e) => {
                tracing::warn!(error = %e, "cannot write this node's interest to the catalog");
                self.written = None;
            }
        }
    }

    /// The interest of every node that is not live, for the broker to keep
    /// its messages (a node with none listed keeps what the broker knows).
    fn feed_away_interest(&self, interests: &[Interest], live: &HashSet<String>) {
        let mut away: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for i in interests {
            let own = i.session.strip_prefix(NODE_PREFIX) == Some(i.node.as_str());
            if own && i.node != self.opts.id && !live.contains(&i.node) && i.group.is_none() {
                away.entry(&i.node).or_default().push(i.filter.clone());
            }
        }
        for (node, filters) in away {
            self.control.set_away_interest(node, filters);
        }
    }

    /// Stores the broker's offline items in the recipients' queues, and
    /// reports each back: stored, or not (it stays in the outbox).
    async fn hand_on(&mut self) {
        let items = self.control.poll_offline(BATCH).await;
        if items.is_empty() {
            return;
        }
        let mut results = Vec::with_capacity(items.len());
        let mut unavailable = false;
        for item in items {
            let (recipient, id) = (item.recipient, item.id);
            if unavailable {
                results.push((recipient, id, Handed::Failed));
                continue;
            }
            let envelope = Envelope {
                topic: item.topic,
                payload: item.payload,
                meta: item.meta,
                // Ids are unique within one run of the node; a restart
                // (a memory store, or ids not logged) may hand them out
                // again, under a new incarnation.
                origin: Origin {
                    node: self.opts.id.clone(),
                    incarnation: self.first_incarnation,
                    seq: id,
                },
                ttl: item.ttl,
            };
            match self.catalog.enqueue(&recipient, &envelope).await {
                Ok(_) => results.push((recipient, id, Handed::Stored)),
                Err(Error::QueueFull { .. }) => {
                    tracing::debug!(%recipient, "the offline queue is full");
                    results.push((recipient, id, Handed::Full));
                }
                Err(e) => {
                    tracing::warn!(
                        %recipient,
                        error = %e,
                        "cannot store an offline message in the catalog: it stays in the outbox"
                    );
                    unavailable = true;
                    results.push((recipient, id, Handed::Failed));
                }
            }
        }
        self.control.offline_results(results);
    }

    /// Publishes this node's catalog queue here, and removes from it what
    /// the broker stored.
    async fn drain(&mut self) {
        let me = self.opts.id.clone();
        // One page a heartbeat, each after the last: what stays (refused
        // for now, malformed) does not keep the pages behind it waiting.
        let after = self.drain_after.take();
        let page = match self.catalog.read(&me, after, BATCH).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read this node's offline queue");
                return;
            }
        };
        let full = page.len() == BATCH;
        let Some(last) = page.last() else { return };
        let last = last.id;
        let ids: Vec<u64> = page.iter().map(|o| o.id).collect();
        let messages = (page.into_iter())
            .map(|o| Drained {
                origin: o.origin.node,
                id: o.origin.seq,
                topic: o.topic,
                meta: o.meta,
                payload: o.payload,
            })
            .collect();
        let results = self.control.deliver_offline(messages).await;
        let mut done = Vec::with_capacity(ids.len());
        let mut refused = false;
        for (&id, result) in ids.iter().zip(&results) {
            match result {
                Ok(()) => done.push(id),
                Err(e @ OfflineError::Rejected) => {
                    tracing::warn!(id, error = %e, "an offline message is dropped");
                    done.push(id);
                }
                Err(e) => {
                    refused |= *e == OfflineError::Refused;
                    tracing::warn!(id, error = %e, "an offline message stays in the catalog");
                }
            }
        }
        if !done.is_empty() {
            if let Err(e) = self.catalog.ack(&me, &done).await {
                tracing::warn!(error = %e, "cannot remove drained messages from the catalog");
                return;
            }
            tracing::debug!(messages = done.len(), "drained from the catalog");
        }
        // Refused for now: from the head again next time, in order.
        if full && !refused {
            self.drain_after = Some(last);
        }
    }
}
