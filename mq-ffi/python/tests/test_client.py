"""The Python package against a real mqd (see conftest.py)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import List

import pytest

import mq
from mq import _lib
from conftest import NARROW_TOKEN, TOKEN


def connect(mqd, name: str, **kw) -> mq.Client:
    return mq.Client(mqd.address, client_id=name, token=TOKEN, connect_timeout=5, **kw)


@pytest.mark.skipif(not os.environ.get("MQ_TEST_INSTALLED"), reason="run from a checkout")
def test_the_installed_package_is_under_test():
    # `cargo xtask ci` pip-installs the package (from the directory and from a
    # wheel) and sets MQ_TEST_INSTALLED, with MQ_LIB and CARGO_TARGET_DIR unset:
    # the library must be the one the wheel carries.
    assert "site-packages" in mq.__file__, mq.__file__
    assert _lib.library_path() == _lib.packaged(), _lib.library_path()
    assert Path(mq.__file__).resolve().parent in _lib.library_path().parents


def test_bad_address_raises_io():
    with pytest.raises(mq.MqError) as e:
        mq.Client("no such address", connect_timeout=3)
    assert e.value.code == _lib.MQ_ERR_IO
    assert e.value.name == "MQ_ERR_IO"
    assert "connecting failed" in str(e.value)
    with pytest.raises(mq.MqError) as e:
        mq.Client("127.0.0.1:1", connect_timeout=3)
    assert e.value.code == _lib.MQ_ERR_IO


def test_wrong_token_is_refused(mqd):
    with pytest.raises(mq.MqError) as e:
        mq.Client(mqd.address, token="wrong")
    assert e.value.code == _lib.MQ_ERR_REFUSED
    assert "bad token" in str(e.value)


def test_narrow_token_is_rejected_outside_its_topics(mqd):
    with mq.Client(mqd.address, token=NARROW_TOKEN) as c:
        assert c.publish("open.fine", b"ok").seq is not None
        with pytest.raises(mq.MqError) as e:
            c.publish("closed.no", b"no")
        assert e.value.code == _lib.MQ_ERR_REJECTED
        with pytest.raises(mq.MqError) as e:
            c.subscribe("closed.>")
        assert e.value.code == _lib.MQ_ERR_REJECTED


def test_publish_subscribe_round_trip(mqd):
    with connect(mqd, "py-round") as c, c.subscribe("py.round.>") as sub:
        ack = c.publish(
            "py.round.one",
            b"hello",
            ttl=30,
            headers={"kind": "greeting", "bin": b"\x00\x01"},
            priority=4,
        )
        assert ack.seq is not None and not ack.duplicate
        msg = sub.recv(timeout=10)
        assert msg is not None
        assert msg.topic == "py.round.one"
        assert msg.payload == b"hello"
        assert msg.seq == ack.seq and msg.attempt == 1
        assert msg.qos == mq.QoS.AT_LEAST_ONCE and msg.needs_ack
        assert msg.ttl == 30 and msg.priority == 4
        assert msg.headers == [("kind", b"greeting"), ("bin", b"\x00\x01")]
        assert msg.header("bin") == b"\x00\x01" and msg.header("none") is None
        msg.ack()
        with pytest.raises(mq.MqError) as e:
            msg.ack()
        assert e.value.code == _lib.MQ_ERR_INVALID
        assert "already acked" in str(e.value)

        assert sub.recv(timeout=0.05) is None

        # QoS 0, str payloads, headers as pairs, no payload at all.
        assert c.publish("py.round.zero", "text", qos=mq.QoS.AT_MOST_ONCE,
                         headers=[("a", "1")]).seq is None
        c.publish("py.round.empty")
        zero = sub.recv(timeout=10)
        empty = sub.recv(timeout=10)
        assert zero.payload == b"text" and not zero.needs_ack and zero.headers == [("a", b"1")]
        zero.ack()  # nothing to settle: fine
        assert empty.payload == b"" and empty.ttl is None
        empty.ack()


def test_enqueued_publishes_arrive_in_order_and_their_receipts_answer(mqd):
    with connect(mqd, "py-queued") as c, c.subscribe("py.queued") as sub:
        receipts = [c.enqueue("py.queued", f"q{i}", headers={"n": str(i)}) for i in range(200)]
        seqs = [r.wait(timeout=10).seq for r in receipts]
        assert all(s is not None for s in seqs)
        assert seqs == sorted(seqs) and len(set(seqs)) == 200
        for r in receipts:
            r.close()
        for i in range(200):
            msg = sub.recv(timeout=10)
            assert msg is not None and msg.payload == f"q{i}".encode()
            assert msg.header("n") == str(i).encode()
            msg.ack()
        with c.enqueue("py.queued", b"zero", qos=mq.QoS.AT_MOST_ONCE) as r:
            assert r.wait().seq is None
        assert sub.recv(timeout=10).payload == b"zero"
        closed = c.enqueue("py.queued", b"x")
        closed.close()
        with pytest.raises(mq.MqError) as e:
            closed.wait()
        assert e.value.code == _lib.MQ_ERR_CLOSED


def test_iterating_a_subscription(mqd):
    with connect(mqd, "py-iter") as c:
        sub = c.subscribe("py.iter")
        for i in range(3):
            c.publish("py.iter", f"m{i}")
        got = []
        for msg in sub:
            got.append(msg.payload)
            msg.ack()
            if len(got) == 3:
                break
        assert got == [b"m0", b"m1", b"m2"]
        sub.close()
        sub.close()  # twice is fine
        with pytest.raises(mq.MqError):
            sub.recv(timeout=0)


def test_iteration_ends_when_the_client_closes(mqd):
    c = connect(mqd, "py-end")
    sub = c.subscribe("py.end")
    c.publish("py.end", b"last")
    first = next(iter(sub))
    c.close()
    assert list(sub) == []
    with pytest.raises(mq.MqError) as e:
        first.ack()
    assert e.value.code == _lib.MQ_ERR_CLOSED
    with pytest.raises(mq.MqError) as e:
        c.publish("py.end", b"late")
    assert e.value.code == _lib.MQ_ERR_CLOSED


def test_nack_requeues_or_dead_letters(mqd):
    with connect(mqd, "py-nack") as c:
        sub = c.subscribe("py.nack")
        dlq = c.subscribe("$dlq.py.nack")
        c.publish("py.nack", b"again")
        sub.recv(10).nack(requeue=True)
        again = sub.recv(10)
        assert again.payload == b"again" and again.attempt == 2
        again.nack(requeue=False)
        dead = dlq.recv(10)
        assert dead.topic == "$dlq.py.nack" and dead.payload == b"again"
        dead.ack()
        c.publish("py.nack", b"dropped")
        sub.recv(10).close()  # freed unsettled: redelivered
        redelivered = sub.recv(10)
        assert redelivered.payload == b"dropped" and redelivered.attempt == 2
        redelivered.ack()


def test_group_members_share_the_messages(mqd):
    with connect(mqd, "py-group") as c:
        a = c.subscribe("py.jobs", group="workers")
        b = c.subscribe("py.jobs", group="workers")
        for i in range(10):
            c.publish("py.jobs", str(i))
        seen: List[bytes] = []
        deadline = time.monotonic() + 10
        while len(seen) < 10 and time.monotonic() < deadline:
            for s in (a, b):
                msg = s.recv(0.05)
                if msg is not None:
                    seen.append(msg.payload)
                    msg.ack()
        assert sorted(seen, key=int) == [str(i).encode() for i in range(10)]


def test_start_positions(mqd):
    with connect(mqd, "py-start") as c:
        first = c.publish("py.replay", b"r1").seq
        c.publish("py.replay", b"r2")
        c.publish("py.replay", b"r3")
        last = c.subscribe("py.replay", start=mq.Start.last(2))
        assert [last.recv(10).payload for _ in range(2)] == [b"r2", b"r3"]
        since = c.subscribe("py.replay", start=mq.Start.seq(first))
        assert [since.recv(10).payload for _ in range(3)] == [b"r1", b"r2", b"r3"]
        new = c.subscribe("py.replay")
        assert new.recv(0.1) is None


def test_persistent_session_cursor(mqd):
    pub = connect(mqd, "py-cursor-pub")
    c = connect(mqd, "py-cursor", persistent_session=True)
    sub = c.subscribe("py.cursor", start=mq.Start.cursor())
    pub.publish("py.cursor", b"k1")
    sub.recv(10).ack()
    sub.close()
    c.close()
    pub.publish("py.cursor", b"k2")
    with connect(mqd, "py-cursor", persistent_session=True) as again:
        sub = again.subscribe("py.cursor", start=mq.Start.cursor())
        msg = sub.recv(10)
        assert msg is not None and msg.payload == b"k2"
        msg.ack()
    pub.close()


def test_listener_callback(mqd):
    got: List[bytes] = []
    done = threading.Event()
    threads = set()

    def on_message(msg: mq.Message) -> None:
        threads.add(threading.get_ident())
        got.append(msg.payload)
        msg.ack()
        if len(got) == 3:
            done.set()

    with connect(mqd, "py-listen") as c:
        with c.listen("py.cb", on_message):
            for i in range(3):
                c.publish("py.cb", f"cb{i}")
            assert done.wait(10)
        assert got == [b"cb0", b"cb1", b"cb2"]
        assert threading.get_ident() not in threads
        c.publish("py.cb", b"late")
        time.sleep(0.2)
        assert len(got) == 3  # nothing after the listener closed


def test_threads_share_a_client(mqd):
    with connect(mqd, "py-threads") as c, c.subscribe("py.threads") as sub:
        def publish_many(n: int) -> None:
            for i in range(20):
                c.publish("py.threads", f"{n}-{i}")

        workers = [threading.Thread(target=publish_many, args=(n,)) for n in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        got = set()
        while len(got) < 80:
            msg = sub.recv(10)
            assert msg is not None
            got.add(msg.payload)
            msg.ack()
        assert len(got) == 80


def test_invalid_arguments(mqd):
    with connect(mqd, "py-invalid") as c:
        with pytest.raises(mq.MqError) as e:
            c.publish("bad..topic", b"x")
        assert e.value.code == _lib.MQ_ERR_INVALID
        with pytest.raises(mq.MqError) as e:
            c.publish("t", b"x", headers={"": b"empty key"})
        assert e.value.code == _lib.MQ_ERR_INVALID
        with pytest.raises(mq.MqError) as e:
            c.subscribe("a.>.b")
        assert e.value.code == _lib.MQ_ERR_INVALID
        with pytest.raises(mq.MqError) as e:
            c.subscribe("t", start=mq.Start(9))
        assert e.value.code == _lib.MQ_ERR_INVALID and "start 9" in str(e.value)
        with pytest.raises(ValueError):
            c.publish("t", b"x", ttl=-1)
        with pytest.raises(mq.MqError) as e:
            c.publish("py.big", bytes(9 << 20))
        assert e.value.code == _lib.MQ_ERR_TOO_LARGE


def test_the_library_is_found_through_mq_lib(monkeypatch, tmp_path):
    monkeypatch.setenv("MQ_LIB", str(tmp_path / "missing.so"))
    with pytest.raises(OSError, match="MQ_LIB="):
        _lib.find_library()
    monkeypatch.delenv("MQ_LIB")
    monkeypatch.setenv("CARGO_TARGET_DIR", str(tmp_path))
    (tmp_path / "debug").mkdir()
    fake = tmp_path / "debug" / _lib.LIBRARY_NAME
    fake.write_bytes(b"")
    assert fake in _lib.candidates()


def test_closing_from_another_thread_ends_a_blocked_iteration(mqd):
    c = connect(mqd, "py-close-thread")
    got: List[mq.Message] = []
    for closer in ("subscription", "client"):
        sub = c.subscribe("py.never")
        reader = threading.Thread(target=lambda: got.extend(sub))
        reader.start()
        time.sleep(0.3)  # the reader waits inside the library
        if closer == "subscription":
            sub.close()
        else:
            c.close()
        reader.join(5)
        assert not reader.is_alive(), f"closing the {closer} left the reader blocked"
        sub.close()
    assert got == []
    with pytest.raises(mq.MqError) as e:
        c.publish("py.never", b"x")
    assert e.value.code == _lib.MQ_ERR_CLOSED and "client is closed" in str(e.value)


def test_a_handle_is_freed_only_after_the_calls_in_flight():
    freed: List[int] = []
    interrupted: List[int] = []
    handle = mq._Handle(7, freed.append, interrupted.append, "thing")
    entered, release = threading.Event(), threading.Event()

    def call() -> None:
        with handle.use():
            entered.set()
            release.wait(5)

    caller = threading.Thread(target=call)
    caller.start()
    assert entered.wait(5)
    closer = threading.Thread(target=handle.close)
    closer.start()
    time.sleep(0.1)
    assert interrupted == [7] and freed == []  # interrupted, not yet freed
    release.set()
    closer.join(5)
    caller.join(5)
    assert freed == [7]
    with pytest.raises(mq.MqError, match="the thing is closed"):
        with handle.use():
            pass
    handle.close()
    assert freed == [7]


def _tls_port(server) -> str:
    # By name: the certificate is for localhost.
    return "localhost:" + server.tls_address.rsplit(":", 1)[1]


def test_tls_and_mutual_tls(mqd_tls):
    server, pki = mqd_tls
    at = _tls_port(server)
    with mq.Client(at, tls_ca=pki.ca, token=TOKEN) as c:
        assert c.publish("any.topic", b"over tls").seq is not None
    with mq.Client(at, tls_ca=pki.ca, tls_cert=pki.client_cert, tls_key=pki.client_key) as c:
        sub = c.subscribe("dev.py-device.>")
        c.publish("dev.py-device.cmd", b"mutual")
        msg = sub.recv(timeout=10)
        assert msg.payload == b"mutual"
        msg.ack()
        with pytest.raises(mq.MqError) as e:
            c.publish("open.x", b"not mine")
        assert e.value.code == _lib.MQ_ERR_REJECTED


def test_tls_refusals_say_why(mqd_tls):
    server, pki = mqd_tls
    at = _tls_port(server)
    with pytest.raises(mq.MqError) as e:
        mq.Client(at, tls_ca=pki.other_ca, token=TOKEN, connect_timeout=5)
    assert e.value.code == _lib.MQ_ERR_IO
    assert "UnknownIssuer" in str(e.value)
    with pytest.raises(mq.MqError) as e:
        mq.Client(at, tls_ca=pki.ca, tls_server_name="elsewhere", token=TOKEN)
    assert "not valid for name" in str(e.value)
    with pytest.raises(mq.MqError) as e:
        mq.Client(at, tls=True, token=TOKEN)
    assert e.value.code == _lib.MQ_ERR_INVALID
