//! The faults the simulation injects: cut links, a compacting store, broker
//! crashes that lose what was not durable, noise on serial lines.

use super::*;

impl Sim {
    /// Cuts a link: both ends learn it is gone.
    pub(super) fn drop_link(&mut self, id: usize) {
        if let Some(link) = self.links.remove(&id) {
            self.drops += 1;
            self.log(|| format!("link {id} (client {}) dropped", link.client));
            self.broker.handle_closed(link.conn, self.now);
            let c = &mut self.clients[link.client];
            c.link = None;
            c.session.handle_disconnected(self.now);
        }
    }

    /// What a compacting store does: the broker's snapshot replaces the log. The
    /// snapshot covers every record emitted so far, so writing it (durably) makes
    /// all of them persisted.
    pub(super) fn compact(&mut self) {
        // A snapshot covers what the store was handed: hand everything out first.
        self.drain();
        let Some(snap) = self.broker.snapshot() else {
            return;
        };
        self.compactions += 1;
        let before = self.store.durable.len() + self.store.volatile.len();
        self.log(|| {
            format!(
                "compaction: {} records replace {before}",
                snap.records.len()
            )
        });
        self.store.durable = snap.records.iter().map(|r| r.to_vec()).collect();
        self.store
            .volatile
            .retain(|(token, _, _)| *token > snap.upto);
        self.broker.handle_persisted(snap.upto, self.now);
    }

    pub(super) fn restart_broker(&mut self) {
        self.restarts += 1;
        let lost = self.store.volatile.len();
        self.log(|| format!("broker crash: {lost} records not yet durable are lost"));
        self.store.volatile.clear();
        for id in self.links.keys().copied().collect::<Vec<_>>() {
            if let Some(link) = self.links.remove(&id) {
                let c = &mut self.clients[link.client];
                c.link = None;
                c.session.handle_disconnected(self.now);
            }
        }
        self.missed_deadlines += self.broker.stats().ack_timeouts;
        self.broker = Broker::new(self.broker_cfg.clone());
        if self.trace {
            for r in &self.store.durable {
                println!(
                    "    restore {:?}",
                    mq_core::broker::Record::decode(r).map(|r| match r {
                        mq_core::broker::Record::Message(m) => format!(
                            "Message id {} {} seq {} payload {:?}",
                            m.id, m.topic, m.seq, m.payload
                        ),
                        other => format!("{other:?}"),
                    })
                );
            }
        }
        for r in &self.store.durable {
            self.broker
                .restore(self.now, r)
                .expect("stored records restore");
        }
    }

    /// Noise on a serial line: a chunk in flight loses a byte or has one
    /// flipped. The frame it belonged to (or the two a lost delimiter merges)
    /// fails its CRC; the receiver drops it, resynchronises at the next
    /// delimiter, and ends the connection if one is open (the serial-line
    /// rules), so nothing after the damaged frame overtakes it. A frame lost
    /// whole with its delimiter would not be noticed this way: the framing has
    /// no frame counter, so that is not simulated.
    pub(super) fn damage(&mut self, id: usize) {
        let up = self.rng.chance(500_000);
        let pick = self.rng.next();
        let truncate = self.rng.chance(300_000);
        let Some(l) = self.links.get_mut(&id) else {
            return;
        };
        let pipe = if up { &mut l.up } else { &mut l.down };
        if pipe.chunks.is_empty() {
            return;
        }
        let k = (pick % pipe.chunks.len() as u64) as usize;
        let chunk = &mut pipe.chunks[k].1;
        let at = (pick >> 32) as usize % chunk.len().max(1);
        if truncate {
            if at < chunk.len() {
                chunk.remove(at);
            }
        } else if let Some(b) = chunk.get_mut(at) {
            *b ^= 0x5a;
        }
        self.noise += 1;
        self.log(|| format!("noise on line {id} ({})", if up { "up" } else { "down" }));
    }
}
