"""liner's patterns between desktop peers, with no daemon: each peer is a
mesh node in its program's process (mq.Peer), the program's clients talk to
their own peer, which talks directly to the others. The peers of one
example share one directory (the SQLite catalog and their logs).

Usage: python peers.py patterns|inbox|send [DIR]
  patterns  three peers (a, b, c) here, a client each (alice, bob, carol):
            one-to-one, one-to-one-of-many, one-to-many, many-to-many, a
            wildcard topic subscription, producer-consumer
  inbox     bob's peer: prints the three messages alice sends, confirms
  send      alice's peer (another process): sends them to bob's inbox
  DIR       default: MQ_PEER_DIR, else mq-examples in the temporary directory

A peer forwards a message only to the peers whose interest reached it, so
the program first sends probes (QoS 0, payload "probe") until the other side
shows its subscription arrived, and skips probes when receiving."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import mq
from common import PATIENCE

PROBE = b"probe"


def directory() -> Path:
    if len(sys.argv) > 2:
        return Path(sys.argv[2])
    return Path(os.environ.get("MQ_PEER_DIR", Path(tempfile.gettempdir()) / "mq-examples"))


def start(where: Path, id: str) -> mq.Peer:
    """Peer ``id`` with its log in ``where/id`` and the catalog ``where/mesh.db``."""
    return mq.Peer(
        id,
        catalog=f"sqlite:{where / 'mesh.db'}",
        data_dir=where / id,
        lease=2.0,
        heartbeat=0.2,
    )


def until_linked(
    sender: mq.Client, topic: str, subs: Sequence[mq.Subscription], any_one: bool = False
) -> None:
    """Probe ``topic`` until each of ``subs`` got a probe (one of them, for
    a group, with ``any_one``)."""
    reached = [False] * len(subs)
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        sender.publish(topic, PROBE, qos=mq.QoS.AT_MOST_ONCE)
        time.sleep(0.1)
        for i, sub in enumerate(subs):
            while (msg := sub.recv(0.001)) is not None:
                reached[i] |= msg.payload == PROBE
        if all(reached) or (any_one and True in reached):
            return
    raise SystemExit(f"{topic}: the peers did not link in time")


def next_within(sub: mq.Subscription, wait: float) -> Optional[mq.Message]:
    """The next message that is not a probe within ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        msg = sub.recv(left)
        if msg is None:
            return None
        if msg.payload != PROBE:
            return msg
    return None


def next_one(sub: mq.Subscription) -> mq.Message:
    msg = next_within(sub, PATIENCE)
    if msg is None:
        raise SystemExit("no message arrived in time")
    return msg


def patterns(alice: mq.Client, bob: mq.Client, carol: mq.Client) -> None:
    # One-to-one (liner's send_to): to bob's inbox, on peer b.
    with bob.subscribe("inbox.bob") as inbox:
        until_linked(alice, "inbox.bob", [inbox])
        for i in range(1, 4):
            alice.publish("inbox.bob", f"hello {i}")
        for _ in range(3):
            msg = next_one(inbox)
            print(f"one-to-one: bob got {msg.payload.decode()}")
            msg.ack()

    # One-to-one-of-many: workers on b and c share alice's tasks.
    workers = [bob.subscribe("tasks", group="workers"), carol.subscribe("tasks", group="workers")]
    until_linked(alice, "tasks", workers, any_one=True)
    for i in range(1, 7):
        alice.publish("tasks", f"task {i}")
    done: Dict[str, int] = {}
    while len(done) < 6:
        for w in workers:
            msg = next_within(w, 0.05)
            if msg is not None:
                done[msg.payload.decode()] = done.get(msg.payload.decode(), 0) + 1
                msg.ack()
    once = all(n == 1 for n in done.values())
    print(f"one-to-one-of-many: {len(done)} tasks, each to one worker: {str(once).lower()}")
    for w in workers:
        w.close()

    # One-to-many: carol's headlines to every subscriber, on every peer.
    readers = [(n, c.subscribe("news")) for n, c in (("alice", alice), ("bob", bob), ("carol", carol))]
    until_linked(carol, "news", [readers[0][1], readers[1][1]])
    carol.publish("news", "headline 1")
    carol.publish("news", "headline 2")
    for name, sub in readers:
        for _ in range(2):
            msg = next_one(sub)
            print(f"one-to-many: {name} got {msg.payload.decode()}")
            msg.ack()
        sub.close()

    # Many-to-many: each peer publishes a reading; alice and bob read all.
    everything = [("alice", alice.subscribe("sensors.>")), ("bob", bob.subscribe("sensors.>"))]
    until_linked(alice, "sensors.probe", [everything[1][1]])
    until_linked(bob, "sensors.probe", [everything[0][1]])
    until_linked(carol, "sensors.probe", [everything[0][1], everything[1][1]])
    for client, name, value in ((alice, "a", "20"), (bob, "b", "21"), (carol, "c", "22")):
        client.publish(f"sensors.{name}.temp", value)
    for name, sub in everything:
        got: List[str] = []
        for _ in range(3):
            msg = next_one(sub)
            got.append(f"{msg.topic}={msg.payload.decode()}")
            msg.ack()
        print(f"many-to-many: {name} got {' '.join(sorted(got))}")
        sub.close()

    # A topic subscription with a wildcard: bob wants created orders only.
    with bob.subscribe("orders.*.created") as created:
        until_linked(alice, "orders.probe.created", [created])
        alice.publish("orders.eu.created", "o1")
        alice.publish("orders.eu.cancelled", "o2")
        alice.publish("orders.us.created", "o3")
        lines = []
        for _ in range(2):
            msg = next_one(created)
            lines.append(f"{msg.topic} {msg.payload.decode()}")
            msg.ack()
        for line in sorted(lines):
            print(f"topic: bob got {line}")

    # Producer-consumer: bob and carol take one job at a time (credit 1) and
    # ack it when done; job 2 fails once, is nacked and done again.
    consumers = [
        bob.subscribe("jobs", group="consumers", credit=1),
        carol.subscribe("jobs", group="consumers", credit=1),
    ]
    until_linked(alice, "jobs", consumers, any_one=True)
    for job in range(1, 5):
        alice.publish("jobs", str(job))
    attempts: Dict[int, int] = {}
    retried = 0
    while len(attempts) < 4:
        for c in consumers:
            msg = next_within(c, 0.05)
            if msg is None:
                continue
            job = int(msg.payload)
            if job == 2 and retried == 0:
                retried += 1
                msg.nack()
            else:
                attempts[job] = msg.attempt
                msg.ack()
    for job in sorted(attempts):
        print(f"producer-consumer: job {job} done on attempt {attempts[job]}")
    print(f"producer-consumer: {len(attempts)} jobs done, {retried} retried")
    for c in consumers:
        c.close()


def inbox(bob: mq.Client) -> None:
    """Bob's side: answers alice's hellos, prints her three messages, confirms."""
    with bob.subscribe("hello.bob") as hello, bob.subscribe("inbox.bob") as box:
        got = 0
        while got < 3:
            while hello.recv(0.001) is not None:
                bob.publish("hello.alice", PROBE, qos=mq.QoS.AT_MOST_ONCE)
            msg = next_within(box, 0.1)
            if msg is not None:
                print(f"received: {msg.payload.decode()}", flush=True)
                msg.ack()
                got += 1
        bob.publish("hello.alice", "done")


def send(alice: mq.Client) -> None:
    """Alice's side: says hello until bob's peer answers, sends three
    messages, waits for his confirmation."""
    with alice.subscribe("hello.alice") as replies:
        for _ in range(300):
            alice.publish("hello.bob", PROBE, qos=mq.QoS.AT_MOST_ONCE)
            if replies.recv(0.2) is not None:
                break
        else:
            raise SystemExit("bob's peer did not answer")
        for i in range(1, 4):
            alice.publish("inbox.bob", f"message {i}")
            print(f"sent: message {i}")
        while True:
            msg = next_one(replies)
            msg.ack()
            if msg.payload == b"done":
                print("bob confirmed")
                return


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    where = directory()
    where.mkdir(parents=True, exist_ok=True)
    if mode == "patterns":
        with start(where, "a") as a, start(where, "b") as b, start(where, "c") as c:
            with a.client("alice") as alice, b.client("bob") as bob, c.client("carol") as carol:
                patterns(alice, bob, carol)
    elif mode == "inbox":
        with start(where, "desk-bob") as peer, peer.client("bob") as bob:
            inbox(bob)
    elif mode == "send":
        with start(where, "desk-alice") as peer, peer.client("alice") as alice:
            send(alice)
    else:
        raise SystemExit("usage: peers.py patterns|inbox|send [DIR]")


if __name__ == "__main__":
    main()
