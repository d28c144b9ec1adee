//! Request-reply: a request is a publish with a reply-to topic and a correlation
//! id; its reply is a message published to that topic with the same
//! correlation.
//!
//! The session subscribes its reply topic itself (`_reply.<client id>`, or
//! `_reply.<16 hex digits>` when the client id makes no valid topic) the first
//! time it makes a request, in a subscription slot of its own that the
//! application does not see. Correlation ids are 8 bytes, big-endian: the high
//! half from the session's seed, the low half a counter. [`Requests`] is the
//! fixed table of requests waiting for their reply; replies that match none are
//! acknowledged and dropped.

use crate::framing::Framer;
use core::fmt;

use heapless::{String, Vec};

use super::held::{Settle, Slot, topic_hash};
use super::inbox;
use super::subscriptions::{MAX_FILTER_LEN, Subscription};
use super::{
    Backpressure, PublishError, PublishId, PublishOptions, RequestError, RequestId, RequestOptions,
    Session, State,
};
use crate::time::Instant;
use crate::topic::{MAX_TOPIC_LEN, Topic};
use crate::wire::fragment::Placement;
use crate::wire::{Deliver, Meta, QoS, Reason, SessionMode, Start};

/// Longest correlation id a [`ReplyAddress`] keeps, in bytes.
pub const MAX_CORRELATION_LEN: usize = 64;

/// The prefix of every reply topic.
const REPLY_PREFIX: &str = "_reply.";

/// Why a request ended without a reply ([`Event::RequestFailed`](super::Event::RequestFailed)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RequestFailure {
    /// Its timeout passed before the reply arrived.
    Timeout,
    /// The broker refused the request (or it could never be sent within the
    /// broker's maximum frame: `MessageTooLarge`).
    Rejected(Reason),
    /// The broker refused the session's reply subscription.
    ReplySubscriptionRejected(Reason),
    /// The request went out on a connection whose session is gone (a clean
    /// session, or a broker that lost it): its reply cannot arrive.
    SessionLost,
    /// The reply is larger than the inbox.
    ReplyTooLarge,
}

impl fmt::Display for RequestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestFailure::Timeout => f.write_str("no reply in time"),
            RequestFailure::Rejected(r) => write!(f, "request refused: {r}"),
            RequestFailure::ReplySubscriptionRejected(r) => {
                write!(f, "reply subscription refused: {r}")
            }
            RequestFailure::SessionLost => f.write_str("session lost before the reply"),
            RequestFailure::ReplyTooLarge => f.write_str("reply larger than the inbox"),
        }
    }
}

/// Where to send the reply to a request: its reply-to topic and correlation id,
/// copied out of the delivery (which borrows the session) so that
/// [`Session::reply`] can be called once the delivery is let go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReplyAddress {
    topic: String<MAX_TOPIC_LEN>,
    correlation: Option<Vec<u8, MAX_CORRELATION_LEN>>,
}

impl ReplyAddress {
    /// Where to answer the message with properties `meta`; `None` when it names
    /// no reply-to topic, or a correlation id longer than
    /// [`MAX_CORRELATION_LEN`].
    pub fn of(meta: &Meta<'_>) -> Option<ReplyAddress> {
        let topic = String::try_from(meta.reply_to?).ok()?;
        let correlation = match meta.correlation {
            Some(c) => Some(Vec::from_slice(c).ok()?),
            None => None,
        };
        Some(ReplyAddress { topic, correlation })
    }

    /// The topic the reply goes to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The correlation id the reply carries.
    pub fn correlation(&self) -> Option<&[u8]> {
        self.correlation.as_deref()
    }
}

/// Where a pending request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for the reply; `sent` once the request was written on some
    /// connection.
    Waiting { sent: bool },
    /// The reply's first fragments arrived; the rest is on its way.
    Arriving,
    /// Over without a reply; reported by the next `poll_event`s.
    Failed(RequestFailure),
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    id: u64,
    /// The request's publish id.
    publish: u32,
    deadline: Option<Instant>,
    stage: Stage,
}

/// The requests waiting for their reply, `N` at most.
#[derive(Debug)]
pub(super) struct Requests<const N: usize> {
    slots: [Option<Pending>; N],
    /// How many slots are taken: with none (a session that makes no
    /// requests), the look-ups at every publish written, every drained
    /// `poll_event` and every `poll_timeout` skip the scan of all `N`.
    used: usize,
    /// The high half of every correlation id, from the seed, so that the
    /// replies to an earlier run's requests do not match this run's.
    nonce: u32,
    /// The low half of the next correlation id.
    next: u32,
}

impl<const N: usize> Requests<N> {
    pub(super) fn new(seed: u64, client_id: &str) -> Self {
        Requests {
            slots: [None; N],
            used: 0,
            // A table with no room makes no request (`has_room`), so its
            // nonce is never read: a device without requests skips the hash.
            nonce: if N == 0 {
                0
            } else {
                (mix(seed ^ topic_hash(client_id)) >> 32) as u32
            },
            next: 1,
        }
    }

    fn has_room(&self) -> bool {
        self.slots.iter().any(Option::is_none)
    }

    /// The id the next request gets.
    fn next_id(&self) -> u64 {
        (u64::from(self.nonce) << 32) | u64::from(self.next)
    }

    fn insert(&mut self, id: u64, publish: u32, deadline: Option<Instant>) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.is_none()) {
            *slot = Some(Pending {
                id,
                publish,
                deadline,
                stage: Stage::Waiting { sent: false },
            });
            self.used += 1;
            self.next = self.next.wrapping_add(1).max(1);
        }
    }

    /// Whether no request is pending: always, without room for one (a
    /// device that makes none, whose look-ups then compile to nothing).
    fn none(&self) -> bool {
        N == 0 || self.used == 0
    }

    /// The requests pending, or none without scanning the table when it is
    /// empty.
    fn pending(&self) -> impl Iterator<Item = &Pending> {
        let slots: &[Option<Pending>] = if self.none() { &[] } else { &self.slots };
        slots.iter().flatten()
    }

    fn find(&mut self, id: u64) -> Option<&mut Pending> {
        if self.none() {
            return None;
        }
        self.slots.iter_mut().flatten().find(|p| p.id == id)
    }

    /// The request waiting for a reply with this correlation.
    fn waiting(&self, correlation: Option<&[u8]>) -> Option<u64> {
        let id = correlation_id(correlation)?;
        self.pending()
            .find(|p| p.id == id && matches!(p.stage, Stage::Waiting { .. }))
            .map(|p| p.id)
    }

    /// The request whose publish has this id, unless it is over.
    fn by_publish(&self, publish: u32) -> Option<u64> {
        self.pending()
            .find(|p| p.publish == publish && !matches!(p.stage, Stage::Failed(_)))
            .map(|p| p.id)
    }

    /// The request's publish was written (in part or whole).
    pub(super) fn sent(&mut self, publish: u32) {
        if self.none() {
            return;
        }
        for p in self.slots.iter_mut().flatten() {
            if p.publish == publish && p.stage == (Stage::Waiting { sent: false }) {
                p.stage = Stage::Waiting { sent: true };
            }
        }
    }

    /// The reply of request `id` is complete: it is no longer pending.
    fn answered(&mut self, id: u64) {
        for slot in self.slots.iter_mut() {
            if slot.is_some_and(|p| p.id == id) {
                *slot = None;
                self.used -= 1;
            }
        }
    }

    /// Fails request `id` (unless it is over already); returns its publish id.
    fn fail(&mut self, id: u64, failure: RequestFailure) -> Option<u32> {
        let p = self.find(id)?;
        if matches!(p.stage, Stage::Failed(_)) {
            return None;
        }
        p.stage = Stage::Failed(failure);
        Some(p.publish)
    }

    /// The request whose reply is arriving.
    fn arriving(&self) -> Option<u64> {
        self.pending()
            .find(|p| p.stage == Stage::Arriving)
            .map(|p| p.id)
    }

    /// When the first timeout passes.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.pending()
            .filter(|p| matches!(p.stage, Stage::Waiting { .. }))
            .filter_map(|p| p.deadline)
            .min()
    }

    /// A failure to report, freeing its slot.
    pub(super) fn take_failed(&mut self) -> Option<(RequestId, RequestFailure)> {
        if self.none() {
            return None;
        }
        let taken = self.slots.iter_mut().find_map(|slot| match *slot {
            Some(Pending {
                id,
                stage: Stage::Failed(failure),
                ..
            }) => {
                *slot = None;
                Some((RequestId(id), failure))
            }
            _ => None,
        });
        if taken.is_some() {
            self.used -= 1;
        }
        taken
    }
}

/// The request id a correlation names (8 bytes, big-endian).
pub(super) fn correlation_id(correlation: Option<&[u8]>) -> Option<u64> {
    correlation
        .and_then(|c| <[u8; 8]>::try_from(c).ok())
        .map(u64::from_be_bytes)
}

/// SplitMix64's finaliser: spreads a seed over all bits.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl<B, const SUBS: usize, const HELD: usize, const REQS: usize, F: Framer>
    Session<B, SUBS, HELD, REQS, F>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Publishes a request to `topic` and waits for its reply: the session sets
    /// the reply-to topic and a fresh correlation id, subscribes its reply topic
    /// the first time, and reports the outcome as [`Event::Reply`] (the session
    /// acknowledges the reply itself) or [`Event::RequestFailed`]. At most
    /// `REQS` requests wait at once.
    ///
    /// [`Event::Reply`]: super::Event::Reply
    /// [`Event::RequestFailed`]: super::Event::RequestFailed
    pub fn request(
        &mut self,
        now: Instant,
        topic: &str,
        payload: &[u8],
        opts: &RequestOptions<'_>,
    ) -> Result<RequestId, RequestError> {
        if !self.requests.has_room() {
            return Err(RequestError::TableFull);
        }
        let mut reply_to = String::new();
        self.reply_topic(&mut reply_to);
        let id = self.requests.next_id();
        let correlation = id.to_be_bytes();
        let meta = Meta {
            ttl_ms: opts.ttl_ms,
            priority: opts.priority,
            reply_to: Some(reply_to.as_str()),
            correlation: Some(&correlation),
            headers: opts.headers,
        };
        let publish = self.enqueue(topic, payload, opts.qos, &meta, true)?;
        if self.subs.reply().is_none() {
            let sub = self.subs.allocate_id();
            let window = self.config.limits.credit;
            let reply = Subscription::new(sub, QoS::AtLeastOnce, Start::New, window);
            self.subs.set_reply(reply);
        }
        let deadline = opts.timeout.map(|t| now + t);
        self.requests.insert(id, publish.0, deadline);
        Ok(RequestId(id))
    }

    /// Publishes a reply to the request whose address is `to` (see
    /// [`ReplyAddress::of`]): to its reply-to topic, with its correlation id in
    /// place of `opts.meta.correlation`.
    pub fn reply(
        &mut self,
        now: Instant,
        to: &ReplyAddress,
        payload: &[u8],
        opts: &PublishOptions<'_>,
    ) -> Result<PublishId, PublishError> {
        let opts = PublishOptions {
            qos: opts.qos,
            meta: Meta {
                reply_to: None,
                correlation: to.correlation(),
                ..opts.meta
            },
        };
        self.publish(now, to.topic(), payload, &opts)
    }

    /// The topic replies come back on, written into `topic`: `_reply.<client
    /// id>`, or `_reply.<16 hex digits>` when the client id makes no topic.
    pub(super) fn reply_topic(&self, topic: &mut String<MAX_FILTER_LEN>) {
        topic.clear();
        let _ = topic.push_str(REPLY_PREFIX);
        let _ = topic.push_str(&self.config.client_id);
        if Topic::new(topic).is_ok() {
            return;
        }
        topic.clear();
        let _ = topic.push_str(REPLY_PREFIX);
        let hash = mix(self.config.seed ^ topic_hash(&self.config.client_id));
        for shift in (0..16).rev() {
            let nibble = ((hash >> (shift * 4)) & 0xF) as u8;
            let digit = if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + nibble - 10
            };
            let _ = topic.push(char::from(digit));
        }
    }

    /// A delivery (or its first fragment) on the reply subscription: the request
    /// it answers, when one waits for it and it fits the inbox (the caller places
    /// it and calls [`reply_placed`](Self::reply_placed)). Otherwise it is
    /// acknowledged and dropped here (`Ok(None)`); a reply too large for the
    /// inbox fails its request.
    pub(super) fn check_reply(
        &mut self,
        d: &Deliver<'_>,
        place: &Placement,
    ) -> Result<Option<u64>, Backpressure> {
        let waiting = self.requests.waiting(d.meta.correlation);
        let fits = inbox::record_len(d.topic.len(), &d.meta, place.total)
            .is_some_and(|n| n <= self.inbox.capacity());
        if waiting.is_some() && fits {
            return Ok(waiting);
        }
        match d.qos {
            QoS::AtLeastOnce => {
                self.held
                    .insert(Slot::Settling {
                        tag: d.tag,
                        settle: Settle::Ack,
                    })
                    .ok_or(Backpressure::Held)?;
            }
            QoS::AtMostOnce => {
                if let Some(s) = self.subs.by_id_mut(d.sub) {
                    s.owed = s.owed.saturating_add(1);
                }
            }
        }
        match waiting {
            Some(id) => self.fail_request(id, RequestFailure::ReplyTooLarge),
            None => {
                debug!("reply for no pending request dropped");
                self.stats.replies_dropped += 1;
            }
        }
        self.discard_rest(d, place);
        Ok(None)
    }

    /// The reply to request `id` is in the inbox: whole (`complete`), or its
    /// first fragment.
    pub(super) fn reply_placed(&mut self, id: u64, complete: bool) {
        if complete {
            self.requests.answered(id);
        } else if let Some(p) = self.requests.find(id) {
            p.stage = Stage::Arriving;
        }
    }

    /// The reply that was arriving is complete.
    pub(super) fn reply_complete(&mut self) {
        if let Some(id) = self.requests.arriving() {
            self.requests.answered(id);
        }
    }

    /// Fails a request and takes its publish out of the outbox, unless part of
    /// it is on the wire of a connection still up (the rest follows, and the
    /// reply is dropped).
    fn fail_request(&mut self, id: u64, failure: RequestFailure) {
        debug!("request failed");
        let Some(publish) = self.requests.fail(id, failure) else {
            return;
        };
        if self.conn.state == State::Connected {
            self.outbox.cancel(publish);
        } else {
            self.outbox.remove(publish);
        }
    }

    /// Fails the request whose publish has this id; false when there is none.
    pub(super) fn fail_publish(&mut self, publish: u32, failure: RequestFailure) -> bool {
        match self.requests.by_publish(publish) {
            Some(id) => {
                self.fail_request(id, failure);
                true
            }
            None => false,
        }
    }

    /// Fails every request that is not over yet.
    pub(super) fn fail_all_requests(&mut self, failure: RequestFailure) {
        for i in 0..REQS {
            let pending = self.requests.slots.get(i).copied().flatten();
            if let Some(p) = pending.filter(|p| !matches!(p.stage, Stage::Failed(_))) {
                self.fail_request(p.id, failure);
            }
        }
    }

    /// Requests whose timeout passed fail.
    pub(super) fn expire_requests(&mut self, now: Instant) {
        for i in 0..REQS {
            let pending = self.requests.slots.get(i).copied().flatten();
            if let Some(p) = pending
                && matches!(p.stage, Stage::Waiting { .. })
                && p.deadline.is_some_and(|d| now >= d)
            {
                self.fail_request(p.id, RequestFailure::Timeout);
            }
        }
    }

    /// The connection ended (`lost_session`: and the broker keeps nothing of
    /// it, or kept nothing of the last one): a reply that was arriving will come
    /// again; requests sent on a lost session fail.
    pub(super) fn requests_after_connection(&mut self, lost_session: bool) {
        for i in 0..REQS {
            let Some(Some(p)) = self.requests.slots.get_mut(i) else {
                continue;
            };
            if p.stage == Stage::Arriving {
                p.stage = Stage::Waiting { sent: true };
            }
            if lost_session && p.stage == (Stage::Waiting { sent: true }) {
                p.stage = Stage::Failed(RequestFailure::SessionLost);
                // No connection: nothing of it is half sent any more.
                let publish = p.publish;
                self.outbox.remove(publish);
            }
        }
    }

    /// Whether the session keeps nothing after a connection ends.
    pub(super) fn clean_session(&self) -> bool {
        self.config.mode == SessionMode::Clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn occupied<const N: usize>(r: &Requests<N>) -> usize {
        r.slots.iter().flatten().count()
    }

    #[test]
    fn the_count_of_pending_requests_follows_the_table() {
        let mut r = Requests::<4>::new(7, "c");
        assert_eq!((r.used, r.next_deadline()), (0, None));
        assert_eq!(r.take_failed(), None);
        let deadline = Some(Instant::from_millis(5));
        for (id, publish) in [(1, 10), (2, 11), (3, 12)] {
            r.insert(id, publish, deadline);
        }
        assert_eq!((r.used, occupied(&r)), (3, 3));
        r.sent(11);
        assert_eq!(
            r.find(2).map(|p| p.stage),
            Some(Stage::Waiting { sent: true })
        );
        assert_eq!(r.next_deadline(), deadline);
        assert_eq!(r.by_publish(12), Some(3));
        assert_eq!(r.fail(1, RequestFailure::Timeout), Some(10));
        assert_eq!(
            r.take_failed(),
            Some((RequestId(1), RequestFailure::Timeout))
        );
        assert_eq!((r.used, occupied(&r)), (2, 2));
        r.answered(2);
        assert_eq!((r.used, occupied(&r)), (1, 1));
        // An id no slot holds frees nothing.
        r.answered(9);
        assert_eq!((r.used, occupied(&r)), (1, 1));
        r.answered(3);
        assert_eq!((r.used, occupied(&r)), (0, 0));
        assert_eq!((r.next_deadline(), r.by_publish(12)), (None, None));
    }
}
