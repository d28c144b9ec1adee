//! The mesh simulation's catalog (in memory, failing now and then) and the
//! node adapter's round with it, carrying out what the core's
//! [`CatalogRound`] decides, as `mq_server::node` does after a heartbeat.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mq_core::broker::{
    CatalogRound, HandOn, Handed, InterestRow, OFFLINE_BATCH, OfflineError, OfflineItem,
    OfflineMessage, OfflineTicket, hand_on_again,
};

use crate::mesh_world::World;

/// The nodes' heartbeat: the round's period.
const HEARTBEAT: Duration = Duration::from_millis(100);

/// Chance per catalog call that it fails, per million.
const CATALOG_FAILS: u64 = 50_000;

/// One message in a recipient's queue.
pub struct Entry {
    qid: u64,
    origin: String,
    id: u64,
    topic: String,
    meta: Vec<u8>,
    payload: Vec<u8>,
}

/// The model catalog: interest rows, and offline queues by recipient,
/// idempotent on (origin, id) while queued, each holding at most
/// `capacity` messages (it answers `Full` past that, as the real ones do at
/// their queue limit).
pub struct Catalog {
    /// (session, node, filter, group).
    interest: BTreeSet<(String, String, String, Option<String>)>,
    pub queues: BTreeMap<String, Vec<Entry>>,
    next_qid: u64,
    pub stored: u64,
    /// Of those, a group's jobs.
    pub group_stored: u64,
    pub failures: u64,
    pub capacity: usize,
    /// The messages a full queue refused that their sender then dropped,
    /// their recipient away. Its sessions may never see them.
    pub refused: BTreeSet<Refused>,
}

impl Catalog {
    /// A catalog whose queues hold at most `capacity` messages each.
    pub fn new(capacity: usize) -> Catalog {
        Catalog {
            interest: BTreeSet::new(),
            queues: BTreeMap::new(),
            next_qid: 0,
            stored: 0,
            group_stored: 0,
            failures: 0,
            capacity,
            refused: BTreeSet::new(),
        }
    }

    /// Whether node `node` wrote its interest in `filter` (as a member of
    /// `group`).
    pub fn lists(&self, node: &str, filter: &str, group: Option<&str>) -> bool {
        (self.interest.iter()).any(|(_, n, f, g)| n == node && f == filter && g.as_deref() == group)
    }
}

/// What one node's adapter holds between rounds; it dies with the node.
pub struct Adapter {
    /// Peers it told its broker are away.
    pub away: BTreeSet<usize>,
    round: CatalogRound,
    /// A drained page waiting for its local publishes to be stored.
    page: Option<Page>,
}

/// The catalog ids of a drained page, and what the broker said of each.
type Page = (Vec<u64>, Vec<Result<OfflineTicket, OfflineError>>);

impl Adapter {
    pub fn new(world: &World, n: usize) -> Adapter {
        let node = &world.nodes[n];
        Adapter {
            away: BTreeSet::new(),
            round: CatalogRound::new(&node.name, node.broker.config()),
            page: None,
        }
    }

    /// Whether no drained page waits.
    pub fn is_idle(&self) -> bool {
        self.page.is_none()
    }
}

/// One round of node `n` with the catalog.
pub struct Round<'a> {
    pub world: &'a mut World,
    pub catalog: &'a mut Catalog,
    pub adapter: &'a mut Adapter,
    pub n: usize,
    /// The items of this batch a full queue refused while the model had
    /// their recipient away, by recipient and id.
    pub full: BTreeMap<(String, u64), Refused>,
}

/// A message a full queue refused: (recipient, group, publisher, seq).
pub type Refused = (String, Option<String>, u8, u32);

impl Round<'_> {
    fn fails(&mut self) -> bool {
        let fail = self.world.rng.chance(CATALOG_FAILS);
        self.catalog.failures += u64::from(fail);
        fail
    }

    /// The round, in the order of `CatalogRound`'s docs; `live` are the
    /// nodes whose lease runs.
    pub fn run(mut self, live: &[&str]) {
        let now = self.world.now;
        let read = (!self.fails()).then(|| self.catalog.interest.clone());
        let rows: Option<Vec<InterestRow<'_>>> = read.as_ref().map(|r| {
            (r.iter())
                .map(|(session, node, filter, group)| InterestRow {
                    session,
                    node,
                    filter,
                    group: group.as_deref(),
                })
                .collect()
        });
        let listing = (rows.as_ref()).map(|rows| self.adapter.round.listing(rows, live));
        let broker = &mut self.world.nodes[self.n].broker;
        if let Some(listing) = &listing {
            for (peer, filters) in &listing.away {
                broker.set_away_interest(now, peer, filters);
            }
            for (peer, filters) in &listing.live {
                broker.set_live_interest(now, peer, filters);
            }
            broker.handle_catalog_listing(now, &listing.listed, &listing.live_peers);
        }
        if let Some(listing) = &listing {
            let (n, broker) = (self.n, &self.world.nodes[self.n].broker);
            let known: Vec<_> = (listing.live.iter().chain(&listing.away))
                .map(|(peer, _)| (*peer, broker.peer_interest(peer), broker.peer_groups(peer)))
                .collect();
            self.world
                .log(|| format!("node {n}: listing; peers' interest now {known:?}"));
        }
        let broker = &mut self.world.nodes[self.n].broker;
        let declared = broker.declared_interest();
        let write = self
            .adapter
            .round
            .write_interest(rows.as_deref(), &declared);
        let round = &self.adapter.round;
        let node = round.node().to_owned();
        let row = |(filter, group): (String, Option<String>)| {
            (
                round.row_session(group.as_deref()),
                node.clone(),
                filter,
                group,
            )
        };
        let add: Vec<_> = write.add.into_iter().map(row).collect();
        let remove: Vec<_> = write.remove.into_iter().map(row).collect();
        let mut ok = true;
        for row in add {
            ok = ok && !self.fails();
            if ok {
                self.catalog.interest.insert(row);
            }
        }
        for row in remove {
            ok = ok && !self.fails();
            if ok {
                self.catalog.interest.remove(&row);
            }
        }
        self.adapter.round.handle_interest_written(ok);
        self.hand_on();
        self.drain();
    }

    /// Batches while the core says so (this catalog takes no time), each
    /// run for one recipient in one call that fails as a whole.
    fn hand_on(&mut self) {
        while self.hand_on_batch() {}
    }

    fn hand_on_batch(&mut self) -> bool {
        let (now, name) = (self.world.now, self.adapter.round.node().to_owned());
        let broker = &mut self.world.nodes[self.n].broker;
        let items: Vec<_> = std::iter::from_fn(|| broker.poll_offline(now))
            .take(OFFLINE_BATCH)
            .collect();
        let polled = items.len();
        let mut batch = HandOn::new(items);
        loop {
            let run = batch.next_run();
            if run.is_empty() {
                break;
            }
            if self.fails() {
                batch.handle(Handed::Failed);
                continue;
            }
            for item in run {
                batch.handle(self.store(&name, item));
            }
        }
        for (recipient, id, handed) in batch.into_results() {
            let broker = &mut self.world.nodes[self.n].broker;
            let dropped = broker.mesh_stats().offline_dropped;
            broker.handle_offline_handed(now, &recipient, id, handed);
            let dropped = broker.mesh_stats().offline_dropped > dropped;
            // Excused when the broker dropped it and the model agrees the
            // recipient was away (the broker may also keep it: a peer that
            // came back and went again is only out of reach until its
            // lease expires again).
            let refused = self.full.remove(&(recipient, id));
            if dropped && let Some(refused) = refused {
                self.catalog.refused.insert(refused);
            }
        }
        self.full.clear();
        hand_on_again(polled, Duration::ZERO, HEARTBEAT)
    }

    /// Stores `item` of node `name` in its recipient's queue, unless the
    /// queue holds it; refuses it when the queue is full.
    fn store(&mut self, name: &str, item: OfflineItem) -> Handed {
        let n = self.n;
        let (publisher, seq) = (item.payload[0], sequence(&item.payload));
        let group = item.group.as_ref().map(|(_, g)| g.clone());
        let catalog = &mut *self.catalog;
        let origin = item.origin(name);
        let queue = catalog.queues.entry(item.recipient.clone()).or_default();
        let queued = queue.iter().any(|e| e.origin == origin && e.id == item.id);
        let full = !queued && queue.len() >= catalog.capacity;
        self.world.log(|| {
            let g = group.as_ref().map(|g| format!(" (group {g})"));
            let g = g.unwrap_or_default();
            let what = if full { "full for" } else { "stores" };
            format!(
                "node {n}: {what} {publisher}/{seq} for {}{g}",
                item.recipient
            )
        });
        if full {
            // Only a peer away may lose it (one merely out of reach keeps
            // it at the sender until there is room or a link).
            let away =
                (self.adapter.away.iter()).any(|&m| self.world.nodes[m].name == item.recipient);
            if away {
                let key = (item.recipient.clone(), item.id);
                (self.full).insert(key, (item.recipient, group, publisher, seq));
            }
            return Handed::Full;
        }
        if !queued {
            catalog.next_qid += 1;
            catalog.stored += 1;
            catalog.group_stored += u64::from(item.group.is_some());
            queue.push(Entry {
                qid: catalog.next_qid,
                origin,
                id: item.id,
                topic: item.topic,
                meta: item.meta,
                payload: item.payload,
            });
        }
        Handed::Stored
    }

    /// Acks the page drained before once its publishes are stored (the
    /// node task waits for that), then publishes the next page.
    fn drain(&mut self) {
        let (now, n) = (self.world.now, self.n);
        let name = self.adapter.round.node().to_owned();
        if let Some((ids, results)) = &self.adapter.page {
            let broker = &self.world.nodes[n].broker;
            let stored = |r: &Result<OfflineTicket, _>| match r {
                Ok(ticket) => broker.is_offline_stored(*ticket),
                Err(_) => true,
            };
            if !results.iter().all(stored) {
                return;
            }
            let results: Vec<_> = results.iter().map(|r| r.map(|_| ())).collect();
            let ack = self.adapter.round.handle_page(ids, &results);
            self.adapter.page = None;
            if !ack.is_empty() {
                let ok = !self.fails();
                if ok && let Some(queue) = self.catalog.queues.get_mut(&name) {
                    queue.retain(|e| !ack.contains(&e.qid));
                    self.world
                        .log(|| format!("node {n}: acks {ack:?} in the catalog"));
                }
                self.adapter.round.handle_acked(ok);
            }
        }
        let page = self.adapter.round.next_page();
        if self.fails() {
            return;
        }
        let Some(queue) = self.catalog.queues.get(&name) else {
            return;
        };
        let entries = (queue.iter())
            .filter(|e| page.after.is_none_or(|after| e.qid > after))
            .take(page.max);
        let broker = &mut self.world.nodes[n].broker;
        let (mut ids, mut results) = (Vec::new(), Vec::new());
        for e in entries {
            let m = OfflineMessage {
                origin: &e.origin,
                id: e.id,
                topic: &e.topic,
                meta: &e.meta,
                payload: &e.payload,
            };
            let result = broker.deliver_offline(now, &m);
            if self.world.trace {
                let (p, seq) = (e.payload[0], sequence(&e.payload));
                println!("node {n}: drains q{} {p}/{seq}: {result:?}", e.qid);
            }
            ids.push(e.qid);
            results.push(result);
        }
        if !ids.is_empty() {
            self.adapter.page = Some((ids, results));
        }
    }
}

/// The sequence number in a simulation payload (after its publisher byte).
fn sequence(payload: &[u8]) -> u32 {
    u32::from_le_bytes(payload[1..5].try_into().expect("a simulation payload"))
}
