"""Producer-consumer (competing consumers): two consumers in a group take one
job at a time (credit 1) and ack each when done; a job that fails is nacked
and the broker hands it out again. Usage: python producer_consumer.py [ADDR]"""

import time

import mq
from common import PATIENCE, address

JOBS = 6
FLAKY = 3  # fails on its first attempt

clients = [mq.Client(address()) for _ in range(2)]
consumers = [c.subscribe("jobs", group="jobs", credit=1) for c in clients]
with mq.Client(address()) as producer:
    for job in range(1, JOBS + 1):
        producer.publish("jobs", str(job))

done_on = {job: 0 for job in range(1, JOBS + 1)}
retried = 0
deadline = time.monotonic() + PATIENCE
while not all(done_on.values()) and time.monotonic() < deadline:
    for consumer in consumers:
        msg = consumer.recv(0.05)
        if msg is None:
            continue
        job = int(msg.payload)
        if job == FLAKY and msg.attempt == 1:
            retried += 1
            msg.nack(requeue=True)
        else:
            done_on[job] = msg.attempt
            msg.ack()

for job, attempt in done_on.items():
    print(f"job {job}: done on attempt {attempt}")
print(f"{JOBS} jobs done, {retried} retried")
for c in clients:
    c.close()
