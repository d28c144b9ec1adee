//! One seed's world: a broker, the log on a simulated disk, and the clients,
//! stepped together; power cuts, recovery, and the checks after each.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mq_core::broker::{Config, Event, Record, StoreOp};
use mq_core::wire::*;
use mq_server::store::Store;
use mq_server::wal::fs::{FileSystem, SimDisk, SimRng};
use mq_server::wal::{FsyncPolicy, Wal, WalOptions};

use crate::figures::Figures;
use crate::model::*;
use crate::support::{Got, Sim};

/// Why the broker's run ends.
pub enum Stop {
    /// The disk stopped where a fuse said: the power went, or only the
    /// process died (chosen then).
    Disk,
    Power,
    Process,
}

pub struct World {
    pub seed: u64,
    pub trace: bool,
    pub rng: SimRng,
    pub disk: SimDisk,
    pub dir: PathBuf,
    pub opts: WalOptions,
    pub cfg: Config,
    pub wal: Option<Wal<SimDisk>>,
    pub sim: Sim,
    pub clients: Vec<Client>,
    pub queues: Vec<Queue>,
    pub published: BTreeMap<Msg, Published>,
    /// Records whose durability is not known yet, by token (this run).
    pub awaited: VecDeque<(u64, Awaited)>,
    /// Records handed to the store and not written yet.
    pub batch: Vec<StoreOp>,
    /// The highest message id in a record the log took (any run): every
    /// later one is higher, across power cuts too (but under `never`).
    pub max_id: u64,
    /// The highest sequence number the log took, by topic.
    pub max_seq: BTreeMap<String, u64>,
    /// The last token written, and the last known durable (this run).
    pub written: u64,
    pub durable: u64,
    pub step: u64,
    /// Virtual time since the start.
    pub elapsed: Duration,
    /// Checking after a power cut: deliveries per queue.
    pub burst: Option<Vec<BTreeSet<Msg>>>,
    pub figures: Figures,
}

impl World {
    pub fn new(seed: u64, fsync: FsyncPolicy, trace: bool) -> World {
        let mut rng = SimRng::new(seed ^ 0x5eed_f0d1_5c00);
        let opts = WalOptions {
            fsync,
            segment_bytes: [1024, 2048, 4096, 16384][rng.below(4) as usize],
            max_bytes: None,
            compact_min_bytes: [2048, 8192, 32768][rng.below(3) as usize],
        };
        // Some seeds run at a disk limit: QoS 1 refused while full.
        let opts = WalOptions {
            max_bytes: rng.chance(1, 4).then(|| 16384 << rng.below(3)),
            ..opts
        };
        let cfg = Config {
            seed,
            ack_timeout: None,
            max_attempts: u16::MAX,
            ..Config::default()
        };
        let disk = SimDisk::new(seed);
        disk.set_trace(trace);
        let dir = PathBuf::from("/var/lib/mq/data");
        let (clients, queues) = cast();
        if trace {
            println!("seed {seed}: {opts:?}");
        }
        let mut w = World {
            seed,
            trace,
            rng,
            disk,
            dir,
            opts,
            cfg: cfg.clone(),
            wal: None,
            sim: Sim::with(cfg),
            clients,
            queues,
            published: BTreeMap::new(),
            awaited: VecDeque::new(),
            batch: Vec::new(),
            max_id: 0,
            max_seq: BTreeMap::new(),
            written: 0,
            durable: 0,
            step: 0,
            elapsed: Duration::ZERO,
            burst: None,
            figures: Figures {
                seeds: 1,
                ..Figures::default()
            },
        };
        // The machine is installed: /var/lib/mq is on disk; mqd makes the rest.
        for d in ["/var", "/var/lib", "/var/lib/mq"] {
            w.disk.create_dir(Path::new(d)).expect("a fresh disk");
            let parent = Path::new(d).parent().expect("not the root");
            w.disk.sync_dir(parent).expect("a fresh disk");
        }
        w.open_log();
        w
    }

    pub fn log(&self, what: impl FnOnce() -> String) {
        if self.trace {
            println!("{:>6} {}", self.step, what());
        }
    }

    pub fn fail(&self, what: String) -> ! {
        panic!("seed {} step {}: {what}", self.seed, self.step)
    }

    pub fn wal(&mut self) -> &mut Wal<SimDisk> {
        self.wal.as_mut().expect("the log is open")
    }

    /// Steps until `steps` have run, cutting the power now and then; then a
    /// last power cut and the checks.
    pub fn run(&mut self, steps: u64) {
        // Everyone subscribes once; the auditor leaves until the first cut.
        for c in 0..self.clients.len() {
            if self.clients[c].queue().is_some() {
                self.connect(c);
            }
        }
        self.drain();
        if self.store_write().is_err() {
            self.fail("the disk stopped with no fuse set".into());
        }
        self.drain();
        self.disconnect(self.clients.len() - 1);
        while self.step < steps {
            self.step += 1;
            let stop = match self.action() {
                Ok(()) if self.disk.is_dead() => Some(Stop::Disk),
                Ok(()) => None,
                Err(stop) => Some(stop),
            };
            match stop {
                Some(Stop::Disk) if self.rng.chance(2, 5) => self.process_crash(),
                Some(Stop::Disk | Stop::Power) => self.power_cut(),
                Some(Stop::Process) => self.process_crash(),
                None => {}
            }
        }
        self.power_cut();
    }

    fn action(&mut self) -> Result<(), Stop> {
        let roll = self.rng.below(100);
        match roll {
            0..=29 => self.publish(QoS::AtLeastOnce),
            30..=34 => self.publish(QoS::AtMostOnce),
            35..=54 => self.ack_some(),
            55..=60 => self.toggle_subscriber(),
            61..=85 => self.store_write()?,
            86..=88 => self.compact()?,
            89..=90 => {
                let ops = self.rng.below(40);
                self.log(|| format!("the power will go after {ops} disk operations"));
                self.disk.fail_after(ops);
            }
            91 => {
                self.log(|| "the power goes".into());
                return Err(Stop::Power);
            }
            92 => {
                self.log(|| "the process is killed".into());
                return Err(Stop::Process);
            }
            _ => {
                let by = Duration::from_millis(1 + self.rng.below(30));
                self.tick(by)?;
            }
        }
        self.drain();
        if self.wal().wants_compaction() {
            self.compact()?;
        }
        Ok(())
    }

    /// Time passes; the store thread syncs at the log's deadlines on the way.
    fn tick(&mut self, by: Duration) -> Result<(), Stop> {
        let until = self.elapsed + by;
        while let Some(at) = self.wal().sync_deadline() {
            let wait = at.saturating_duration_since(self.disk.now());
            if self.elapsed + wait > until {
                break;
            }
            self.advance(wait);
            self.log(|| "the store thread syncs at the deadline".into());
            if self.wal().sync().is_err() || self.disk.is_dead() {
                return Err(Stop::Disk);
            }
            self.learn_durability();
        }
        self.advance(until - self.elapsed);
        Ok(())
    }

    fn advance(&mut self, by: Duration) {
        self.elapsed += by;
        self.sim.now += by;
        self.disk.advance(by);
        self.sim.b.handle_timeout(self.sim.now);
    }

    /// Sends `frame` for `client` and hands the records it caused to the
    /// store's queue; returns them for the caller to look at.
    fn send(&mut self, client: usize, frame: &Frame<'_>) -> Vec<StoreOp> {
        let conn = self.clients[client].conn.expect("connected");
        self.sim.send(conn, frame);
        let ops = self.sim.take_ops();
        self.batch.extend(ops.iter().cloned());
        ops
    }

    pub fn connect(&mut self, c: usize) {
        let mode = match self.clients[c].role {
            Role::Publisher(_) => SessionMode::Clean,
            Role::Subscriber { .. } => SessionMode::Resume,
        };
        let conn = self.sim.connect(self.clients[c].name, mode);
        self.clients[c].conn = Some(conn);
        self.log(|| format!("{} connects", self.clients[c].name));
        self.drain();
        let Some(q) = self.clients[c].queue() else {
            // Its outbox goes again.
            let outbox: Vec<Msg> = self.clients[c].in_flight.values().copied().collect();
            for msg in outbox {
                self.log(|| format!("{} sends {msg:?} again", self.clients[c].name));
                self.send_publish(c, msg);
            }
            return;
        };
        let (filter, group) = (self.queues[q].filter, self.queues[q].group);
        let ops = self.send(
            c,
            &Frame::Subscribe(Subscribe {
                sub: 1,
                filter,
                group,
                start: Start::New,
                qos: QoS::AtLeastOnce,
                credit: 50_000,
            }),
        );
        for op in ops {
            if matches!(op.record(), Record::Subscribe { .. }) {
                self.awaited.push_back((op.token, Awaited::Subscribe(c)));
            }
        }
    }

    pub fn disconnect(&mut self, c: usize) {
        if let Some(conn) = self.clients[c].conn.take() {
            self.log(|| format!("{} disconnects", self.clients[c].name));
            self.sim.b.handle_closed(conn, self.sim.now);
            self.sim.inbox.remove(&conn);
            self.clients[c].unacked.clear();
        }
    }

    fn publish(&mut self, qos: QoS) {
        let c = self.rng.below(2) as usize;
        if self.clients[c].conn.is_none() {
            self.connect(c);
        }
        let Role::Publisher(id) = self.clients[c].role else {
            unreachable!("the first two are publishers")
        };
        let n = self.clients[c].next;
        self.clients[c].next += 1;
        let topic = TOPICS[self.rng.below(TOPICS.len() as u64) as usize];
        let pad = if self.rng.chance(1, 20) {
            self.rng.below(3000)
        } else {
            self.rng.below(200)
        } as usize;
        let msg = (id, n);
        self.log(|| format!("p{id} publishes {msg:?} to {topic} ({qos:?}, {pad} B)"));
        self.published.insert(
            msg,
            Published {
                topic,
                qos,
                pad,
                sent: self.step,
                durable: false,
                acked_at: None,
            },
        );
        if qos == QoS::AtLeastOnce {
            self.clients[c].in_flight.insert(n, msg);
        }
        self.send_publish(c, msg);
    }

    /// Sends `msg` (first time or again) with its producer sequence.
    fn send_publish(&mut self, c: usize, msg: Msg) {
        let p = &self.published[&msg];
        let (topic, qos, pad) = (p.topic, p.qos, p.pad);
        let ops = self.send(
            c,
            &Frame::Publish(Publish {
                id: msg.1,
                topic,
                qos,
                dedup: Some(Dedup {
                    producer: 100 + u64::from(msg.0),
                    seq: u64::from(msg.1),
                }),
                meta: Meta::default(),
                fragment: None,
                payload: &payload(msg, pad),
            }),
        );
        for op in &ops {
            if let Record::Message(m) = op.record()
                && msg_of(m.payload) == msg
            {
                self.awaited.push_back((op.token, Awaited::Publish(msg)));
            }
        }
    }

    fn ack_some(&mut self) {
        let subscribers: Vec<usize> = (0..self.clients.len())
            .filter(|&c| self.clients[c].conn.is_some() && !self.clients[c].unacked.is_empty())
            .collect();
        if subscribers.is_empty() {
            return;
        }
        let c = subscribers[self.rng.below(subscribers.len() as u64) as usize];
        self.ack(c, 7);
    }

    /// Acks each unacked delivery of `c` with a chance of `tenths` in ten.
    pub fn ack(&mut self, c: usize, tenths: u64) {
        let q = self.clients[c].queue().expect("a subscriber");
        for (tag, msg) in std::mem::take(&mut self.clients[c].unacked) {
            if !self.rng.chance(tenths, 10) {
                self.clients[c].unacked.push((tag, msg));
                continue;
            }
            self.log(|| format!("{} acks {msg:?}", self.clients[c].name));
            let ops = self.send(c, &Frame::Ack(Ack { tag }));
            let state = match ops.last() {
                Some(op) => {
                    self.awaited.push_back((op.token, Awaited::Ack(q, msg)));
                    AckState::Pending
                }
                None => AckState::Uncertain,
            };
            let acks = &mut self.queues[q].acks;
            if acks.get(&msg) != Some(&AckState::Durable) {
                acks.insert(msg, state);
            }
        }
    }

    fn toggle_subscriber(&mut self) {
        let c = 2 + self.rng.below(4) as usize;
        if self.clients[c].conn.is_some() {
            self.disconnect(c);
        } else {
            self.connect(c);
        }
    }

    /// Moves everything the broker wants to do until nothing moves.
    pub fn drain(&mut self) {
        loop {
            let ops = self.sim.take_ops();
            let mut moved = !ops.is_empty();
            self.batch.extend(ops);
            moved |= self.sim.transmit();
            while let Some(ev) = self.sim.b.poll_event() {
                moved = true;
                if let Event::Close(conn) = ev {
                    self.sim.b.handle_closed(conn, self.sim.now);
                    if let Some(c) = self.clients.iter().position(|c| c.conn == Some(conn)) {
                        self.log(|| format!("the broker closes {}", self.clients[c].name));
                        self.clients[c].conn = None;
                        self.clients[c].unacked.clear();
                    }
                }
            }
            for c in 0..self.clients.len() {
                let Some(conn) = self.clients[c].conn else {
                    continue;
                };
                for got in self.sim.frames(conn) {
                    moved = true;
                    self.on_frame(c, got);
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn on_frame(&mut self, c: usize, got: Got) {
        match got {
            Got::Welcome { session_present } => {
                if self.clients[c].durable_session && !session_present {
                    self.fail(format!(
                        "{}'s session was durable but is gone",
                        self.clients[c].name
                    ));
                }
            }
            Got::PubAck(id) => {
                let Some(msg) = self.clients[c].in_flight.remove(&id) else {
                    return;
                };
                self.log(|| format!("{msg:?} acknowledged to its publisher"));
                let elapsed = self.elapsed;
                let p = self.published.get_mut(&msg).expect("published");
                p.acked_at = Some(elapsed);
                if self.opts.fsync == FsyncPolicy::Always && !p.durable {
                    self.fail(format!("{msg:?} acknowledged before it was durable"));
                }
            }
            Got::PubReject(id) => {
                self.figures.refused += 1;
                self.clients[c].in_flight.remove(&id);
            }
            Got::Deliver(d) => {
                let msg = msg_of(&d.payload);
                if d.qos != QoS::AtLeastOnce {
                    return;
                }
                let q = self.clients[c].queue().expect("a subscriber");
                self.log(|| format!("{} gets {msg:?} (tag {})", self.clients[c].name, d.tag));
                if self.queues[q].acks.get(&msg) == Some(&AckState::Durable) {
                    self.fail(format!(
                        "{msg:?} delivered to {} again after its ack was durable",
                        self.queues[q].name
                    ));
                }
                self.clients[c].unacked.push((d.tag, msg));
                if let Some(burst) = &mut self.burst {
                    burst[q].insert(msg);
                }
            }
            Got::SubAck(_) | Got::Other(_) => {}
        }
    }

    /// The store thread writes what queued up (group commit) and reports it.
    fn store_write(&mut self) -> Result<(), Stop> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let last = batch.last().expect("not empty").token;
        self.log(|| format!("the store writes {} records (up to {last})", batch.len()));
        if self.wal().write(&batch).is_err() || self.disk.is_dead() {
            return Err(Stop::Disk);
        }
        self.written = last;
        self.check_ids(&batch);
        self.learn_durability();
        self.sim.b.handle_persisted(last, self.sim.now);
        let full = self.wal().is_full();
        self.sim.b.set_store_full(full);
        Ok(())
    }

    /// A message id is never handed out again, even when a power cut took
    /// the records that held it: its node's peers would drop the new
    /// message as a duplicate (the id reservation the log syncs). Nor is a
    /// topic's sequence number: a subscriber that resumes after the last
    /// one it saw would skip the new message (the topics' reservations).
    fn check_ids(&mut self, batch: &[StoreOp]) {
        let checked = self.opts.fsync != FsyncPolicy::Never;
        for op in batch {
            let m = match op.record() {
                Record::Message(m)
                | Record::MessageOnce { message: m, .. }
                | Record::Forwarded { message: m, .. } => m,
                // Numbering starts again at 1.
                Record::DeleteTopic { topic } => {
                    self.max_seq.remove(topic);
                    continue;
                }
                _ => continue,
            };
            if m.id <= self.max_id && checked {
                self.fail(format!(
                    "message id {} handed out again (the log took {} before)",
                    m.id, self.max_id
                ));
            }
            self.max_id = self.max_id.max(m.id);
            let before = self.max_seq.get(m.topic).copied().unwrap_or(0);
            if m.seq <= before && checked {
                self.fail(format!(
                    "sequence number {} of {} handed out again (the log took {before} before)",
                    m.seq, m.topic
                ));
            }
            match self.max_seq.get_mut(m.topic) {
                Some(max) => *max = (*max).max(m.seq),
                None => _ = self.max_seq.insert(m.topic.to_owned(), m.seq),
            }
        }
    }

    /// What the disk says is durable now.
    pub fn learn_durability(&mut self) {
        let unsynced = self.disk.unsynced();
        if !unsynced.is_durable() {
            if self.opts.fsync == FsyncPolicy::Always {
                self.fail(format!(
                    "the log returned from a write under fsync = always with {unsynced:?}"
                ));
            }
            return;
        }
        self.durable = self.written;
        while let Some(&(token, what)) = self.awaited.front() {
            if token > self.durable {
                break;
            }
            self.awaited.pop_front();
            match what {
                Awaited::Publish(m) => {
                    if let Some(p) = self.published.get_mut(&m) {
                        p.durable = true;
                    }
                }
                Awaited::Ack(q, m) => {
                    self.queues[q].acks.insert(m, AckState::Durable);
                }
                Awaited::Subscribe(c) => {
                    self.clients[c].durable_session = true;
                    let q = self.clients[c].queue().expect("a subscriber");
                    self.queues[q].since.get_or_insert(self.step);
                }
            }
        }
    }

    /// What the server does when the log asks: a snapshot of everything handed
    /// to the store, then the queued records, then the compaction.
    fn compact(&mut self) -> Result<(), Stop> {
        let Some(snapshot) = self.sim.b.snapshot() else {
            return Ok(());
        };
        self.store_write()?;
        self.log(|| format!("compaction: {} records", snapshot.records.len()));
        let before = self.disk.ops();
        let result = self.wal().compact(&snapshot);
        if result.is_err() || self.disk.is_dead() {
            if self.disk.ops() > before {
                self.figures.cuts_in_compaction += 1;
            }
            return Err(Stop::Disk);
        }
        self.figures.compactions += 1;
        let full = self.wal().is_full();
        self.sim.b.set_store_full(full);
        // Whatever the policy: a compaction leaves everything durable.
        let unsynced = self.disk.unsynced();
        if !unsynced.is_durable() {
            self.fail(format!("a compaction left {unsynced:?}"));
        }
        self.learn_durability();
        Ok(())
    }
}
