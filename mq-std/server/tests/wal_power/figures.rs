//! What the seeds did, summed for the report.

use std::time::Duration;

use mq_server::wal::FsyncPolicy;

/// What a seed did, summed over seeds for the report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Figures {
    pub seeds: u64,
    pub power_cuts: u64,
    pub process_crashes: u64,
    /// Power cuts that came in the middle of a compaction or a recovery.
    pub cuts_in_compaction: u64,
    pub cuts_in_recovery: u64,
    pub compactions: u64,
    pub records_recovered: u64,
    /// (queue, message) pairs checked after a power cut: a durable QoS 1
    /// message owed to the queue was delivered again or had been acked.
    pub owed_checked: u64,
    /// Of those, messages whose publisher had its acknowledgement.
    pub acked_checked: u64,
    /// Durable acks checked not to be followed by a delivery.
    pub durable_acks_checked: u64,
    /// Acknowledged publishes whose record was not yet durable at a power cut
    /// (none under `always`).
    pub acked_at_risk: u64,
    /// Recoveries that reported damage (lost records, missing files) rather
    /// than a torn tail.
    pub damage_reported: u64,
    /// QoS 1 publishes refused (the log at its disk limit).
    pub refused: u64,
}

impl Figures {
    pub fn add(&mut self, o: &Figures) {
        self.seeds += o.seeds;
        self.power_cuts += o.power_cuts;
        self.process_crashes += o.process_crashes;
        self.cuts_in_compaction += o.cuts_in_compaction;
        self.cuts_in_recovery += o.cuts_in_recovery;
        self.compactions += o.compactions;
        self.records_recovered += o.records_recovered;
        self.owed_checked += o.owed_checked;
        self.acked_checked += o.acked_checked;
        self.durable_acks_checked += o.durable_acks_checked;
        self.acked_at_risk += o.acked_at_risk;
        self.damage_reported += o.damage_reported;
        self.refused += o.refused;
    }
}

pub fn report(fsync: FsyncPolicy, f: &Figures, took: Duration) {
    println!(
        "fsync {fsync}: {} seeds, {} power cuts ({} in a compaction, {} in a recovery), \
         {} process crashes, \
         {} compactions, {} records recovered, {} owed messages checked ({} acknowledged), \
         {} durable acks checked, {} acknowledged publishes not yet durable at a cut, \
         {} recoveries reporting damage, {} publishes refused at the disk limit, in {:.1} s",
        f.seeds,
        f.power_cuts,
        f.cuts_in_compaction,
        f.cuts_in_recovery,
        f.process_crashes,
        f.compactions,
        f.records_recovered,
        f.owed_checked,
        f.acked_checked,
        f.durable_acks_checked,
        f.acked_at_risk,
        f.damage_reported,
        f.refused,
        took.as_secs_f64()
    );
}
