//! The power cut, the recovery into a fresh broker, and the checks after it.

use std::collections::BTreeSet;
use std::time::Duration;

use mq_core::broker::Broker;
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
        let crash = self.disk.crash();
        self.log(|| format!("POWER CUT: {crash}; acknowledged, not durable: {at_risk:?}"));
        // Its handles are dead: dropping it writes nothing.
        self.wal = None;
        self.batch.clear();
        for c in &mut self.clients {
            c.conn = None;
            c.unacked.clear();
            c.in_flight.clear();
        }
        self.open_log();
        self.check(&at_risk, cut_at);
    }

    /// Opens the log (through power cuts in the middle of recovery, now and
    /// then) and rebuilds a fresh broker from it. The open must succeed, and
    /// every record must restore.
    pub fn open_log(&mut self) {
        let mut cuts = 0;
        let mut wal = loop {
            if cuts < 3 && self.figures.power_cuts > 0 && self.rng.chance(1, 6) {
                let ops = self.rng.below(3);
                self.log(|| format!("the power will go after {ops} disk operations"));
                self.disk.fail_after(ops);
            }
            let opened = Wal::open_in(self.disk.clone(), &self.dir, self.opts.clone());
            if self.disk.is_dead() {
                drop(opened);
                cuts += 1;
                self.figures.cuts_in_recovery += 1;
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
        self.wal = Some(wal);
        self.written = 0;
        self.durable = 0;
    }

    /// Every subscriber comes back: what a durable queue was owed must be
    /// delivered (or have been acked), nothing whose ack was durable may be;
    /// acknowledged publishes that were not yet durable may be lost only as
    /// the fsync policy allows.
    fn check(&mut self, at_risk: &[Msg], cut_at: Duration) {
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
        match self.opts.fsync {
            FsyncPolicy::Always if !lost.is_empty() => self.fail(format!(
                "acknowledged under fsync = always and lost: {lost:?}"
            )),
            FsyncPolicy::EveryRecords(n) if lost.len() as u64 >= n => self.fail(format!(
                "{} acknowledged publishes lost under fsync every {n} records: {lost:?}",
                lost.len()
            )),
            FsyncPolicy::Interval(d) => {
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
