//! The way from the application's handles into a driver: the commands
//! ([`Command`]) and the channel that carries them ([`Commands`]), the callers
//! waiting for answers ([`Reply`]) and the sinks messages go to ([`Sink`]).
//! Each front end puts its runtime's channels behind these traits.

use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mq_core::Reason;
use mq_core::client::{DeliveryId, SubId};

use super::error::Error;
use super::message::{Message, PubAck, Settlement, Settler};
use super::options::{Outgoing, SubscribeOptions};
use super::room::Room;
use super::stats::Stats;

/// A caller waiting for one answer: a tokio oneshot sender or the blocking
/// client's equivalent.
pub(crate) trait Reply<T>: Send {
    /// Answers the caller; an answer nobody waits for any more is dropped.
    fn send(self: Box<Self>, value: T);
    /// True once the caller stopped waiting (its future was dropped, its
    /// timeout passed).
    fn is_closed(&self) -> bool;
}

/// A boxed [`Reply`].
pub(crate) type ReplyTo<T> = Box<dyn Reply<T>>;

/// What a [`Sink`] did with a message.
pub(crate) enum Offer {
    /// Queued for the application.
    Taken,
    /// The sink is full; the message comes back.
    Full(Message),
    /// The application dropped its end; the message comes back.
    Closed(Message),
}

/// Where a subscription's messages go: a bounded tokio or std channel.
pub(crate) trait Sink: Send {
    /// Queues `msg` without blocking.
    fn offer(&mut self, msg: Message) -> Offer;
}

/// Sends commands to the driver's loop and wakes it.
pub(crate) trait CommandSender: Send + Sync {
    /// False when the loop is gone.
    fn send(&self, cmd: Command) -> bool;
}

/// The way into a driver, shared by every handle of one client (clients,
/// subscriptions, messages): the command channel, and what the driver
/// publishes back (statistics, why it closed).
pub(crate) struct Commands {
    sender: Box<dyn CommandSender>,
    /// Room for publishes on their way to the driver.
    room: Arc<Room>,
    stats: Mutex<Stats>,
    closed: Mutex<Option<Reason>>,
}

impl Commands {
    /// The way into a driver whose publishers may have up to `room` bytes on
    /// their way to it.
    pub(crate) fn new(sender: Box<dyn CommandSender>, room: usize) -> Arc<Commands> {
        Arc::new(Commands {
            sender,
            room: Room::new(room),
            stats: Mutex::new(Stats::default()),
            closed: Mutex::new(None),
        })
    }

    /// Room for publishes on their way to the driver.
    pub(crate) fn room(&self) -> &Arc<Room> {
        &self.room
    }

    /// Sends `cmd`; fails when the driver has stopped.
    pub(crate) fn send(&self, cmd: Command) -> Result<(), Error> {
        if self.sender.send(cmd) {
            Ok(())
        } else {
            Err(self.closed_error())
        }
    }

    /// The error for a call on a stopped driver.
    pub(crate) fn closed_error(&self) -> Error {
        let reason = *self.closed.lock().unwrap_or_else(PoisonError::into_inner);
        Error::Closed(reason.unwrap_or(Reason::Normal))
    }

    /// The latest statistics.
    pub(crate) fn stats(&self) -> Stats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The driver publishes its statistics.
    pub(super) fn set_stats(&self, stats: Stats) {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner) = stats;
    }

    /// The driver stopped, for `reason`: calls fail with it from now on.
    pub(super) fn set_closed(&self, reason: Reason) {
        *self.closed.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }
}

impl Settler for Commands {
    fn settle(&self, id: DeliveryId, how: Settlement) -> Result<(), Error> {
        self.send(match how {
            Settlement::Ack => Command::Ack(id),
            Settlement::Nack { requeue } => Command::Nack { id, requeue },
        })
    }
}

/// Tells the driver, after the application took a message from a sink, that a
/// message waits for room there. The driver sets the flag before its last try;
/// the application clears it after taking one.
pub(crate) fn made_room(waiting: &AtomicBool, commands: &Commands) {
    fence(Ordering::SeqCst);
    if waiting.swap(false, Ordering::SeqCst) {
        let _ = commands.send(Command::Room);
    }
}

/// What both clients' `Subscription`s share: the id, and the way back to the
/// driver. Tells the driver when a full sink has room again, and ends the
/// subscription when dropped.
pub(crate) struct SubscriptionEnd {
    pub sub: SubId,
    waiting: Arc<AtomicBool>,
    commands: Arc<Commands>,
}

impl SubscriptionEnd {
    pub(crate) fn new(sub: SubId, waiting: Arc<AtomicBool>, commands: Arc<Commands>) -> Self {
        SubscriptionEnd {
            sub,
            waiting,
            commands,
        }
    }

    /// Passes on what the application took from the sink, after telling the
    /// driver there is room.
    pub(crate) fn took<T>(&self, taken: T, some: bool) -> T {
        if some {
            made_room(&self.waiting, &self.commands);
        }
        taken
    }
}

impl Drop for SubscriptionEnd {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Unsubscribe(self.sub));
    }
}

impl std::fmt::Debug for SubscriptionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("sub", &self.sub)
            .finish()
    }
}

/// What the application asks of the driver. A publish is the only command
/// sent for every message, and the command travels by value (into the
/// channel, out of it, into the driver): the other variants box what would
/// make them larger than `Publish` (see the size test below).
pub(crate) enum Command {
    /// Publish; answered at `PubAck` (QoS 1) or once queued (QoS 0). Without
    /// a reply (fire and forget, QoS 0), a failure is only counted.
    Publish {
        msg: Outgoing,
        reply: Option<ReplyTo<Result<PubAck, Error>>>,
    },
    /// A request through the session's request-reply (its reply topic and
    /// correlation id); answered with the reply, or why none came within
    /// `timeout`.
    Request {
        msg: Box<Outgoing>,
        timeout: Duration,
        reply: ReplyTo<Result<Message, Error>>,
    },
    /// Subscribe; messages go to `sink`; answered at `SubAck`.
    Subscribe {
        filter: String,
        opts: Box<SubscribeOptions>,
        sink: Box<dyn Sink>,
        /// Set by the driver when a message waits for room in `sink`.
        waiting: Arc<AtomicBool>,
        reply: ReplyTo<Result<SubId, Error>>,
    },
    /// An admin request; answered with the broker's reply.
    Admin {
        request: super::Admin,
        reply: super::admin::AdminReplyTo,
    },
    /// End a subscription (its handle was dropped).
    Unsubscribe(SubId),
    /// The application processed a delivery.
    Ack(DeliveryId),
    /// The application refused a delivery.
    Nack { id: DeliveryId, requeue: bool },
    /// A sink has room again.
    Room,
    /// Close the session; answered once `Close` is written to the socket.
    Close(Option<ReplyTo<()>>),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every publish moves a `Command` through the channel and on into the
    /// driver by value, several copies a message: 200 bytes each before the
    /// properties and the rare variants' large parts were boxed.
    #[test]
    fn a_publish_command_stays_small() {
        let sizes = (size_of::<Command>(), size_of::<Outgoing>());
        assert!(
            sizes.0 <= 96 && sizes.1 <= 80,
            "Command, Outgoing: {sizes:?}"
        );
    }
}
