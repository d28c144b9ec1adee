//! Exactly-once (MQTT QoS 2), both ways. In: the packet id of each publish
//! admitted is remembered with its session until the client releases it, so a
//! resend is answered without being published twice. For persistent sessions
//! the ids are records (`OnceReceived`, `OnceReleased`), and the answers wait
//! until they are stored: the publish is acknowledged only once both the
//! message and its id are, and the release only once that is. Out: a
//! delivery the client received (PUBREC) is settled, and its packet id kept
//! until the client completes it (PUBCOMP), so that a resumed session
//! releases it again (`OnceDelivered`, `OnceCompleted`).

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

    /// Remembers an admitted exactly-once publish; returns the token of its
    /// record for a persistent session.
    pub(super) fn once_received(&mut self, session: Key, pid: u16) -> Option<u64> {
        let s = self.sessions.get_mut(session)?;
        s.once.insert(pid);
        if !s.persistent {
            return None;
        }
        let client = s.client.clone();
        Some(self.emit(&Record::OnceReceived {
            client: &client,
            pid,
        }))
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

    /// Keeps (`received`) or forgets (completed) the packet id of an
    /// exactly-once delivery.
    pub(super) fn delivered_once(&mut self, session: Key, pid: u16, received: bool) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        let changed = match received {
            true => s.delivered_once.insert(pid),
            false => s.delivered_once.remove(&pid),
        };
        if !changed || !s.persistent {
            return;
        }
        let client = s.client.clone();
        let record = match received {
            true => Record::OnceDelivered {
                client: &client,
                pid,
            },
            false => Record::OnceCompleted {
                client: &client,
                pid,
            },
        };
        self.emit(&record);
    }

    /// A resumed session's exactly-once deliveries not completed yet are
    /// released again.
    pub(super) fn release_again(&mut self, conn: ConnId, session: Key) {
        let pids: alloc::vec::Vec<u16> = match self.sessions.get(session) {
            Some(s) => s.delivered_once.iter().copied().collect(),
            None => return,
        };
        for pid in pids {
            self.send(conn, Output::PubRel { pid });
        }
    }
}
