//! Exactly-once (MQTT QoS 2), both ways. In: the packet id of each publish
//! admitted is remembered with its session until the client releases it, so a
//! resend is answered without being published twice. For persistent sessions
//! the ids are in the records (the message's own, `MessageOnce`, then
//! `OnceReleased`; `OnceReceived` in snapshots), and the answers wait until
//! they are stored: the publish is acknowledged only once the message and
//! its id are, and the release only once that is. Out: a delivery the client
//! received (PUBREC) is settled, and its packet id kept until the client
//! completes it (PUBCOMP); PUBREL, after which the client hands the message
//! over, goes out only once that (and the settling) is stored, and a resumed
//! session releases it again (`OnceDelivered`, `OnceCompleted`). Before
//! PUBREC, a delivery is sent again (after a reconnect or a restart) under
//! the packet id it went out under: its message's own, or one recorded
//! before it went out (`OncePid`: see `once_pid`).

use super::{Pending, Router};
use crate::broker::ConnId;
use crate::broker::command::Output;
use crate::broker::record::Record;
use crate::broker::slab::Key;

impl Router {
    /// Whether `pid` names an exactly-once publish of the session admitted
    /// and not released: then `id`'s answer is sent (once the original is
    /// stored) and the resend is not published again.
    pub(super) fn once_resend(&mut self, conn: ConnId, session: Key, pid: u16, id: u32) -> bool {
        if !self
            .sessions
            .get(session)
            .is_some_and(|s| s.once.contains(&pid))
        {
            return false;
        }
        self.stats.duplicates += 1;
        for p in self.pending.iter_mut() {
            if let Pending::Release {
                once: Some(o),
                acks,
                ..
            } = p
                && *o == (session, pid)
            {
                if !acks.contains(&(conn, id)) {
                    acks.push((conn, id));
                }
                return true;
            }
        }
        self.send(
            conn,
            Output::PubAck {
                id,
                seq: 0,
                duplicate: true,
            },
        );
        true
    }

    /// Remembers an admitted exactly-once publish (its message record,
    /// `MessageOnce`, holds the id for a restart).
    pub(super) fn once_received(&mut self, session: Key, pid: u16) {
        if let Some(s) = self.sessions.get_mut(session) {
            s.once.insert(pid);
        }
    }

    /// The client released an exactly-once publish: forget its id, and
    /// answer once that is stored.
    pub(super) fn release_once(&mut self, conn: ConnId, session: Key, pid: u16) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        let known = s.once.remove(&pid);
        if known && s.persistent {
            let client = s.client.clone();
            let token = self.emit(&Record::OnceReleased {
                client: &client,
                pid,
            });
            self.pending.push_back(Pending::Reply {
                token,
                conn: Some(conn),
                out: Output::Released { pid },
            });
        } else {
            self.send(conn, Output::Released { pid });
        }
    }

    /// The client received an exactly-once delivery: it is settled, and its
    /// packet id kept; PUBREL goes out once that is stored.
    pub(super) fn ack_once(
        &mut self,
        conn: ConnId,
        session: Key,
        tag: u64,
        pid: u16,
        now: crate::time::Instant,
    ) {
        // The record saying so settles it too, written before the settling's.
        let held = self
            .sessions
            .get(session)
            .and_then(|s| s.inflight.get(tag))
            .map(|f| (f.sub, f.msg.id));
        let delivery = held.and_then(|(k, msg)| Some((self.subs.get(k)?.id, msg)));
        let token = self.delivered_once(session, pid, Some(delivery.unwrap_or((0, 0))));
        self.settle(session, tag, super::Settle::Ack, now);
        self.send_once_stored(conn, token, Output::PubRel { pid });
    }

    /// Keeps (`received`: with the subscription id and message id it
    /// settles) or forgets (`None`: completed) the packet id of an
    /// exactly-once delivery; the token of its record, for a persistent
    /// session.
    pub(super) fn delivered_once(
        &mut self,
        session: Key,
        pid: u16,
        received: Option<(u32, u64)>,
    ) -> Option<u64> {
        let s = self.sessions.get_mut(session)?;
        let changed = match received {
            Some(_) => s.delivered_once.insert(pid),
            None => s.delivered_once.remove(&pid),
        };
        if !changed || !s.persistent {
            return None;
        }
        let client = s.client.clone();
        let record = match received {
            Some((sub, msg)) => Record::OnceDelivered {
                client: &client,
                pid,
                sub,
                msg,
            },
            None => Record::OnceCompleted {
                client: &client,
                pid,
            },
        };
        let token = self.emit(&record);
        if received.is_none() {
            self.once_freed(session, pid, token);
        }
        Some(token)
    }

    /// A resumed session's exactly-once deliveries not completed yet are
    /// released again.
    pub(super) fn release_again(&mut self, conn: ConnId, session: Key) {
        let pids: alloc::vec::Vec<u16> = match self.sessions.get(session) {
            Some(s) => s.delivered_once.iter().copied().collect(),
            None => return,
        };
        // Not before what says so is stored: a receipt recorded and not yet
        // stored would be forgotten by a crash, and the message sent again.
        let token = Some(self.store.last_token());
        for pid in pids {
            self.send_once_stored(conn, token, Output::PubRel { pid });
        }
    }
}
