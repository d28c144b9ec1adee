//! Releasing admitted messages in order, once their records are stored:
//! publishers answered, messages kept for replay and offered to their queues.

use super::retention::SWEEP_INTERVAL;
use super::{Pending, Router};
use crate::broker::command::Output;
use crate::broker::message::Msg;
use crate::broker::queue::{Offer, Queued};
use crate::broker::timers::Target;
use crate::time::Instant;

impl Router {
    /// Releases, in order, every pending entry whose record is persisted.
    pub(super) fn release(&mut self, now: Instant) {
        while let Some(front) = self.pending.front() {
            if !self.store.is_persisted(front.token()) {
                break;
            }
            match self.pending.pop_front().expect("front exists") {
                Pending::Reply { conn, out, .. } => {
                    if let Some(conn) = conn {
                        self.send(conn, out);
                    }
                }
                Pending::Wake { conn, .. } => self.links.wake(conn),
                Pending::Release {
                    msg,
                    slot,
                    targets,
                    acks,
                    retain,
                    cut,
                    ..
                } => {
                    for &(conn, id) in &acks {
                        let seq = msg.seq;
                        self.send(
                            conn,
                            Output::PubAck {
                                id,
                                seq,
                                duplicate: false,
                            },
                        );
                    }
                    if !cut {
                        self.retain(&msg, slot, now);
                    }
                    if retain {
                        self.set_retained(&msg);
                    }
                    for &t in &targets {
                        if let Some(q) = self.queue_mut(t) {
                            q.unreserve(msg.payload_len);
                        }
                        self.enqueue(t, msg.clone(), now);
                    }
                    self.spare_targets.give(targets);
                    self.spare_acks.give(acks);
                }
            }
        }
    }

    /// The store made every record up to `token` durable.
    pub(crate) fn persisted(&mut self, token: u64, now: Instant) {
        self.store.mark_persisted(token);
        self.release(now);
    }

    /// Holds room in each target queue for an admitted message until `release`
    /// offers it.
    pub(super) fn reserve(&mut self, targets: &[Target], size: usize) {
        for &t in targets {
            if let Some(q) = self.queue_mut(t) {
                q.reserve(size);
            }
        }
    }

    fn enqueue(&mut self, target: Target, msg: Msg, now: Instant) {
        let needs_sweep = msg.expires_at.is_some();
        let Some(queue) = self.queue_mut(target) else {
            return;
        };
        match queue.offer(Queued {
            msg,
            attempt: 0,
            avoid: None,
            retained: false,
        }) {
            Offer::Accepted => self.stats.current_queued += 1,
            Offer::DroppedOldest(old) => {
                self.stats.dropped += 1;
                self.finish(target, &old.msg);
            }
            Offer::Full(q) => {
                // Room was reserved at admission; only a queue whose limits
                // shrank since (a restart with a new configuration) drops it.
                self.stats.dropped += 1;
                self.finish(target, &q.msg);
            }
        }
        if needs_sweep {
            self.schedule_sweep(now + SWEEP_INTERVAL);
        }
        self.pump(target, now);
    }
}
