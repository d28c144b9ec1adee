//! The blocking client: its own I/O thread (mio), usable from any thread and
//! from C.
//!
//! [`Client::connect`] starts one thread that owns the TCP connection and the
//! client session (through the same driver as the async client) and returns at
//! the broker's first `Welcome`. Every method blocks the calling thread only
//! until its answer arrives; the I/O thread keeps the connection alive, and the
//! session reconnects on its own. No method panics; failures are [`Error`]s.
//!
//! ```no_run
//! # use mq_client as mq_std; // what users see: the facade
//! # fn demo() -> Result<(), mq_std::blocking::Error> {
//! use mq_std::blocking::{Client, ClientOptions, PublishOptions, SubscribeOptions};
//!
//! let client = Client::connect(ClientOptions::new("127.0.0.1:7410"))?;
//! let sub = client.subscribe("jobs", &SubscribeOptions::group("workers"))?;
//! client.publish("jobs", "resize 42", &PublishOptions::default())?;
//! for msg in sub.iter().take(1) {
//!     println!("{:?}", msg.payload);
//!     msg.ack()?;
//! }
//! client.close();
//! # Ok(()) }
//! ```
//!
//! Messages can also be handed to a callback with [`Client::subscribe_with`]:
//! each such subscription gets a thread of its own, so a slow callback never
//! runs on the I/O thread; it holds up the connection only once its
//! subscription's buffer (its credit window) is full, like a slow reader of a
//! [`Subscription`].
//!
//! The connection lives while any clone of the [`Client`] does; dropping the last
//! one closes it like [`Client::close`].

mod answer;
mod io_thread;
mod subscription;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Poll, Waker};
use tracing::{debug, error};

use crate::clock::Clock;
use crate::driver::{
    self, Command, CommandSender, Commands, Driver, NoRoom, Offer, ReplyTo, Sink, SubscriptionEnd,
};

pub use crate::client::{
    AdminReply, MessageInfo, MessageList, SessionInfo, SubscriptionInfo, TopicInfo,
};
pub use crate::driver::{
    Admin, ClientOptions, Error, Message, PubAck, PublishOptions, Stats, SubscribeOptions,
};
pub use mq_core::Reason;
pub use mq_core::client::{State, Stats as SessionStats, SubId};
pub use mq_core::wire::{QoS, SessionMode, Start};
pub use std::sync::mpsc::{RecvTimeoutError, TryRecvError};

use answer::{Gone, oneshot};
use io_thread::{WAKER, run};
pub use subscription::{Listener, Subscription};

/// A connection to a broker: a cheap, cloneable handle (`Send + Sync`) over the
/// I/O thread that drives it.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// What every clone shares; the last one to go closes the session.
struct Inner {
    commands: Arc<Commands>,
    client_id: String,
    credit: u32,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Close(None));
    }
}

impl Client {
    /// Connects to `opts.addr` and blocks until the broker's `Welcome`.
    ///
    /// Fails with [`Error::Io`] when the first TCP connection cannot be opened
    /// (or the I/O thread cannot be started), [`Error::Refused`] when the broker
    /// refuses the session, [`Error::Timeout`] when no `Welcome` arrives within
    /// `opts.connect_timeout`, and [`Error::Invalid`] for bad options.
    pub fn connect(opts: ClientOptions) -> Result<Client, Error> {
        let poll = Poll::new().map_err(Error::Io)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(Error::Io)?);
        let (tx, rx) = mpsc::channel();
        let awake = Arc::new(AtomicBool::new(false));
        let wakeful = Wakeful {
            tx,
            waker,
            awake: Arc::clone(&awake),
        };
        let commands = Commands::new(Box::new(wakeful), opts.outbox_bytes);
        let mut driver = Driver::new(&opts, Arc::clone(&commands))?;
        let inner = Arc::new(Inner {
            commands,
            client_id: opts.client_id.clone(),
            credit: opts.credit,
            thread: Mutex::new(None),
        });
        let (welcome, welcomed) = oneshot();
        let clock = Clock::new();
        driver.start(clock.now(), Box::new(welcome));
        let addr = opts.addr;
        let thread = thread::Builder::new()
            .name("mq-io".to_string())
            .spawn(move || {
                // It writes to the broker's socket: in a C host a broker
                // gone would otherwise end the program (`sigpipe.rs`).
                crate::block_sigpipe_in_this_thread();
                run(driver, rx, &awake, poll, &addr, clock)
            })
            .map_err(Error::Io)?;
        *inner.thread.lock().unwrap_or_else(PoisonError::into_inner) = Some(thread);
        let client = Client { inner };
        match welcomed.recv(None) {
            Ok(Ok(())) => Ok(client),
            Ok(Err(e)) => {
                client.join();
                Err(e)
            }
            Err(_) => Err(client.inner.commands.closed_error()),
        }
    }

    /// The client id the session uses.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// Publishes a message and blocks until the broker stored it (QoS 1, after
    /// reconnects if need be). QoS 0 returns at once while there is room
    /// between the application and the session (`ClientOptions::outbox_bytes`),
    /// without waiting for the I/O thread; a QoS 0 message that fails after
    /// that is counted in [`Stats::unsent_qos0`]. Waits for room while it is
    /// used up.
    pub fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        opts: &PublishOptions,
    ) -> Result<PubAck, Error> {
        self.enqueue_until(topic, payload.into(), opts, None)?
            .wait()
    }

    /// [`publish`](Self::publish), giving up after `timeout` with
    /// [`Error::Timeout`]. A message still waiting for room then is not
    /// sent; one already queued is sent (and may be stored) regardless.
    pub fn publish_timeout(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        opts: &PublishOptions,
        timeout: Duration,
    ) -> Result<PubAck, Error> {
        let deadline = Instant::now() + timeout;
        self.enqueue_until(topic, payload.into(), opts, Some(deadline))?
            .wait_until(Some(deadline))
    }

    /// Queues a message for publishing and returns once it is queued (blocking
    /// only while the room between the application and the session is used
    /// up). The [`Receipt`] says when the broker stored a QoS 1 message; many
    /// can be in flight from one thread, sent in the order they were queued.
    pub fn enqueue(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        opts: &PublishOptions,
    ) -> Result<Receipt, Error> {
        self.enqueue_until(topic, payload.into(), opts, None)
    }

    /// [`enqueue`](Self::enqueue), giving up after `timeout` with
    /// [`Error::Timeout`] while there is no room (the message is then not
    /// sent).
    pub fn enqueue_timeout(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        opts: &PublishOptions,
        timeout: Duration,
    ) -> Result<Receipt, Error> {
        let deadline = Instant::now() + timeout;
        self.enqueue_until(topic, payload.into(), opts, Some(deadline))
    }

    fn enqueue_until(
        &self,
        topic: &str,
        payload: Bytes,
        opts: &PublishOptions,
        deadline: Option<Instant>,
    ) -> Result<Receipt, Error> {
        let commands = &self.inner.commands;
        let mut msg = opts.outgoing(topic, payload)?;
        msg.check(commands.room().capacity())?;
        let reserved = commands
            .room()
            .take_blocking(msg.size(), deadline)
            .map_err(|e| match e {
                NoRoom::Timeout => Error::Timeout,
                NoRoom::Closed => commands.closed_error(),
            })?;
        msg.reserved = Some(reserved);
        if msg.qos == QoS::AtMostOnce {
            commands.send(Command::Publish { msg, reply: None })?;
            return Ok(Receipt(None));
        }
        let (reply, answer) = oneshot();
        commands.send(Command::Publish {
            msg,
            reply: Some(Box::new(reply)),
        })?;
        Ok(Receipt(Some((answer, Arc::clone(commands)))))
    }

    /// Subscribes; returns when the broker confirms (`SubAck`).
    pub fn subscribe(&self, filter: &str, opts: &SubscribeOptions) -> Result<Subscription, Error> {
        let capacity = driver::window(opts.credit, self.inner.credit)? as usize;
        let (sink, rx) = mpsc::sync_channel(capacity);
        let waiting = Arc::new(AtomicBool::new(false));
        let sub = self.call(
            |reply| Command::Subscribe {
                filter: filter.to_string(),
                opts: Box::new(opts.clone()),
                sink: Box::new(sink),
                waiting: Arc::clone(&waiting),
                reply,
            },
            None,
        )?;
        Ok(Subscription {
            end: SubscriptionEnd::new(sub, waiting, Arc::clone(&self.inner.commands)),
            rx,
        })
    }

    /// Subscribes and hands every message to `callback`, on a thread of this
    /// subscription's own (never on the I/O thread). The callback settles each
    /// message (a dropped QoS 1 message is nacked for redelivery). A callback
    /// that panics ends the subscription. Dropping the returned [`Listener`]
    /// leaves it running until the client closes; [`Listener::unsubscribe`]
    /// ends it.
    pub fn subscribe_with<F>(
        &self,
        filter: &str,
        opts: &SubscribeOptions,
        mut callback: F,
    ) -> Result<Listener, Error>
    where
        F: FnMut(Message) + Send + 'static,
    {
        let sub = self.subscribe(filter, opts)?;
        let id = sub.id();
        let commands = Arc::clone(&self.inner.commands);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name(format!("mq-sub-{}", id.0))
            .spawn(move || {
                while let Some(msg) = sub.recv() {
                    if stopped.load(Ordering::Acquire) {
                        break;
                    }
                    let call = std::panic::AssertUnwindSafe(|| callback(msg));
                    if std::panic::catch_unwind(call).is_err() {
                        error!("subscription {} callback panicked; unsubscribing", id.0);
                        break;
                    }
                }
            })
            .map_err(Error::Io)?;
        Ok(Listener {
            sub: id,
            commands,
            stop,
            thread: Some(thread),
        })
    }

    /// Sends a request (QoS 1) and blocks up to `timeout` for its reply. See
    /// [`crate::client::Client::request`].
    pub fn request(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Message, Error> {
        let msg = Box::new(PublishOptions::default().outgoing(topic, payload.into())?);
        self.call(
            |reply| Command::Request {
                msg,
                timeout,
                reply,
            },
            Some(timeout),
        )
    }

    /// Answers a request: publishes `payload` (QoS 1) to its `reply_to` topic
    /// with its correlation id.
    pub fn reply(&self, request: &Message, payload: impl Into<Bytes>) -> Result<PubAck, Error> {
        let opts = driver::reply_options(request)?;
        let topic = request.reply_to.as_deref().unwrap_or_default();
        self.publish(topic, payload, &opts)
    }

    /// Asks the broker an admin question, blocking up to `timeout` for the
    /// answer. See [`crate::client::Client::admin`].
    pub fn admin(&self, request: Admin, timeout: Duration) -> Result<AdminReply, Error> {
        self.call(|reply| Command::Admin { request, reply }, Some(timeout))
    }

    /// Closes the session: sends `Close` to the broker, waits until it is written
    /// (or the connection failed) and the I/O thread ended. Pending publishes
    /// and requests fail with [`Error::Closed`], subscriptions end. Every clone
    /// is closed.
    pub fn close(&self) {
        let (reply, answer) = oneshot::<()>();
        if self
            .inner
            .commands
            .send(Command::Close(Some(Box::new(reply))))
            .is_ok()
        {
            let _ = answer.recv(None);
        }
        self.join();
    }

    /// The client's state and counters, as of the last time its I/O thread ran.
    pub fn stats(&self) -> Stats {
        self.inner.commands.stats()
    }

    fn join(&self) {
        let thread = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread
            && t.thread().id() != thread::current().id()
        {
            let _ = t.join();
        }
    }

    fn call<T: Send + 'static>(
        &self,
        make: impl FnOnce(ReplyTo<Result<T, Error>>) -> Command,
        timeout: Option<Duration>,
    ) -> Result<T, Error> {
        let (reply, answer) = oneshot();
        self.inner.commands.send(make(Box::new(reply)))?;
        match answer.recv(timeout) {
            Ok(result) => result,
            Err(Gone::Timeout) => Err(Error::Timeout),
            Err(Gone::Sender) => Err(self.inner.commands.closed_error()),
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.inner.client_id)
            .finish()
    }
}

// ------------------------------------------------------------ std plumbing

/// The command channel: a std sender that wakes the I/O thread's poll.
struct Wakeful {
    tx: mpsc::Sender<Command>,
    waker: Arc<Waker>,
    /// Set by the first command since the I/O thread last emptied the
    /// channel: only that one wakes it (a system call), the rest ride along.
    awake: Arc<AtomicBool>,
}

impl CommandSender for Wakeful {
    fn send(&self, cmd: Command) -> bool {
        if self.tx.send(cmd).is_err() {
            return false;
        }
        if !self.awake.swap(true, Ordering::SeqCst)
            && let Err(e) = self.waker.wake()
        {
            debug!("waking the I/O thread failed: {e}");
        }
        true
    }
}

/// A queued publish's outcome ([`Client::enqueue`]): the broker's
/// acknowledgement of a QoS 1 message (or why there is none); QoS 0 has none
/// to wait for. Dropping it does not cancel the publish.
#[must_use = "a receipt says when the broker stored the message; drop it to not wait"]
pub struct Receipt(Option<(Acked, Arc<Commands>)>);

/// Where the driver answers a queued QoS 1 publish.
type Acked = answer::Answer<Result<PubAck, Error>>;

impl Receipt {
    /// Blocks until the broker stored the message (QoS 1); returns at once
    /// for QoS 0.
    pub fn wait(self) -> Result<PubAck, Error> {
        self.wait_until(None)
    }

    /// [`wait`](Self::wait) without giving the receipt up.
    pub fn wait_forever(&self) -> Result<PubAck, Error> {
        self.wait_until(None)
    }

    /// [`wait`](Self::wait), giving up after `timeout` with [`Error::Timeout`]
    /// (the receipt stays valid: wait again). A receipt answers once; asked
    /// again after that it says [`Error::Closed`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<PubAck, Error> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    pub(crate) fn wait_until(&self, deadline: Option<Instant>) -> Result<PubAck, Error> {
        let Some((answer, commands)) = &self.0 else {
            return Ok(PubAck {
                seq: None,
                duplicate: false,
            });
        };
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match answer.recv(timeout) {
            Ok(result) => result,
            Err(Gone::Timeout) => Err(Error::Timeout),
            Err(Gone::Sender) => Err(commands.closed_error()),
        }
    }
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Receipt(waiting)"
        } else {
            "Receipt(done)"
        })
    }
}

impl Sink for SyncSender<Message> {
    fn offer(&mut self, msg: Message) -> Offer {
        match self.try_send(msg) {
            Ok(()) => Offer::Taken,
            Err(TrySendError::Full(msg)) => Offer::Full(msg),
            Err(TrySendError::Disconnected(msg)) => Offer::Closed(msg),
        }
    }
}
