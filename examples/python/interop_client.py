"""The Python side of the cross-language exchange: sends a request to the Rust
program `interop-echo` and prints its reply.
Usage: python interop_client.py [ADDR]"""

import mq
from common import address, expect

with mq.Client(address()) as client, client.subscribe("interop.replies.python") as replies:
    client.publish("interop.requests", "hello from python", headers={"from": "python"})
    reply = expect(replies)
    print(f"reply: {reply.payload.decode()}")
    reply.ack()
