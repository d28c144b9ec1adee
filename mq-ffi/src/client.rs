//! `mq_client`: a connection to a broker. Made unconnected by `mq_client_new`,
//! connected with `mq_client_connect`, closed by `mq_client_close` (it may then
//! connect again) or `mq_client_free`.

use std::ffi::c_char;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use ::mq_client::blocking::{Client, ClientOptions, PubAck, PublishOptions, QoS, SessionMode};
use ::mq_client::tls::TlsOptions;

use crate::error::*;

/// A connection to a broker (opaque). Thread-safe: every function taking a
/// `mq_client *` may be called from any thread, concurrently, except
/// `mq_client_free`, which must be the last call on it.
pub struct mq_client {
    conn: RwLock<Option<Client>>,
    pub(crate) error: LastError,
}

impl mq_client {
    /// The connection, or `MQ_ERR_CLOSED` when there is none.
    pub(crate) fn connected(&self) -> Result<Client, Fail> {
        self.conn
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| Fail::new(mq_result::MQ_ERR_CLOSED, "the client is not connected"))
    }

    /// Makes the connection with `connect` unless there is one already
    /// (`MQ_ERR_INVALID`).
    pub(crate) fn attach(
        &self,
        connect: impl FnOnce() -> Result<Client, Fail>,
    ) -> Result<(), Fail> {
        let mut conn = self.conn.write().unwrap_or_else(PoisonError::into_inner);
        if conn.is_some() {
            return Err(Fail::invalid(
                "the client is already connected (close it first)",
            ));
        }
        *conn = Some(connect()?);
        Ok(())
    }
}

/// Delivery guarantee of a publish or a subscription (a value of
/// `mq_*_options.qos`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum mq_qos {
    /// At most once: no acknowledgement, no redelivery.
    MQ_QOS_AT_MOST_ONCE = 0,
    /// At least once: stored by the broker before acknowledged, redelivered
    /// until acked.
    MQ_QOS_AT_LEAST_ONCE = 1,
}

pub(crate) fn qos_arg(value: u32) -> Result<QoS, Fail> {
    match value {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        other => Err(Fail::invalid(format!(
            "qos {other} is neither MQ_QOS_AT_MOST_ONCE (0) nor MQ_QOS_AT_LEAST_ONCE (1)"
        ))),
    }
}

pub(crate) fn qos_value(qos: QoS) -> u32 {
    match qos {
        QoS::AtMostOnce => mq_qos::MQ_QOS_AT_MOST_ONCE as u32,
        QoS::AtLeastOnce => mq_qos::MQ_QOS_AT_LEAST_ONCE as u32,
    }
}

/// How to connect. Fill it with `mq_connect_options_init`, then set fields.
/// The strings are borrowed for the duration of `mq_client_connect` only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct mq_connect_options {
    /// The broker's address, `host:port`. Required.
    pub address: *const c_char,
    /// The client's identity (at most 64 bytes), which keys the broker's
    /// session. NULL: a random one.
    pub client_id: *const c_char,
    /// Auth token. NULL: none.
    pub token: *const c_char,
    /// Resume the broker's stored session for `client_id` and keep it across
    /// disconnects (subscriptions, cursors, unacked deliveries); false: start a
    /// clean session that ends with the connection.
    pub persistent_session: bool,
    /// Time from starting the connection to the broker's welcome, in ms.
    /// 0: the default (10 s).
    pub connect_timeout_ms: u32,
    /// Keepalive interval in ms. 0: the default (15 s).
    pub keepalive_ms: u32,
    /// Credit of a subscription whose options name none: deliveries it may
    /// have outstanding. 0: the default (64).
    pub credit: u32,
    /// Speak TLS, verifying the broker's certificate against `tls_ca` and the
    /// host of `address` (or `tls_server_name`). Setting `tls_ca`,
    /// `tls_cert` or `tls_key` implies it.
    pub tls: bool,
    /// PEM file with the CA certificate(s) the broker's certificate must
    /// chain to. Required for TLS. NULL: none.
    pub tls_ca: *const c_char,
    /// PEM file with the client's certificate chain, for mutual TLS (with
    /// `tls_key`). NULL: none.
    pub tls_cert: *const c_char,
    /// PEM file with the private key of `tls_cert`. NULL: none.
    pub tls_key: *const c_char,
    /// The name the broker's certificate must carry. NULL: the host of
    /// `address`.
    pub tls_server_name: *const c_char,
}

/// Fills `*opts` with the defaults: no address (required), a random client id,
/// no token, a clean session, default timeouts and credit, no TLS.
///
/// # Safety
/// `opts` must be NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_connect_options_init(opts: *mut mq_connect_options) -> mq_result {
    run_bare(|| unsafe {
        put(
            opts,
            mq_connect_options {
                address: std::ptr::null(),
                client_id: std::ptr::null(),
                token: std::ptr::null(),
                persistent_session: false,
                connect_timeout_ms: 0,
                keepalive_ms: 0,
                credit: 0,
                tls: false,
                tls_ca: std::ptr::null(),
                tls_cert: std::ptr::null(),
                tls_key: std::ptr::null(),
                tls_server_name: std::ptr::null(),
            },
            "opts",
        )
    })
}

impl mq_connect_options {
    /// The Rust options these describe.
    unsafe fn to_options(self) -> Result<ClientOptions, Fail> {
        let address = unsafe { str_arg(self.address, "opts->address") }?;
        let mut opts = ClientOptions::new(address);
        if let Some(id) = unsafe { opt_str_arg(self.client_id, "opts->client_id") }? {
            opts.client_id = id.to_string();
        }
        opts.token = unsafe { opt_str_arg(self.token, "opts->token") }?.map(str::to_string);
        if self.persistent_session {
            opts.session = SessionMode::Resume;
        }
        if self.connect_timeout_ms > 0 {
            opts.connect_timeout = Duration::from_millis(self.connect_timeout_ms.into());
        }
        if self.keepalive_ms > 0 {
            opts.keepalive = Duration::from_millis(self.keepalive_ms.into());
        }
        if self.credit > 0 {
            opts.credit = self.credit;
        }
        let path = |p: *const c_char, what| {
            unsafe { opt_str_arg(p, what) }.map(|p| p.map(std::path::PathBuf::from))
        };
        let ca = path(self.tls_ca, "opts->tls_ca")?;
        let cert = path(self.tls_cert, "opts->tls_cert")?;
        let key = path(self.tls_key, "opts->tls_key")?;
        let name = unsafe { opt_str_arg(self.tls_server_name, "opts->tls_server_name") }?;
        if self.tls || ca.is_some() || cert.is_some() || key.is_some() {
            let mut tls = TlsOptions::default();
            tls.ca = ca;
            tls.cert = cert;
            tls.key = key;
            tls.server_name = name.map(str::to_string);
            opts.tls = Some(tls);
        }
        Ok(opts)
    }
}

/// Makes an unconnected client and stores it in `*out`. Free it with
/// `mq_client_free`.
///
/// # Safety
/// `out` must be NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_client_new(out: *mut *mut mq_client) -> mq_result {
    run_bare(|| {
        need(out, "out")?;
        let client = Box::new(mq_client {
            conn: RwLock::new(None),
            error: LastError::default(),
        });
        unsafe { put(out, Box::into_raw(client), "out") }
    })
}

/// Closes the connection if there is one and frees the client. NULL is fine.
/// Subscriptions, listeners and messages of this client stay valid handles
/// (and must still be freed); they report `MQ_ERR_CLOSED` from then on.
///
/// # Safety
/// `client` must be NULL or a client from `mq_client_new` not freed yet, and no
/// other thread may use it during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_client_free(client: *mut mq_client) {
    if client.is_null() {
        return;
    }
    let client = unsafe { Box::from_raw(client) };
    let _ = guard(|| {
        if let Some(c) = client
            .conn
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            c.close();
        }
        drop(client);
        Ok(())
    });
}

/// Connects to a broker and blocks until it welcomes the client (at most the
/// connect timeout). Fails with `MQ_ERR_IO` when the address does not resolve
/// or nothing listens or the TLS handshake fails (an unknown CA, the wrong
/// server name, a refused client certificate: the error text says which),
/// `MQ_ERR_REFUSED` when the broker refuses (wrong token, unknown identity),
/// `MQ_ERR_INVALID` for bad options (TLS files missing or not PEM, no CA) or a
/// client that is already connected.
/// Once connected, the client reconnects on its own after a lost connection.
///
/// # Safety
/// `client` must be NULL or a live client; `opts` NULL or valid for reads, with
/// its strings NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_client_connect(
    client: *const mq_client,
    opts: *const mq_connect_options,
) -> mq_result {
    on(unsafe { handle(client) }, |client| {
        let opts = unsafe { handle(opts) }.ok_or_else(|| Fail::null("opts"))?;
        let opts = unsafe { opts.to_options() }?;
        client.attach(|| Ok(Client::connect(opts)?))
    })
}

/// Closes the connection: tells the broker, waits until that is written, ends
/// every subscription of the client. Pending publishes on other threads fail
/// with `MQ_ERR_CLOSED`. The client may connect again. Closing a client that is
/// not connected succeeds and does nothing.
///
/// # Safety
/// `client` must be NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_client_close(client: *const mq_client) -> mq_result {
    on(unsafe { handle(client) }, |client| {
        let conn = client
            .conn
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(c) = conn {
            c.close();
        }
        Ok(())
    })
}

/// Copies the text of the client's last failure (empty if none yet) and a NUL
/// into `buf` of `cap` bytes; its length without the NUL goes to `*len` (if
/// `len` is not NULL). `MQ_ERR_BUFFER_TOO_SMALL` when `cap <= *len`: the buffer
/// is untouched; call again with `*len + 1` bytes. `buf` may be NULL when `cap`
/// is 0 (to ask for the length). Reading the text never changes it. With
/// several threads on one client, the text is that of the most recent failure
/// of any of them.
///
/// # Safety
/// `client` must be NULL or a live client; `buf` NULL or valid for `cap` bytes;
/// `len` NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_client_error(
    client: *const mq_client,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> mq_result {
    unsafe { error_of(client, buf, cap, len) }
}

/// One application header of a message: a key of 1 to 255 bytes of UTF-8 and
/// a value of any bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct mq_header {
    /// NUL-terminated UTF-8.
    pub key: *const c_char,
    /// `value_len` bytes; may be NULL when `value_len` is 0.
    pub value: *const u8,
    /// The value's length in bytes.
    pub value_len: usize,
}

/// How to publish. Fill it with `mq_publish_options_init`, then set fields;
/// passing NULL instead means the defaults. Borrowed for the call only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct mq_publish_options {
    /// An `mq_qos`. Default `MQ_QOS_AT_LEAST_ONCE`: the call returns once the
    /// broker stored the message. `MQ_QOS_AT_MOST_ONCE`: once it is queued.
    pub qos: u32,
    /// Time to live in ms from when the broker accepts it. 0: none.
    pub ttl_ms: u32,
    /// `header_count` headers; may be NULL when `header_count` is 0.
    pub headers: *const mq_header,
    /// How many headers `headers` points to.
    pub header_count: usize,
    /// Give up after this many ms with `MQ_ERR_TIMEOUT` (a message still
    /// waiting for outbox room is then not sent; one already queued may still
    /// be stored). 0: wait as long as it takes.
    pub timeout_ms: u32,
    /// 0 to 255: higher is delivered first among the messages waiting in a
    /// subscription's queue. Default 0.
    pub priority: u8,
}

/// Fills `*opts` with the defaults: QoS 1, no TTL, no headers, no timeout.
///
/// # Safety
/// `opts` must be NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_publish_options_init(opts: *mut mq_publish_options) -> mq_result {
    run_bare(|| unsafe {
        put(
            opts,
            mq_publish_options {
                qos: mq_qos::MQ_QOS_AT_LEAST_ONCE as u32,
                ttl_ms: 0,
                headers: std::ptr::null(),
                header_count: 0,
                timeout_ms: 0,
                priority: 0,
            },
            "opts",
        )
    })
}

/// What the broker answered to a publish.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct mq_puback {
    /// Whether `seq` holds a sequence number (QoS 1); QoS 0 publishes are not
    /// acknowledged by the broker.
    pub has_seq: bool,
    /// The per-topic sequence number the broker gave the message.
    pub seq: u64,
    /// The broker had already stored this message (a resend after a
    /// reconnect) and did not store it again.
    pub duplicate: bool,
}

impl mq_publish_options {
    unsafe fn to_options(self) -> Result<(PublishOptions, Option<Duration>), Fail> {
        let mut opts = PublishOptions::new(qos_arg(self.qos)?);
        if self.ttl_ms > 0 {
            opts.ttl = Some(Duration::from_millis(self.ttl_ms.into()));
        }
        opts.priority = self.priority;
        if self.header_count > 0 && self.headers.is_null() {
            return Err(Fail::null("opts->headers"));
        }
        if self.header_count > 0 {
            let headers = unsafe { std::slice::from_raw_parts(self.headers, self.header_count) };
            for (i, h) in headers.iter().enumerate() {
                let key = unsafe { str_arg(h.key, &format!("opts->headers[{i}].key")) }?;
                let value = unsafe {
                    bytes_arg(h.value, h.value_len, &format!("opts->headers[{i}].value"))
                }?;
                opts.headers.push((key.to_string(), value.to_vec().into()));
            }
        }
        let timeout = (self.timeout_ms > 0).then(|| Duration::from_millis(self.timeout_ms.into()));
        Ok((opts, timeout))
    }
}

/// Publishes `len` bytes at `payload` to `topic` and blocks until the broker
/// stored it (QoS 1, across reconnects) or it is queued (QoS 0). The payload
/// is copied; nothing is kept after the call. `ack` (may be NULL) receives the
/// broker's answer.
///
/// # Safety
/// `client` must be NULL or a live client; `topic` NULL or NUL-terminated;
/// `payload` valid for `len` bytes (NULL allowed when `len` is 0); `opts` NULL
/// or valid for reads (and its headers likewise); `ack` NULL or valid for one
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_client_publish(
    client: *const mq_client,
    topic: *const c_char,
    payload: *const u8,
    len: usize,
    opts: *const mq_publish_options,
    ack: *mut mq_puback,
) -> mq_result {
    on(unsafe { handle(client) }, |client| {
        let (topic, payload, opts, timeout) = unsafe { publish_args(topic, payload, len, opts) }?;
        let conn = client.connected()?;
        let answer = match timeout {
            Some(t) => conn.publish_timeout(topic, payload, &opts, t),
            None => conn.publish(topic, payload, &opts),
        }?;
        unsafe { write_ack(ack, answer) };
        Ok(())
    })
}

/// A publish's arguments, checked and copied: topic, payload, options and the
/// options' timeout.
pub(crate) type PublishArgs<'a> = (&'a str, Vec<u8>, PublishOptions, Option<Duration>);

/// Reads a publish's arguments ([`PublishArgs`]).
///
/// # Safety
/// As [`mq_client_publish`]'s.
pub(crate) unsafe fn publish_args<'a>(
    topic: *const c_char,
    payload: *const u8,
    len: usize,
    opts: *const mq_publish_options,
) -> Result<PublishArgs<'a>, Fail> {
    let topic = unsafe { str_arg(topic, "topic") }?;
    let payload = unsafe { bytes_arg(payload, len, "payload") }?.to_vec();
    let (opts, timeout) = match unsafe { handle(opts) } {
        Some(o) => unsafe { o.to_options() }?,
        None => (PublishOptions::default(), None),
    };
    Ok((topic, payload, opts, timeout))
}

/// Writes the broker's answer to `ack` unless it is NULL.
///
/// # Safety
/// `ack` must be NULL or valid for one write.
pub(crate) unsafe fn write_ack(ack: *mut mq_puback, answer: PubAck) {
    if !ack.is_null() {
        let value = mq_puback {
            has_seq: answer.seq.is_some(),
            seq: answer.seq.unwrap_or(0),
            duplicate: answer.duplicate,
        };
        unsafe { ack.write(value) };
    }
}

impl KeepsError for mq_client {
    fn last_error(&self) -> &LastError {
        &self.error
    }
}
