//! The router's view of each connection: which session it carries, and the
//! [`Output`]s waiting for its codec to write them.
//!
//! The queue of a connection is bounded by `Config::max_pending_frames`: once
//! it is full the router stops delivering to it and the broker stops reading
//! from it, until the codec has written enough. Connections with something to
//! write take turns through the `ready` list.

use alloc::collections::VecDeque;
use alloc::string::String;

use super::command::Output;
use super::slab::Key;
use super::{ConnId, Map};

pub(crate) struct Link {
    /// The session attached to this connection.
    pub session: Option<Key>,
    pub out: VecDeque<Output>,
    /// Listed in `ready`.
    in_ready: bool,
    /// The adapter cannot take bytes for it now (`pause_transmit`).
    pub paused: bool,
    /// The connection is ending: nothing more is queued for it.
    pub closing: bool,
    /// Its publish waits for room in a full `Block` queue: its input waits too.
    held: bool,
    /// The identity the adapter verified for it (a TLS client certificate's).
    pub identity: Option<String>,
    /// The token its session was opened with, kept to check it again when
    /// auth changes.
    pub token: Option<String>,
}

pub(crate) struct Links {
    map: Map<ConnId, Link>,
    ready: VecDeque<ConnId>,
    max_pending: usize,
}

impl Links {
    pub(crate) fn new(max_pending: usize) -> Self {
        Links {
            map: Map::default(),
            ready: VecDeque::new(),
            max_pending,
        }
    }

    pub(crate) fn open(&mut self, conn: ConnId) {
        self.map.insert(
            conn,
            Link {
                session: None,
                out: VecDeque::new(),
                in_ready: false,
                paused: false,
                closing: false,
                held: false,
                identity: None,
                token: None,
            },
        );
    }

    pub(crate) fn remove(&mut self, conn: ConnId) -> Option<Link> {
        self.map.remove(&conn)
    }

    pub(crate) fn get(&self, conn: ConnId) -> Option<&Link> {
        self.map.get(&conn)
    }

    pub(crate) fn get_mut(&mut self, conn: ConnId) -> Option<&mut Link> {
        self.map.get_mut(&conn)
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.map.keys().copied()
    }

    /// The session a live connection carries.
    pub(crate) fn session(&self, conn: ConnId) -> Option<Key> {
        self.map
            .get(&conn)
            .filter(|l| !l.closing)
            .and_then(|l| l.session)
    }

    /// Queues `out` for the connection, unless it is gone or ending.
    pub(crate) fn push(&mut self, conn: ConnId, out: Output) {
        if let Some(link) = self.map.get_mut(&conn)
            && !link.closing
        {
            link.out.push_back(out);
            Self::list(&mut self.ready, conn, link);
        }
    }

    /// Lists the connection for `poll_transmit` (its codec has frames too).
    pub(crate) fn wake(&mut self, conn: ConnId) {
        if let Some(link) = self.map.get_mut(&conn) {
            Self::list(&mut self.ready, conn, link);
        }
    }

    fn list(ready: &mut VecDeque<ConnId>, conn: ConnId, link: &mut Link) {
        if !link.in_ready && !link.paused {
            link.in_ready = true;
            ready.push_back(conn);
        }
    }

    /// The next connection with something to write, taken off the list (the
    /// caller lists it again with `wake` when more remains).
    pub(crate) fn next_ready(&mut self) -> Option<ConnId> {
        while let Some(conn) = self.ready.pop_front() {
            if let Some(link) = self.map.get_mut(&conn) {
                link.in_ready = false;
                if !link.paused {
                    return Some(conn);
                }
            }
        }
        None
    }

    /// The queue is at its bound.
    pub(crate) fn backed_up(&self, conn: ConnId) -> bool {
        self.map
            .get(&conn)
            .is_some_and(|l| !l.closing && l.out.len() >= self.max_pending)
    }

    /// The connection's input must wait: its publish is held, or its queue is
    /// at its bound.
    pub(crate) fn input_blocked(&self, conn: ConnId) -> bool {
        self.map
            .get(&conn)
            .is_some_and(|l| !l.closing && (l.held || l.out.len() >= self.max_pending))
    }

    pub(crate) fn set_held(&mut self, conn: ConnId, held: bool) {
        if let Some(link) = self.map.get_mut(&conn) {
            link.held = held;
        }
    }

    /// More may be queued for the connection (a delivery, say).
    pub(crate) fn has_room(&self, conn: ConnId) -> bool {
        self.map
            .get(&conn)
            .is_some_and(|l| !l.closing && l.out.len() < self.max_pending)
    }

    pub(crate) fn set_paused(&mut self, conn: ConnId, paused: bool) {
        if let Some(link) = self.map.get_mut(&conn) {
            link.paused = paused;
            if !paused {
                Self::list(&mut self.ready, conn, link);
            }
        }
    }
}
