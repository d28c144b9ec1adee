//! `mq_message`: a received message, its fields, ack and nack.

use std::ffi::{CString, c_char};
use std::sync::{Mutex, PoisonError};

use ::mq_client::blocking::Message;
use bytes::Bytes;

use crate::client::{mq_header, qos_value};
use crate::error::*;

/// A received message (opaque). Its fields never change, so reading them is
/// thread-safe; ack and nack may be called from any thread. Pointers its
/// accessors hand out stay valid until the message is freed.
pub struct mq_message {
    topic: CString,
    payload: Bytes,
    headers: Vec<(CString, Bytes)>,
    info: mq_message_info,
    /// The message until it is settled (acked or nacked).
    unsettled: Mutex<Option<Message>>,
    error: LastError,
}

/// The scalar fields of a message.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct mq_message_info {
    /// Its per-topic sequence number.
    pub seq: u64,
    /// 1 for the first delivery, higher for redeliveries.
    pub attempt: u32,
    /// The `mq_qos` it was delivered with.
    pub qos: u32,
    /// Time to live the publisher set, in ms; 0: none.
    pub ttl_ms: u64,
    /// How many headers it has (see `mq_message_header`).
    pub header_count: usize,
    /// Whether it waits for an ack or nack (QoS 1, not settled when it was
    /// received). Settling does not change this field.
    pub needs_ack: bool,
    /// The priority the publisher gave it.
    pub priority: u8,
}

impl mq_message {
    pub(crate) fn new(msg: Message) -> mq_message {
        let c = |s: &str| CString::new(s.replace('\0', "\u{fffd}")).unwrap_or_default();
        let headers: Vec<(CString, Bytes)> =
            msg.headers.iter().map(|(k, v)| (c(k), v.clone())).collect();
        mq_message {
            topic: c(&msg.topic),
            payload: msg.payload.clone(),
            info: mq_message_info {
                seq: msg.seq,
                attempt: msg.attempt.into(),
                qos: qos_value(msg.qos),
                ttl_ms: msg
                    .ttl
                    .map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
                header_count: headers.len(),
                needs_ack: msg.needs_ack(),
                priority: msg.priority,
            },
            headers,
            unsettled: Mutex::new(Some(msg)),
            error: LastError::default(),
        }
    }

    fn settle(
        &self,
        how: impl FnOnce(Message) -> Result<(), ::mq_client::blocking::Error>,
    ) -> Result<(), Fail> {
        let msg = self
            .unsettled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| Fail::invalid("the message is already acked or nacked"))?;
        Ok(how(msg)?)
    }
}

/// The topic the message was published to: a NUL-terminated string owned by
/// the message, in `*topic`.
///
/// # Safety
/// `msg` must be NULL or a live message; `topic` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_message_topic(
    msg: *const mq_message,
    topic: *mut *const c_char,
) -> mq_result {
    on(unsafe { handle(msg) }, |m| unsafe {
        put(topic, m.topic.as_ptr(), "topic")
    })
}

/// The payload: `*len` bytes at `*data`, owned by the message (`*data` is
/// not NULL, even for an empty payload).
///
/// # Safety
/// `msg` must be NULL or a live message; `data` and `len` NULL or valid for
/// one write each.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_message_payload(
    msg: *const mq_message,
    data: *mut *const u8,
    len: *mut usize,
) -> mq_result {
    on(unsafe { handle(msg) }, |m| unsafe {
        need(data, "data")?;
        need(len, "len")?;
        let ptr = if m.payload.is_empty() {
            [0u8; 0].as_ptr()
        } else {
            m.payload.as_ptr()
        };
        put(data, ptr, "data")?;
        put(len, m.payload.len(), "len")
    })
}

/// The message's scalar fields, copied into `*info`.
///
/// # Safety
/// `msg` must be NULL or a live message; `info` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_message_get_info(
    msg: *const mq_message,
    info: *mut mq_message_info,
) -> mq_result {
    on(unsafe { handle(msg) }, |m| unsafe {
        put(info, m.info, "info")
    })
}

/// Header number `index` (0-based, in the order the publisher added them):
/// its key and value, owned by the message, in `*header`. `MQ_ERR_NOT_FOUND`
/// when `index >= header_count`.
///
/// # Safety
/// `msg` must be NULL or a live message; `header` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_message_header(
    msg: *const mq_message,
    index: usize,
    header: *mut mq_header,
) -> mq_result {
    on(unsafe { handle(msg) }, |m| unsafe {
        need(header, "header")?;
        let (key, value) = m.headers.get(index).ok_or_else(|| {
            Fail::new(
                mq_result::MQ_ERR_NOT_FOUND,
                format!("no header {index}: the message has {}", m.headers.len()),
            )
        })?;
        put(header, header_of(key, value), "header")
    })
}

fn header_of(key: &CString, value: &Bytes) -> mq_header {
    mq_header {
        key: key.as_ptr(),
        value: value.as_ptr(),
        value_len: value.len(),
    }
}

/// The first header named `key`, in `*header` (owned by the message).
/// `MQ_ERR_NOT_FOUND` when there is none.
///
/// # Safety
/// `msg` must be NULL or a live message; `key` NULL or NUL-terminated;
/// `header` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_message_find_header(
    msg: *const mq_message,
    key: *const c_char,
    header: *mut mq_header,
) -> mq_result {
    on(unsafe { handle(msg) }, |m| unsafe {
        let key = str_arg(key, "key")?;
        need(header, "header")?;
        let (k, v) = m
            .headers
            .iter()
            .find(|(k, _)| k.as_bytes() == key.as_bytes())
            .ok_or_else(|| Fail::new(mq_result::MQ_ERR_NOT_FOUND, format!("no header {key:?}")))?;
        put(header, header_of(k, v), "header")
    })
}

/// Acknowledges the message: the broker forgets it. Succeeds and does nothing
/// else for QoS 0. `MQ_ERR_INVALID` when it was already acked or nacked,
/// `MQ_ERR_CLOSED` when its client is closed (the broker then redelivers it).
///
/// # Safety
/// `msg` must be NULL or a live message.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_message_ack(msg: *const mq_message) -> mq_result {
    on(unsafe { handle(msg) }, |m| m.settle(Message::ack))
}

/// Refuses the message: with `requeue` the broker delivers it again (maybe to
/// another group member) after its redelivery backoff; without, it goes to the
/// dead-letter topic `$dlq.<topic>`. Errors as `mq_message_ack`.
///
/// # Safety
/// `msg` must be NULL or a live message.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_message_nack(msg: *const mq_message, requeue: bool) -> mq_result {
    on(unsafe { handle(msg) }, |m| {
        m.settle(|msg| msg.nack(requeue))
    })
}

/// The text of the message's last failure; as `mq_client_error`.
///
/// # Safety
/// `msg` must be NULL or a live message; `buf` NULL or valid for `cap` bytes;
/// `len` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_message_error(
    msg: *const mq_message,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> mq_result {
    unsafe { error_of(msg, buf, cap, len) }
}

/// Frees a message from `mq_subscription_recv`; a QoS 1 message not acked or
/// nacked is nacked for redelivery. NULL is fine. Never call it on the
/// message a listener's callback borrows.
///
/// # Safety
/// `msg` must be NULL or a live message from `mq_subscription_recv` that no
/// other thread uses during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_message_free(msg: *mut mq_message) {
    if !msg.is_null() {
        let msg = unsafe { Box::from_raw(msg) };
        let _ = guard(|| {
            drop(msg);
            Ok(())
        });
    }
}

impl KeepsError for mq_message {
    fn last_error(&self) -> &LastError {
        &self.error
    }
}
