/*
 * The C ABI of mq, every function, against a real mqd.
 *
 * Usage: mq_test ADDRESS TOKEN NARROW_TOKEN TLS_ADDRESS CA CERT KEY OTHER_CA
 *   ADDRESS       host:port of an mqd whose tokens are TOKEN (may do anything)
 *                 and NARROW_TOKEN (may publish and subscribe under "open.>" only)
 *   TLS_ADDRESS   the same mqd's TLS listener, as localhost:port, whose
 *                 certificate chains to CA; CERT and KEY are a client
 *                 certificate whose identity may use "dev.ffi-device.>" only;
 *                 OTHER_CA is a CA the broker's certificate does not chain to
 *
 * Run by mq-ffi/tests/c_abi.rs, built with AddressSanitizer. Prints one line per
 * failed check and a closing count; exits non-zero when any check failed.
 */
#define _POSIX_C_SOURCE 200809L
#include "mq.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            passed++;                                                        \
        } else {                                                             \
            failed++;                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
        }                                                                    \
    } while (0)

/* The call returned `want`; on a mismatch, say what it returned instead. */
#define EXPECT(call, want)                                                      \
    do {                                                                        \
        mq_result got_ = (call);                                                \
        if (got_ == (want)) {                                                   \
            passed++;                                                           \
        } else {                                                                \
            failed++;                                                           \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s\n", __FILE__,  \
                    __LINE__, #call, mq_result_name(got_), mq_result_name(want)); \
        }                                                                       \
    } while (0)

static const char *addr, *token, *narrow;
static const char *tls_addr, *tls_ca, *tls_cert, *tls_key, *other_ca;

/* The client's error text (in a static buffer). */
static const char *client_error(const mq_client *c) {
    static char buf[512];
    size_t len = 0;
    if (mq_client_error(c, buf, sizeof buf, &len) != MQ_OK) return "(no text)";
    return buf;
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static int contains(const char *text, const char *part) {
    return text != NULL && strstr(text, part) != NULL;
}

/* A connected client, or NULL (and a failed check). */
static mq_client *connect_as(const char *client_id, const char *tok, bool persistent) {
    mq_client *c = NULL;
    EXPECT(mq_client_new(&c), MQ_OK);
    mq_connect_options o;
    EXPECT(mq_connect_options_init(&o), MQ_OK);
    o.address = addr;
    o.client_id = client_id;
    o.token = tok;
    o.persistent_session = persistent;
    o.connect_timeout_ms = 5000;
    mq_result r = mq_client_connect(c, &o);
    EXPECT(r, MQ_OK);
    if (r != MQ_OK) {
        fprintf(stderr, "connect as %s: %s\n", client_id, client_error(c));
        mq_client_free(c);
        return NULL;
    }
    return c;
}

static mq_result publish_text(mq_client *c, const char *topic, const char *text, uint32_t qos,
                              mq_puback *ack) {
    mq_publish_options o;
    mq_publish_options_init(&o);
    o.qos = qos;
    return mq_client_publish(c, topic, (const uint8_t *)text, strlen(text), &o, ack);
}

static mq_subscription *subscribe(mq_client *c, const char *filter, const mq_subscribe_options *o) {
    mq_subscription *s = NULL;
    mq_result r = mq_client_subscribe(c, filter, o, &s);
    EXPECT(r, MQ_OK);
    if (r != MQ_OK) fprintf(stderr, "subscribe %s: %s\n", filter, client_error(c));
    return s;
}

/* The next message's payload as a string (in `out`), its info in `*info`; the
 * message is acked. Returns the receive's result. */
static mq_result recv_text(mq_subscription *s, char *out, size_t cap, mq_message_info *info) {
    mq_message *m = NULL;
    mq_result r = mq_subscription_recv(s, 10000, &m);
    if (r != MQ_OK) return r;
    const uint8_t *data = NULL;
    size_t len = 0;
    EXPECT(mq_message_payload(m, &data, &len), MQ_OK);
    if (len >= cap) len = cap - 1;
    memcpy(out, data, len);
    out[len] = 0;
    if (info) EXPECT(mq_message_get_info(m, info), MQ_OK);
    EXPECT(mq_message_ack(m), MQ_OK);
    mq_message_free(m);
    return MQ_OK;
}

/* ------------------------------------------------------------ without a broker */

static void test_names_and_nulls(void) {
    CHECK(strcmp(mq_result_name(MQ_OK), "MQ_OK") == 0);
    CHECK(strcmp(mq_result_name(MQ_ERR_BUFFER_TOO_SMALL), "MQ_ERR_BUFFER_TOO_SMALL") == 0);
    CHECK(strcmp(mq_result_name(MQ_ERR_OTHER), "MQ_ERR_OTHER") == 0);
    CHECK(strcmp(mq_result_name(-1), "MQ_UNKNOWN") == 0);
    CHECK(strcmp(mq_result_name(999), "MQ_UNKNOWN") == 0);

    /* Free of NULL is fine. */
    mq_client_free(NULL);
    mq_subscription_free(NULL);
    mq_listener_free(NULL);
    mq_message_free(NULL);

    EXPECT(mq_client_new(NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_connect_options_init(NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_publish_options_init(NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_subscribe_options_init(NULL), MQ_ERR_NULL_ARGUMENT);

    mq_connect_options co;
    EXPECT(mq_connect_options_init(&co), MQ_OK);
    co.address = addr;
    EXPECT(mq_client_connect(NULL, &co), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_client_close(NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_client_publish(NULL, "t", NULL, 0, NULL, NULL), MQ_ERR_NULL_ARGUMENT);
    mq_subscription *s = NULL;
    EXPECT(mq_client_subscribe(NULL, "t", NULL, &s), MQ_ERR_NULL_ARGUMENT);
    mq_listener *l = NULL;
    EXPECT(mq_client_subscribe_callback(NULL, "t", NULL, NULL, NULL, &l), MQ_ERR_NULL_ARGUMENT);
    mq_message *m = NULL;
    EXPECT(mq_subscription_recv(NULL, 0, &m), MQ_ERR_NULL_ARGUMENT);
    CHECK(s == NULL && l == NULL && m == NULL);

    char buf[16];
    size_t len;
    EXPECT(mq_client_error(NULL, buf, sizeof buf, &len), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_subscription_error(NULL, buf, sizeof buf, &len), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_message_error(NULL, buf, sizeof buf, &len), MQ_ERR_NULL_ARGUMENT);

    const char *topic;
    const uint8_t *data;
    mq_message_info info;
    mq_header h;
    EXPECT(mq_message_topic(NULL, &topic), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_message_payload(NULL, &data, &len), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_message_get_info(NULL, &info), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_message_header(NULL, 0, &h), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_message_find_header(NULL, "k", &h), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_message_ack(NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_message_nack(NULL, true), MQ_ERR_NULL_ARGUMENT);
}

static void test_defaults(void) {
    mq_connect_options co;
    memset(&co, 0xAB, sizeof co);
    EXPECT(mq_connect_options_init(&co), MQ_OK);
    CHECK(co.address == NULL && co.client_id == NULL && co.token == NULL);
    CHECK(!co.persistent_session && co.connect_timeout_ms == 0 && co.credit == 0);
    CHECK(!co.tls && co.tls_ca == NULL && co.tls_cert == NULL && co.tls_key == NULL);
    CHECK(co.tls_server_name == NULL);

    mq_publish_options po;
    memset(&po, 0xAB, sizeof po);
    EXPECT(mq_publish_options_init(&po), MQ_OK);
    CHECK(po.qos == MQ_QOS_AT_LEAST_ONCE && po.ttl_ms == 0 && po.headers == NULL);
    CHECK(po.header_count == 0 && po.timeout_ms == 0 && po.priority == 0);

    mq_subscribe_options so;
    memset(&so, 0xAB, sizeof so);
    EXPECT(mq_subscribe_options_init(&so), MQ_OK);
    CHECK(so.group == NULL && so.start == MQ_START_NEW && so.start_at == 0);
    CHECK(so.qos == MQ_QOS_AT_LEAST_ONCE && so.credit == 0);
}

/* Error text: length queries, too small buffers left untouched, reading does not
 * change the text. */
static void test_error_text(void) {
    mq_client *c = NULL;
    EXPECT(mq_client_new(&c), MQ_OK);
    CHECK(c != NULL);

    size_t len = 99;
    char buf[256];
    EXPECT(mq_client_error(c, buf, sizeof buf, &len), MQ_OK);
    CHECK(len == 0 && buf[0] == 0); /* no failure yet */

    EXPECT(mq_client_connect(c, NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_client_error(c, NULL, 0, &len), MQ_ERR_BUFFER_TOO_SMALL);
    CHECK(len == strlen("opts is NULL"));

    char small[4];
    memset(small, 'X', sizeof small);
    len = 0;
    EXPECT(mq_client_error(c, small, sizeof small, &len), MQ_ERR_BUFFER_TOO_SMALL);
    CHECK(len == strlen("opts is NULL"));
    CHECK(memcmp(small, "XXXX", 4) == 0);

    /* Exactly len bytes: still one short (the NUL). */
    char exact[12];
    memset(exact, 'X', sizeof exact);
    EXPECT(mq_client_error(c, exact, sizeof exact, &len), MQ_ERR_BUFFER_TOO_SMALL);
    CHECK(exact[0] == 'X' && exact[11] == 'X');

    char fits[13];
    EXPECT(mq_client_error(c, fits, sizeof fits, NULL), MQ_OK);
    CHECK(strcmp(fits, "opts is NULL") == 0);
    /* The too-small reads did not replace the text with their own failure. */
    EXPECT(mq_client_error(c, buf, sizeof buf, &len), MQ_OK);
    CHECK(strcmp(buf, "opts is NULL") == 0 && len == 12);
    /* A buffer size without a buffer. */
    EXPECT(mq_client_error(c, NULL, sizeof buf, &len), MQ_ERR_NULL_ARGUMENT);

    mq_connect_options o;
    mq_connect_options_init(&o);
    EXPECT(mq_client_connect(c, &o), MQ_ERR_NULL_ARGUMENT);
    CHECK(strcmp(client_error(c), "opts->address is NULL") == 0);

    o.address = addr;
    o.client_id = "\xff\xfe";
    EXPECT(mq_client_connect(c, &o), MQ_ERR_INVALID);
    CHECK(contains(client_error(c), "opts->client_id is not valid UTF-8"));
    char long_id[80];
    memset(long_id, 'i', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    o.client_id = long_id;
    EXPECT(mq_client_connect(c, &o), MQ_ERR_INVALID);
    o.client_id = NULL;
    o.address = "";
    EXPECT(mq_client_connect(c, &o), MQ_ERR_IO);

    /* Not connected yet. */
    EXPECT(mq_client_publish(c, "t", (const uint8_t *)"x", 1, NULL, NULL), MQ_ERR_CLOSED);
    CHECK(contains(client_error(c), "not connected"));
    mq_subscription *s = NULL;
    EXPECT(mq_client_subscribe(c, "t", NULL, &s), MQ_ERR_CLOSED);
    EXPECT(mq_client_close(c), MQ_OK);
    mq_client_free(c);
}

static void test_bad_address(void) {
    mq_client *c = NULL;
    EXPECT(mq_client_new(&c), MQ_OK);
    mq_connect_options o;
    mq_connect_options_init(&o);
    o.connect_timeout_ms = 3000;

    o.address = "this is not an address";
    EXPECT(mq_client_connect(c, &o), MQ_ERR_IO);
    CHECK(contains(client_error(c), "connecting failed"));

    /* A port nothing listens on. */
    o.address = "127.0.0.1:1";
    EXPECT(mq_client_connect(c, &o), MQ_ERR_IO);
    CHECK(contains(client_error(c), "connecting failed"));
    mq_client_free(c);
}

/* ------------------------------------------------------------ with a broker */

static void test_tokens(void) {
    mq_client *c = NULL;
    EXPECT(mq_client_new(&c), MQ_OK);
    mq_connect_options o;
    mq_connect_options_init(&o);
    o.address = addr;
    o.token = "wrong";
    EXPECT(mq_client_connect(c, &o), MQ_ERR_REFUSED);
    CHECK(contains(client_error(c), "bad token"));
    o.token = NULL;
    EXPECT(mq_client_connect(c, &o), MQ_ERR_REFUSED);
    o.token = token;
    EXPECT(mq_client_connect(c, &o), MQ_OK);
    EXPECT(mq_client_connect(c, &o), MQ_ERR_INVALID);
    CHECK(contains(client_error(c), "already connected"));
    mq_client_free(c); /* frees a connected client */

    /* A token that may only use "open.>": the broker rejects the rest. */
    mq_client *n = connect_as("c-narrow", narrow, false);
    if (!n) return;
    EXPECT(publish_text(n, "open.ok", "fine", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);
    EXPECT(publish_text(n, "closed.no", "nope", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_ERR_REJECTED);
    CHECK(contains(client_error(n), "not authorized"));
    mq_subscription *s = NULL;
    EXPECT(mq_client_subscribe(n, "closed.>", NULL, &s), MQ_ERR_REJECTED);
    CHECK(s == NULL);
    mq_client_free(n);
}

/* TLS and mutual TLS: the client certificate's identity carries its
 * permissions; each refusal says why. */
static void test_tls(void) {
    mq_client *c = NULL;
    EXPECT(mq_client_new(&c), MQ_OK);
    mq_connect_options o;
    mq_connect_options_init(&o);
    o.address = tls_addr;
    o.connect_timeout_ms = 5000;

    o.tls = true; /* no CA */
    EXPECT(mq_client_connect(c, &o), MQ_ERR_INVALID);
    CHECK(contains(client_error(c), "CA"));
    o.tls_ca = "/nonexistent/ca.pem";
    EXPECT(mq_client_connect(c, &o), MQ_ERR_INVALID);
    CHECK(contains(client_error(c), "/nonexistent/ca.pem"));
    o.tls_ca = other_ca;
    EXPECT(mq_client_connect(c, &o), MQ_ERR_IO);
    CHECK(contains(client_error(c), "UnknownIssuer"));
    o.tls_ca = tls_ca;
    o.tls_server_name = "elsewhere.example";
    EXPECT(mq_client_connect(c, &o), MQ_ERR_IO);
    CHECK(contains(client_error(c), "not valid for name"));
    o.tls_server_name = NULL;
    /* TLS without a certificate or a token: the broker wants credentials. */
    EXPECT(mq_client_connect(c, &o), MQ_ERR_REFUSED);

    o.tls_cert = tls_cert;
    o.tls_key = tls_key;
    EXPECT(mq_client_connect(c, &o), MQ_OK);
    EXPECT(publish_text(c, "dev.ffi-device.temp", "21.5", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);
    EXPECT(publish_text(c, "open.x", "not mine", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_ERR_REJECTED);
    mq_subscription *s = NULL;
    EXPECT(mq_client_subscribe(c, "dev.ffi-device.>", NULL, &s), MQ_OK);
    EXPECT(publish_text(c, "dev.ffi-device.cmd", "over tls", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);
    mq_message *m = NULL;
    EXPECT(mq_subscription_recv(s, 5000, &m), MQ_OK);
    if (m) {
        const uint8_t *data = NULL;
        size_t len = 0;
        EXPECT(mq_message_payload(m, &data, &len), MQ_OK);
        CHECK(len == 8 && memcmp(data, "over tls", 8) == 0);
        EXPECT(mq_message_ack(m), MQ_OK);
        mq_message_free(m);
    }
    mq_subscription_free(s);
    EXPECT(mq_client_close(c), MQ_OK);
    mq_client_free(c);
}

static void test_publish_receive(mq_client *c) {
    mq_subscription *s = subscribe(c, "ffi.c.>", NULL);
    if (!s) return;

    mq_header headers[2] = {
        {"kind", (const uint8_t *)"greeting", 8},
        {"bin", (const uint8_t *)"\x00\x01\x02", 3},
    };
    mq_publish_options po;
    mq_publish_options_init(&po);
    po.ttl_ms = 60000;
    po.priority = 9;
    po.headers = headers;
    po.header_count = 2;
    po.timeout_ms = 5000;
    mq_puback ack;
    memset(&ack, 0, sizeof ack);
    EXPECT(mq_client_publish(c, "ffi.c.one", (const uint8_t *)"hello", 5, &po, &ack), MQ_OK);
    CHECK(ack.has_seq && !ack.duplicate);

    mq_message *m = NULL;
    EXPECT(mq_subscription_recv(s, 10000, &m), MQ_OK);
    if (!m) return;
    const char *topic = NULL;
    EXPECT(mq_message_topic(m, &topic), MQ_OK);
    CHECK(topic && strcmp(topic, "ffi.c.one") == 0);
    const uint8_t *data = NULL;
    size_t len = 0;
    EXPECT(mq_message_payload(m, &data, &len), MQ_OK);
    CHECK(len == 5 && memcmp(data, "hello", 5) == 0);
    mq_message_info info;
    EXPECT(mq_message_get_info(m, &info), MQ_OK);
    CHECK(info.seq == ack.seq && info.attempt == 1 && info.qos == MQ_QOS_AT_LEAST_ONCE);
    CHECK(info.ttl_ms == 60000 && info.header_count == 2 && info.needs_ack);
    CHECK(info.priority == 9);

    mq_header h;
    EXPECT(mq_message_header(m, 0, &h), MQ_OK);
    CHECK(strcmp(h.key, "kind") == 0 && h.value_len == 8 && memcmp(h.value, "greeting", 8) == 0);
    EXPECT(mq_message_header(m, 1, &h), MQ_OK);
    CHECK(strcmp(h.key, "bin") == 0 && h.value_len == 3 && memcmp(h.value, "\x00\x01\x02", 3) == 0);
    EXPECT(mq_message_header(m, 2, &h), MQ_ERR_NOT_FOUND);
    EXPECT(mq_message_find_header(m, "bin", &h), MQ_OK);
    CHECK(h.value_len == 3 && h.value[2] == 2);
    EXPECT(mq_message_find_header(m, "nope", &h), MQ_ERR_NOT_FOUND);
    char buf[128];
    EXPECT(mq_message_error(m, buf, sizeof buf, &len), MQ_OK);
    CHECK(strcmp(buf, "no header \"nope\"") == 0);
    EXPECT(mq_message_find_header(m, NULL, &h), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_message_find_header(m, "kind", NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_message_header(m, 0, NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_message_topic(m, NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_message_payload(m, NULL, &len), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_message_payload(m, &data, NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_message_get_info(m, NULL), MQ_ERR_NULL_ARGUMENT);
    char tiny[2] = {'X', 'X'};
    EXPECT(mq_message_error(m, tiny, sizeof tiny, &len), MQ_ERR_BUFFER_TOO_SMALL);
    CHECK(tiny[0] == 'X' && len == strlen("info is NULL"));

    EXPECT(mq_message_ack(m), MQ_OK);
    EXPECT(mq_message_ack(m), MQ_ERR_INVALID);
    EXPECT(mq_message_nack(m, true), MQ_ERR_INVALID);
    CHECK(contains((mq_message_error(m, buf, sizeof buf, NULL), buf), "already acked"));
    /* Fields outlive the settlement. */
    EXPECT(mq_message_topic(m, &topic), MQ_OK);
    CHECK(strcmp(topic, "ffi.c.one") == 0);
    mq_message_free(m);

    /* Nothing more: a timeout, with its text on the subscription. */
    m = NULL;
    EXPECT(mq_subscription_recv(s, 50, &m), MQ_ERR_TIMEOUT);
    CHECK(m == NULL);
    EXPECT(mq_subscription_error(s, buf, sizeof buf, &len), MQ_OK);
    CHECK(strcmp(buf, "no message within 50 ms") == 0);
    EXPECT(mq_subscription_error(s, buf, 3, &len), MQ_ERR_BUFFER_TOO_SMALL);
    CHECK(len == strlen("no message within 50 ms"));
    EXPECT(mq_subscription_recv(s, 0, NULL), MQ_ERR_NULL_ARGUMENT);

    /* QoS 0 and an empty payload. */
    EXPECT(mq_client_publish(c, "ffi.c.zero", NULL, 0, NULL, NULL), MQ_OK);
    po.qos = MQ_QOS_AT_MOST_ONCE;
    po.headers = NULL;
    po.header_count = 0;
    po.ttl_ms = 0;
    EXPECT(mq_client_publish(c, "ffi.c.zero", (const uint8_t *)"q0", 2, &po, &ack), MQ_OK);
    CHECK(!ack.has_seq);
    EXPECT(mq_subscription_recv(s, 10000, &m), MQ_OK);
    EXPECT(mq_message_payload(m, &data, &len), MQ_OK);
    CHECK(len == 0 && data != NULL);
    EXPECT(mq_message_get_info(m, &info), MQ_OK);
    CHECK(info.header_count == 0 && info.ttl_ms == 0);
    EXPECT(mq_message_header(m, 0, &h), MQ_ERR_NOT_FOUND);
    mq_message_free(m);
    EXPECT(mq_subscription_recv(s, 10000, &m), MQ_OK);
    EXPECT(mq_message_get_info(m, &info), MQ_OK);
    CHECK(info.qos == MQ_QOS_AT_MOST_ONCE && !info.needs_ack);
    EXPECT(mq_message_ack(m), MQ_OK); /* nothing to settle, still fine */
    mq_message_free(m);

    mq_subscription_free(s);
}

/* Queued publishes: many QoS 1 messages in flight from one thread, each
 * receipt answered with its sequence number, in order; QoS 0 answered at once. */
static void test_enqueue(mq_client *c) {
    mq_subscription *s = subscribe(c, "ffi.c.queued", NULL);
    if (!s) return;
    enum { N = 200 };
    mq_receipt *receipts[N];
    mq_publish_options po;
    mq_publish_options_init(&po);
    for (int i = 0; i < N; i++) {
        char text[16];
        int n = snprintf(text, sizeof text, "q%d", i);
        receipts[i] = NULL;
        EXPECT(mq_client_enqueue(c, "ffi.c.queued", (const uint8_t *)text, (size_t)n, &po,
                                 &receipts[i]),
               MQ_OK);
    }
    uint64_t last = 0;
    for (int i = 0; i < N; i++) {
        mq_puback ack;
        memset(&ack, 0, sizeof ack);
        EXPECT(mq_receipt_wait(receipts[i], MQ_WAIT_FOREVER, &ack), MQ_OK);
        CHECK(ack.has_seq && ack.seq > last);
        last = ack.seq;
        mq_receipt_free(receipts[i]);
    }
    for (int i = 0; i < N; i++) {
        char text[64], want[16];
        snprintf(want, sizeof want, "q%d", i);
        mq_message_info info;
        if (recv_text(s, text, sizeof text, &info) != MQ_OK) break;
        CHECK(strcmp(text, want) == 0);
    }
    po.qos = MQ_QOS_AT_MOST_ONCE;
    mq_receipt *r = NULL;
    EXPECT(mq_client_enqueue(c, "ffi.c.queued", (const uint8_t *)"zero", 4, &po, &r), MQ_OK);
    mq_puback ack;
    EXPECT(mq_receipt_wait(r, 0, &ack), MQ_OK);
    CHECK(!ack.has_seq);
    mq_receipt_free(r);
    mq_receipt_free(NULL);
    EXPECT(mq_client_enqueue(c, "ffi.c.queued", (const uint8_t *)"x", 1, NULL, NULL),
           MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_receipt_wait(NULL, 0, NULL), MQ_ERR_NULL_ARGUMENT);
    mq_subscription_free(s);
}

static void test_publish_errors(mq_client *c) {
    mq_publish_options po;
    mq_publish_options_init(&po);
    EXPECT(mq_client_publish(c, NULL, (const uint8_t *)"x", 1, NULL, NULL), MQ_ERR_NULL_ARGUMENT);
    CHECK(strcmp(client_error(c), "topic is NULL") == 0);
    EXPECT(mq_client_publish(c, "t", NULL, 1, NULL, NULL), MQ_ERR_NULL_ARGUMENT);
    CHECK(strcmp(client_error(c), "payload is NULL") == 0);
    po.qos = 7;
    EXPECT(mq_client_publish(c, "t", NULL, 0, &po, NULL), MQ_ERR_INVALID);
    CHECK(contains(client_error(c), "qos 7"));
    po.qos = MQ_QOS_AT_LEAST_ONCE;
    po.header_count = 1;
    EXPECT(mq_client_publish(c, "t", NULL, 0, &po, NULL), MQ_ERR_NULL_ARGUMENT);
    CHECK(strcmp(client_error(c), "opts->headers is NULL") == 0);
    mq_header bad = {NULL, NULL, 0};
    po.headers = &bad;
    EXPECT(mq_client_publish(c, "t", NULL, 0, &po, NULL), MQ_ERR_NULL_ARGUMENT);
    CHECK(strcmp(client_error(c), "opts->headers[0].key is NULL") == 0);
    bad.key = "";
    EXPECT(mq_client_publish(c, "t", NULL, 0, &po, NULL), MQ_ERR_INVALID);
    bad.key = "k";
    bad.value_len = 4;
    EXPECT(mq_client_publish(c, "t", NULL, 0, &po, NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_client_publish(c, "bad..topic", (const uint8_t *)"x", 1, NULL, NULL), MQ_ERR_INVALID);
    CHECK(contains(client_error(c), "invalid topic"));

    /* Larger than the outbox (8 MiB): can never be sent. */
    size_t big = 9u << 20;
    uint8_t *payload = calloc(big, 1);
    EXPECT(mq_client_publish(c, "ffi.c.big", payload, big, NULL, NULL), MQ_ERR_TOO_LARGE);
    free(payload);
}

static void test_subscribe_errors(mq_client *c) {
    mq_subscription *s = NULL;
    EXPECT(mq_client_subscribe(c, NULL, NULL, &s), MQ_ERR_NULL_ARGUMENT);
    CHECK(strcmp(client_error(c), "filter is NULL") == 0);
    EXPECT(mq_client_subscribe(c, "t", NULL, NULL), MQ_ERR_NULL_ARGUMENT);
    CHECK(strcmp(client_error(c), "out is NULL") == 0);
    mq_subscribe_options so;
    mq_subscribe_options_init(&so);
    so.start = 9;
    EXPECT(mq_client_subscribe(c, "t", &so, &s), MQ_ERR_INVALID);
    CHECK(contains(client_error(c), "start 9"));
    so.start = MQ_START_LAST;
    so.start_at = 1ull << 40;
    EXPECT(mq_client_subscribe(c, "t", &so, &s), MQ_ERR_INVALID);
    so.start = MQ_START_NEW;
    so.qos = 2;
    EXPECT(mq_client_subscribe(c, "t", &so, &s), MQ_ERR_INVALID);
    so.qos = MQ_QOS_AT_LEAST_ONCE;
    so.group = "\xc3\x28";
    EXPECT(mq_client_subscribe(c, "t", &so, &s), MQ_ERR_INVALID);
    CHECK(contains(client_error(c), "opts->group is not valid UTF-8"));
    EXPECT(mq_client_subscribe(c, "a.>.b", NULL, &s), MQ_ERR_INVALID);
    CHECK(contains(client_error(c), "invalid filter"));
    CHECK(s == NULL);

    mq_listener *l = NULL;
    EXPECT(mq_client_subscribe_callback(c, "t", NULL, NULL, NULL, &l), MQ_ERR_NULL_ARGUMENT);
    CHECK(strcmp(client_error(c), "callback is NULL") == 0);
    CHECK(l == NULL);

    /* A client holds at most 32 subscriptions. */
    mq_subscription *many[40] = {0};
    int made = 0;
    mq_result r = MQ_OK;
    while (made < 40 && (r = mq_client_subscribe(c, "ffi.c.many", NULL, &many[made])) == MQ_OK) made++;
    CHECK(made == 32);
    EXPECT(r, MQ_ERR_TOO_MANY_SUBSCRIPTIONS);
    CHECK(contains(client_error(c), "too many subscriptions"));
    for (int i = 0; i < made; i++) mq_subscription_free(many[i]);
    /* The slots come back once the broker confirmed the unsubscribes. */
    mq_subscription *again = NULL;
    for (int i = 0; i < 500 && r != MQ_OK; i++) {
        r = mq_client_subscribe(c, "ffi.c.many", NULL, &again);
        if (r != MQ_OK) sleep_ms(10);
    }
    EXPECT(r, MQ_OK);
    mq_subscription_free(again);
}

static void test_nack(mq_client *c) {
    mq_subscription *s = subscribe(c, "ffi.c.nack", NULL);
    mq_subscription *dlq = subscribe(c, "$dlq.ffi.c.nack", NULL);
    if (!s || !dlq) return;
    EXPECT(publish_text(c, "ffi.c.nack", "again", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);
    mq_message *m = NULL;
    EXPECT(mq_subscription_recv(s, 10000, &m), MQ_OK);
    EXPECT(mq_message_nack(m, true), MQ_OK);
    mq_message_free(m);
    char text[64];
    mq_message_info info;
    EXPECT(recv_text(s, text, sizeof text, &info), MQ_OK);
    CHECK(strcmp(text, "again") == 0 && info.attempt == 2);

    /* Freed unsettled: redelivered. */
    EXPECT(publish_text(c, "ffi.c.nack", "dropped", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);
    EXPECT(mq_subscription_recv(s, 10000, &m), MQ_OK);
    mq_message_free(m);
    EXPECT(recv_text(s, text, sizeof text, &info), MQ_OK);
    CHECK(strcmp(text, "dropped") == 0 && info.attempt == 2);

    /* Without requeue: to the dead-letter topic. */
    EXPECT(publish_text(c, "ffi.c.nack", "dead", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);
    EXPECT(mq_subscription_recv(s, 10000, &m), MQ_OK);
    EXPECT(mq_message_nack(m, false), MQ_OK);
    mq_message_free(m);
    m = NULL;
    EXPECT(mq_subscription_recv(dlq, 10000, &m), MQ_OK);
    const char *topic = NULL;
    EXPECT(mq_message_topic(m, &topic), MQ_OK);
    CHECK(topic && strcmp(topic, "$dlq.ffi.c.nack") == 0);
    EXPECT(mq_message_ack(m), MQ_OK);
    mq_message_free(m);
    EXPECT(mq_subscription_recv(s, 200, &m), MQ_ERR_TIMEOUT);

    mq_subscription_free(s);
    mq_subscription_free(dlq);
}

static void test_group(mq_client *c) {
    mq_subscribe_options so;
    mq_subscribe_options_init(&so);
    so.group = "workers";
    mq_subscription *a = subscribe(c, "ffi.c.jobs", &so);
    mq_subscription *b = subscribe(c, "ffi.c.jobs", &so);
    if (!a || !b) return;
    enum { N = 10 };
    int seen[N] = {0};
    for (int i = 0; i < N; i++) {
        char text[16];
        snprintf(text, sizeof text, "%d", i);
        EXPECT(publish_text(c, "ffi.c.jobs", text, MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);
    }
    int got = 0;
    for (int round = 0; round < 100 && got < N; round++) {
        mq_subscription *subs[2] = {a, b};
        for (int k = 0; k < 2; k++) {
            mq_message *m = NULL;
            if (mq_subscription_recv(subs[k], 50, &m) != MQ_OK) continue;
            const uint8_t *data;
            size_t len;
            mq_message_payload(m, &data, &len);
            char text[16] = {0};
            memcpy(text, data, len < 15 ? len : 15);
            int i = atoi(text);
            if (i >= 0 && i < N) seen[i]++;
            got++;
            mq_message_ack(m);
            mq_message_free(m);
        }
    }
    CHECK(got == N);
    for (int i = 0; i < N; i++) CHECK(seen[i] == 1);
    mq_message *m = NULL;
    EXPECT(mq_subscription_recv(a, 100, &m), MQ_ERR_TIMEOUT);
    EXPECT(mq_subscription_recv(b, 100, &m), MQ_ERR_TIMEOUT);
    mq_subscription_free(a);
    mq_subscription_free(b);
}

static void test_start_positions(mq_client *c) {
    mq_puback first;
    EXPECT(publish_text(c, "ffi.c.replay", "r1", MQ_QOS_AT_LEAST_ONCE, &first), MQ_OK);
    EXPECT(publish_text(c, "ffi.c.replay", "r2", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);
    EXPECT(publish_text(c, "ffi.c.replay", "r3", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);
    char text[16];

    mq_subscribe_options so;
    mq_subscribe_options_init(&so);
    so.start = MQ_START_LAST;
    so.start_at = 2;
    mq_subscription *s = subscribe(c, "ffi.c.replay", &so);
    if (!s) return;
    EXPECT(recv_text(s, text, sizeof text, NULL), MQ_OK);
    CHECK(strcmp(text, "r2") == 0);
    EXPECT(recv_text(s, text, sizeof text, NULL), MQ_OK);
    CHECK(strcmp(text, "r3") == 0);
    mq_subscription_free(s);

    so.start = MQ_START_SEQ;
    so.start_at = first.seq;
    s = subscribe(c, "ffi.c.replay", &so);
    if (!s) return;
    mq_message_info info;
    EXPECT(recv_text(s, text, sizeof text, &info), MQ_OK);
    CHECK(strcmp(text, "r1") == 0 && info.seq == first.seq);
    EXPECT(recv_text(s, text, sizeof text, NULL), MQ_OK);
    CHECK(strcmp(text, "r2") == 0);
    EXPECT(recv_text(s, text, sizeof text, NULL), MQ_OK);
    CHECK(strcmp(text, "r3") == 0);
    mq_subscription_free(s);

    /* New only: the three stay behind. */
    so.start = MQ_START_NEW;
    s = subscribe(c, "ffi.c.replay", &so);
    EXPECT(publish_text(c, "ffi.c.replay", "r4", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);
    EXPECT(recv_text(s, text, sizeof text, NULL), MQ_OK);
    CHECK(strcmp(text, "r4") == 0);
    mq_subscription_free(s);
}

/* A persistent session's cursor: what was published while the client was away
 * arrives when it subscribes again from its cursor. */
static void test_cursor(void) {
    mq_client *p = connect_as("c-cursor", token, true);
    mq_client *pub = connect_as("c-cursor-pub", token, false);
    if (!p || !pub) return;
    mq_subscribe_options so;
    mq_subscribe_options_init(&so);
    so.start = MQ_START_CURSOR;
    mq_subscription *s = subscribe(p, "ffi.c.cursor", &so);
    EXPECT(publish_text(pub, "ffi.c.cursor", "k1", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);
    char text[16];
    EXPECT(recv_text(s, text, sizeof text, NULL), MQ_OK);
    CHECK(strcmp(text, "k1") == 0);
    mq_subscription_free(s);
    EXPECT(mq_client_close(p), MQ_OK);

    EXPECT(publish_text(pub, "ffi.c.cursor", "k2", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);

    mq_connect_options o;
    mq_connect_options_init(&o);
    o.address = addr;
    o.client_id = "c-cursor";
    o.token = token;
    o.persistent_session = true;
    EXPECT(mq_client_connect(p, &o), MQ_OK); /* the same handle, connected again */
    s = subscribe(p, "ffi.c.cursor", &so);
    if (s) {
        EXPECT(recv_text(s, text, sizeof text, NULL), MQ_OK);
        CHECK(strcmp(text, "k2") == 0);
        mq_subscription_free(s);
    }
    mq_client_free(p);
    mq_client_free(pub);
}

struct inbox {
    pthread_mutex_t lock;
    int count;
    int topics_ok;
    char last[64];
};

static void on_message(void *user_data, mq_message *m) {
    struct inbox *in = user_data;
    const char *topic = NULL;
    const uint8_t *data = NULL;
    size_t len = 0;
    int ok = mq_message_topic(m, &topic) == MQ_OK && strcmp(topic, "ffi.c.cb") == 0;
    mq_message_payload(m, &data, &len);
    mq_message_ack(m);
    pthread_mutex_lock(&in->lock);
    in->count++;
    in->topics_ok += ok;
    if (len >= sizeof in->last) len = sizeof in->last - 1;
    memcpy(in->last, data, len);
    in->last[len] = 0;
    pthread_mutex_unlock(&in->lock);
}

static int inbox_count(struct inbox *in) {
    pthread_mutex_lock(&in->lock);
    int n = in->count;
    pthread_mutex_unlock(&in->lock);
    return n;
}


static void test_callback(mq_client *c) {
    struct inbox in;
    memset(&in, 0, sizeof in);
    pthread_mutex_init(&in.lock, NULL);
    mq_listener *l = NULL;
    EXPECT(mq_client_subscribe_callback(c, "ffi.c.cb", NULL, on_message, &in, NULL),
           MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_client_subscribe_callback(c, "ffi.c.cb", NULL, on_message, &in, &l), MQ_OK);
    if (!l) return;
    for (int i = 0; i < 3; i++) {
        char text[16];
        snprintf(text, sizeof text, "cb%d", i);
        EXPECT(publish_text(c, "ffi.c.cb", text, MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);
    }
    for (int i = 0; i < 1000 && inbox_count(&in) < 3; i++) sleep_ms(10);
    CHECK(inbox_count(&in) == 3);
    CHECK(in.topics_ok == 3 && strcmp(in.last, "cb2") == 0);
    mq_listener_free(l);
    /* No callback after the free. */
    EXPECT(publish_text(c, "ffi.c.cb", "late", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);
    sleep_ms(200);
    CHECK(inbox_count(&in) == 3);
    pthread_mutex_destroy(&in.lock);
}

struct publisher {
    mq_client *c;
    int index;
    int failures;
};

static void *publish_many(void *arg) {
    struct publisher *p = arg;
    for (int i = 0; i < 25; i++) {
        char text[32];
        snprintf(text, sizeof text, "t%d-%d", p->index, i);
        if (publish_text(p->c, "ffi.c.threads", text, MQ_QOS_AT_LEAST_ONCE, NULL) != MQ_OK)
            p->failures++;
    }
    return NULL;
}

/* One client, four publishing threads at once. */
static void test_threads(mq_client *c) {
    mq_subscription *s = subscribe(c, "ffi.c.threads", NULL);
    if (!s) return;
    pthread_t threads[4];
    struct publisher pubs[4];
    for (int i = 0; i < 4; i++) {
        pubs[i] = (struct publisher){c, i, 0};
        pthread_create(&threads[i], NULL, publish_many, &pubs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK(pubs[i].failures == 0);
    }
    int got = 0;
    char text[32];
    while (got < 100 && recv_text(s, text, sizeof text, NULL) == MQ_OK) got++;
    CHECK(got == 100);
    mq_subscription_free(s);
}

/* Closing: the client's calls and subscriptions report MQ_ERR_CLOSED, a message
 * still held can no longer be acked, and every handle can still be freed. */
static void test_close(void) {
    mq_client *c = connect_as("c-close", token, false);
    if (!c) return;
    mq_subscription *s = subscribe(c, "ffi.c.close", NULL);
    EXPECT(publish_text(c, "ffi.c.close", "held", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_OK);
    mq_message *m = NULL;
    EXPECT(mq_subscription_recv(s, 10000, &m), MQ_OK);
    EXPECT(mq_client_close(c), MQ_OK);
    EXPECT(mq_client_close(c), MQ_OK);
    EXPECT(publish_text(c, "ffi.c.close", "late", MQ_QOS_AT_LEAST_ONCE, NULL), MQ_ERR_CLOSED);
    mq_message *late = NULL;
    EXPECT(mq_subscription_recv(s, 1000, &late), MQ_ERR_CLOSED);
    char buf[128];
    EXPECT(mq_subscription_error(s, buf, sizeof buf, NULL), MQ_OK);
    CHECK(contains(buf, "subscription ended"));
    EXPECT(mq_subscription_recv(s, MQ_WAIT_FOREVER, &late), MQ_ERR_CLOSED);
    EXPECT(mq_message_ack(m), MQ_ERR_CLOSED);
    CHECK(contains((mq_message_error(m, buf, sizeof buf, NULL), buf), "closed"));
    mq_message_free(m);
    mq_subscription_free(s);
    mq_client_free(c);

    /* A subscription outliving its client. */
    c = connect_as("c-close", token, false);
    if (!c) return;
    s = subscribe(c, "ffi.c.close", NULL);
    mq_client_free(c);
    EXPECT(mq_subscription_recv(s, 1000, &late), MQ_ERR_CLOSED);
    mq_subscription_free(s);
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: %s ADDRESS TOKEN NARROW_TOKEN TLS_ADDRESS CA CERT KEY OTHER_CA\n",
                argv[0]);
        return 2;
    }
    addr = argv[1];
    token = argv[2];
    narrow = argv[3];
    tls_addr = argv[4];
    tls_ca = argv[5];
    tls_cert = argv[6];
    tls_key = argv[7];
    other_ca = argv[8];

    test_names_and_nulls();
    test_defaults();
    test_error_text();
    test_bad_address();
    test_tokens();
    test_tls();

    mq_client *c = connect_as("c-main", token, false);
    if (c) {
        test_publish_receive(c);
        test_enqueue(c);
        test_publish_errors(c);
        test_subscribe_errors(c);
        test_nack(c);
        test_group(c);
        test_start_positions(c);
        test_callback(c);
        test_threads(c);
        EXPECT(mq_client_close(c), MQ_OK);
        mq_client_free(c);
    }
    test_cursor();
    test_close();

    printf("c: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
