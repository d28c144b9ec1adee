//! Subscribing: `mq_subscription` (the application asks for each message with
//! a timeout) and `mq_listener` (a callback gets each message on a thread of
//! its own).

use std::ffi::{c_char, c_void};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use ::mq_client::blocking::{Listener, RecvTimeoutError, Start, SubscribeOptions, Subscription};

use crate::client::{mq_client, mq_qos, qos_arg};
use crate::error::*;
use crate::message::mq_message;

/// `timeout_ms` of `mq_subscription_recv` that waits as long as it takes
/// (`UINT32_MAX`).
// A literal, not `u32::MAX`: cbindgen writes that as `UINT32_MAX`, which the
// cffi declarations maturin makes for the Python wheel cannot parse (an
// unsigned number they can: `4294967295u`).
pub const MQ_WAIT_FOREVER: u32 = 0xFFFF_FFFF_u32;
const _: () = assert!(MQ_WAIT_FOREVER == u32::MAX);

/// Where a subscription starts reading (a value of
/// `mq_subscribe_options.start`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum mq_start {
    /// Only messages published after the subscribe.
    MQ_START_NEW = 0,
    /// From per-topic sequence number `start_at` on (0: everything retained).
    MQ_START_SEQ = 1,
    /// The last `start_at` retained messages of each matching topic, then new
    /// ones.
    MQ_START_LAST = 2,
    /// Where this session's stored cursor for the subscription points (new
    /// messages only when there is none); for persistent sessions.
    MQ_START_CURSOR = 3,
}

/// How to subscribe. Fill it with `mq_subscribe_options_init`, then set fields;
/// passing NULL instead means the defaults. Borrowed for the call only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct mq_subscribe_options {
    /// Join this group: its members compete, each message goes to one of them.
    /// NULL: every message (fan-out).
    pub group: *const c_char,
    /// An `mq_start`. Default `MQ_START_NEW`.
    pub start: u32,
    /// The sequence number (`MQ_START_SEQ`) or count (`MQ_START_LAST`).
    pub start_at: u64,
    /// Highest `mq_qos` wanted. Default `MQ_QOS_AT_LEAST_ONCE`.
    pub qos: u32,
    /// Deliveries the subscription may have outstanding (unacked or not yet
    /// received); also how many the client buffers for it. 0: the client's.
    pub credit: u32,
}

/// Fills `*opts` with the defaults: no group, new messages only, QoS 1, the
/// client's credit.
///
/// # Safety
/// `opts` must be NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_subscribe_options_init(opts: *mut mq_subscribe_options) -> mq_result {
    run_bare(|| unsafe {
        put(
            opts,
            mq_subscribe_options {
                group: std::ptr::null(),
                start: mq_start::MQ_START_NEW as u32,
                start_at: 0,
                qos: mq_qos::MQ_QOS_AT_LEAST_ONCE as u32,
                credit: 0,
            },
            "opts",
        )
    })
}

impl mq_subscribe_options {
    unsafe fn to_options(self) -> Result<SubscribeOptions, Fail> {
        let mut opts = SubscribeOptions::default();
        opts.group = unsafe { opt_str_arg(self.group, "opts->group") }?.map(str::to_string);
        opts.start = match self.start {
            0 => Start::New,
            1 => Start::Seq(self.start_at),
            2 => Start::Last(u32::try_from(self.start_at).map_err(|_| {
                Fail::invalid(format!(
                    "MQ_START_LAST takes at most {} messages, not {}",
                    u32::MAX,
                    self.start_at
                ))
            })?),
            3 => Start::Cursor,
            other => {
                return Err(Fail::invalid(format!(
                    "start {other} is not an mq_start (MQ_START_NEW .. MQ_START_CURSOR)"
                )));
            }
        };
        opts.qos = qos_arg(self.qos)?;
        opts.credit = self.credit;
        Ok(opts)
    }
}

/// The filter and options of a subscribe call, checked.
unsafe fn subscribe_args<'a>(
    filter: *const c_char,
    opts: *const mq_subscribe_options,
) -> Result<(&'a str, SubscribeOptions), Fail> {
    let filter = unsafe { str_arg(filter, "filter") }?;
    let opts = match unsafe { handle(opts) } {
        Some(o) => unsafe { o.to_options() }?,
        None => SubscribeOptions::default(),
    };
    Ok((filter, opts))
}

/// A subscription whose messages the application receives with
/// `mq_subscription_recv` (opaque). Thread-safe; concurrent receivers take
/// turns. Free it (which unsubscribes) with `mq_subscription_free`.
pub struct mq_subscription {
    sub: Mutex<Subscription>,
    error: LastError,
}

/// Subscribes to `filter` (`*` matches one token, `>` one or more trailing
/// ones) and blocks until the broker confirms; the subscription goes to
/// `*out`. `MQ_ERR_REJECTED` when the broker refuses it (not authorized),
/// `MQ_ERR_INVALID` for a bad filter, `MQ_ERR_CLOSED` when the client is not
/// connected, `MQ_ERR_TOO_MANY_SUBSCRIPTIONS` past 32 subscriptions per client
/// (a freed subscription's slot comes back once the broker confirmed the
/// unsubscribe).
///
/// Read steadily: while the subscription's buffer (its credit) is full, the
/// client stops reading from the broker for all its subscriptions.
///
/// # Safety
/// `client` must be NULL or a live client; `filter` NULL or NUL-terminated;
/// `opts` NULL or valid for reads; `out` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_client_subscribe(
    client: *const mq_client,
    filter: *const c_char,
    opts: *const mq_subscribe_options,
    out: *mut *mut mq_subscription,
) -> mq_result {
    on(unsafe { handle(client) }, |client| {
        need(out, "out")?;
        let (filter, opts) = unsafe { subscribe_args(filter, opts) }?;
        let sub = client.connected()?.subscribe(filter, &opts)?;
        let sub = Box::new(mq_subscription {
            sub: Mutex::new(sub),
            error: LastError::default(),
        });
        unsafe { put(out, Box::into_raw(sub), "out") }
    })
}

/// Blocks up to `timeout_ms` (`MQ_WAIT_FOREVER`: no limit, 0: do not wait) for
/// the subscription's next message, which goes to `*out`: the caller owns it
/// and frees it with `mq_message_free` (a QoS 1 message freed unsettled is
/// nacked for redelivery). `MQ_ERR_TIMEOUT` when none arrived in time,
/// `MQ_ERR_CLOSED` once the subscription ended (the client closed, or the
/// broker refused it after a reconnect).
///
/// # Safety
/// `sub` must be NULL or a live subscription; `out` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_subscription_recv(
    sub: *const mq_subscription,
    timeout_ms: u32,
    out: *mut *mut mq_message,
) -> mq_result {
    on(unsafe { handle(sub) }, |sub| {
        need(out, "out")?;
        let s = sub.sub.lock().unwrap_or_else(PoisonError::into_inner);
        let msg = if timeout_ms == MQ_WAIT_FOREVER {
            s.recv().ok_or(RecvTimeoutError::Disconnected)
        } else {
            s.recv_timeout(Duration::from_millis(timeout_ms.into()))
        };
        drop(s);
        let msg = msg.map_err(|e| match e {
            RecvTimeoutError::Timeout => Fail::new(
                mq_result::MQ_ERR_TIMEOUT,
                format!("no message within {timeout_ms} ms"),
            ),
            RecvTimeoutError::Disconnected => Fail::new(
                mq_result::MQ_ERR_CLOSED,
                "the subscription ended (the client closed, or the broker refused it)",
            ),
        })?;
        let msg = Box::new(mq_message::new(msg));
        unsafe { put(out, Box::into_raw(msg), "out") }
    })
}

/// Unsubscribes and frees the subscription. NULL is fine. Messages it still
/// buffered are nacked for redelivery; messages already received stay valid.
///
/// # Safety
/// `sub` must be NULL or a live subscription that no other thread uses during
/// or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_subscription_free(sub: *mut mq_subscription) {
    if !sub.is_null() {
        let sub = unsafe { Box::from_raw(sub) };
        let _ = guard(|| {
            drop(sub);
            Ok(())
        });
    }
}

/// The text of the subscription's last failure; as `mq_client_error`.
///
/// # Safety
/// `sub` must be NULL or a live subscription; `buf` NULL or valid for `cap`
/// bytes; `len` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_subscription_error(
    sub: *const mq_subscription,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> mq_result {
    unsafe { error_of(sub, buf, cap, len) }
}

/// Called with each message of a listener, on the listener's own thread, one
/// message at a time. `msg` is borrowed for the call: read it, ack or nack it,
/// but do not free it; a QoS 1 message left unsettled when the callback
/// returns is nacked for redelivery. The callback must not unwind (no C++
/// exception, no longjmp) out of itself.
pub type mq_message_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, msg: *mut mq_message)>;

/// A subscription whose messages go to a callback (opaque). Its only
/// function is `mq_listener_free`.
pub struct mq_listener {
    listener: Option<Listener>,
}

/// The callback's context, handed to the listener's thread. The caller
/// promised (in the header) that it may be used from that thread.
struct UserData(*mut c_void);

// SAFETY: the header makes the caller responsible for `user_data` being usable
// from the listener's thread.
unsafe impl Send for UserData {}

impl UserData {
    /// A method, so that closures capture the whole `UserData` (which is `Send`)
    /// and not its raw pointer field.
    fn ptr(&self) -> *mut c_void {
        self.0
    }
}

/// Subscribes like `mq_client_subscribe` and hands every message to
/// `callback(user_data, msg)` on a thread of the listener's own (never the
/// caller's, never the client's I/O thread); the listener goes to `*out`.
/// `user_data` is passed through untouched: it must stay valid, and be usable
/// from that thread, until `mq_listener_free` returns.
///
/// # Safety
/// As `mq_client_subscribe`; `callback` must be safe to call from another
/// thread with `user_data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_client_subscribe_callback(
    client: *const mq_client,
    filter: *const c_char,
    opts: *const mq_subscribe_options,
    callback: mq_message_callback,
    user_data: *mut c_void,
    out: *mut *mut mq_listener,
) -> mq_result {
    on(unsafe { handle(client) }, |client| {
        need(out, "out")?;
        let callback = callback.ok_or_else(|| Fail::null("callback"))?;
        let (filter, opts) = unsafe { subscribe_args(filter, opts) }?;
        let user_data = UserData(user_data);
        let listener = client
            .connected()?
            .subscribe_with(filter, &opts, move |msg| {
                let mut msg = mq_message::new(msg);
                unsafe { callback(user_data.ptr(), &mut msg) };
            })?;
        let listener = Box::new(mq_listener {
            listener: Some(listener),
        });
        unsafe { put(out, Box::into_raw(listener), "out") }
    })
}

/// Unsubscribes, waits until a callback running now returns (unless called
/// from the callback itself), and frees the listener. No callback starts after
/// this returns. NULL is fine.
///
/// # Safety
/// `listener` must be NULL or a live listener that no other thread uses during
/// or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_listener_free(listener: *mut mq_listener) {
    if !listener.is_null() {
        let mut listener = unsafe { Box::from_raw(listener) };
        let _ = guard(|| {
            if let Some(l) = listener.listener.take() {
                l.unsubscribe();
            }
            Ok(())
        });
    }
}

impl KeepsError for mq_subscription {
    fn last_error(&self) -> &LastError {
        &self.error
    }
}
