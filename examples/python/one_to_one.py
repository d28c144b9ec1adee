"""One-to-one: a sender and a receiver; every message to the one receiver.
Usage: python one_to_one.py [ADDR]"""

import mq
from common import address, expect

with mq.Client(address()) as receiver, receiver.subscribe("orders.created") as orders:
    with mq.Client(address()) as sender:
        for i in range(1, 4):
            sender.publish("orders.created", f"order {i}")
            print(f"sent: order {i}")
    for _ in range(3):
        msg = expect(orders)
        print(f"received: {msg.payload.decode()}")
        msg.ack()
