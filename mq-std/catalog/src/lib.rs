//! The mesh's catalog: what the nodes of a mesh share through a database
//! rather than through their links.
//!
//! - **Nodes** with an address, a lease and an incarnation number. A node
//!   registers (and gets an incarnation greater than any before it, so that a
//!   restarted node fences off its old self), renews its lease with
//!   heartbeats, and is listed as live only while its lease runs.
//! - **Interest** of sessions that are away: which node a session was on, its
//!   filters, groups and QoS, so that the other nodes keep its messages.
//! - **Offline queues** keyed by the recipient session: bounded, ordered,
//!   idempotent on the message's origin, and emptied only by acknowledgement.
//!
//! One type, [`Catalog`], over three databases chosen by URL at run time:
//! `sqlite:PATH` (the embedded default: one file shared by the nodes of one
//! machine), `redis://HOST:PORT/DB` and `postgres://USER@HOST:PORT/DB` (across
//! machines).
//!
//! # Clocks
//!
//! Leases and TTLs are measured by one clock: the database's where it has one
//! (PostgreSQL's `now()`, Redis' `TIME` and `PEXPIRE`), the callers' wall clock
//! for SQLite (whose nodes share one machine).
//!
//! # Delivering offline messages: at least once
//!
//! Any live node may deliver a queue: [`Catalog::read`] returns messages
//! without removing them, and only [`Catalog::ack`], called once the
//! recipient's node has stored or delivered them, removes them. Two nodes
//! reading the same queue may both deliver a message; the recipient's node
//! drops the second copy by its [`Origin`] (node, incarnation, sequence), as
//! it drops any duplicate that arrives over a link. Acking an id twice, or an
//! id another node acked, is harmless. So a message leaves the catalog only
//! after its recipient has it, whichever node crashes in between. There are
//! no claims: a claim would only save a duplicate that the recipient drops
//! anyway, and a claim held by a crashed node would delay delivery.
//!
//! [`Catalog::enqueue`] is idempotent while the message is queued: a sender
//! that retries because it never saw the answer stores it once. A retry
//! that arrives after the message was acked is stored again, and the
//! recipient's node drops it by its origin like any other duplicate.
//!
//! # Durability and scale
//!
//! SQLite commits with `synchronous = FULL` (in WAL mode each commit is
//! synced), all but a heartbeat's renewal: that one is not synced (made
//! durable by the next commit that is), since a renewal lost in a power
//! cut only ends the lease earlier. PostgreSQL commits with the server's
//! settings. Redis keeps
//! what its own persistence keeps (`appendonly`); incarnations stay ahead of
//! any a node holds even after Redis lost everything (see
//! [`Registration::incarnation`]). The Redis catalog needs one Redis (with
//! replicas if wanted), not Redis Cluster: its scripts touch keys they
//! compute. It needs Redis 5 or later, and says so at open.
//!
//! # Errors
//!
//! Every call returns [`Error`]: [`Error::Unavailable`] when the database
//! cannot be reached, went away, did not answer within
//! [`Options::call_timeout`] or takes no writes now (a Redis replica or a
//! PostgreSQL standby, as a primary becomes when a failover demotes it); the
//! next call connects again,
//! [`Error::Fenced`] and [`Error::LeaseExpired`] for a node that must register
//! again, [`Error::QueueFull`] when a recipient's queue is at its limit, and
//! [`Error::Malformed`] for data this crate did not write. A listing or a
//! page does not fail for one row it cannot decode: [`Catalog::live_nodes`],
//! [`Catalog::interests`] and [`Catalog::read`] skip such a row and name
//! it, with the reason ([`Nodes::unreadable`], [`Interests::unreadable`],
//! [`Page::unreadable`]), and go on with the others; the row stays where it
//! is.

mod error;
mod model;
mod postgres;
mod redis;
mod sqlite;

use std::time::Duration;

use mq_core::wire::mesh::NODE_PREFIX;

pub use error::Error;
pub use model::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_NAMESPACE, Enqueued, Envelope, Interest, Interests, MAX_LEASE,
    Node, Nodes, Offline, Options, Origin, Page, Registration, Unreadable, UnreadableInterest,
    UnreadableNode,
};

/// A catalog in one of the databases, opened from a URL.
///
/// Calls take `&self` and may run concurrently; each backend keeps one
/// connection and opens it again after it broke.
pub struct Catalog {
    backend: Backend,
}

enum Backend {
    Sqlite(sqlite::SqliteCatalog),
    Redis(Box<redis::RedisCatalog>),
    Postgres(Box<postgres::PostgresCatalog>),
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// Calls the same method on whichever backend this is.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Sqlite(b) => b.$method($($arg),*).await,
            Backend::Redis(b) => b.$method($($arg),*).await,
            Backend::Postgres(b) => b.$method($($arg),*).await,
        }
    };
}

impl Catalog {
    /// Opens the catalog at `url` with default [`Options`], creating its
    /// tables on first use.
    pub async fn open(url: &str) -> Result<Catalog, Error> {
        Catalog::open_with(url, Options::default()).await
    }

    /// Opens the catalog at `url`: `sqlite:PATH`, `redis://…` or
    /// `postgres://…` (also `postgresql://…`).
    pub async fn open_with(url: &str, options: Options) -> Result<Catalog, Error> {
        options.check()?;
        let backend = if let Some(path) = url.strip_prefix("sqlite:") {
            Backend::Sqlite(sqlite::SqliteCatalog::open(path, options).await?)
        } else if url.starts_with("redis://") {
            Backend::Redis(Box::new(redis::RedisCatalog::open(url, options).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(Box::new(
                postgres::PostgresCatalog::open(url, options).await?,
            ))
        } else {
            return Err(Error::Url(format!(
                "`{url}`: use sqlite:PATH, redis://HOST:PORT/DB or postgres://USER@HOST:PORT/DB"
            )));
        };
        Ok(Catalog { backend })
    }

    /// `sqlite`, `redis` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Redis(_) => "redis",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Registers `node` listening at `addr` with a lease of `lease`, under a
    /// new incarnation; an earlier incarnation of the node is fenced off.
    pub async fn register(
        &self,
        node: &str,
        addr: &str,
        lease: Duration,
    ) -> Result<Registration, Error> {
        model::check_id("node id", node)?;
        model::check_id("node address", addr)?;
        let lease = model::lease_ms(lease)?;
        dispatch!(self.register(node, addr, lease))
    }

    /// Renews the lease of `registration` to `lease` from now. Fails with
    /// [`Error::Fenced`] if a newer incarnation registered, and with
    /// [`Error::LeaseExpired`] if the lease already ran out or the node
    /// deregistered.
    pub async fn heartbeat(
        &self,
        registration: &Registration,
        lease: Duration,
    ) -> Result<(), Error> {
        let lease = model::lease_ms(lease)?;
        let incarnation = model::signed("incarnation", registration.incarnation)?;
        dispatch!(self.heartbeat(&registration.node, incarnation, lease))
    }

    /// Removes `registration`'s node from the catalog. Fails with
    /// [`Error::Fenced`] (and removes nothing) if a newer incarnation
    /// registered; a node already gone is fine.
    pub async fn deregister(&self, registration: &Registration) -> Result<(), Error> {
        let incarnation = model::signed("incarnation", registration.incarnation)?;
        dispatch!(self.deregister(&registration.node, incarnation))
    }

    /// The nodes whose lease has not expired, by id. A row that cannot be
    /// decoded (a negative incarnation, a field of the wrong type another
    /// program wrote) is skipped and reported in [`Nodes::unreadable`]: it
    /// does not keep the others from being listed.
    pub async fn live_nodes(&self) -> Result<Nodes, Error> {
        dispatch!(self.live_nodes())
    }

    /// Removes the nodes whose lease expired; returns how many.
    pub async fn reap_expired(&self) -> Result<u64, Error> {
        dispatch!(self.reap_expired())
    }

    /// Records `interest` (replacing the session's earlier interest in the
    /// same filter).
    pub async fn add_interest(&self, interest: &Interest) -> Result<(), Error> {
        model::check_id("session", &interest.session)?;
        model::check_id("node id", &interest.node)?;
        model::check_id("filter", &interest.filter)?;
        if let Some(group) = &interest.group {
            model::check_id("group", group)?;
        }
        dispatch!(self.add_interest(interest))
    }

    /// Forgets `session`'s interest in `filter`; returns whether there was one.
    pub async fn remove_interest(&self, session: &str, filter: &str) -> Result<bool, Error> {
        dispatch!(self.remove_interest(session, filter))
    }

    /// Forgets all of `session`'s interest (a session that ended, or that
    /// came back clean); returns how many filters it had. Its offline queue
    /// stays until read and acked.
    pub async fn forget_session(&self, session: &str) -> Result<u64, Error> {
        dispatch!(self.forget_session(session))
    }

    /// Forgets all the interest node `node` wrote of itself (a node gone for
    /// good): the rows of its session `$node.<node>` and of its groups'
    /// sessions `$node.<node> <group>` (`mq_core::broker::CatalogRound::row_session`);
    /// returns how many there were. The other nodes forget it at their next
    /// heartbeat. Not one transaction: after an error, call it again.
    pub async fn forget_node(&self, node: &str) -> Result<u64, Error> {
        model::check_id("node id", node)?;
        let own = format!("{NODE_PREFIX}{node}");
        let group = format!("{own} ");
        let listed = self.interests().await?;
        // Rows that cannot be decoded go too: the session names the node.
        let unreadable = (listed.unreadable.into_iter())
            .map(|u| u.session)
            .filter(|s| *s == own || s.starts_with(&group));
        let sessions: std::collections::BTreeSet<String> = (listed.interests.into_iter())
            .filter(|i| i.node == node && (i.session == own || i.session.starts_with(&group)))
            .map(|i| i.session)
            .chain(unreadable)
            .collect();
        let mut gone = 0;
        for session in sessions {
            gone += self.forget_session(&session).await?;
        }
        Ok(gone)
    }

    /// Every recorded interest, by session and filter. A row that cannot be
    /// decoded (a QoS a newer version wrote) is skipped and reported in
    /// [`Interests::unreadable`]: it does not keep the others from being
    /// listed.
    pub async fn interests(&self) -> Result<Interests, Error> {
        dispatch!(self.interests())
    }

    /// Stores `message` for `recipient`, unless the queue already holds the
    /// same origin (then [`Enqueued::Duplicate`]). Fails with
    /// [`Error::QueueFull`] when the queue holds [`Options::queue_limit`]
    /// unexpired messages.
    pub async fn enqueue(&self, recipient: &str, message: &Envelope) -> Result<Enqueued, Error> {
        let mut answers = (self.enqueue_all(recipient, std::slice::from_ref(message))).await?;
        answers.pop().expect("one answer per message")
    }

    /// Stores `messages` in `recipient`'s queue in one call (one
    /// transaction; one script on Redis), in order: for each, what
    /// [`enqueue`](Self::enqueue) of it would have answered after those
    /// before it, [`Error::QueueFull`] for one that found the queue full.
    /// An error of the call itself (the backend cannot be reached, a
    /// message that is not valid) stores none of them on SQLite and
    /// PostgreSQL (the transaction rolls back); on Redis a script that
    /// fails part-way (out of memory) keeps those it stored before. Either
    /// way the call may be made again: enqueueing is idempotent per
    /// origin while the message is still queued (one drained and acked
    /// since is stored again, and the recipient's deduplication drops it). One commit for all: far cheaper per message than a call
    /// each.
    pub async fn enqueue_all(
        &self,
        recipient: &str,
        messages: &[Envelope],
    ) -> Result<Vec<Result<Enqueued, Error>>, Error> {
        for message in messages {
            model::check_envelope(recipient, message)?;
        }
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self.enqueue_all(recipient, messages))
    }

    /// Up to `max` unexpired messages of `recipient`'s queue in enqueue order,
    /// after id `after` if given, without removing them. Enqueues for one
    /// recipient are serialized, so its ids become visible in order: paging
    /// with `after` (the page's [`last_id`](Page::last_id)) misses nothing.
    /// The page holds up to `max` rows: a row that cannot be decoded is
    /// skipped and reported by id in [`Page::unreadable`], so that it does
    /// not hold back the messages behind it; it stays until acked.
    pub async fn read(
        &self,
        recipient: &str,
        after: Option<u64>,
        max: usize,
    ) -> Result<Page, Error> {
        if max == 0 {
            return Ok(Page::default());
        }
        let after = model::signed("after", after.unwrap_or(0))?;
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        dispatch!(self.read(recipient, after, max))
    }

    /// Removes the messages `ids` of `recipient`'s queue, once the recipient's
    /// node acknowledged them; returns how many were still there.
    pub async fn ack(&self, recipient: &str, ids: &[u64]) -> Result<u64, Error> {
        let ids = ids
            .iter()
            .map(|&id| model::signed("id", id))
            .collect::<Result<Vec<i64>, Error>>()?;
        dispatch!(self.ack(recipient, &ids))
    }

    /// How many unexpired messages `recipient`'s queue holds: as many as
    /// [`Catalog::read`] returns with no bound.
    pub async fn queue_len(&self, recipient: &str) -> Result<u64, Error> {
        dispatch!(self.queue_len(recipient))
    }

    /// Removes everything this catalog holds (in its namespace): nodes,
    /// interest, queues, the tables or keys themselves.
    pub async fn destroy(self) -> Result<(), Error> {
        dispatch!(self.destroy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node shares one catalog between its tasks (`Arc<Catalog>`) and
    /// spawns the calls' futures.
    #[test]
    fn catalogs_and_their_calls_cross_tasks() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        fn calls(catalog: &'static Catalog, message: &'static Envelope) {
            send_sync(catalog);
            let registration = Registration {
                node: "a".to_owned(),
                incarnation: 1,
            };
            send(catalog.register("a", "h:1", Duration::from_secs(1)));
            send(async move {
                catalog
                    .heartbeat(&registration, Duration::from_secs(1))
                    .await
            });
            send(catalog.enqueue("r", message));
            send(catalog.read("r", None, 10));
            send(catalog.ack("r", &[1]));
            send(catalog.interests());
        }
        let _ = calls;
    }

    #[tokio::test]
    async fn malformed_urls_are_refused_before_connecting() {
        for (url, says) in [
            ("mysql://127.0.0.1/db", "use sqlite:PATH"),
            ("sqlite:", "names no file"),
            ("postgres://127.0.0.1:5432/test", "names no user"),
            (
                "redis://127.0.0.1:notaport/0",
                "redis://127.0.0.1:notaport/0",
            ),
        ] {
            match Catalog::open(url).await {
                Err(Error::Url(detail)) => assert!(detail.contains(says), "{url}: {detail}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn namespaces_and_limits_are_checked() {
        for namespace in ["", "9lives", "Upper", "with-dash", &"x".repeat(49)] {
            let options = Options {
                namespace: namespace.to_owned(),
                ..Options::default()
            };
            assert!(
                matches!(options.check(), Err(Error::Invalid(_))),
                "namespace `{namespace}`"
            );
        }
        let zero = Options {
            queue_limit: 0,
            ..Options::default()
        };
        assert!(matches!(zero.check(), Err(Error::Invalid(_))));
        let no_time = Options {
            call_timeout: Duration::ZERO,
            ..Options::default()
        };
        assert!(matches!(no_time.check(), Err(Error::Invalid(_))));
        assert_eq!(Options::default().check(), Ok(()));
    }
}
