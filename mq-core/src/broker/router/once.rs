//! Exactly-once publishes (MQTT QoS 2): the packet id of each one admitted is
//! remembered with its session until the client releases it, so a resend is
//! answered without being published twice. For persistent sessions the ids
//! are records (`OnceReceived`, `OnceReleased`), and the answers wait until
//! they are stored: the publish is acknowledged only once both the message
//! and its id are, and the release only once that is.

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
}
