"""mq from Python: a client of the mq message broker over mq-ffi's C ABI.

>>> import mq
>>> with mq.Client("127.0.0.1:7410") as client:          # doctest: +SKIP
...     with client.subscribe("jobs", group="workers") as jobs:
...         client.publish("jobs", b"resize 42", headers={"kind": "image"})
...         for msg in jobs:
...             print(msg.topic, msg.payload, msg.headers)
...             msg.ack()
...             break

With no broker at all, :class:`Peer` runs a mesh node in this process (a
desktop peer): other processes' peers reach it directly, and
:meth:`Peer.client` hands out ordinary clients of it.

Every call blocks only its own thread (the GIL is released while the library
waits). Failures raise :class:`MqError`, whose ``code`` is the C result code.
The shared library is found as described in :mod:`mq._lib` (``MQ_LIB`` first).
"""

from __future__ import annotations

import ctypes
import enum
import os
import threading
from contextlib import contextmanager
from ctypes import byref, c_char_p, c_size_t, c_uint8, c_void_p
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from . import _lib
from ._lib import lib

__all__ = [
    "Client",
    "Listener",
    "Message",
    "MqError",
    "Peer",
    "PubAck",
    "QoS",
    "Receipt",
    "Start",
    "Subscription",
]

Bytes = Union[bytes, bytearray, memoryview, str]
Headers = Union[Mapping[str, Bytes], Sequence[Tuple[str, Bytes]]]


class QoS(enum.IntEnum):
    """Delivery guarantee."""

    AT_MOST_ONCE = 0
    AT_LEAST_ONCE = 1


class MqError(Exception):
    """A failed call: ``code`` is the C result code, ``name`` its name
    (``"MQ_ERR_REFUSED"``), the message the handle's error text."""

    def __init__(self, code: int, text: str) -> None:
        self.code = code
        self.name = lib().mq_result_name(code).decode()
        super().__init__(f"{self.name}: {text}" if text else self.name)


@dataclass(frozen=True)
class PubAck:
    """The broker's answer to a publish."""

    seq: Optional[int]
    """The message's per-topic sequence number; None for QoS 0."""
    duplicate: bool
    """The broker had stored this message already."""


@dataclass(frozen=True)
class Start:
    """Where a subscription starts reading."""

    kind: int
    at: int = 0

    @staticmethod
    def new() -> "Start":
        """Only messages published from now on (the default)."""
        return Start(0)

    @staticmethod
    def seq(seq: int) -> "Start":
        """From this per-topic sequence number on."""
        return Start(1, seq)

    @staticmethod
    def last(n: int) -> "Start":
        """The last ``n`` retained messages of each topic, then new ones."""
        return Start(2, n)

    @staticmethod
    def cursor() -> "Start":
        """Where this persistent session's cursor points."""
        return Start(3)


def _check(code: int, getter=None, handle=None) -> None:
    if code != _lib.MQ_OK:
        text = _lib.error_text(getter, handle) if getter and handle else ""
        raise MqError(code, text)


def _bytes(value: Bytes) -> bytes:
    if isinstance(value, str):
        return value.encode()
    return bytes(value)


def _millis(seconds: Optional[float]) -> int:
    """Seconds as the C side's milliseconds: None and 0 are 0, anything
    positive at least 1."""
    if seconds is None or seconds == 0:
        return 0
    if seconds < 0:
        raise ValueError("a time must not be negative")
    return max(1, min(int(seconds * 1000), _lib.MQ_WAIT_FOREVER - 1))


def _c_str(value: Optional[str]) -> Optional[bytes]:
    return None if value is None else value.encode()


def _keep(_handle: int) -> None:
    """The "free" of a handle the library owns."""


class _Handle:
    """A C handle that threads share: each call holds it in use, and closing
    waits for the calls in flight before freeing it (a free must be the last
    call on a handle). ``interrupt`` (safe to call concurrently, such as
    ``mq_client_close``) makes blocked calls return first."""

    def __init__(self, ptr: int, free, interrupt=None, what: str = "handle") -> None:
        self._ptr: Optional[int] = ptr
        self._free = free
        self._interrupt = interrupt
        self._what = what
        self._users = 0
        self._cond = threading.Condition()

    @contextmanager
    def use(self) -> Iterator[int]:
        with self._cond:
            if self._ptr is None:
                raise MqError(_lib.MQ_ERR_CLOSED, f"the {self._what} is closed")
            ptr = self._ptr
            self._users += 1
        try:
            yield ptr
        finally:
            with self._cond:
                self._users -= 1
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            ptr, self._ptr = self._ptr, None
        if ptr is None:
            return
        if self._interrupt is not None:
            self._interrupt(ptr)
        with self._cond:
            self._cond.wait_for(lambda: self._users == 0)
        self._free(ptr)


class _Publish:
    """A publish's arguments as the C side takes them (kept alive for the
    call)."""

    def __init__(self, topic, payload, qos, ttl, headers, timeout, priority) -> None:
        data = _bytes(payload)
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers or [])
        self._keys = [k.encode() for k, _ in pairs]
        self._values = [_bytes(v) for _, v in pairs]
        self._headers = (_lib.Header * len(pairs))()
        for i, (k, v) in enumerate(zip(self._keys, self._values)):
            self._headers[i].key = k
            self._headers[i].value = ctypes.cast(c_char_p(v), ctypes.POINTER(c_uint8))
            self._headers[i].value_len = len(v)
        self.opts = _lib.PublishOptions()
        _check(lib().mq_publish_options_init(byref(self.opts)))
        self.opts.qos = int(qos)
        self.opts.ttl_ms = _millis(ttl)
        self.opts.headers = self._headers
        self.opts.header_count = len(pairs)
        self.opts.timeout_ms = _millis(timeout)
        self.opts.priority = priority
        self.topic = topic.encode()
        self.len = len(data)
        self.buf = (c_uint8 * len(data)).from_buffer_copy(data) if data else None


class Receipt:
    """A queued publish's outcome (:meth:`Client.enqueue`). The message is
    published whether or not anyone waits."""

    def __init__(self, ptr: int) -> None:
        self._handle = _Handle(ptr, lib().mq_receipt_free, None, "receipt")

    def wait(self, timeout: Optional[float] = None) -> PubAck:
        """Block until the broker stored the message (QoS 1; at once for
        QoS 0), up to ``timeout`` seconds (None: as long as it takes; a
        timeout raises MQ_ERR_TIMEOUT and the receipt stays waiting). A
        receipt answers once."""
        wait_ms = _lib.MQ_WAIT_FOREVER if timeout is None else _millis(timeout)
        ack = _lib.PubAck()
        with self._handle.use() as handle:
            code = lib().mq_receipt_wait(handle, wait_ms, byref(ack))
            _check(code, lib().mq_receipt_error, handle)
        return PubAck(ack.seq if ack.has_seq else None, bool(ack.duplicate))

    def close(self) -> None:
        """Free the receipt (the message is published regardless)."""
        self._handle.close()

    def __enter__(self) -> "Receipt":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class Message:
    """A received message. Its fields are copied into Python objects when it
    arrives; the C handle is kept only to settle it. A QoS 1 message must be
    settled with :meth:`ack` or :meth:`nack`; one that is garbage-collected (or
    :meth:`close`-d) unsettled is redelivered."""

    topic: str
    payload: bytes
    seq: int
    attempt: int
    qos: QoS
    ttl: Optional[float]
    """Time to live the publisher set, in seconds."""
    headers: List[Tuple[str, bytes]]
    needs_ack: bool
    """Whether it arrived waiting for an ack (QoS 1)."""

    def __init__(self, handle: int, owned: bool) -> None:
        lb = lib()
        # Lent messages (a listener's) are freed by the library.
        self._handle = _Handle(handle, lb.mq_message_free if owned else _keep, what="message")
        topic = c_char_p()
        _check(lb.mq_message_topic(handle, byref(topic)), lb.mq_message_error, handle)
        self.topic = (topic.value or b"").decode()
        data = ctypes.POINTER(c_uint8)()
        size = c_size_t()
        _check(lb.mq_message_payload(handle, byref(data), byref(size)), lb.mq_message_error, handle)
        self.payload = ctypes.string_at(data, size.value)
        info = _lib.MessageInfo()
        _check(lb.mq_message_get_info(handle, byref(info)), lb.mq_message_error, handle)
        self.seq = info.seq
        self.attempt = info.attempt
        self.qos = QoS(info.qos)
        self.ttl = info.ttl_ms / 1000 if info.ttl_ms else None
        self.needs_ack = bool(info.needs_ack)
        self.priority = info.priority
        self.headers = []
        header = _lib.Header()
        for i in range(info.header_count):
            _check(lb.mq_message_header(handle, i, byref(header)), lb.mq_message_error, handle)
            value = ctypes.string_at(header.value, header.value_len)
            self.headers.append((header.key.decode(), value))

    def header(self, key: str) -> Optional[bytes]:
        """The value of the first header named ``key``."""
        return next((v for k, v in self.headers if k == key), None)

    def ack(self) -> None:
        """Acknowledge: the broker forgets the message."""
        with self._handle.use() as handle:
            _check(lib().mq_message_ack(handle), lib().mq_message_error, handle)

    def nack(self, requeue: bool = True) -> None:
        """Refuse: redeliver it (``requeue``) or send it to ``$dlq.<topic>``."""
        with self._handle.use() as handle:
            _check(lib().mq_message_nack(handle, requeue), lib().mq_message_error, handle)

    def close(self) -> None:
        """Free the C handle now (an unsettled QoS 1 message is redelivered)."""
        self._handle.close()

    def __del__(self) -> None:
        if hasattr(self, "_handle"):
            self.close()

    def __enter__(self) -> "Message":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Message(topic={self.topic!r}, payload={self.payload!r}, seq={self.seq}, "
            f"attempt={self.attempt}, headers={self.headers!r})"
        )


class Subscription:
    """Messages of one subscription: iterate over it (blocks for each message,
    ends when the subscription does) or call :meth:`recv` with a timeout.
    Closing it (or leaving its ``with`` block) unsubscribes."""

    def __init__(self, handle: int) -> None:
        self._handle = _Handle(handle, lib().mq_subscription_free, what="subscription")

    def recv(self, timeout: Optional[float] = None) -> Optional[Message]:
        """The next message, or None when none arrived within ``timeout``
        seconds (None: wait as long as it takes). Raises :class:`MqError`
        (``MQ_ERR_CLOSED``) once the subscription ended."""
        if timeout is None:
            while True:
                # Short waits keep Ctrl-C working.
                msg = self._recv_ms(250)
                if msg is not None:
                    return msg
        return self._recv_ms(_millis(timeout))

    def _recv_ms(self, ms: int) -> Optional[Message]:
        with self._handle.use() as handle:
            out = c_void_p()
            code = lib().mq_subscription_recv(handle, ms, byref(out))
            if code == _lib.MQ_ERR_TIMEOUT:
                return None
            _check(code, lib().mq_subscription_error, handle)
        return Message(out.value, owned=True)

    def __iter__(self) -> Iterator[Message]:
        return self

    def __next__(self) -> Message:
        try:
            return self.recv()  # type: ignore[return-value]
        except MqError as e:
            if e.code == _lib.MQ_ERR_CLOSED:
                raise StopIteration from None
            raise

    def close(self) -> None:
        """Unsubscribe (messages it still buffered are redelivered). From
        another thread, it waits for a receive in progress to return (at most
        its timeout, or 250 ms when it has none)."""
        self._handle.close()

    def __del__(self) -> None:
        if hasattr(self, "_handle"):
            self.close()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Listener:
    """A subscription whose messages go to a callback, on a thread of the
    library's. Closing it unsubscribes and waits for a running callback. Keep
    a reference (or a ``with`` block) while messages should flow: once the
    listener is garbage-collected it is closed."""

    def __init__(self, callback: Callable[[Message], None]) -> None:
        self._callback = callback
        self._handle: Optional[int] = None

        def trampoline(_user_data: Optional[int], msg: Optional[int]) -> None:
            if msg is None:
                return
            message = Message(msg, owned=False)
            try:
                self._callback(message)
            finally:
                message.close()  # lent for this call only

        # Kept alive as long as the listener: the library calls it.
        self._c_callback = _lib.MESSAGE_CALLBACK(trampoline)

    def close(self) -> None:
        """Unsubscribe; no callback starts after this returns."""
        handle, self._handle = self._handle, None
        if handle is not None:
            lib().mq_listener_free(handle)

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _subscribe_options(
    group: Optional[str], start: Start, qos: QoS, credit: int
) -> Tuple[_lib.SubscribeOptions, Optional[bytes]]:
    opts = _lib.SubscribeOptions()
    _check(lib().mq_subscribe_options_init(byref(opts)))
    group_bytes = _c_str(group)
    opts.group = group_bytes
    opts.start = start.kind
    opts.start_at = start.at
    opts.qos = int(qos)
    opts.credit = credit
    return opts, group_bytes


class Client:
    """A connection to an mq broker, made by the constructor. Use it as a
    context manager, or call :meth:`close`. Safe to share between threads.

    TLS: ``tls_ca`` (a PEM file of the CA the broker's certificate chains to)
    turns it on, with the broker's name verified against the host of
    ``address`` (or ``tls_server_name``); ``tls_cert`` and ``tls_key`` add a
    client certificate (mutual TLS). A failed handshake raises
    :class:`MqError` with ``MQ_ERR_IO`` and rustls' reason in its text."""

    def __init__(
        self,
        address: str,
        *,
        client_id: Optional[str] = None,
        token: Optional[str] = None,
        persistent_session: bool = False,
        connect_timeout: Optional[float] = None,
        keepalive: Optional[float] = None,
        credit: int = 0,
        tls: bool = False,
        tls_ca: Optional[str] = None,
        tls_cert: Optional[str] = None,
        tls_key: Optional[str] = None,
        tls_server_name: Optional[str] = None,
    ) -> None:
        lb = lib()
        handle = c_void_p()
        _check(lb.mq_client_new(byref(handle)))
        self._handle = _Handle(handle.value, lb.mq_client_free, lb.mq_client_close, "client")
        opts = _lib.ConnectOptions()
        _check(lb.mq_connect_options_init(byref(opts)))
        opts.address = address.encode()
        opts.client_id = _c_str(client_id)
        opts.token = _c_str(token)
        opts.persistent_session = persistent_session
        opts.connect_timeout_ms = _millis(connect_timeout)
        opts.keepalive_ms = _millis(keepalive)
        opts.credit = credit
        opts.tls = tls
        opts.tls_ca = _c_str(None if tls_ca is None else str(tls_ca))
        opts.tls_cert = _c_str(None if tls_cert is None else str(tls_cert))
        opts.tls_key = _c_str(None if tls_key is None else str(tls_key))
        opts.tls_server_name = _c_str(tls_server_name)
        with self._handle.use() as ptr:
            code = lb.mq_client_connect(ptr, byref(opts))
            text = _lib.error_text(lb.mq_client_error, ptr) if code != _lib.MQ_OK else ""
        if code != _lib.MQ_OK:
            self.close()
            raise MqError(code, text)

    def publish(
        self,
        topic: str,
        payload: Bytes = b"",
        *,
        qos: QoS = QoS.AT_LEAST_ONCE,
        ttl: Optional[float] = None,
        headers: Optional[Headers] = None,
        timeout: Optional[float] = None,
        priority: int = 0,
    ) -> PubAck:
        """Publish and wait until the broker stored the message (QoS 1); a
        QoS 0 publish returns once it is handed to the client's I/O thread.
        ``ttl`` and ``timeout`` are in seconds; ``priority`` (0 to 255):
        higher is delivered first among waiting messages."""
        call = _Publish(topic, payload, qos, ttl, headers, timeout, priority)
        ack = _lib.PubAck()
        with self._handle.use() as handle:
            code = lib().mq_client_publish(
                handle, call.topic, call.buf, call.len, byref(call.opts), byref(ack)
            )
            _check(code, lib().mq_client_error, handle)
        return PubAck(ack.seq if ack.has_seq else None, bool(ack.duplicate))

    def enqueue(
        self,
        topic: str,
        payload: Bytes = b"",
        *,
        qos: QoS = QoS.AT_LEAST_ONCE,
        ttl: Optional[float] = None,
        headers: Optional[Headers] = None,
        timeout: Optional[float] = None,
        priority: int = 0,
    ) -> "Receipt":
        """Queue a message and return once it is queued (waiting, up to
        ``timeout``, only while the client's room for queued publishes is
        used up), with a :class:`Receipt` that says when the broker stored
        it: many QoS 1 publishes in flight from one thread, sent in order."""
        call = _Publish(topic, payload, qos, ttl, headers, timeout, priority)
        out = c_void_p()
        with self._handle.use() as handle:
            code = lib().mq_client_enqueue(
                handle, call.topic, call.buf, call.len, byref(call.opts), byref(out)
            )
            _check(code, lib().mq_client_error, handle)
        return Receipt(out.value)

    def subscribe(
        self,
        filter: str,
        *,
        group: Optional[str] = None,
        start: Start = Start.new(),
        qos: QoS = QoS.AT_LEAST_ONCE,
        credit: int = 0,
    ) -> Subscription:
        """Subscribe to ``filter`` (``*`` one token, ``>`` the rest); iterate
        over the result for the messages. With ``group``, the members of the
        group share the messages."""
        opts, _group = _subscribe_options(group, start, qos, credit)
        out = c_void_p()
        with self._handle.use() as handle:
            code = lib().mq_client_subscribe(handle, filter.encode(), byref(opts), byref(out))
            _check(code, lib().mq_client_error, handle)
        return Subscription(out.value)

    def listen(
        self,
        filter: str,
        callback: Callable[[Message], None],
        *,
        group: Optional[str] = None,
        start: Start = Start.new(),
        qos: QoS = QoS.AT_LEAST_ONCE,
        credit: int = 0,
    ) -> Listener:
        """Subscribe and call ``callback(message)`` for each message, on a
        thread of the library's. The message is valid during the call only:
        ack or nack it there (unsettled QoS 1 messages are redelivered)."""
        opts, _group = _subscribe_options(group, start, qos, credit)
        listener = Listener(callback)
        out = c_void_p()
        with self._handle.use() as handle:
            code = lib().mq_client_subscribe_callback(
                handle, filter.encode(), byref(opts), listener._c_callback, None, byref(out)
            )
            _check(code, lib().mq_client_error, handle)
        listener._handle = out.value
        return listener

    def close(self) -> None:
        """Close the connection. Calls in progress on other threads fail with
        ``MQ_ERR_CLOSED``; subscriptions end; held messages can no longer be
        acked (the broker redelivers them)."""
        self._handle.close()

    def __del__(self) -> None:
        if hasattr(self, "_handle"):
            self.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Peer:
    """A desktop peer with no daemon: a mesh node in this process, on its own
    write-ahead log and listening address, registered in the catalog and
    linked directly to every live peer. The application uses it through
    ordinary :class:`Client` objects (:meth:`client`). Use it as a context
    manager, or call :meth:`close` (which leaves the mesh).

    ``catalog``: ``sqlite:PATH``, ``redis://...`` or ``postgres://...``
    (None: the SQLite file ``mq-mesh.db`` in the temporary directory, shared
    by this machine's peers). ``data_dir``: the log (None: ``mq-peer-<id>``
    in the temporary directory). ``listen``: ``IP:PORT`` (None:
    ``127.0.0.1:0``, a free port). ``advertise``: the address the other
    peers dial (None: the listen address). ``lease`` and ``heartbeat`` in
    seconds (None: 5 and 1); ``call_timeout``, how long one call to the
    catalog may take, in seconds (None: half the lease, at most the lease
    less a heartbeat). Raises :class:`MqError` when the peer cannot
    start (``MQ_ERR_INVALID`` for bad options, ``MQ_ERR_IO`` for the log,
    the address or an unreachable catalog, ``MQ_ERR_REFUSED`` when the
    catalog refuses it)."""

    def __init__(
        self,
        id: str,
        *,
        catalog: Optional[str] = None,
        data_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
        listen: Optional[str] = None,
        advertise: Optional[str] = None,
        lease: Optional[float] = None,
        heartbeat: Optional[float] = None,
        call_timeout: Optional[float] = None,
    ) -> None:
        lb = lib()
        handle = c_void_p()
        _check(lb.mq_peer_new(byref(handle)))
        self._handle = _Handle(handle.value, lb.mq_peer_free, None, "peer")
        opts = _lib.PeerOptions()
        _check(lb.mq_peer_options_init(byref(opts)))
        opts.id = id.encode()
        opts.catalog = _c_str(catalog)
        opts.data_dir = _c_str(None if data_dir is None else str(data_dir))
        opts.listen = _c_str(listen)
        opts.advertise = _c_str(advertise)
        opts.lease_ms = _millis(lease)
        opts.heartbeat_ms = _millis(heartbeat)
        opts.call_timeout_ms = _millis(call_timeout)
        with self._handle.use() as ptr:
            code = lb.mq_peer_start(ptr, byref(opts))
            text = _lib.error_text(lb.mq_peer_error, ptr) if code != _lib.MQ_OK else ""
        if code != _lib.MQ_OK:
            self.close()
            raise MqError(code, text)
        self.id = id
        """The peer's node id."""

    @property
    def address(self) -> str:
        """Where the peer listens (``127.0.0.1:40123``): clients of other
        processes connect there."""
        with self._handle.use() as ptr:
            return _lib.text_of(lib().mq_peer_address, ptr, lib().mq_peer_error)

    def client(self, client_id: str, **options: Any) -> Client:
        """A client of this peer with the persistent session ``client_id``
        (its subscriptions and unacked messages outlive a disconnect). The
        keyword options are :class:`Client`'s (``credit``, ``keepalive``,
        ...)."""
        options.setdefault("persistent_session", True)
        return Client(self.address, client_id=client_id, **options)

    def close(self) -> None:
        """Leave the mesh and stop the peer; its clients' connections close.
        Closing twice does nothing."""
        self._handle.close()

    def __del__(self) -> None:
        if hasattr(self, "_handle"):
            self.close()

    def __enter__(self) -> "Peer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
