"""Bad input against an MQTT broker, run by `cargo xtask ci` against mqd:
each case is answered with the right reason code or a close, while a
well-behaved subscriber (mosquitto_sub) keeps getting its messages.

Usage: badinput.py HOST PORT. Prints `case: what happened` lines; the caller
compares them with what it expects.
"""

import os
import socket
import struct
import subprocess
import sys
import time

HOST = sys.argv[1]
PORT = int(sys.argv[2])
TOPIC = f"bad/{os.getpid()}"


def out(name, result):
    print(f"{name}\t{result}", flush=True)


def utf8(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def packet(first, body):
    n, enc = len(body), b""
    while True:
        d, n = n % 128, n // 128
        enc += bytes([d | (0x80 if n else 0)])
        if not n:
            return bytes([first]) + enc + body


def connect_packet(cid, level=5):
    props = b"\x00" if level == 5 else b""
    return packet(0x10, utf8("MQTT") + bytes([level, 0x02]) + struct.pack(">H", 30) + props
                  + utf8(cid))


def answer(sock, timeout=5.0):
    """What the broker sends before closing: packet types and first bytes."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return describe(data) + " (still open)"
    except ConnectionResetError:
        pass
    return describe(data) + " then close"


def describe(data):
    names = {2: "CONNACK", 13: "PINGRESP", 14: "DISCONNECT", 4: "PUBACK", 9: "SUBACK"}
    parts, i = [], 0
    while i + 1 < len(data):
        kind, length = data[i] >> 4, data[i + 1]
        body = data[i + 2:i + 2 + length]
        name = names.get(kind, f"type {kind}")
        if kind == 2 and len(body) >= 2:
            name += f" 0x{body[1]:02X}"
        elif kind == 14 and body:
            name += f" 0x{body[0]:02X}"
        parts.append(name)
        i += 2 + length
    return ", ".join(parts) or "nothing"


def session(cid, level=5):
    s = socket.create_connection((HOST, PORT), timeout=5)
    s.sendall(connect_packet(cid, level))
    s.settimeout(5)
    first = s.recv(4096)
    assert first and first[0] >> 4 == 2, f"no CONNACK: {first!r}"
    return s


def case(name, level, payload):
    s = session(f"bad-{name.replace(' ', '-')}", level)
    s.sendall(payload)
    out(name, answer(s))
    s.close()


def main():
    watcher = subprocess.Popen(
        ["mosquitto_sub", "-h", HOST, "-p", str(PORT), "-t", TOPIC, "-C", "1", "-W", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.5)
    # Before CONNECT.
    s = socket.create_connection((HOST, PORT), timeout=5)
    s.sendall(packet(0xC0, b""))
    out("PINGREQ before CONNECT", answer(s))
    s = socket.create_connection((HOST, PORT), timeout=5)
    s.sendall(b"\x10\x0d\x00\x04MQTT\x09\x02\x00\x1e\x00\x01x")
    out("unknown protocol level", answer(s))
    s = socket.create_connection((HOST, PORT), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\n\r\n")
    out("not MQTT at all", answer(s))
    silent = socket.create_connection((HOST, PORT), timeout=5)
    started = time.time()
    # After CONNECT (MQTT 5, then 3.1.1).
    case("malformed: topic runs past the end", 5, packet(0x30, b"\x00\x05ab"))
    case("oversized packet", 5, b"\x30\xff\xff\xff\x7f")
    case("QoS 3 publish", 5, packet(0x36, utf8("a") + b"\x00\x01\x00"))
    case("second CONNECT", 5, connect_packet("again"))
    case("topic alias over the maximum", 5,
         packet(0x30, utf8("a") + b"\x03\x23\xff\xff" + b"x"))
    case("server packet from a client", 5, packet(0x90, b"\x00\x01\x00"))
    case("malformed (3.1.1)", 4, packet(0x30, b"\x00\x05ab"))
    case("SUBSCRIBE without filters (3.1.1)", 4, packet(0x82, b"\x00\x01"))
    # A CONNECT that never comes: closed at the handshake timeout.
    left = max(0.0, 15.0 - (time.time() - started))
    out("CONNECT never comes", answer(silent, left + 5))
    # The well-behaved subscriber still gets its message.
    subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(PORT), "-t", TOPIC, "-m", "still here",
                    "-q", "1"], check=True, timeout=5)
    got, _ = watcher.communicate(timeout=35)
    out("others keep flowing", got.strip())


if __name__ == "__main__":
    main()
