/* One-to-many (fan-out): every subscriber gets every message.
 * Usage: one_to_many [ADDR] */
#include "common.h"

int main(int argc, char **argv) {
    const char *addr = address(argc, argv);
    mq_client *clients[3];
    mq_subscription *subs[3];
    for (int i = 0; i < 3; i++) {
        clients[i] = connect_to(addr);
        subs[i] = subscribe(clients[i], "news", NULL, 0);
    }
    mq_client *publisher = connect_to(addr);
    char text[64];
    for (int i = 1; i <= 2; i++) {
        snprintf(text, sizeof text, "headline %d", i);
        publish(publisher, "news", text);
        printf("published: %s\n", text);
    }
    for (int n = 0; n < 3; n++) {
        for (int i = 1; i <= 2; i++) {
            mq_message *m = expect(subs[n], text, sizeof text);
            printf("subscriber %d received: %s\n", n + 1, text);
            done(m);
        }
        mq_subscription_free(subs[n]);
        mq_client_free(clients[n]);
    }
    mq_client_free(publisher);
    return 0;
}
