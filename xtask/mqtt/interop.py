"""MQTT interoperability scenarios, run by `cargo xtask ci` (xtask/src/mqtt.rs)
against Mosquitto and against mqd: the same observable results from both.

Usage: interop.py HOST PORT [--mq MQ_CLI --mq-server HOST:PORT]

Clients nobody here wrote: mosquitto_pub, mosquitto_sub and mosquitto_rr
(Debian's mosquitto-clients) and the paho-mqtt package. Each scenario prints
`name<TAB>result` lines; the caller compares the two brokers' lines. Topics are
under a prefix unique to this run, so a shared broker's other clients do not
interfere; retained messages are cleared at the end. With --mq, the mq CLI
(`mq pub`, `mq sub`) checks the mapping between MQTT and mq both ways (mqd
only).
"""

import os
import signal
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HOST = sys.argv[1]
PORT = int(sys.argv[2])
PREFIX = f"interop/{os.getpid()}"
WAIT = 5.0


def t(name):
    return f"{PREFIX}/{name}"


def out(name, result):
    print(f"{name}\t{result}", flush=True)


def client(cid, v5=False, clean=True):
    if v5:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    else:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=clean,
                        protocol=mqtt.MQTTv311)
    return c


class Inbox:
    """Collects messages of a paho client."""

    def __init__(self, c):
        self.msgs = []
        self.cond = threading.Condition()
        c.on_message = self.on_message

    def on_message(self, _c, _u, m):
        with self.cond:
            self.msgs.append(m)
            self.cond.notify_all()

    def wait(self, n, timeout=WAIT):
        end = time.time() + timeout
        with self.cond:
            while len(self.msgs) < n and time.time() < end:
                self.cond.wait(end - time.time())
            return list(self.msgs)


def connect(c, **kw):
    if c._protocol == mqtt.MQTTv5:
        start = kw.pop("clean_start", True)
        props = kw.pop("properties", None)
        c.connect(HOST, PORT, keepalive=30, clean_start=start, properties=props)
    else:
        c.connect(HOST, PORT, keepalive=30)
    c.loop_start()
    time.sleep(0.2)


def subscribe(c, topic, qos=0, **kw):
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.subscribe(topic, qos, **kw)
    done.wait(WAIT)


def stop(c):
    c.disconnect()
    c.loop_stop()


def sub_process(topic, count, *extra):
    return subprocess.Popen(
        ["mosquitto_sub", "-h", HOST, "-p", str(PORT), "-t", topic, "-C", str(count),
         "-W", str(int(WAIT)), "-v", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def pub(topic, message, *extra):
    """mosquitto_pub; an empty message is sent with -n (a null message)."""
    body = ["-m", message] if message else ["-n"]
    subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(PORT), "-t", topic, *body, *extra],
                   check=True, timeout=WAIT)


def rel(line):
    return line.replace(PREFIX + "/", "")


def qos_levels():
    for v in ["mqttv311", "mqttv5"]:
        s = sub_process(t("q/#"), 3, "-q", "2", "-V", v, "-F", "%t %q %p")
        time.sleep(0.5)
        for q in range(3):
            pub(t(f"q/{q}"), f"m{q}", "-q", str(q), "-V", v)
        got, _ = s.communicate(timeout=WAIT + 2)
        out(f"qos {v}", " | ".join(rel(l) for l in sorted(got.splitlines())))
    # Each subscriber gets min(published, granted).
    c = client("interop-q1", v5=True)
    box = Inbox(c)
    connect(c)
    subscribe(c, t("g/#"), 1)
    for q in range(3):
        pub(t(f"g/{q}"), f"m{q}", "-q", str(q))
    got = box.wait(3)
    out("granted 1", sorted((rel(m.topic), m.qos) for m in got))
    stop(c)


def wildcards():
    s = sub_process(t("w/+/x/#"), 3, "-F", "%t")
    s2 = sub_process(t("w/#"), 5, "-F", "%t")
    time.sleep(0.5)
    for topic in ["w", "w/a/x", "w/a/x/b/c", "w/a/y", "w/b/x"]:
        pub(t(topic), "w")
    got, _ = s.communicate(timeout=WAIT + 2)
    out("plus and hash", sorted(rel(l) for l in got.splitlines()))
    got, _ = s2.communicate(timeout=WAIT + 2)
    out("hash matches its parent", sorted(rel(l) for l in got.splitlines()))


def retained():
    pub(t("r/a"), "old", "-r", "-q", "1")
    pub(t("r/a"), "new", "-r", "-q", "1")
    pub(t("r/b"), "b", "-r")
    pub(t("r/b"), "", "-r")
    pub(t("r/c"), "not retained")
    s = sub_process(t("r/#"), 1, "-F", "%t %p %r", "-W", "2")
    got, _ = s.communicate(timeout=WAIT + 2)
    out("retained", [rel(l) for l in got.splitlines() if not l.startswith("Timed out")])
    c = client("interop-share")
    box = Inbox(c)
    connect(c)
    subscribe(c, f"$share/g/{t('r/#')}", 0)
    out("retained to a shared subscription", len(box.wait(1, 1.0)))
    stop(c)
    pub(t("r/a"), "", "-r")


def will():
    s = sub_process(t("will/#"), 1, "-F", "%t %p")
    time.sleep(0.3)
    victim = subprocess.Popen(
        ["mosquitto_sub", "-h", HOST, "-p", str(PORT), "-t", t("nothing"), "-i", "interop-victim",
         "--will-topic", t("will/v"), "--will-payload", "gone", "--will-qos", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    got, _ = s.communicate(timeout=WAIT + 2)
    out("will on abnormal close", [rel(l) for l in got.splitlines()])
    # A normal disconnect discards the will.
    s = sub_process(t("will/#"), 1, "-F", "%t %p", "-W", "2")
    time.sleep(0.3)
    pub(t("other"), "x", "--will-topic", t("will/n"), "--will-payload", "no")
    got, _ = s.communicate(timeout=WAIT + 2)
    out("no will on disconnect", [rel(l) for l in got.splitlines() if not l.startswith("Timed")])


def shared():
    members = [client(f"interop-m{i}") for i in range(2)]
    boxes = [Inbox(m) for m in members]
    for m in members:
        connect(m)
        subscribe(m, f"$share/workers/{t('jobs/+')}", 1)
    for i in range(10):
        pub(t("jobs/a"), f"j{i}", "-q", "1")
    time.sleep(1.0)
    got = [len(b.msgs) for b in boxes]
    out("shared: total", sum(got))
    out("shared: each got some", all(n > 0 for n in got))
    for m in members:
        stop(m)


def offline():
    c = client("interop-offline", clean=False)
    connect(c)
    subscribe(c, t("off/#"), 1)
    stop(c)
    time.sleep(0.3)
    for i in range(3):
        pub(t(f"off/{i}"), f"o{i}", "-q", "1")
    c = client("interop-offline", clean=False)
    box = Inbox(c)
    present = threading.Event()
    c.on_connect = lambda _c, _u, flags, _rc, _p=None: present.set() if flags.session_present else None
    connect(c)
    got = box.wait(3)
    out("offline: session present", present.is_set())
    out("offline: received", [(rel(m.topic), m.payload.decode()) for m in got])
    stop(c)
    c = client("interop-offline", clean=True)
    connect(c)
    stop(c)


def properties():
    c = client("interop-props", v5=True)
    box = Inbox(c)
    connect(c)
    subscribe(c, t("p/#"), 1)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("k", "v"), ("unit", "C")]
    props.ContentType = "application/json"
    props.ResponseTopic = t("p/reply")
    props.CorrelationData = b"corr-1"
    props.MessageExpiryInterval = 60
    props.PayloadFormatIndicator = 1
    p = client("interop-props-pub", v5=True)
    connect(p)
    p.publish(t("p/x"), b"{}", qos=1, properties=props).wait_for_publish(WAIT)
    got = box.wait(1)
    m = got[0]
    mp = m.properties
    out("props: user", sorted(getattr(mp, "UserProperty", [])))
    out("props: content type", getattr(mp, "ContentType", None))
    out("props: response topic", rel(getattr(mp, "ResponseTopic", "")))
    out("props: correlation", getattr(mp, "CorrelationData", None))
    out("props: expiry forwarded", 0 < getattr(mp, "MessageExpiryInterval", 0) <= 60)
    out("props: payload format", getattr(mp, "PayloadFormatIndicator", None))
    stop(p)
    stop(c)


def request_response():
    responder = client("interop-responder", v5=True)

    def answer(c, _u, m):
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = getattr(m.properties, "CorrelationData", b"")
        c.publish(m.properties.ResponseTopic, b"pong:" + m.payload, qos=1, properties=props)

    responder.on_message = answer
    connect(responder)
    subscribe(responder, t("rr/req"), 1)
    r = subprocess.run(["mosquitto_rr", "-h", HOST, "-p", str(PORT), "-t", t("rr/req"),
                        "-e", t("rr/resp"), "-m", "ping", "-W", str(int(WAIT)), "-q", "1"],
                       capture_output=True, text=True, timeout=WAIT + 2)
    out("request-response", r.stdout.strip())
    stop(responder)


def mq_both_ways(mq, server):
    # mq to MQTT.
    s = sub_process("mqx/+/temp", 1, "-F", "%t %p")
    time.sleep(0.5)
    subprocess.run([mq, "--server", server, "pub", "--qos", "1", "mqx.kitchen.temp", "21.5"],
                   check=True, timeout=WAIT, stdout=subprocess.DEVNULL)
    got, _ = s.communicate(timeout=WAIT + 2)
    out("mq to MQTT", got.strip())
    # MQTT to mq.
    sub = subprocess.Popen([mq, "--server", server, "sub", "--count", "1", "mqx.>"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.0)
    pub("mqx/dev1/status", "online", "-q", "1")
    got, _ = sub.communicate(timeout=WAIT + 5)
    words = got.split()
    out("MQTT to mq", f"{words[0]} {words[-1]}" if words else "nothing")


SCENARIOS = [qos_levels, wildcards, retained, will, shared, offline, properties, request_response]

if __name__ == "__main__":
    for scenario in SCENARIOS:
        try:
            scenario()
        except Exception as e:  # a failed scenario is a result too
            out(scenario.__name__, f"FAILED {type(e).__name__}: {e}")
    if "--mq" in sys.argv:
        mq = sys.argv[sys.argv.index("--mq") + 1]
        server = sys.argv[sys.argv.index("--mq-server") + 1]
        try:
            mq_both_ways(mq, server)
        except Exception as e:
            out("mq", f"FAILED {type(e).__name__}: {e}")
