//! The node task's round with the catalog after each heartbeat, as the
//! core's [`CatalogRound`](mq_core::broker::CatalogRound) decides it: it
//! hands the interest the catalog lists of other nodes to the broker (kept
//! for those not linked to this node), writes this node's interest to the
//! catalog, stores the broker's offline items in the
//! recipients' queues, and drains a page of this node's own queue. Every
//! decision is the core's; this performs the catalog calls it is told to
//! and feeds their results back.

use std::collections::HashSet;

use mq_catalog::{Envelope, Error, Interest, Origin};
use mq_core::QoS;
use mq_core::broker::{
    HandOn, Handed, InterestRow, OFFLINE_BATCH, OfflineError, OfflineItem, hand_on_again,
};

use super::Node;
use crate::metrics::CatalogCall;
use crate::server::Drained;

impl Node {
    /// One round with the catalog (see the module docs); `live` are the
    /// live nodes' ids. Errors are logged: what failed is done again at the
    /// next heartbeat, and nothing leaves the outbox or the catalog unless
    /// it is stored on the other side.
    pub(super) async fn sync_catalog(&mut self, live: &HashSet<String>) {
        let live: Vec<&str> = live.iter().map(String::as_str).collect();
        let interests = match self.catalog.interests().await {
            Ok(listed) => {
                (self.unreadable).interests(&listed.unreadable, self.control.catalog_metrics());
                Some(listed.interests)
            }
            Err(e) => {
                self.control.catalog_metrics().failed(CatalogCall::Read);
                tracing::warn!(error = %e, "cannot read the interest in the catalog");
                None
            }
        };
        let rows: Option<Vec<InterestRow<'_>>> = interests.as_ref().map(|i| {
            (i.iter())
                .map(|i| InterestRow {
                    session: &i.session,
                    node: &i.node,
                    filter: &i.filter,
                    group: i.group.as_deref(),
                })
                .collect()
        });
        let listing = rows.as_ref().map(|rows| self.round.listing(rows, &live));
        if let Some(listing) = listing {
            // The interest first: the first listing releases the publishes
            // held for it.
            let owned = |i: Vec<(&str, Option<&str>)>| {
                (i.into_iter())
                    .map(|(f, g)| (f.to_owned(), g.map(str::to_owned)))
                    .collect()
            };
            for (node, interest) in listing.away {
                self.control.set_away_interest(node, owned(interest));
            }
            for (node, interest) in listing.live {
                self.control.set_live_interest(node, owned(interest));
            }
            let listed = listing.listed.iter().map(|&n| n.to_owned()).collect();
            let live = listing.live_peers.iter().map(|&n| n.to_owned()).collect();
            self.control.catalog_listing(listed, live);
        }
        self.write_interest(rows.as_deref()).await;
        let started = std::time::Instant::now();
        self.hand_on(started).await;
        loop {
            self.drain().await;
            if !self
                .round
                .drain_again(started.elapsed(), self.opts.heartbeat)
            {
                break;
            }
        }
    }

    /// Writes what the round says of this node's interest.
    async fn write_interest(&mut self, rows: Option<&[InterestRow<'_>]>) {
        let Some(declared) = self.control.declared_interest().await else {
            tracing::debug!("the server has stopped: this node's interest stays as written");
            return;
        };
        let write = self.round.write_interest(rows, &declared);
        let result: Result<(), Error> = async {
            for (filter, group) in write.add {
                let interest = Interest {
                    session: self.round.row_session(group.as_deref()),
                    node: self.opts.id.clone(),
                    filter,
                    group,
                    qos: QoS::AtLeastOnce,
                };
                self.catalog.add_interest(&interest).await?;
            }
            for (filter, group) in &write.remove {
                let session = self.round.row_session(group.as_deref());
                self.catalog.remove_interest(&session, filter).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = &result {
            self.control.catalog_metrics().failed(CatalogCall::Write);
            tracing::warn!(error = %e, "cannot write this node's interest to the catalog");
        }
        self.round.handle_interest_written(result.is_ok());
    }

    /// Stores the broker's offline items in the recipients' queues, a
    /// batch at a time (one catalog call per run of items for one
    /// recipient), while the core's `hand_on_again` says so, and reports
    /// each back.
    async fn hand_on(&mut self, started: std::time::Instant) {
        loop {
            let items = self.control.poll_offline(OFFLINE_BATCH).await;
            let polled = items.len();
            if polled == 0 {
                return;
            }
            let mut batch = HandOn::new(items);
            loop {
                let run = batch.next_run();
                let Some(recipient) = run.first().map(|i| i.recipient.clone()) else {
                    break;
                };
                let envelopes: Vec<Envelope> = run.into_iter().map(|i| self.envelope(i)).collect();
                match self.catalog.enqueue_all(&recipient, &envelopes).await {
                    Ok(answers) => {
                        // A call counts once as failed, however many of its
                        // messages it did not store.
                        let mut failed = false;
                        for answer in answers {
                            batch.handle(match answer {
                                Ok(_) => Handed::Stored,
                                Err(Error::QueueFull { .. }) => {
                                    tracing::debug!(%recipient, "the offline queue is full");
                                    Handed::Full
                                }
                                Err(_) => {
                                    failed = true;
                                    Handed::Failed
                                }
                            });
                        }
                        if failed {
                            self.control.catalog_metrics().failed(CatalogCall::HandOn);
                        }
                    }
                    Err(e) => {
                        self.control.catalog_metrics().failed(CatalogCall::HandOn);
                        tracing::warn!(
                            %recipient,
                            error = %e,
                            "cannot store offline messages in the catalog: they stay in the outbox"
                        );
                        batch.handle(Handed::Failed);
                    }
                }
            }
            self.control.offline_results(batch.into_results());
            if !hand_on_again(polled, started.elapsed(), self.opts.heartbeat) {
                return;
            }
        }
    }

    /// The catalog's envelope of `item`.
    fn envelope(&self, item: OfflineItem) -> Envelope {
        Envelope {
            origin: Origin {
                node: item.origin(&self.opts.id),
                // Ids are unique within one run of the node; a restart (a
                // memory store, or ids not logged) may hand them out again,
                // under a new incarnation.
                incarnation: self.first_incarnation,
                seq: item.id,
            },
            topic: item.topic,
            payload: item.payload,
            meta: item.meta,
            ttl: item.ttl,
        }
    }

    /// Publishes a page of this node's catalog queue here, waits until it is
    /// stored, and removes from the catalog what the round says.
    async fn drain(&mut self) {
        let me = self.opts.id.clone();
        let page = self.round.next_page();
        let page = match self.catalog.read(&me, page.after, page.max).await {
            Ok(page) => page,
            Err(e) => {
                self.control.catalog_metrics().failed(CatalogCall::Read);
                tracing::warn!(error = %e, "cannot read this node's offline queue");
                return;
            }
        };
        (self.unreadable).messages(&page.unreadable, self.control.catalog_metrics());
        let taken: Vec<u64> = page.messages.iter().map(|o| o.id).collect();
        let messages = (page.messages.into_iter())
            .map(|o| Drained {
                origin: o.origin.node,
                id: o.origin.seq,
                topic: o.topic,
                meta: o.meta,
                payload: o.payload,
            })
            .collect();
        let delivered = match taken.is_empty() {
            true => Vec::new(),
            false => self.control.deliver_offline(messages).await,
        };
        for (id, result) in taken.iter().zip(&delivered) {
            if let Err(e) = result {
                tracing::warn!(id, error = %e, "an offline message is not taken");
            }
        }
        // The rows the catalog could not decode are malformed to the core
        // (left in the catalog, the next page after them): in queue order
        // with the others, so that the page counts them.
        let mut rows: Vec<(u64, Result<(), OfflineError>)> = (taken.into_iter())
            .zip(delivered)
            .chain(
                page.unreadable
                    .iter()
                    .map(|u| (u.id, Err(OfflineError::Malformed))),
            )
            .collect();
        rows.sort_unstable_by_key(|&(id, _)| id);
        let (ids, results): (Vec<u64>, Vec<_>) = rows.into_iter().unzip();
        let ack = self.round.handle_page(&ids, &results);
        if ack.is_empty() {
            return;
        }
        let acked = self.catalog.ack(&me, &ack).await;
        if let Err(e) = &acked {
            self.control.catalog_metrics().failed(CatalogCall::Write);
            tracing::warn!(error = %e, "cannot remove drained messages from the catalog");
        } else {
            tracing::debug!(messages = ack.len(), "drained from the catalog");
        }
        self.round.handle_acked(acked.is_ok());
    }
}
