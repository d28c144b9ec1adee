//! Queued publishes: `mq_client_enqueue` returns once a message is queued,
//! with an `mq_receipt` that says when the broker stored it. A QoS 1
//! publisher keeps many messages in flight from one thread this way, instead
//! of waiting for each acknowledgement in turn.

use std::ffi::c_char;
use std::time::Duration;

use ::mq_client::blocking::Receipt;

use crate::client::{mq_client, mq_puback, mq_publish_options, publish_args, write_ack};
use crate::error::*;
use crate::subscription::MQ_WAIT_FOREVER;

/// A queued publish's outcome (`mq_client_enqueue`). Owned by the caller:
/// free it with `mq_receipt_free` (waiting is not required; the message is
/// published either way). One thread at a time.
pub struct mq_receipt {
    receipt: Receipt,
    error: LastError,
}

impl KeepsError for mq_receipt {
    fn last_error(&self) -> &LastError {
        &self.error
    }
}

/// Queues `len` bytes at `payload` for publishing to `topic` and returns once
/// queued: it blocks only while the client's room for queued publishes
/// (`outbox_bytes`) is used up, up to `opts->timeout_ms` if set. `*out`
/// receives a receipt to wait on with `mq_receipt_wait` (for QoS 0 it answers
/// at once). Messages are sent in the order they were queued. The payload is
/// copied.
///
/// # Safety
/// `client` must be NULL or a live client; `topic` NULL or NUL-terminated;
/// `payload` valid for `len` bytes (NULL allowed when `len` is 0); `opts` NULL
/// or valid for reads (and its headers likewise); `out` valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_client_enqueue(
    client: *const mq_client,
    topic: *const c_char,
    payload: *const u8,
    len: usize,
    opts: *const mq_publish_options,
    out: *mut *mut mq_receipt,
) -> mq_result {
    on(unsafe { handle(client) }, |client| {
        if out.is_null() {
            return Err(Fail::null("out"));
        }
        let (topic, payload, opts, timeout) = unsafe { publish_args(topic, payload, len, opts) }?;
        let conn = client.connected()?;
        let receipt = match timeout {
            Some(t) => conn.enqueue_timeout(topic, payload, &opts, t),
            None => conn.enqueue(topic, payload, &opts),
        }?;
        let receipt = Box::new(mq_receipt {
            receipt,
            error: LastError::default(),
        });
        unsafe { put(out, Box::into_raw(receipt), "out") }
    })
}

/// Blocks until the broker stored the queued message (QoS 1; at once for QoS
/// 0), up to `timeout_ms` (`MQ_WAIT_FOREVER`: as long as it takes). `ack` (may
/// be NULL) receives the broker's answer. `MQ_ERR_TIMEOUT` leaves the receipt
/// waiting (call again); a receipt answers once.
///
/// # Safety
/// `receipt` must be NULL or a live receipt; `ack` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_receipt_wait(
    receipt: *const mq_receipt,
    timeout_ms: u32,
    ack: *mut mq_puback,
) -> mq_result {
    on(unsafe { handle(receipt) }, |r| {
        let answer = if timeout_ms == MQ_WAIT_FOREVER {
            r.receipt.wait_forever()
        } else {
            r.receipt
                .wait_timeout(Duration::from_millis(timeout_ms.into()))
        }?;
        unsafe { write_ack(ack, answer) };
        Ok(())
    })
}

/// Frees a receipt. NULL is fine. The message is published regardless.
///
/// # Safety
/// `receipt` must be NULL or a live receipt that no other thread uses during
/// or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_receipt_free(receipt: *mut mq_receipt) {
    if !receipt.is_null() {
        let receipt = unsafe { Box::from_raw(receipt) };
        let _ = guard(|| {
            drop(receipt);
            Ok(())
        });
    }
}

/// The text of the receipt's last failure; as `mq_client_error`.
///
/// # Safety
/// `receipt` must be NULL or a live receipt; `buf` NULL or valid for `cap`
/// bytes; `len` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_receipt_error(
    receipt: *const mq_receipt,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> mq_result {
    unsafe { error_of(receipt, buf, cap, len) }
}
