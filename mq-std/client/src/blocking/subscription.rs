//! What a subscription's messages come through: a [`Subscription`] to
//! read, or a [`Listener`] whose callback a thread of its own runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::{Message, RecvTimeoutError, SubId, TryRecvError};
use crate::driver::{Command, Commands, SubscriptionEnd};

/// Messages of one subscription, in the order the session delivers them.
///
/// The client buffers at most the subscription's credit window of messages;
/// while that buffer is full it stops reading from the broker (for every
/// subscription: they share one connection), so read steadily. Dropping the
/// `Subscription` unsubscribes; messages it still buffered are nacked for
/// redelivery.
pub struct Subscription {
    pub(super) end: SubscriptionEnd,
    pub(super) rx: mpsc::Receiver<Message>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.end.fmt(f)
    }
}

impl Subscription {
    /// The subscription id.
    pub fn id(&self) -> SubId {
        self.end.sub
    }

    /// Blocks for the next message; `None` once the subscription ended
    /// (unsubscribed, refused by the broker after a reconnect, or the client
    /// closed).
    pub fn recv(&self) -> Option<Message> {
        let msg = self.rx.recv().ok();
        self.took(msg)
    }

    /// Blocks up to `timeout` for the next message.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message, RecvTimeoutError> {
        let msg = self.rx.recv_timeout(timeout);
        let some = msg.is_ok();
        self.end.took(msg, some)
    }

    /// The next message if one is buffered.
    pub fn try_recv(&self) -> Result<Message, TryRecvError> {
        let msg = self.rx.try_recv();
        let some = msg.is_ok();
        self.end.took(msg, some)
    }

    /// Blocks for each message in turn until the subscription ends.
    pub fn iter(&self) -> impl Iterator<Item = Message> + '_ {
        std::iter::from_fn(|| self.recv())
    }

    /// Ends the subscription (the same as dropping it).
    pub fn unsubscribe(self) {}

    fn took(&self, msg: Option<Message>) -> Option<Message> {
        let some = msg.is_some();
        self.end.took(msg, some)
    }
}

/// A subscription whose messages go to a callback on a thread of its own
/// ([`Client::subscribe_with`](super::Client::subscribe_with)). Dropping it leaves the callback running.
pub struct Listener {
    pub(super) sub: SubId,
    pub(super) commands: Arc<Commands>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// The subscription id.
    pub fn id(&self) -> SubId {
        self.sub
    }

    /// Ends the subscription and waits for the callback thread to finish (unless
    /// called from the callback itself). No callback starts after this returns;
    /// messages still buffered are nacked for redelivery.
    pub fn unsubscribe(mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.commands.send(Command::Unsubscribe(self.sub));
        if let Some(t) = self.thread.take()
            && t.thread().id() != thread::current().id()
        {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("sub", &self.sub).finish()
    }
}
