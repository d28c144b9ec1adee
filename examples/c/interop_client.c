/* The C side of the cross-language exchange: sends a request to the Rust
 * program `interop-echo` and prints its reply. Usage: interop_client [ADDR] */
#include "common.h"

int main(int argc, char **argv) {
    mq_client *c = connect_to(address(argc, argv));
    mq_subscription *replies = subscribe(c, "interop.replies.c", NULL, 0);
    publish_with(c, "interop.requests", "hello from c", "from", "c");
    char text[64];
    mq_message *m = expect(replies, text, sizeof text);
    printf("reply: %s\n", text);
    done(m);
    mq_subscription_free(replies);
    mq_client_free(c);
    return 0;
}
