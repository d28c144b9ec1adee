"""Loading mq-ffi's shared library and declaring its C functions (ctypes).

The library is looked for, in order:

1. the file named by the environment variable ``MQ_LIB`` (an override);
2. inside this package, in ``mq/mq_ffi/``, where the wheel that maturin
   builds puts it (``libmq_ffi.so`` / ``libmq_ffi.dylib`` / ``mq_ffi.dll``);
3. ``$CARGO_TARGET_DIR/release`` and ``$CARGO_TARGET_DIR/debug``;
4. ``target/release`` and ``target/debug`` in the current directory or any
   directory above it (a checkout where ``cargo build -p mq-ffi`` ran, for
   ``PYTHONPATH=mq-ffi/python`` without installing).

``mq/mq_ffi/`` also holds the cffi declarations maturin generates next to the
library (``__init__.py``, ``ffi.py``); this package does not use them.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_int32,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import List, Optional

if sys.platform == "win32":
    LIBRARY_NAME = "mq_ffi.dll"
elif sys.platform == "darwin":
    LIBRARY_NAME = "libmq_ffi.dylib"
else:
    LIBRARY_NAME = "libmq_ffi.so"


def candidates() -> List[Path]:
    """Where the library is looked for, in order."""
    found: List[Path] = []
    env = os.environ.get("MQ_LIB")
    if env:
        found.append(Path(env))
    found.append(packaged())
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        found += [Path(target) / p / LIBRARY_NAME for p in ("release", "debug")]
    here = Path.cwd().resolve()
    for d in [here, *here.parents]:
        found += [d / "target" / p / LIBRARY_NAME for p in ("release", "debug")]
    return found


def packaged() -> Path:
    """Where an installed wheel keeps the library: ``mq/mq_ffi/``."""
    return Path(__file__).resolve().parent / "mq_ffi" / LIBRARY_NAME


def find_library() -> Path:
    tried = candidates()
    if os.environ.get("MQ_LIB"):
        # An explicit choice is not second-guessed.
        if tried[0].is_file():
            return tried[0]
        raise OSError(f"MQ_LIB={tried[0]} is not a file")
    for path in tried:
        if path.is_file():
            return path
    raise OSError(
        f"mq-ffi's shared library ({LIBRARY_NAME}) was not found. The wheel carries "
        "it (`pip install mq-ffi/python` builds one); in a checkout, build it with "
        "`cargo build -p mq-ffi`; or set MQ_LIB to its path. Looked in: "
        + ", ".join(str(p) for p in tried)
    )


class ConnectOptions(Structure):
    _fields_ = [
        ("address", c_char_p),
        ("client_id", c_char_p),
        ("token", c_char_p),
        ("persistent_session", c_bool),
        ("connect_timeout_ms", c_uint32),
        ("keepalive_ms", c_uint32),
        ("credit", c_uint32),
        ("tls", c_bool),
        ("tls_ca", c_char_p),
        ("tls_cert", c_char_p),
        ("tls_key", c_char_p),
        ("tls_server_name", c_char_p),
    ]


class Header(Structure):
    _fields_ = [
        ("key", c_char_p),
        ("value", POINTER(c_uint8)),
        ("value_len", c_size_t),
    ]


class PublishOptions(Structure):
    _fields_ = [
        ("qos", c_uint32),
        ("ttl_ms", c_uint32),
        ("headers", POINTER(Header)),
        ("header_count", c_size_t),
        ("timeout_ms", c_uint32),
        ("priority", c_uint8),
    ]


class PubAck(Structure):
    _fields_ = [("has_seq", c_bool), ("seq", c_uint64), ("duplicate", c_bool)]


class MessageInfo(Structure):
    _fields_ = [
        ("seq", c_uint64),
        ("attempt", c_uint32),
        ("qos", c_uint32),
        ("ttl_ms", c_uint64),
        ("header_count", c_size_t),
        ("needs_ack", c_bool),
        ("priority", c_uint8),
    ]


class SubscribeOptions(Structure):
    _fields_ = [
        ("group", c_char_p),
        ("start", c_uint32),
        ("start_at", c_uint64),
        ("qos", c_uint32),
        ("credit", c_uint32),
    ]


class PeerOptions(Structure):
    _fields_ = [
        ("id", c_char_p),
        ("catalog", c_char_p),
        ("data_dir", c_char_p),
        ("listen", c_char_p),
        ("advertise", c_char_p),
        ("lease_ms", c_uint32),
        ("heartbeat_ms", c_uint32),
        ("call_timeout_ms", c_uint32),
    ]


MESSAGE_CALLBACK = CFUNCTYPE(None, c_void_p, c_void_p)

# Result codes (mq_result in mq.h).
MQ_OK = 0
MQ_ERR_NULL_ARGUMENT = 1
MQ_ERR_INVALID = 2
MQ_ERR_IO = 3
MQ_ERR_REFUSED = 4
MQ_ERR_REJECTED = 5
MQ_ERR_CLOSED = 6
MQ_ERR_TIMEOUT = 7
MQ_ERR_TOO_LARGE = 8
MQ_ERR_TOO_MANY_SUBSCRIPTIONS = 9
MQ_ERR_BUFFER_TOO_SMALL = 10
MQ_ERR_NOT_FOUND = 11
MQ_ERR_PANIC = 12
MQ_ERR_OTHER = 13

MQ_WAIT_FOREVER = 0xFFFFFFFF

_P = c_void_p
_SIGNATURES = {
    "mq_result_name": (c_char_p, [c_int32]),
    "mq_connect_options_init": (c_int32, [POINTER(ConnectOptions)]),
    "mq_client_new": (c_int32, [POINTER(c_void_p)]),
    "mq_client_free": (None, [_P]),
    "mq_client_connect": (c_int32, [_P, POINTER(ConnectOptions)]),
    "mq_client_close": (c_int32, [_P]),
    "mq_client_error": (c_int32, [_P, POINTER(c_char), c_size_t, POINTER(c_size_t)]),
    "mq_publish_options_init": (c_int32, [POINTER(PublishOptions)]),
    "mq_client_publish": (
        c_int32,
        [_P, c_char_p, POINTER(c_uint8), c_size_t, POINTER(PublishOptions), POINTER(PubAck)],
    ),
    "mq_client_enqueue": (
        c_int32,
        [_P, c_char_p, POINTER(c_uint8), c_size_t, POINTER(PublishOptions), POINTER(c_void_p)],
    ),
    "mq_receipt_wait": (c_int32, [_P, c_uint32, POINTER(PubAck)]),
    "mq_receipt_free": (None, [_P]),
    "mq_receipt_error": (c_int32, [_P, POINTER(c_char), c_size_t, POINTER(c_size_t)]),
    "mq_subscribe_options_init": (c_int32, [POINTER(SubscribeOptions)]),
    "mq_client_subscribe": (c_int32, [_P, c_char_p, POINTER(SubscribeOptions), POINTER(c_void_p)]),
    "mq_subscription_recv": (c_int32, [_P, c_uint32, POINTER(c_void_p)]),
    "mq_subscription_free": (None, [_P]),
    "mq_subscription_error": (c_int32, [_P, POINTER(c_char), c_size_t, POINTER(c_size_t)]),
    "mq_client_subscribe_callback": (
        c_int32,
        [_P, c_char_p, POINTER(SubscribeOptions), MESSAGE_CALLBACK, c_void_p, POINTER(c_void_p)],
    ),
    "mq_listener_free": (None, [_P]),
    "mq_message_topic": (c_int32, [_P, POINTER(c_char_p)]),
    "mq_message_payload": (c_int32, [_P, POINTER(POINTER(c_uint8)), POINTER(c_size_t)]),
    "mq_message_get_info": (c_int32, [_P, POINTER(MessageInfo)]),
    "mq_message_header": (c_int32, [_P, c_size_t, POINTER(Header)]),
    "mq_message_find_header": (c_int32, [_P, c_char_p, POINTER(Header)]),
    "mq_message_ack": (c_int32, [_P]),
    "mq_message_nack": (c_int32, [_P, c_bool]),
    "mq_message_error": (c_int32, [_P, POINTER(c_char), c_size_t, POINTER(c_size_t)]),
    "mq_message_free": (None, [_P]),
    "mq_peer_options_init": (c_int32, [POINTER(PeerOptions)]),
    "mq_peer_new": (c_int32, [POINTER(c_void_p)]),
    "mq_peer_start": (c_int32, [_P, POINTER(PeerOptions)]),
    "mq_peer_address": (c_int32, [_P, POINTER(c_char), c_size_t, POINTER(c_size_t)]),
    "mq_peer_connect": (c_int32, [_P, _P, c_char_p]),
    "mq_peer_stop": (c_int32, [_P]),
    "mq_peer_error": (c_int32, [_P, POINTER(c_char), c_size_t, POINTER(c_size_t)]),
    "mq_peer_free": (None, [_P]),
}

_lib: Optional[ctypes.CDLL] = None
_path: Optional[Path] = None


def lib() -> ctypes.CDLL:
    """The loaded library, with every function's signature declared."""
    global _lib, _path
    if _lib is None:
        path = find_library()
        loaded = ctypes.CDLL(str(path))
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(loaded, name)
            fn.restype = restype
            fn.argtypes = argtypes
        _lib, _path = loaded, path
    return _lib


def library_path() -> Path:
    """The file the library was loaded from (loading it if need be)."""
    lib()
    assert _path is not None
    return _path


def error_text(getter, handle) -> str:
    """A handle's error text, through one of the ``mq_*_error`` functions."""
    length = c_size_t(0)
    if getter(handle, None, 0, ctypes.byref(length)) != MQ_ERR_BUFFER_TOO_SMALL:
        return ""
    buf = ctypes.create_string_buffer(length.value + 1)
    if getter(handle, buf, len(buf), None) != MQ_OK:
        return ""
    return buf.value.decode("utf-8", "replace")


def text_of(getter, handle, error_getter) -> str:
    """A string a handle hands out through a function that copies it as the
    ``mq_*_error`` functions do (``mq_peer_address``); raises on failure."""
    length = c_size_t(0)
    code = getter(handle, None, 0, ctypes.byref(length))
    if code == MQ_ERR_BUFFER_TOO_SMALL:
        buf = ctypes.create_string_buffer(length.value + 1)
        code = getter(handle, buf, len(buf), None)
        if code == MQ_OK:
            return buf.value.decode("utf-8", "replace")
    if code == MQ_OK:
        return ""
    from . import MqError

    raise MqError(code, error_text(error_getter, handle))
