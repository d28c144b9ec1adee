/* What the C examples share: connecting, publishing and receiving text, and
 * stopping with the library's error text on any failure. */
#ifndef MQ_EXAMPLES_COMMON_H
#define MQ_EXAMPLES_COMMON_H

#define _POSIX_C_SOURCE 200809L
#include "mq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a program waits for a message it expects (ms). */
#define PATIENCE_MS 10000

/* The broker's address: argv[1], else MQ_SERVER, else 127.0.0.1:7410. */
static inline const char *address(int argc, char **argv) {
    if (argc > 1) return argv[1];
    const char *env = getenv("MQ_SERVER");
    return env ? env : "127.0.0.1:7410";
}

/* Stops the program unless `r` is MQ_OK, with the client's error text. */
static inline void check(mq_result r, const mq_client *c, const char *what) {
    if (r == MQ_OK) return;
    char text[256] = "";
    if (c) mq_client_error(c, text, sizeof text, NULL);
    fprintf(stderr, "%s: %s: %s\n", what, mq_result_name(r), text);
    exit(1);
}

static inline mq_client *connect_to(const char *addr) {
    mq_client *c = NULL;
    check(mq_client_new(&c), NULL, "mq_client_new");
    mq_connect_options o;
    mq_connect_options_init(&o);
    o.address = addr;
    check(mq_client_connect(c, &o), c, "connect");
    return c;
}

/* Publishes `text` (QoS 1) with one header, unless `header` is NULL. */
static inline void publish_with(mq_client *c, const char *topic, const char *text,
                                const char *header, const char *value) {
    mq_header h = {header, (const uint8_t *)value, value ? strlen(value) : 0};
    mq_publish_options o;
    mq_publish_options_init(&o);
    if (header) {
        o.headers = &h;
        o.header_count = 1;
    }
    check(mq_client_publish(c, topic, (const uint8_t *)text, strlen(text), &o, NULL), c, "publish");
}

static inline void publish(mq_client *c, const char *topic, const char *text) {
    publish_with(c, topic, text, NULL, NULL);
}

/* Subscribes to `filter`, in `group` unless NULL, with `credit` (0: default). */
static inline mq_subscription *subscribe(mq_client *c, const char *filter, const char *group,
                                         uint32_t credit) {
    mq_subscribe_options o;
    mq_subscribe_options_init(&o);
    o.group = group;
    o.credit = credit;
    mq_subscription *s = NULL;
    check(mq_client_subscribe(c, filter, &o, &s), c, "subscribe");
    return s;
}

/* Waits up to `timeout_ms` for a message: NULL when none came. Its payload
 * goes into `text` (NUL-terminated, cut to `cap`). Free it with
 * mq_message_free after acking or nacking it. */
static inline mq_message *receive(mq_subscription *s, uint32_t timeout_ms, char *text,
                                  size_t cap) {
    mq_message *m = NULL;
    mq_result r = mq_subscription_recv(s, timeout_ms, &m);
    if (r == MQ_ERR_TIMEOUT) return NULL;
    if (r != MQ_OK) {
        char why[256] = "";
        mq_subscription_error(s, why, sizeof why, NULL);
        fprintf(stderr, "receive: %s: %s\n", mq_result_name(r), why);
        exit(1);
    }
    const uint8_t *data;
    size_t len;
    mq_message_payload(m, &data, &len);
    if (len >= cap) len = cap - 1;
    memcpy(text, data, len);
    text[len] = 0;
    return m;
}

/* A message that must come: stops the program when it does not. */
static inline mq_message *expect(mq_subscription *s, char *text, size_t cap) {
    mq_message *m = receive(s, PATIENCE_MS, text, cap);
    if (!m) {
        fprintf(stderr, "no message arrived in time\n");
        exit(1);
    }
    return m;
}

/* Acks and frees. */
static inline void done(mq_message *m) {
    mq_result r = mq_message_ack(m);
    if (r != MQ_OK) {
        fprintf(stderr, "ack: %s\n", mq_result_name(r));
        exit(1);
    }
    mq_message_free(m);
}

#endif
