"""Many-to-many: three publishers on their own topics, two subscribers on a
wildcard filter; each subscriber gets every publisher's messages.
Usage: python many_to_many.py [ADDR]"""

import mq
from common import address, expect

readers = {name: mq.Client(address()) for name in ("dashboard", "archive")}
subs = {name: c.subscribe("sensors.>") for name, c in readers.items()}
publishers = {topic: mq.Client(address()) for topic in ("sensors.a", "sensors.b", "sensors.c")}
for reading in (1, 2):
    for topic, client in publishers.items():
        client.publish(topic, str(reading))
for name, sub in subs.items():
    seen = []
    for _ in range(2 * len(publishers)):
        msg = expect(sub)
        seen.append(f"{msg.topic}={msg.payload.decode()}")
        msg.ack()
    print(f"{name}: {' '.join(sorted(seen))}")
for c in [*readers.values(), *publishers.values()]:
    c.close()
