#!/usr/bin/env python3
"""What NATS request-reply leaves in mqd: topics and resident memory.

    python3 xtask/nats/inbox_growth.py MQD [REQUESTS]

Starts MQD (a built `mqd`) on free ports with an empty data directory and
serves NATS; a responder subscribes to `svc` and answers each request on its
reply subject, a requester asks REQUESTS times (default 40,000), each reply
to its own subject `_INBOX.x.<n>` as NATS clients do. Prints, four times
along the way, how many topics mqd lists (`/api/topics`) and its resident
memory (`VmRSS` in /proc, Linux only). Standard library only.
"""

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port, sub):
    s = socket.create_connection(("127.0.0.1", port))
    s.recv(4096)  # INFO
    s.sendall(b'CONNECT {"verbose":false}\r\n' + sub + b"PING\r\n")
    buf = b""
    while b"PONG\r\n" not in buf:
        buf += s.recv(4096)
    return s


def read_until(s, buf, end):
    while end not in buf:
        buf += s.recv(65536)
    head, _, rest = buf.partition(end)
    return head, rest


def main():
    mqd, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40_000
    nats, http = free_port(), free_port()
    data = tempfile.mkdtemp(prefix="mq-inbox-")
    proc = subprocess.Popen(
        [mqd, "--listen", f"127.0.0.1:{free_port()}", "--http", f"127.0.0.1:{http}",
         "--nats", f"127.0.0.1:{nats}", "--data-dir", data, "--log", "warn"])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", nats)).close()
                break
            except OSError:
                time.sleep(0.1)

        def report(what):
            rss = next(line.split()[1] for line in open(f"/proc/{proc.pid}/status")
                       if line.startswith("VmRSS"))
            url = f"http://127.0.0.1:{http}/api/topics"
            topics = len(json.load(urllib.request.urlopen(url))["topics"])
            print(f"{what}: {topics} topics, mqd VmRSS {rss} kB", flush=True)

        responder = connect(nats, b"SUB svc 1\r\n")
        requester = connect(nats, b"SUB _INBOX.x.* 1\r\n")
        report("before")
        rbuf = qbuf = b""
        for i in range(n):
            requester.sendall(b"PUB svc _INBOX.x.%d 2\r\nhi\r\n" % i)
            line, rbuf = read_until(responder, rbuf, b"\r\nhi\r\n")
            reply = line.split(b" ")[3]
            responder.sendall(b"PUB " + reply + b" 2\r\nok\r\n")
            _, qbuf = read_until(requester, qbuf, b"\r\nok\r\n")
            if (i + 1) % max(n // 4, 1) == 0:
                report(f"after {i + 1} requests")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
