"""The NATS interop scenarios with the nats-py client (and a raw socket
typed at as a person would with telnet), run by `cargo xtask nats` (a step
of `cargo xtask ci`) against nats-server and against mqd's NATS port.

The same scenarios as the async-nats program (xtask/peers/src/bin/
nats-interop.rs); each prints `name<TAB>result`, and the two servers must
give the same results (or the difference listed in xtask/src/nats.rs).
Against mqd, `--mq` adds the exchange with mq and MQTT clients both ways
(the mq CLI, and Mosquitto's mosquitto_pub and mosquitto_sub on mqd's MQTT
port).

    python interop.py HOST PORT [--mq MQ_CLI --mq-server HOST:PORT --mqtt PORT]
"""

import asyncio
import os
import socket
import subprocess
import sys
import time

import nats
from nats.errors import NoRespondersError

WAIT = 5.0
SILENCE = 0.3


async def collect(queue, want):
    got = []
    while len(got) < want:
        try:
            got.append(await asyncio.wait_for(queue.get(), WAIT))
        except asyncio.TimeoutError:
            break
    while True:
        try:
            got.append(await asyncio.wait_for(queue.get(), SILENCE))
        except asyncio.TimeoutError:
            return got


async def subscribe(nc, subject, queue=""):
    q = asyncio.Queue()

    async def on(msg):
        await q.put(msg)

    sub = await nc.subscribe(subject, queue=queue, cb=on)
    return sub, q


def payloads(msgs):
    return [m.data.decode() for m in msgs]


async def pub_sub(nc, s):
    _, q = await subscribe(nc, s)
    await nc.flush()
    for p in ["a", "b", "c"]:
        await nc.publish(s, p.encode())
    await nc.flush()
    return " ".join(payloads(await collect(q, 3)))


async def wildcards(nc, s):
    _, one = await subscribe(nc, s + ".*")
    _, every = await subscribe(nc, s + ".>")
    await nc.flush()
    for t in ["x", "x.y", "z"]:
        await nc.publish(f"{s}.{t}", t.encode())
    await nc.flush()
    one = sorted(payloads(await collect(one, 2)))
    every = sorted(payloads(await collect(every, 3)))
    return f"*: {','.join(one)} >: {','.join(every)}"


async def queue_group(nc, s):
    _, w1 = await subscribe(nc, s, queue="workers")
    _, w2 = await subscribe(nc, s, queue="workers")
    _, plain = await subscribe(nc, s)
    await nc.flush()
    for i in range(20):
        await nc.publish(s, str(i).encode())
    await nc.flush()
    everyone = len(await collect(plain, 20))
    shared = payloads(await collect(w1, 1)) + payloads(await collect(w2, 1))
    once_each = sorted(int(p) for p in shared) == list(range(20))
    return f"group got each once: {str(once_each).lower()}, plain subscriber got {everyone}"


async def request_reply(nc, s):
    async def serve(msg):
        await nc.publish(msg.reply, msg.data.decode().upper().encode())

    await nc.subscribe(s, queue="svc", cb=serve)
    await nc.flush()
    answer = await nc.request(s, b"ping", timeout=WAIT)
    return f"answer {answer.data.decode()}"


async def no_responders(nc, s):
    try:
        m = await nc.request(s, b"anyone?", timeout=WAIT)
        return f"answered: {m.data!r}"
    except NoRespondersError:
        return "no responders"
    except Exception as e:  # noqa: BLE001 - the kind is the result
        return f"other error: {type(e).__name__}"


async def headers(nc, s):
    _, q = await subscribe(nc, s)
    await nc.flush()
    # nats-py takes one value per key (async-nats sends a repeated one).
    await nc.publish(s, b"body", headers={"Trace-Id": "42", "A": "b"})
    await nc.flush()
    got = await collect(q, 1)
    if not got:
        return "nothing arrived"
    h = got[0].headers or {}
    return f"Trace-Id={h.get('Trace-Id', '')} A={h.get('A', '')} body={got[0].data.decode()}"


async def unsub_max(nc, s):
    sub, q = await subscribe(nc, s)
    await sub.unsubscribe(limit=2)
    await nc.flush()
    for p in ["1", "2", "3", "4", "5"]:
        await nc.publish(s, p.encode())
    await nc.flush()
    return "got " + " ".join(payloads(await collect(q, 2)))


class Terminal:
    """A raw socket, typed at."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=WAIT)
        self.sock.settimeout(0.2)
        self.seen = b""
        info = self.line()
        assert info.startswith("INFO {"), info

    def type(self, text):
        self.sock.sendall(text.encode())

    def line(self):
        deadline = time.monotonic() + WAIT
        while b"\r\n" not in self.seen:
            if time.monotonic() > deadline:
                return f"(nothing: {self.seen!r})"
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                return "(closed)"
            self.seen += chunk
        line, self.seen = self.seen.split(b"\r\n", 1)
        return line.decode()

    def lines(self, n):
        return " | ".join(self.line() for _ in range(n))

    def until_pong(self):
        got = []
        while not got or got[-1] not in ("PONG", "(closed)") and not got[-1].startswith("(nothing"):
            got.append(self.line())
        return " | ".join(got)

    def closed(self):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                continue
            except OSError:
                return True
        return False


def typed(host, port, s):
    """What a person sees typing at the server."""
    t = Terminal(host, port)
    out = {}
    t.type(f"PUB {s} 5\r\nhello\r\n")
    out["telnet: PUB before SUB"] = t.lines(1)
    t.type(f"SUB {s} 1\r\n")
    out["telnet: SUB"] = t.lines(1)
    t.type(f"PUB {s} 5\r\nhello\r\n")
    out["telnet: PUB to itself"] = t.lines(3).replace(s, "SUBJ")
    t.type("PING\r\n")
    out["telnet: PING"] = t.lines(1)
    t.type('CONNECT {"verbose":false}\r\nPING\r\n')
    out["telnet: CONNECT verbose off"] = t.lines(1)
    t.type("SUB a..b 2\r\nPING\r\n")
    out["telnet: SUB to an invalid subject"] = t.until_pong()
    t.type("UNSUB 99\r\nPING\r\n")
    out["telnet: UNSUB of an unknown sid"] = t.until_pong()
    t.type("SUB caf\u00e9 3\r\nPING\r\n")
    out["telnet: SUB to a non-ASCII subject"] = t.until_pong()
    t.type("PUB $mq.x 1\r\nx\r\nPING\r\n")
    out["telnet: PUB to a $ subject"] = t.until_pong()
    args = Terminal(host, port)
    args.type('CONNECT {"verbose":false}\r\nPUB x y\r\n')
    out["telnet: malformed arguments"] = args.line() + (" then close" if args.closed() else " and open")
    bad = Terminal(host, port)
    bad.type('CONNECT {"verbose":false}\r\nFOO bar\r\n')
    out["telnet: malformed line"] = bad.line() + (" then close" if bad.closed() else " and open")
    big = Terminal(host, port)
    big.type('CONNECT {"verbose":false}\r\nPUB x 99999999\r\n')
    out["telnet: payload over max_payload"] = big.line() + (" then close" if big.closed() else " and open")
    # Everyone else is still served.
    t.type(f"PUB {s} 2\r\nok\r\n")
    out["telnet: others still served"] = t.lines(2).replace(s, "SUBJ")
    return out


async def exchange(nc, mq, server, mqtt_port):
    """NATS to mq and MQTT, and back, through one mqd."""
    out = {}
    mq_sub = subprocess.Popen([mq, "--server", server, "sub", "--count", "1", "xnats.>"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    mqtt_sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-t", "xnats/#", "-C", "1",
         "-W", str(int(WAIT)), "-F", "%t %p"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    await asyncio.sleep(1.0)
    await nc.publish("xnats.kitchen.temp", b"21.5")
    await nc.flush()
    got, _ = mq_sub.communicate(timeout=WAIT + 5)
    words = got.split()
    out["NATS to mq"] = f"{words[0]} {words[-1]}" if words else "nothing"
    got, _ = mqtt_sub.communicate(timeout=WAIT + 5)
    out["NATS to MQTT"] = got.strip() or "nothing"
    _, q = await subscribe(nc, "xnats.>")
    await nc.flush()
    subprocess.run([mq, "--server", server, "pub", "--qos", "1", "xnats.from.mq", "hi-mq"],
                   check=True, timeout=WAIT, stdout=subprocess.DEVNULL)
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-t",
                    "xnats/from/mqtt", "-m", "hi-mqtt", "-q", "1"], check=True, timeout=WAIT)
    got = sorted(f"{m.subject} {m.data.decode()}" for m in await collect(q, 2))
    out["mq and MQTT to NATS"] = ", ".join(got) or "nothing"
    return out


def flag(name):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else None


async def main():
    host, port = sys.argv[1], int(sys.argv[2])
    run = f"p{os.getpid()}"
    nc = await nats.connect(f"nats://{host}:{port}", connect_timeout=WAIT, allow_reconnect=False)
    for name, scenario in [
        ("pub/sub", pub_sub),
        ("wildcards", wildcards),
        ("queue group", queue_group),
        ("request-reply", request_reply),
        ("no responders", no_responders),
        ("headers", headers),
        ("unsub max", unsub_max),
    ]:
        subject = f"{run}.{name.replace('/', '_').replace(' ', '_')}"
        try:
            result = await scenario(nc, subject)
        except Exception as e:  # noqa: BLE001 - a failed scenario is a result
            result = f"FAILED: {type(e).__name__}: {e}"
        print(f"{name}\t{result}", flush=True)
    if flag("--mq"):
        try:
            checks = await exchange(nc, flag("--mq"), flag("--mq-server"), int(flag("--mqtt")))
        except Exception as e:  # noqa: BLE001 - a failed exchange is a result
            checks = {"exchange": f"FAILED: {type(e).__name__}: {e}"}
        for name, result in checks.items():
            print(f"{name}\t{result}", flush=True)
    await nc.drain()
    for name, result in typed(host, port, f"{run}.typed").items():
        print(f"{name}\t{result}", flush=True)


asyncio.run(main())
