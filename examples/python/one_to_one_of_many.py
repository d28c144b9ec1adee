"""One-to-one-of-many: three workers in one group share the tasks; each task
goes to exactly one of them. Usage: python one_to_one_of_many.py [ADDR]"""

import time

import mq
from common import PATIENCE, address

TASKS = 6

clients = [mq.Client(address()) for _ in range(3)]
workers = [c.subscribe("tasks", group="workers") for c in clients]
with mq.Client(address()) as producer:
    for i in range(1, TASKS + 1):
        producer.publish("tasks", str(i))

# Take from every worker until all tasks arrived and a while after, so a task
# delivered twice would be seen.
deliveries = {i: 0 for i in range(1, TASKS + 1)}
deadline = time.monotonic() + PATIENCE
quiet_since = None
while time.monotonic() < deadline:
    got = False
    for worker in workers:
        msg = worker.recv(0.05)
        if msg is not None:
            deliveries[int(msg.payload)] += 1
            msg.ack()
            got = True
    if got or not all(deliveries.values()):
        quiet_since = None
    elif quiet_since is None:
        quiet_since = time.monotonic()
    elif time.monotonic() - quiet_since > 0.3:
        break

for task, n in deliveries.items():
    print(f"task {task}: delivered to one worker" if n == 1 else f"task {task}: delivered {n} times")
if all(n == 1 for n in deliveries.values()):
    print(f"{TASKS} tasks, {len(workers)} workers, no task twice")
for c in clients:
    c.close()
