"""mq.Peer: desktop peers in this process, no mqd; and the peer examples
(examples/python/peers.py) in a checkout, as separate processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

import mq
from mq import _lib

PATIENCE = 30.0


def start(tmp_path: Path, id: str, **kw) -> mq.Peer:
    options = dict(lease=2.0, heartbeat=0.2)
    options.update(kw)
    return mq.Peer(id, catalog=f"sqlite:{tmp_path / 'mesh.db'}", data_dir=tmp_path / id, **options)


def until_linked(sender: mq.Client, topic: str, sub: mq.Subscription) -> None:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        sender.publish(topic, b"probe", qos=mq.QoS.AT_MOST_ONCE)
        if sub.recv(0.2) is not None:
            return
    raise AssertionError(f"{topic}: the peers never linked")


def test_bad_options_raise_with_their_codes(tmp_path: Path):
    with pytest.raises(mq.MqError) as e:
        start(tmp_path, "bad", listen="localhost")
    assert e.value.code == _lib.MQ_ERR_INVALID
    assert "opts->listen" in str(e.value)
    with pytest.raises(mq.MqError) as e:
        mq.Peer("bad", catalog="nosuch://x", data_dir=tmp_path / "bad")
    assert e.value.code == _lib.MQ_ERR_INVALID
    assert "catalog" in str(e.value)
    with pytest.raises(mq.MqError) as e:
        mq.Peer("bad", catalog=f"sqlite:{tmp_path / 'no' / 'dir' / 'x.db'}", data_dir=tmp_path / "bad")
    assert e.value.name == "MQ_ERR_IO"
    assert "catalog" in str(e.value)
    with pytest.raises(mq.MqError) as e:
        start(tmp_path, "bad", lease=1.0, heartbeat=1.0)
    assert e.value.code == _lib.MQ_ERR_INVALID
    assert "shorter than the lease" in str(e.value)
    with pytest.raises(mq.MqError) as e:
        start(tmp_path, "bad", call_timeout=2.0)
    assert e.value.code == _lib.MQ_ERR_INVALID
    assert "catalog call timeout" in str(e.value)


def test_two_peers_exchange_messages_without_a_daemon(tmp_path: Path):
    with start(tmp_path, "a") as a, start(tmp_path, "b") as b:
        assert a.id == "a"
        assert a.address.startswith("127.0.0.1:") and a.address != b.address
        with a.client("alice") as alice, b.client("bob", credit=8) as bob:
            with bob.subscribe("inbox.bob") as inbox:
                until_linked(alice, "inbox.bob", inbox)
                for i in range(5):
                    ack = alice.publish("inbox.bob", f"m{i}")
                    assert ack.seq is not None
                got: List[bytes] = []
                while len(got) < 5:
                    msg = inbox.recv(PATIENCE)
                    assert msg is not None, got
                    if msg.payload != b"probe":
                        got.append(msg.payload)
                        msg.ack()
                assert got == [f"m{i}".encode() for i in range(5)]
    # Closed: no address; closing again does nothing.
    with pytest.raises(mq.MqError) as e:
        a.address
    assert e.value.code == _lib.MQ_ERR_CLOSED
    a.close()


def test_a_peer_starts_again_on_its_log(tmp_path: Path):
    with start(tmp_path, "again") as p:
        first = p.address
        with p.client("keeper") as c:
            c.subscribe("kept").close()
    with start(tmp_path, "again") as p, p.client("keeper") as c:
        assert p.address  # a fresh port, the same log
        with c.subscribe("kept") as sub:
            c.publish("kept", "after the restart")
            msg = sub.recv(PATIENCE)
            assert msg is not None and msg.payload == b"after the restart"
            msg.ack()
    assert first


EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "python"


@pytest.mark.skipif(not (EXAMPLES / "peers.py").is_file(), reason="not in a checkout")
def test_the_peer_examples_run_as_separate_processes(tmp_path: Path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXAMPLES), *sys.path]))
    env.setdefault("MQ_LIB", str(_lib.library_path()))

    def example(*args: str) -> List[str]:
        return [sys.executable, str(EXAMPLES / "peers.py"), *args, str(tmp_path)]

    inbox = subprocess.Popen(example("inbox"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sent = subprocess.run(example("send"), env=env, capture_output=True, timeout=120)
    out, err = inbox.communicate(timeout=120)
    assert sent.returncode == 0, sent.stderr.decode()
    assert inbox.returncode == 0, err.decode()
    assert sent.stdout.decode() == "sent: message 1\nsent: message 2\nsent: message 3\nbob confirmed\n"
    assert out.decode() == "received: message 1\nreceived: message 2\nreceived: message 3\n"

    patterns = subprocess.run(example("patterns"), env=env, capture_output=True, timeout=120)
    assert patterns.returncode == 0, patterns.stderr.decode()
    expected = (EXAMPLES.parent / "expected" / "peers.txt").read_text()
    assert patterns.stdout.decode() == expected
