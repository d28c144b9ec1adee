//! The subscription table: what the client asked for, what the broker confirmed,
//! what must be (re)sent, and the credit owed back for QoS 0 deliveries.

use heapless::{String, Vec};

use crate::wire::{QoS, Start};

/// Longest subscription filter the session stores, in bytes.
pub const MAX_FILTER_LEN: usize = 128;

/// Longest group name the session stores, in bytes.
pub const MAX_GROUP_LEN: usize = 64;

/// A frame a subscription waits to transmit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outgoing {
    None,
    Subscribe,
    Unsubscribe,
}

/// What an application's subscription asks for. The session's reply
/// subscription stores none: its filter is the reply topic, which the session
/// derives from its configuration when it needs it.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub filter: String<MAX_FILTER_LEN>,
    pub group: Option<String<MAX_GROUP_LEN>>,
}

/// One subscription's state.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub id: u32,
    pub qos: QoS,
    /// Where the next `Subscribe` frame starts.
    pub start: Start,
    /// Credit window: what the broker was told the client can hold.
    pub window: u32,
    /// QoS 0 deliveries consumed whose credit has not been returned.
    pub owed: u32,
    /// Extra credit granted by the application, not sent yet.
    pub grant: u32,
    /// A `Subscribe` went out and the broker may know the subscription.
    pub sent: bool,
    /// `SubAck` received (and `Subscribed` emitted).
    pub acked: bool,
    /// The application unsubscribed; removed at `UnsubAck`.
    pub unsubscribing: bool,
    pub outgoing: Outgoing,
}

impl Subscription {
    /// What to send again after `Welcome` (see [`Subscriptions::on_welcome`]).
    // Out of line on devices: inlined into `on_welcome`'s loop over the
    // table and the reply subscription it was 64 bytes more (the TCP
    // build; the serial build 8 less). Without the chain, one loop over the
    // table and the reply subscription apart, it was 96 bytes less in the
    // TCP build but 156 more in the serial one.
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    fn again(&mut self, session_present: bool) {
        if session_present {
            // Re-assert every subscription: the broker holds a resumed
            // session's deliveries until the client says it still wants them.
            self.outgoing = if self.unsubscribing {
                Outgoing::Unsubscribe
            } else {
                Outgoing::Subscribe
            };
        } else {
            if self.acked {
                self.start = Start::Cursor;
            }
            // The broker knows nothing of it until it is sent again.
            self.sent = false;
            self.owed = 0;
            self.grant = 0;
            self.outgoing = Outgoing::Subscribe;
        }
    }

    /// A new subscription, its `Subscribe` to be sent.
    pub(crate) fn new(id: u32, qos: QoS, start: Start, window: u32) -> Self {
        Subscription {
            id,
            qos,
            start,
            window,
            owed: 0,
            grant: 0,
            sent: false,
            acked: false,
            unsubscribing: false,
            outgoing: Outgoing::Subscribe,
        }
    }

    /// Credit to return now: owed QoS 0 credit once it reaches half the window,
    /// plus any grant.
    pub(crate) fn credit_due(&self) -> Option<u32> {
        let threshold = (self.window / 2).max(1);
        let owed = if self.owed >= threshold { self.owed } else { 0 };
        let due = owed.saturating_add(self.grant);
        (due > 0).then_some(due)
    }
}

/// The index of the reply subscription (see [`Subscriptions::reply`]).
pub(crate) const REPLY: usize = usize::MAX;

/// Subscriptions in the order they were made, and the session's own reply
/// subscription (request-reply), which has a slot of its own and is not the
/// application's. Indexes name a subscription while the table is unchanged: a
/// position among the application's, or [`REPLY`].
#[derive(Debug)]
pub(crate) struct Subscriptions<const N: usize> {
    entries: Vec<(Subscription, Names), N>,
    reply: Option<Subscription>,
    next_id: u32,
}

impl<const N: usize> Subscriptions<N> {
    pub(crate) const fn new() -> Self {
        Subscriptions {
            entries: Vec::new(),
            reply: None,
            next_id: 1,
        }
    }

    /// Every slot of the application's is taken.
    pub(crate) fn is_full(&self) -> bool {
        self.entries.is_full()
    }

    /// The application's subscriptions.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// A fresh id: a counter from 1, skipping 0 and ids in use.
    pub(crate) fn allocate_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            if id != 0 && self.index(id).is_none() {
                return id;
            }
        }
    }

    /// Adds a subscription of the application's, its names copied into the
    /// table's slot (not built apart and moved in: they are 200 bytes); false
    /// when the table is full or a name is too long for its field.
    #[must_use]
    pub(crate) fn push(&mut self, sub: Subscription, filter: &str, group: Option<&str>) -> bool {
        let names = Names {
            filter: String::new(),
            group: group.map(|_| String::new()),
        };
        if self.entries.push((sub, names)).is_err() {
            return false;
        }
        let copied = self.entries.last_mut().is_some_and(|(_, names)| {
            names.filter.push_str(filter).is_ok()
                && match (&mut names.group, group) {
                    (Some(field), Some(group)) => field.push_str(group).is_ok(),
                    _ => true,
                }
        });
        if !copied {
            self.entries.pop();
        }
        copied
    }

    /// What the subscription at `index` asks for; `None` for the reply
    /// subscription.
    pub(crate) fn names(&self, index: usize) -> Option<&Names> {
        self.entries.get(index).map(|(_, names)| names)
    }

    /// The reply subscription, if the session made one.
    pub(crate) fn reply(&self) -> Option<&Subscription> {
        self.reply.as_ref()
    }

    /// Makes `sub` the reply subscription.
    pub(crate) fn set_reply(&mut self, sub: Subscription) {
        self.reply = Some(sub);
    }

    /// Whether `id` is the reply subscription's.
    pub(crate) fn is_reply(&self, id: u32) -> bool {
        self.reply.as_ref().is_some_and(|s| s.id == id)
    }

    pub(crate) fn index(&self, id: u32) -> Option<usize> {
        match self.entries.iter().position(|(s, _)| s.id == id) {
            None if self.is_reply(id) => Some(REPLY),
            found => found,
        }
    }

    pub(crate) fn get(&self, index: usize) -> Option<&Subscription> {
        match index {
            REPLY => self.reply.as_ref(),
            _ => self.entries.get(index).map(|(s, _)| s),
        }
    }

    /// Out of line on devices: inlined, it is copied to each caller.
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut Subscription> {
        match index {
            REPLY => self.reply.as_mut(),
            _ => self.entries.get_mut(index).map(|(s, _)| s),
        }
    }

    pub(crate) fn by_id_mut(&mut self, id: u32) -> Option<&mut Subscription> {
        let index = self.index(id)?;
        self.get_mut(index)
    }

    /// Removes a subscription, keeping the order of the others.
    ///
    /// Out of line on devices: the vector's `remove` (moving the entries
    /// behind it down) was inlined at its callers, the receive path's
    /// `SubReject`, `UnsubAck` and `Welcome` without a session among them.
    #[cfg_attr(not(feature = "alloc"), inline(never))]
    pub(crate) fn remove(&mut self, index: usize) {
        if index == REPLY {
            self.reply = None;
        } else if index < self.entries.len() {
            self.entries.remove(index);
        }
    }

    /// Every subscription with its index, the reply subscription last when
    /// `requests` (a session that can make requests; without, it has none,
    /// and a constant `false` leaves the code that looks for it out).
    pub(crate) fn iter(&self, requests: bool) -> impl Iterator<Item = (usize, &Subscription)> {
        let reply = self.reply.as_ref().filter(|_| requests);
        self.entries
            .iter()
            .map(|(s, _)| s)
            .enumerate()
            .chain(reply.map(|s| (REPLY, s)))
    }

    /// Subscriptions the broker forgot (`session_present: false`) that were being
    /// unsubscribed: they are simply gone.
    pub(crate) fn count_forgotten(&self) -> usize {
        self.entries.iter().filter(|(s, _)| s.unsubscribing).count()
    }

    /// After `Welcome`: decides what to send again. With no session on the broker,
    /// subscriptions being unsubscribed are dropped (their ids are returned through
    /// `removed`) and every other one is subscribed again, from its stored cursor
    /// once it had been acknowledged. With a resumed session only frames whose
    /// answer was lost with the last connection are repeated.
    /// `requests` as for [`iter`](Self::iter).
    pub(crate) fn on_welcome(
        &mut self,
        session_present: bool,
        requests: bool,
        mut removed: impl FnMut(u32),
    ) {
        if !session_present {
            // By `remove`, which the table has anyway, rather than `retain`:
            // the same entries in the same order, without a second copy of
            // the code that moves them down.
            let mut index = 0;
            while let Some((s, _)) = self.entries.get(index) {
                if s.unsubscribing {
                    removed(s.id);
                    self.remove(index);
                } else {
                    index += 1;
                }
            }
        }
        let entries = self.entries.iter_mut().map(|(s, _)| s);
        let reply = self.reply.as_mut().filter(|_| requests);
        for s in entries.chain(reply) {
            s.again(session_present);
        }
    }
}
