/* One-to-one: a sender and a receiver; every message to the one receiver.
 * Usage: one_to_one [ADDR] */
#include "common.h"

int main(int argc, char **argv) {
    const char *addr = address(argc, argv);
    mq_client *receiver = connect_to(addr);
    mq_subscription *orders = subscribe(receiver, "orders.created", NULL, 0);
    mq_client *sender = connect_to(addr);
    char text[64];
    for (int i = 1; i <= 3; i++) {
        snprintf(text, sizeof text, "order %d", i);
        publish(sender, "orders.created", text);
        printf("sent: %s\n", text);
    }
    for (int i = 1; i <= 3; i++) {
        mq_message *m = expect(orders, text, sizeof text);
        printf("received: %s\n", text);
        done(m);
    }
    mq_subscription_free(orders);
    mq_client_free(sender);
    mq_client_free(receiver);
    return 0;
}
