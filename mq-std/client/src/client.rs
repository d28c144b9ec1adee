//! The async client, over tokio.
//!
//! [`Client::connect`] spawns one task that owns the TCP connection (or,
//! with [`Client::connect_with`], the streams a [`Connector`] opens) and the
//! client session ([`mq_core::client::Session`], through the crate's shared
//! driver) and resolves at the broker's first `Welcome`. The [`Client`] is a
//! cheap handle over a channel to that task: clone it freely and use it from any
//! task. The session decides everything about delivery: it resends unacknowledged
//! QoS 1 publishes after a reconnect, deduplicates redeliveries, keeps the
//! connection alive and decides when to reconnect; the task only moves bytes,
//! time and calls.
//!
//! ```no_run
//! # use mq_client as mq_std; // what users see: the facade
//! # async fn demo() -> Result<(), mq_std::client::Error> {
//! use mq_std::client::{Client, ClientOptions, PublishOptions, SubscribeOptions};
//!
//! let client = Client::connect(ClientOptions::new("127.0.0.1:7410")).await?;
//! let mut sub = client.subscribe("sensors.>", &SubscribeOptions::default()).await?;
//! client.publish("sensors.kitchen.temp", "21.5", &PublishOptions::default()).await?;
//! if let Some(msg) = sub.next().await {
//!     println!("{}: {:?}", msg.topic, msg.payload);
//!     msg.ack()?;
//! }
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! The connection lives while any clone of the [`Client`] does: dropping the last
//! one closes it like [`Client::close`], and every [`Subscription`] then ends.
//! The types both clients share ([`Message`], [`Error`], the options, ...)
//! belong to the driver; this module and [`crate::blocking`] re-export them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
pub use crate::connector::{Connector, Tcp};
use crate::driver::{self, Command, Commands, Driver, SubscriptionEnd};

pub use crate::driver::{
    Admin, ClientOptions, Error, Message, PubAck, PublishOptions, Stats, SubscribeOptions,
};
pub use crate::tls::TlsOptions;
pub use mq_core::Reason;
pub use mq_core::broker::admin::{
    AdminReply, MessageInfo, MessageList, SessionInfo, SubscriptionInfo, TopicInfo,
};
pub use mq_core::client::{State, Stats as SessionStats, SubId};
pub use mq_core::wire::{QoS, SessionMode, Start};

mod task;
use task::run;

/// A connection to a broker: a cheap, cloneable handle (`Send + Sync`) over the
/// task that drives it.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// What every clone shares; the last one to go closes the session.
struct Inner {
    commands: Arc<Commands>,
    client_id: String,
    credit: u32,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Close(None));
    }
}

impl Client {
    /// Connects to `opts.addr` and waits for the broker's `Welcome`.
    ///
    /// Fails with [`Error::Io`] when the first TCP connection cannot be opened,
    /// [`Error::Refused`] when the broker refuses the session (bad token,
    /// unsupported version, ...), [`Error::Timeout`] when no `Welcome` arrives
    /// within `opts.connect_timeout`, and [`Error::Invalid`] for bad options or
    /// when called outside a tokio runtime. After the first `Welcome`, lost
    /// connections are re-established by the session on its own.
    pub async fn connect(opts: ClientOptions) -> Result<Client, Error> {
        let tcp = Tcp(opts.addr.clone());
        Client::connect_with(opts, tcp).await
    }

    /// Connects over the streams `connector` opens instead of dialing
    /// `opts.addr` (which still names the broker to TLS, when configured),
    /// and waits for the broker's `Welcome`. `connector` opens every
    /// connection of the session, the reconnects too; it fails the first
    /// connect as [`Error::Io`]. Otherwise as [`connect`](Self::connect).
    pub async fn connect_with(
        opts: ClientOptions,
        connector: impl Connector,
    ) -> Result<Client, Error> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Invalid("Client::connect must run inside a tokio runtime"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let commands = Commands::new(Box::new(tx), opts.outbox_bytes);
        let mut driver = Driver::new(&opts, Arc::clone(&commands))?;
        // Created before waiting so that dropping this future closes the session.
        let inner = Arc::new(Inner {
            commands,
            client_id: opts.client_id.clone(),
            credit: opts.credit,
        });
        let (welcome, welcomed) = oneshot::channel();
        let clock = Clock::new();
        driver.start(clock.now(), Box::new(welcome));
        runtime.spawn(run(driver, rx, connector, clock));
        match welcomed.await {
            Ok(Ok(())) => Ok(Client { inner }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(inner.commands.closed_error()),
        }
    }

    /// The client id the session uses.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// Publishes a message. QoS 1 resolves when the broker has stored it (after
    /// reconnects if need be). QoS 0 resolves at once while there is room
    /// between the application and the session (`ClientOptions::outbox_bytes`),
    /// without waiting for the client's task; a QoS 0 message that fails after
    /// that (larger than the broker's frames, or the session closed first) is
    /// counted in [`Stats::unsent_qos0`]. Waits for room while it is used up.
    /// Dropping the future before the message is queued cancels it; once
    /// queued it is sent regardless.
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        opts: &PublishOptions,
    ) -> Result<PubAck, Error> {
        self.enqueue(topic, payload, opts).await?.await
    }

    /// Queues a message for publishing and returns as soon as it is queued
    /// (waiting only while the room between the application and the session is
    /// used up): a [`Receipt`] resolves when the broker has stored a QoS 1
    /// message, and at once for QoS 0. Many QoS 1 publishes can be in flight
    /// this way from one task; they are sent in the order they were queued.
    pub async fn enqueue(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        opts: &PublishOptions,
    ) -> Result<Receipt, Error> {
        let commands = &self.inner.commands;
        let mut msg = opts.outgoing(topic, payload.into())?;
        msg.check(commands.room().capacity())?;
        msg.reserved = Some(
            commands
                .room()
                .take(msg.size())
                .await
                .ok_or_else(|| commands.closed_error())?,
        );
        if msg.qos == QoS::AtMostOnce {
            commands.send(Command::Publish { msg, reply: None })?;
            return Ok(Receipt(Outcome::Done(Some(PubAck {
                seq: None,
                duplicate: false,
            }))));
        }
        let (reply, answer) = oneshot::channel();
        commands.send(Command::Publish {
            msg,
            reply: Some(Box::new(reply)),
        })?;
        Ok(Receipt(Outcome::Waiting(answer, Arc::clone(commands))))
    }

    /// Subscribes; resolves when the broker confirms (`SubAck`).
    pub async fn subscribe(
        &self,
        filter: &str,
        opts: &SubscribeOptions,
    ) -> Result<Subscription, Error> {
        let capacity = driver::window(opts.credit, self.inner.credit)? as usize;
        let (sink, rx) = mpsc::channel(capacity);
        let waiting = Arc::new(AtomicBool::new(false));
        let (reply, answer) = oneshot::channel();
        let sub = self
            .call(
                Command::Subscribe {
                    filter: filter.to_string(),
                    opts: Box::new(opts.clone()),
                    sink: Box::new(sink),
                    waiting: Arc::clone(&waiting),
                    reply: Box::new(reply),
                },
                answer,
            )
            .await?;
        Ok(Subscription {
            end: SubscriptionEnd::new(sub, waiting, Arc::clone(&self.inner.commands)),
            rx,
        })
    }

    /// Sends a request (QoS 1) and waits up to `timeout` for its reply.
    ///
    /// The first request subscribes the client to its private reply topic
    /// (`_reply.<client id>`); every request carries that topic as `reply_to` and
    /// a fresh correlation id, which the responder copies into its reply (see
    /// [`reply`](Self::reply)). Replies are acked by the client.
    pub async fn request(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Message, Error> {
        let msg = Box::new(PublishOptions::default().outgoing(topic, payload.into())?);
        let (reply, answer) = oneshot::channel();
        let call = self.call(
            Command::Request {
                msg,
                timeout,
                reply: Box::new(reply),
            },
            answer,
        );
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| Error::Timeout)?
    }

    /// Answers a request: publishes `payload` (QoS 1) to its `reply_to` topic
    /// with its correlation id.
    pub async fn reply(
        &self,
        request: &Message,
        payload: impl Into<Bytes>,
    ) -> Result<PubAck, Error> {
        let opts = driver::reply_options(request)?;
        let topic = request.reply_to.as_deref().unwrap_or_default();
        self.publish(topic, payload, &opts).await
    }

    /// Asks the broker an admin question: list topics or sessions, read,
    /// purge or delete a topic. The client's token needs the admin
    /// permission; otherwise this fails with `Error::Rejected(NotAuthorized)`.
    /// A purge or delete is answered once the broker stored it.
    pub async fn admin(&self, request: Admin) -> Result<AdminReply, Error> {
        let (reply, answer) = oneshot::channel();
        self.call(
            Command::Admin {
                request,
                reply: Box::new(reply),
            },
            answer,
        )
        .await
    }

    /// Closes the session: sends `Close` to the broker and waits until it is
    /// written (or the connection failed). Pending publishes and requests fail
    /// with [`Error::Closed`], subscriptions end. Every clone is closed.
    pub async fn close(&self) {
        let (reply, answer) = oneshot::channel::<()>();
        if self
            .inner
            .commands
            .send(Command::Close(Some(Box::new(reply))))
            .is_ok()
        {
            let _ = answer.await;
        }
    }

    /// The client's state and counters, as of the last time its task ran.
    pub fn stats(&self) -> Stats {
        self.inner.commands.stats()
    }

    async fn call<T>(
        &self,
        cmd: Command,
        answer: oneshot::Receiver<Result<T, Error>>,
    ) -> Result<T, Error> {
        self.inner.commands.send(cmd)?;
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(self.inner.commands.closed_error()),
        }
    }
}

/// A queued publish's outcome ([`Client::enqueue`]): resolves to the broker's
/// acknowledgement of a QoS 1 message (or why there is none), at once for QoS
/// 0. Dropping it does not cancel the publish.
#[must_use = "a receipt resolves when the broker stored the message; drop it to not wait"]
pub struct Receipt(Outcome);

enum Outcome {
    Done(Option<PubAck>),
    Waiting(oneshot::Receiver<Result<PubAck, Error>>, Arc<Commands>),
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Outcome::Done(_) => "Receipt(done)",
            Outcome::Waiting(..) => "Receipt(waiting)",
        })
    }
}

impl Future for Receipt {
    type Output = Result<PubAck, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Outcome::Done(ack) => match ack.take() {
                Some(ack) => Poll::Ready(Ok(ack)),
                None => Poll::Ready(Err(Error::Invalid("a receipt polled after it resolved"))),
            },
            Outcome::Waiting(answer, commands) => match Pin::new(answer).poll(cx) {
                Poll::Ready(Ok(result)) => Poll::Ready(result),
                Poll::Ready(Err(_)) => Poll::Ready(Err(commands.closed_error())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// Messages of one subscription, in the order the session delivers them.
///
/// The client buffers at most the subscription's credit window of messages;
/// while that buffer is full the client stops reading from the broker (for every
/// subscription: they share one connection), so read steadily. Dropping the
/// `Subscription` unsubscribes; messages it still buffered are nacked for
/// redelivery.
pub struct Subscription {
    end: SubscriptionEnd,
    rx: mpsc::Receiver<Message>,
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

    /// The next message; `None` once the subscription ended (unsubscribed, the
    /// broker refused it after a reconnect, or the client closed).
    pub async fn next(&mut self) -> Option<Message> {
        let msg = self.rx.recv().await;
        self.took(msg)
    }

    /// The next message if one is buffered.
    pub fn try_next(&mut self) -> Option<Message> {
        let msg = self.rx.try_recv().ok();
        self.took(msg)
    }

    /// Polls for the next message (for `Stream` adapters).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(msg) => Poll::Ready(self.took(msg)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Ends the subscription (the same as dropping it).
    pub fn unsubscribe(self) {}

    fn took(&self, msg: Option<Message>) -> Option<Message> {
        let some = msg.is_some();
        self.end.took(msg, some)
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.inner.client_id)
            .finish()
    }
}
