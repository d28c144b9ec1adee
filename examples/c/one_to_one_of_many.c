/* One-to-one-of-many: three workers in one group share the tasks; each task
 * goes to exactly one of them. Usage: one_to_one_of_many [ADDR] */
#include "common.h"

#include <time.h>

#define TASKS 6
#define WORKERS 3

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    const char *addr = address(argc, argv);
    mq_client *clients[WORKERS];
    mq_subscription *workers[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        clients[w] = connect_to(addr);
        workers[w] = subscribe(clients[w], "tasks", "workers", 0);
    }
    mq_client *producer = connect_to(addr);
    char text[32];
    for (int i = 1; i <= TASKS; i++) {
        snprintf(text, sizeof text, "%d", i);
        publish(producer, "tasks", text);
    }
    /* Take from every worker until all tasks arrived and a while after, so a
     * task delivered twice would be seen. */
    int deliveries[TASKS + 1] = {0};
    double deadline = now() + PATIENCE_MS / 1000.0, quiet_since = 0;
    while (now() < deadline) {
        int got = 0, all = 1;
        for (int w = 0; w < WORKERS; w++) {
            mq_message *m = receive(workers[w], 50, text, sizeof text);
            if (!m) continue;
            int task = atoi(text);
            if (task >= 1 && task <= TASKS) deliveries[task]++;
            done(m);
            got = 1;
        }
        for (int i = 1; i <= TASKS; i++) all &= deliveries[i] > 0;
        if (got || !all) {
            quiet_since = 0;
        } else if (quiet_since == 0) {
            quiet_since = now();
        } else if (now() - quiet_since > 0.3) {
            break;
        }
    }
    int once = 1;
    for (int i = 1; i <= TASKS; i++) {
        if (deliveries[i] == 1) {
            printf("task %d: delivered to one worker\n", i);
        } else {
            printf("task %d: delivered %d times\n", i, deliveries[i]);
            once = 0;
        }
    }
    if (once) printf("%d tasks, %d workers, no task twice\n", TASKS, WORKERS);
    for (int w = 0; w < WORKERS; w++) {
        mq_subscription_free(workers[w]);
        mq_client_free(clients[w]);
    }
    mq_client_free(producer);
    return 0;
}
