//! Subscribing: the application's subscriptions into the subscription table,
//! credit, and the broker's answers.

use crate::framing::Framer;

use super::event::Note;
use super::subscriptions::{MAX_FILTER_LEN, MAX_GROUP_LEN, Outgoing, REPLY, Subscription};
use super::{
    CreditError, RequestFailure, Session, SubId, SubscribeError, SubscribeOptions, UnsubscribeError,
};
use crate::time::Instant;
use crate::topic::Filter;
use crate::wire::{SubAck, SubReject, UnsubAck};

impl<B, const SUBS: usize, const HELD: usize, const REQS: usize, F: Framer>
    Session<B, SUBS, HELD, REQS, F>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Adds a subscription; `Subscribe` is sent when connected. The broker's answer
    /// arrives as [`Event::Subscribed`] or [`Event::SubscribeRejected`].
    ///
    /// [`Event::Subscribed`]: super::Event::Subscribed
    /// [`Event::SubscribeRejected`]: super::Event::SubscribeRejected
    pub fn subscribe(
        &mut self,
        _now: Instant,
        filter: &str,
        opts: &SubscribeOptions<'_>,
    ) -> Result<SubId, SubscribeError> {
        Filter::new(filter).map_err(|_| SubscribeError::InvalidFilter)?;
        if filter.len() > MAX_FILTER_LEN {
            return Err(SubscribeError::FilterTooLong);
        }
        if opts
            .group
            .is_some_and(|g| g.is_empty() || g.len() > MAX_GROUP_LEN)
        {
            return Err(SubscribeError::InvalidGroup);
        }
        if self.subs.is_full() {
            return Err(SubscribeError::TableFull);
        }
        let id = self.subs.allocate_id();
        let window = if opts.credit == 0 {
            self.config.limits.credit
        } else {
            opts.credit
        };
        let sub = Subscription::new(id, opts.qos, opts.start, window);
        if !self.subs.push(sub, filter, opts.group) {
            return Err(SubscribeError::TableFull);
        }
        Ok(SubId(id))
    }

    /// Ends a subscription. When the broker may know it, `Unsubscribe` is sent and
    /// the subscription is removed at `UnsubAck` ([`Event::Unsubscribed`]);
    /// deliveries may arrive until then. When its `Subscribe` is still waiting to be
    /// sent (a new subscription, or a resubscription after the broker lost the
    /// session), it is removed at once and no event follows.
    ///
    /// [`Event::Unsubscribed`]: super::Event::Unsubscribed
    pub fn unsubscribe(&mut self, _now: Instant, sub: SubId) -> Result<(), UnsubscribeError> {
        let index = self
            .subs
            .index(sub.0)
            .filter(|&i| i != REPLY)
            .ok_or(UnsubscribeError::UnknownSub)?;
        let Some(s) = self.subs.get_mut(index) else {
            return Err(UnsubscribeError::UnknownSub);
        };
        if s.unsubscribing {
            return Ok(());
        }
        if !s.sent {
            self.subs.remove(index);
            return Ok(());
        }
        s.unsubscribing = true;
        s.outgoing = Outgoing::Unsubscribe;
        Ok(())
    }

    /// Widens a subscription's credit window by `credit` deliveries.
    pub fn grant_credit(&mut self, sub: SubId, credit: u32) -> Result<(), CreditError> {
        let index = self
            .subs
            .index(sub.0)
            .filter(|&i| i != REPLY)
            .ok_or(CreditError::UnknownSub)?;
        let s = self.subs.get_mut(index).ok_or(CreditError::UnknownSub)?;
        s.window = s.window.saturating_add(credit);
        s.grant = s.grant.saturating_add(credit);
        Ok(())
    }

    pub(super) fn on_suback(&mut self, a: SubAck) {
        // Only a session that can make requests has a reply subscription
        // (`REQS = 0`: the look-up compiles away).
        let reply = Self::REQUESTS && self.subs.is_reply(a.sub);
        match self.subs.by_id_mut(a.sub) {
            Some(s) if !s.acked => {
                s.acked = true;
                if !s.unsubscribing && !reply {
                    self.push_event(Note::Subscribed(a.sub));
                }
            }
            Some(_) => {}
            None => debug!("suback for unknown subscription {}", a.sub),
        }
    }

    pub(super) fn on_subreject(&mut self, r: SubReject) {
        if let Some(index) = self.subs.index(r.sub) {
            self.subs.remove(index);
            // As in `on_suback`: without requests, never the reply's.
            if Self::REQUESTS && index == REPLY {
                // The next request subscribes again.
                self.fail_all_requests(RequestFailure::ReplySubscriptionRejected(r.reason));
                return;
            }
            self.push_event(Note::SubscribeRejected(r.sub, r.reason));
        }
    }

    pub(super) fn on_unsuback(&mut self, a: UnsubAck) {
        // Without requests the index is never the reply's: said so, the
        // table's `get` loses its reply arm on the device.
        if let Some(index) = self
            .subs
            .index(a.sub)
            .filter(|&i| Self::REQUESTS || i != REPLY)
            && self.subs.get(index).is_some_and(|s| s.unsubscribing)
        {
            self.subs.remove(index);
            self.push_event(Note::Unsubscribed(a.sub));
        }
    }
}
