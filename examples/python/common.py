"""What the Python examples share: the broker's address and patience."""

from __future__ import annotations

import os
import sys

import mq

PATIENCE = 10.0
"""Seconds a program waits for a message it expects."""


def address() -> str:
    """The broker's address: the first argument, else MQ_SERVER, else
    127.0.0.1:7410."""
    if len(sys.argv) > 1:
        return sys.argv[1]
    return os.environ.get("MQ_SERVER", "127.0.0.1:7410")


def expect(sub: mq.Subscription) -> mq.Message:
    """A message that must come within PATIENCE."""
    msg = sub.recv(PATIENCE)
    if msg is None:
        raise SystemExit("no message arrived in time")
    return msg
