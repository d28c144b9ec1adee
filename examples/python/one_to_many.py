"""One-to-many (fan-out): every subscriber gets every message.
Usage: python one_to_many.py [ADDR]"""

import mq
from common import address, expect

clients = [mq.Client(address()) for _ in range(3)]
subscribers = [c.subscribe("news") for c in clients]
with mq.Client(address()) as publisher:
    for i in (1, 2):
        publisher.publish("news", f"headline {i}")
        print(f"published: headline {i}")
for n, sub in enumerate(subscribers, start=1):
    for _ in (1, 2):
        msg = expect(sub)
        print(f"subscriber {n} received: {msg.payload.decode()}")
        msg.ack()
for c in clients:
    c.close()
