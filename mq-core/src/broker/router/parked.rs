//! Publishers held: a publish waits for room in its full `Block` or `Pace`
//! queues, or for the catalog's first listing, until its deadline; the
//! connection's input waits with it.

use super::Router;
use crate::broker::ConnId;
use crate::broker::command::{Outcome, OwnedPublish, Publish};
use crate::broker::timers::Timer;
use crate::time::Instant;

/// A publish held until its queues have room (or the catalog's first
/// listing came), or its deadline.
pub(crate) struct Parked {
    publish: OwnedPublish,
    holds: Holds,
    timer: Option<Instant>,
}

/// The deadlines of a held publish, one a reason it is held: the wait for
/// the catalog's first listing and the wait for room in a full queue each
/// have their whole time, so neither cuts the other short or lengthens it.
#[derive(Clone, Copy, Default)]
pub(super) struct Holds {
    /// Until the catalog's first listing (`Config::await_catalog`).
    pub(super) catalog: Option<Instant>,
    /// Until its full `Block` or `Pace` queues have room.
    pub(super) queue: Option<Instant>,
}

impl Router {
    /// Holds publish `p` from `conn` until `deadline` (see [`Holds`]); the
    /// connection's input waits meanwhile.
    pub(super) fn park(
        &mut self,
        conn: ConnId,
        p: &Publish<'_>,
        holds: Holds,
        deadline: Instant,
    ) -> Outcome {
        let mut parked = Parked {
            publish: OwnedPublish::new(p, p.payload.to_vec()),
            holds,
            timer: None,
        };
        self.timers
            .set(&mut parked.timer, Timer::Parked(conn), deadline);
        self.parked.push((conn, parked));
        self.links.set_held(conn, true);
        Outcome::Held(deadline)
    }

    /// Offers the publish held for `conn` again: its deadline passed (`fired`:
    /// its timer fired, so the slot is stale).
    pub(super) fn retry_parked(&mut self, conn: ConnId, now: Instant, fired: bool) {
        let Some(i) = self.parked.iter().position(|(c, _)| *c == conn) else {
            return;
        };
        let (_, mut parked) = self.parked.remove(i);
        if fired {
            parked.timer = None;
        }
        self.offer_parked(conn, parked, now);
    }

    /// Offers every held publish again, in the order they were held: a
    /// message left a queue. Runs as a loop, not a recursion, when admitting
    /// one makes room for the next.
    /// Inline: every delivery calls it, and nearly always nothing is held.
    #[inline]
    pub(super) fn retry_all_parked(&mut self, now: Instant) {
        if !self.parked.is_empty() {
            self.retry_each_parked(now);
        }
    }

    fn retry_each_parked(&mut self, now: Instant) {
        if self.retrying {
            self.retry_again = true;
            return;
        }
        self.retrying = true;
        loop {
            self.retry_again = false;
            for (conn, parked) in core::mem::take(&mut self.parked) {
                self.offer_parked(conn, parked, now);
            }
            if !self.retry_again || self.parked.is_empty() {
                break;
            }
        }
        self.retrying = false;
    }

    /// Admits a held publish, refuses it (its deadline passed), or holds it
    /// again at the back of the line.
    fn offer_parked(&mut self, conn: ConnId, mut parked: Parked, now: Instant) {
        let admitted = match self.links.session(conn) {
            None => None,
            Some(session) => {
                let publish = parked.publish.as_publish();
                self.admit(Some((conn, session)), now, &publish, &mut parked.holds)
            }
        };
        match admitted {
            Some(deadline) => {
                self.timers
                    .set(&mut parked.timer, Timer::Parked(conn), deadline);
                self.parked.push((conn, parked));
            }
            None => {
                self.timers.stop(&mut parked.timer, Timer::Parked(conn));
                self.links.set_held(conn, false);
            }
        }
    }

    /// Forgets the publish held for `conn` (it went away).
    pub(super) fn unpark(&mut self, conn: ConnId) {
        if let Some(i) = self.parked.iter().position(|(c, _)| *c == conn) {
            let (_, mut parked) = self.parked.remove(i);
            self.timers.stop(&mut parked.timer, Timer::Parked(conn));
            self.links.set_held(conn, false);
        }
    }
}
