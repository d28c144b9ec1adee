//! The retained slot of each topic (MQTT): one message per topic, replaced by
//! every retained publish, cleared by an empty one, sent to new non-group
//! subscriptions whose filter matches it (marked as retained). Independent of
//! mq's retention, which keeps many messages per topic for replay. Durable as
//! `Retain` / `Unretain` records (the whole message, so QoS 0 ones too).

use alloc::vec::Vec;

use super::Router;
use crate::broker::message::Msg;
use crate::broker::queue::Queued;
use crate::broker::record::Record;
use crate::broker::slab::Key;
use crate::broker::timers::Target;
use crate::time::Instant;
use crate::topic::{Filter, Topic};

impl Router {
    /// The record that keeps (or clears) `msg` as its topic's retained message.
    pub(super) fn retain_record(&mut self, msg: &Msg) -> u64 {
        if msg.payload_len == 0 {
            let topic = msg.topic.clone();
            self.emit(&Record::Unretain { topic: &topic })
        } else {
            let bytes = Record::Retain(msg.view()).encode_shared();
            self.emit_shared(bytes)
        }
    }

    /// A retained publish was released: it replaces its topic's retained
    /// message (an empty one clears it).
    pub(super) fn set_retained(&mut self, msg: &Msg) {
        let old = if msg.payload_len == 0 {
            self.retained.remove(&msg.topic)
        } else {
            self.retained.insert(msg.topic.clone(), msg.clone())
        };
        self.stats.current_retained_slots = self.retained.len() as u64;
        drop(old);
    }

    /// Queues for a new subscription the retained messages its filter
    /// matches.
    pub(super) fn send_retained(&mut self, sub: Key, filter: &str, now: Instant) {
        let Ok(filter) = Filter::new(filter) else {
            return;
        };
        let mut found: Vec<Msg> = self
            .retained
            .iter()
            .filter(|(t, m)| !m.is_expired(now) && Topic::new(t).is_ok_and(|t| filter.matches(t)))
            .map(|(_, m)| m.clone())
            .collect();
        if found.is_empty() {
            return;
        }
        found.sort_by_key(|m| m.id);
        let Some(s) = self.subs.get_mut(sub) else {
            return;
        };
        for msg in found {
            s.queue.push_back(Queued {
                msg,
                attempt: 0,
                avoid: None,
                retained: true,
            });
            self.stats.current_queued += 1;
        }
        self.pump(Target::Sub(sub), now);
    }

    /// Restores a retained slot from its record.
    pub(super) fn restore_retained(&mut self, msg: Msg) {
        self.set_retained(&msg);
    }

    /// The retained slots, for a snapshot.
    pub(super) fn retained_records(&self, out: &mut Vec<alloc::sync::Arc<[u8]>>) {
        for m in self.retained.values() {
            out.push(Record::Retain(m.view()).encode_shared());
        }
    }
}
