/* Many-to-many: three publishers on their own topics, two subscribers on a
 * wildcard filter; each subscriber gets every publisher's messages.
 * Usage: many_to_many [ADDR] */
#include "common.h"

static int by_text(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

int main(int argc, char **argv) {
    const char *addr = address(argc, argv);
    const char *names[2] = {"dashboard", "archive"};
    mq_client *readers[2];
    mq_subscription *subs[2];
    for (int i = 0; i < 2; i++) {
        readers[i] = connect_to(addr);
        subs[i] = subscribe(readers[i], "sensors.>", NULL, 0);
    }
    const char *topics[3] = {"sensors.a", "sensors.b", "sensors.c"};
    mq_client *publishers[3];
    for (int p = 0; p < 3; p++) publishers[p] = connect_to(addr);
    for (int reading = 1; reading <= 2; reading++) {
        for (int p = 0; p < 3; p++) {
            char text[8];
            snprintf(text, sizeof text, "%d", reading);
            publish(publishers[p], topics[p], text);
        }
    }
    for (int i = 0; i < 2; i++) {
        char seen[6][64];
        for (int k = 0; k < 6; k++) {
            char text[16];
            mq_message *m = expect(subs[i], text, sizeof text);
            const char *topic;
            mq_message_topic(m, &topic);
            snprintf(seen[k], sizeof seen[k], "%s=%s", topic, text);
            done(m);
        }
        qsort(seen, 6, sizeof seen[0], by_text);
        printf("%s:", names[i]);
        for (int k = 0; k < 6; k++) printf(" %s", seen[k]);
        printf("\n");
        mq_subscription_free(subs[i]);
        mq_client_free(readers[i]);
    }
    for (int p = 0; p < 3; p++) mq_client_free(publishers[p]);
    return 0;
}
