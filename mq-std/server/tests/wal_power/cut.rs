//! The power cut, the recovery into a fresh broker, and the checks after it.

use std::collections::BTreeSet;
use std::time::Duration;

use mq_core::broker::{Broker, Record};
use mq_server::store::Store;
use mq_server::wal::{FsyncPolicy, Wal};

use crate::model::*;
use crate::world::World;

/// The client that connects only to look (see [`cast`]).
const AUDIT: usize = 6;

impl World {
    /// The power goes: the disk keeps what it keeps, the broker's process is
    /// gone with its connections; the clients live on. Then the log is opened
    /// again (perhaps through more power cuts in the middle of its recovery),
    /// a fresh broker is rebuilt from it, and every subscriber comes back to
    /// check what it finds.
    pub fn power_cut(&mut self) {
        self.figures.power_cuts += 1;
        let cut_at = self.elapsed;
        let mut at_risk = self.settle_awaited();
        let crash = self.disk.crash();
        self.log(|| format!("POWER CUT: {crash}; acknowledged, not durable: {at_risk:?}"));
        self.restart();
        at_risk.extend(self.open_log().unwrap_or_default());
        self.check(&at_risk, Some(cut_at));
    }

    /// The process dies, the power stays: nothing written is lost, whatever
    /// the policy. Records not yet known durable stay in the operating
    /// system's cache, and are durable at the disk's next durable point.
    pub fn process_crash(&mut self) {
        self.figures.process_crashes += 1;
        let cut_at = self.elapsed;
        let at_risk: Vec<Msg> = self
            .awaited
            .iter()
            .filter_map(|(_, what)| match what {
                Awaited::Publish(m) if self.published[m].acked_at.is_some() => Some(*m),
                _ => None,
            })
            .collect();
        // What was written is in the cache; what waited for the store died
        // with the process (or is in the cache in part: unknown).
        let written = self.written;
        let (kept, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut self.awaited)
            .into_iter()
            .partition(|(token, _)| *token <= written);
        self.awaited = gone.into();
        self.settle_awaited();
        self.awaited = kept.into_iter().map(|(_, what)| (0, what)).collect();
        self.disk.process_crash();
        self.log(|| "PROCESS CRASH".into());
        self.restart();
        match self.open_log() {
            None => self.check(&at_risk, None),
            // A power cut in the middle of the recovery makes it a power cut.
            Some(at_risk) => self.check(&at_risk, Some(cut_at)),
        }
    }

    /// A power cut: what the test waited to learn is settled. Returns the
    /// acknowledged publishes whose records were not known durable.
    fn settle_awaited(&mut self) -> Vec<Msg> {
        let mut at_risk = Vec::new();
        for (_, what) in std::mem::take(&mut self.awaited) {
            match what {
                Awaited::Publish(m) => {
                    if self.published[&m].acked_at.is_some() {
                        at_risk.push(m);
                    }
                }
                Awaited::Ack(q, m) => {
                    if self.queues[q].acks.get(&m) == Some(&AckState::Pending) {
                        self.queues[q].acks.insert(m, AckState::Uncertain);
                    }
                }
                Awaited::Subscribe(_) => {}
            }
        }
        self.figures.acked_at_risk += at_risk.len() as u64;
        at_risk
    }

    /// The broker's process is gone: its log handle, its connections, the
    /// records it had not handed to the store.
    fn restart(&mut self) {
        // Its handles are dead: dropping it writes nothing.
        self.wal = None;
        self.batch.clear();
        for c in &mut self.clients {
            c.conn = None;
            c.unacked.clear();
        }
    }

    /// Opens the log (through power cuts in the middle of recovery, now and
    /// then) and rebuilds a fresh broker from it. The open must succeed, and
    /// every record must restore. When the power went during the recovery,
    /// returns the acknowledged publishes that put at risk.
    pub fn open_log(&mut self) -> Option<Vec<Msg>> {
        let mut cut: Option<Vec<Msg>> = None;
        let mut cuts = 0;
        let mut wal = loop {
            let restart = self.figures.power_cuts + self.figures.process_crashes > 0;
            if restart && cuts < 3 && self.rng.chance(1, 6) {
                cuts += 1;
                let ops = self.rng.below(3);
                self.log(|| format!("the power will go after {ops} disk operations"));
                self.disk.fail_after(ops);
            }
            let opened = Wal::open_in(self.disk.clone(), &self.dir, self.opts.clone());
            if self.disk.is_dead() {
                drop(opened);
                self.figures.cuts_in_recovery += 1;
                let at_risk = self.settle_awaited();
                cut.get_or_insert_default().extend(at_risk);
                let crash = self.disk.crash();
                self.log(|| format!("POWER CUT during recovery: {crash}"));
                continue;
            }
            match opened {
                Ok(wal) => break wal,
                Err(e) => self.fail(format!("the log does not open: {e}")),
            }
        };
        let records = wal.load().expect("load");
        let report = wal.recovery().clone();
        self.log(|| format!("recovered {} records: {report:?}", records.len()));
        self.figures.records_recovered += records.len() as u64;
        if report.corrupt_records > 0
            || report.skipped_bytes > report.torn_tail_bytes
            || !report.missing_segments.is_empty()
            || !report.damaged_snapshots.is_empty()
        {
            self.figures.damage_reported += 1;
            // Under `always` every record written before the last sync is
            // durable and the disk damages nothing durable: only a torn tail
            // is to be expected.
            if self.opts.fsync != FsyncPolicy::Never {
                self.fail(format!(
                    "recovery reports damage after a power cut: {report:?}"
                ));
            }
        }
        let now = self.sim.now;
        self.sim.b = Broker::new(self.cfg.clone());
        self.sim.inbox.clear();
        for (i, r) in records.iter().enumerate() {
            if let Err(e) = self.sim.b.restore(now, r) {
                self.fail(format!("recovered record {i} does not restore: {e}"));
            }
        }
        if let Err(e) = self.sim.b.check_invariants() {
            self.fail(format!("the restored broker is inconsistent: {e}"));
        }
        self.learn_recovered(&records);
        self.sim.b.set_store_full(wal.is_full());
        self.wal = Some(wal);
        self.written = 0;
        self.durable = 0;
        // Under `always`, what the broker was rebuilt from must be durable
        // before it acknowledges anything.
        self.learn_durability();
        cut
    }

    /// What the log recovered is on disk: when the disk is durable now (after
    /// a power cut it is, but for what the recovery did), so are the messages
    /// and subscriptions it holds, whatever the test knew before.
    fn learn_recovered(&mut self, records: &[Vec<u8>]) {
        if !self.disk.unsynced().is_durable() {
            return;
        }
        for r in records {
            match Record::decode(r).expect("it restored") {
                Record::Message(m) => {
                    if let Some(p) = self.published.get_mut(&msg_of(m.payload)) {
                        p.durable = true;
                    }
                }
                Record::Subscribe { client, .. } => {
                    if let Some(c) = self.clients.iter().position(|c| c.name == client) {
                        self.clients[c].durable_session = true;
                        let q = self.clients[c].queue().expect("a subscriber");
                        self.queues[q].since.get_or_insert(self.step);
                    }
                }
                _ => {}
            }
        }
    }

    /// Every subscriber comes back: what a durable queue was owed must be
    /// delivered (or have been acked), nothing whose ack was durable may be;
    /// acknowledged publishes that were not yet durable may be lost only as
    /// the fsync policy allows.
    fn check(&mut self, at_risk: &[Msg], cut_at: Option<Duration>) {
        self.burst = Some(vec![BTreeSet::new(); self.queues.len()]);
        for c in 0..self.clients.len() {
            if self.clients[c].queue().is_some() {
                self.connect(c);
            }
        }
        self.drain();
        let burst = self.burst.take().expect("set above");
        for (q, queue) in self.queues.iter().enumerate() {
            for (m, p) in &self.published {
                if !queue.owes(p) {
                    continue;
                }
                self.figures.owed_checked += 1;
                self.figures.acked_checked += u64::from(p.acked_at.is_some());
                if !burst[q].contains(m) && !queue.acks.contains_key(m) {
                    self.fail(format!(
                        "{m:?} on {} (durable{}) was owed to {} and is lost",
                        p.topic,
                        if p.acked_at.is_some() {
                            ", acknowledged"
                        } else {
                            ""
                        },
                        queue.name
                    ));
                }
            }
            let durable_acks = queue.acks.values().filter(|a| **a == AckState::Durable);
            self.figures.durable_acks_checked += durable_acks.count() as u64;
        }

        // Acknowledged but not yet durable: what did the power cut take?
        let audit = &self.queues[AUDIT_QUEUE];
        let lost: Vec<Msg> = at_risk
            .iter()
            .copied()
            .filter(|m| {
                audit.since.is_some_and(|s| s < self.published[m].sent)
                    && !burst[AUDIT_QUEUE].contains(m)
                    && !audit.acks.contains_key(m)
            })
            .collect();
        if !lost.is_empty() {
            self.log(|| format!("acknowledged and lost: {lost:?}"));
        }
        match (cut_at, self.opts.fsync) {
            (None, _) if !lost.is_empty() => self.fail(format!(
                "acknowledged and lost to a process crash: {lost:?}"
            )),
            (Some(_), FsyncPolicy::Always) if !lost.is_empty() => self.fail(format!(
                "acknowledged under fsync = always and lost: {lost:?}"
            )),
            (Some(_), FsyncPolicy::EveryRecords(n)) if lost.len() as u64 >= n => {
                self.fail(format!(
                    "{} acknowledged publishes lost under fsync every {n} records: {lost:?}",
                    lost.len()
                ))
            }
            (Some(cut_at), FsyncPolicy::Interval(d)) => {
                for m in &lost {
                    let acked = self.published[m].acked_at.expect("acknowledged");
                    if acked + d < cut_at {
                        self.fail(format!(
                            "{m:?} acknowledged at {acked:?}, more than {d:?} before the \
                             power cut at {cut_at:?}, and lost"
                        ));
                    }
                }
            }
            _ => {}
        }

        // The auditor acks about half of what it saw and leaves; the others
        // ack some, and stay or go.
        for c in 0..self.clients.len() {
            if self.clients[c].queue().is_none() {
                continue;
            }
            self.ack(c, 5);
            if c == AUDIT || self.rng.chance(1, 2) {
                self.disconnect(c);
            }
        }
        self.drain();
    }
}

/// The auditor's queue.
const AUDIT_QUEUE: usize = 3;
