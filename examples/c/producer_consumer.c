/* Producer-consumer (competing consumers): two consumers in a group take one
 * job at a time (credit 1) and ack each when done; a job that fails is nacked
 * and the broker hands it out again. Usage: producer_consumer [ADDR] */
#include "common.h"

#include <time.h>

#define JOBS 6
#define FLAKY 3 /* fails on its first attempt */

int main(int argc, char **argv) {
    const char *addr = address(argc, argv);
    mq_client *clients[2];
    mq_subscription *consumers[2];
    for (int i = 0; i < 2; i++) {
        clients[i] = connect_to(addr);
        consumers[i] = subscribe(clients[i], "jobs", "jobs", 1);
    }
    mq_client *producer = connect_to(addr);
    char text[16];
    for (int job = 1; job <= JOBS; job++) {
        snprintf(text, sizeof text, "%d", job);
        publish(producer, "jobs", text);
    }
    uint32_t done_on[JOBS + 1] = {0};
    int retried = 0, left = JOBS;
    time_t deadline = time(NULL) + PATIENCE_MS / 1000;
    while (left > 0 && time(NULL) < deadline) {
        for (int i = 0; i < 2; i++) {
            mq_message *m = receive(consumers[i], 50, text, sizeof text);
            if (!m) continue;
            int job = atoi(text);
            mq_message_info info;
            mq_message_get_info(m, &info);
            if (job == FLAKY && info.attempt == 1) {
                retried++;
                check(mq_message_nack(m, true), NULL, "nack");
                mq_message_free(m);
            } else {
                if (job >= 1 && job <= JOBS && done_on[job] == 0) left--;
                if (job >= 1 && job <= JOBS) done_on[job] = info.attempt;
                done(m);
            }
        }
    }
    for (int job = 1; job <= JOBS; job++) printf("job %d: done on attempt %u\n", job, done_on[job]);
    printf("%d jobs done, %d retried\n", JOBS, retried);
    for (int i = 0; i < 2; i++) {
        mq_subscription_free(consumers[i]);
        mq_client_free(clients[i]);
    }
    mq_client_free(producer);
    return 0;
}
