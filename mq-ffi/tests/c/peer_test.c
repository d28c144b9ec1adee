/*
 * The peer functions of the C ABI (mq_peer_*): two peers in this process,
 * no daemon, one SQLite catalog; bad options and unusable catalogs with
 * their codes and texts; start, stop and start again.
 *
 * Usage: peer_test DIR
 *   DIR   an empty directory for the catalog and the peers' logs
 *
 * Run by mq-ffi/tests/peer_abi.rs under AddressSanitizer and valgrind. Prints
 * one line per failed check and a closing count; exits non-zero when any
 * check failed.
 */
#define _POSIX_C_SOURCE 200809L
#include "mq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const char *dir;
static char catalog[1024];

static const char *peer_error(const mq_peer *p) {
    static char buf[1024];
    if (mq_peer_error(p, buf, sizeof buf, NULL) != MQ_OK) return "(no text)";
    return buf;
}

static int contains(const char *text, const char *part) {
    return text != NULL && strstr(text, part) != NULL;
}

/* Options for peer `id` in the test's catalog, its log under DIR (in `path`). */
static mq_peer_options options(const char *id, char *path, size_t cap) {
    mq_peer_options o;
    EXPECT(mq_peer_options_init(&o), MQ_OK);
    snprintf(path, cap, "%s/%s", dir, id);
    o.id = id;
    o.catalog = catalog;
    o.data_dir = path;
    o.lease_ms = 2000;
    o.heartbeat_ms = 200;
    return o;
}

static void test_defaults_and_nulls(void) {
    mq_peer_options o;
    memset(&o, 0x55, sizeof o);
    EXPECT(mq_peer_options_init(&o), MQ_OK);
    CHECK(o.id == NULL && o.catalog == NULL && o.data_dir == NULL);
    CHECK(o.listen == NULL && o.advertise == NULL);
    CHECK(o.lease_ms == 0 && o.heartbeat_ms == 0 && o.call_timeout_ms == 0);
    EXPECT(mq_peer_options_init(NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_peer_new(NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_peer_start(NULL, &o), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_peer_stop(NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_peer_connect(NULL, NULL, "x"), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_peer_address(NULL, NULL, 0, NULL), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_peer_error(NULL, NULL, 0, NULL), MQ_ERR_NULL_ARGUMENT);
    mq_peer_free(NULL);

    mq_peer *p = NULL;
    EXPECT(mq_peer_new(&p), MQ_OK);
    EXPECT(mq_peer_start(p, NULL), MQ_ERR_NULL_ARGUMENT);
    CHECK(contains(peer_error(p), "opts is NULL"));
    /* A stopped peer has no address and no clients; stopping it is fine. */
    char addr[64];
    EXPECT(mq_peer_address(p, addr, sizeof addr, NULL), MQ_ERR_CLOSED);
    CHECK(contains(peer_error(p), "does not run"));
    mq_client *c = NULL;
    EXPECT(mq_client_new(&c), MQ_OK);
    EXPECT(mq_peer_connect(p, c, "nobody"), MQ_ERR_CLOSED);
    EXPECT(mq_peer_connect(p, NULL, "nobody"), MQ_ERR_NULL_ARGUMENT);
    EXPECT(mq_peer_stop(p), MQ_OK);
    mq_client_free(c);
    mq_peer_free(p);
}

/* Starting fails with `want` and an error text containing `text`. */
static void start_fails(mq_peer_options *o, mq_result want, const char *text) {
    mq_peer *p = NULL;
    EXPECT(mq_peer_new(&p), MQ_OK);
    EXPECT(mq_peer_start(p, o), want);
    if (!contains(peer_error(p), text)) {
        failed++;
        fprintf(stderr, "start: the text \"%s\" does not say \"%s\"\n", peer_error(p), text);
    } else {
        passed++;
    }
    mq_peer_free(p);
}

static void test_bad_options(void) {
    char path[1024];
    mq_peer_options o = options("bad", path, sizeof path);
    o.id = NULL;
    start_fails(&o, MQ_ERR_NULL_ARGUMENT, "opts->id is NULL");

    o = options("bad", path, sizeof path);
    o.listen = "localhost";
    start_fails(&o, MQ_ERR_INVALID, "opts->listen");

    o = options("bad", path, sizeof path);
    o.heartbeat_ms = 5000;
    start_fails(&o, MQ_ERR_INVALID, "shorter than the lease");

    o = options("bad", path, sizeof path);
    o.call_timeout_ms = 2000;
    start_fails(&o, MQ_ERR_INVALID, "catalog call timeout");

    o = options("bad", path, sizeof path);
    o.catalog = "nosuch://catalog";
    start_fails(&o, MQ_ERR_INVALID, "catalog");

    /* A SQLite file in a directory that does not exist. */
    char missing[1100];
    snprintf(missing, sizeof missing, "sqlite:%s/no/such/dir/mesh.db", dir);
    o = options("bad", path, sizeof path);
    o.catalog = missing;
    start_fails(&o, MQ_ERR_IO, "catalog");

    /* Nothing listens on port 1 for PostgreSQL. */
    o = options("bad", path, sizeof path);
    o.catalog = "postgres://mq@127.0.0.1:1/mq";
    start_fails(&o, MQ_ERR_IO, "catalog");
}

/* A message (not a probe) within 10 s: its payload into `out`, acked. */
static mq_result recv_text(mq_subscription *s, char *out, size_t cap) {
    for (;;) {
        mq_message *m = NULL;
        mq_result r = mq_subscription_recv(s, 10000, &m);
        if (r != MQ_OK) return r;
        const uint8_t *data = NULL;
        size_t len = 0;
        mq_message_payload(m, &data, &len);
        if (len >= cap) len = cap - 1;
        memcpy(out, data, len);
        out[len] = 0;
        mq_message_info info;
        mq_message_get_info(m, &info);
        if (info.needs_ack) EXPECT(mq_message_ack(m), MQ_OK);
        mq_message_free(m);
        if (strcmp(out, "probe") != 0) return MQ_OK;
    }
}

/* Probes (QoS 0) `topic` from `from` until one reaches `sub` on the other
 * peer: the peers are linked and the subscription's interest arrived. */
static int until_linked(mq_client *from, const char *topic, mq_subscription *sub) {
    mq_publish_options o;
    mq_publish_options_init(&o);
    o.qos = MQ_QOS_AT_MOST_ONCE;
    for (int i = 0; i < 300; i++) {
        mq_client_publish(from, topic, (const uint8_t *)"probe", 5, &o, NULL);
        mq_message *m = NULL;
        if (mq_subscription_recv(sub, 200, &m) == MQ_OK) {
            mq_message_free(m);
            return 1;
        }
    }
    return 0;
}

static void test_two_peers(void) {
    char path_a[1024], path_b[1024];
    mq_peer_options oa = options("a", path_a, sizeof path_a);
    mq_peer_options ob = options("b", path_b, sizeof path_b);
    mq_peer *a = NULL, *b = NULL;
    EXPECT(mq_peer_new(&a), MQ_OK);
    EXPECT(mq_peer_new(&b), MQ_OK);
    mq_result r = mq_peer_start(a, &oa);
    EXPECT(r, MQ_OK);
    if (r != MQ_OK) fprintf(stderr, "start a: %s\n", peer_error(a));
    r = mq_peer_start(b, &ob);
    EXPECT(r, MQ_OK);
    if (r != MQ_OK) fprintf(stderr, "start b: %s\n", peer_error(b));
    EXPECT(mq_peer_start(a, &oa), MQ_ERR_INVALID);
    CHECK(contains(peer_error(a), "runs already"));

    /* The address, with the length protocol of the error texts. */
    size_t len = 0;
    EXPECT(mq_peer_address(a, NULL, 0, &len), MQ_ERR_BUFFER_TOO_SMALL);
    CHECK(len > strlen("127.0.0.1:"));
    char addr[64] = "";
    EXPECT(mq_peer_address(a, addr, sizeof addr, &len), MQ_OK);
    CHECK(strncmp(addr, "127.0.0.1:", 10) == 0 && strlen(addr) == len);

    mq_client *alice = NULL, *bob = NULL, *other = NULL;
    EXPECT(mq_client_new(&alice), MQ_OK);
    EXPECT(mq_client_new(&bob), MQ_OK);
    EXPECT(mq_peer_connect(a, alice, "alice"), MQ_OK);
    EXPECT(mq_peer_connect(b, bob, "bob"), MQ_OK);
    EXPECT(mq_peer_connect(a, alice, "alice"), MQ_ERR_INVALID);
    CHECK(contains(peer_error(a), "already connected"));
    EXPECT(mq_peer_connect(a, alice, NULL), MQ_ERR_NULL_ARGUMENT);

    /* A client of another kind: mq_client_connect to the peer's address. */
    EXPECT(mq_client_new(&other), MQ_OK);
    mq_connect_options co;
    mq_connect_options_init(&co);
    co.address = addr;
    co.client_id = "other";
    EXPECT(mq_client_connect(other, &co), MQ_OK);

    /* Alice (peer a) to bob (peer b), QoS 1, in order. */
    mq_subscription *inbox = NULL;
    EXPECT(mq_client_subscribe(bob, "inbox.bob", NULL, &inbox), MQ_OK);
    CHECK(until_linked(alice, "inbox.bob", inbox));
    char text[64];
    for (int i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "m%d", i);
        mq_puback ack;
        EXPECT(mq_client_publish(alice, "inbox.bob", (const uint8_t *)text, strlen(text), NULL,
                                 &ack),
               MQ_OK);
        CHECK(ack.has_seq);
    }
    EXPECT(mq_client_publish(other, "inbox.bob", (const uint8_t *)"from other", 10, NULL, NULL),
           MQ_OK);
    for (int i = 0; i < 5; i++) {
        char want[16];
        snprintf(want, sizeof want, "m%d", i);
        EXPECT(recv_text(inbox, text, sizeof text), MQ_OK);
        CHECK(strcmp(text, want) == 0);
    }
    EXPECT(recv_text(inbox, text, sizeof text), MQ_OK);
    CHECK(strcmp(text, "from other") == 0);

    /* Stopped, a has no address; stopping again is fine; it starts again on
     * its log and serves a client again. */
    mq_client_free(other);
    mq_client_free(alice);
    EXPECT(mq_peer_stop(a), MQ_OK);
    EXPECT(mq_peer_stop(a), MQ_OK);
    EXPECT(mq_peer_address(a, addr, sizeof addr, NULL), MQ_ERR_CLOSED);
    r = mq_peer_start(a, &oa);
    EXPECT(r, MQ_OK);
    if (r != MQ_OK) fprintf(stderr, "start a again: %s\n", peer_error(a));
    EXPECT(mq_client_new(&alice), MQ_OK);
    EXPECT(mq_peer_connect(a, alice, "alice"), MQ_OK);
    CHECK(until_linked(alice, "inbox.bob", inbox));
    EXPECT(mq_client_publish(alice, "inbox.bob", (const uint8_t *)"again", 5, NULL, NULL), MQ_OK);
    EXPECT(recv_text(inbox, text, sizeof text), MQ_OK);
    CHECK(strcmp(text, "again") == 0);

    mq_subscription_free(inbox);
    mq_client_free(alice);
    mq_client_free(bob);
    EXPECT(mq_peer_stop(b), MQ_OK);
    mq_peer_free(b);
    /* Freed running: stops it. */
    mq_peer_free(a);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    snprintf(catalog, sizeof catalog, "sqlite:%s/mesh.db", dir);

    test_defaults_and_nulls();
    test_bad_options();
    test_two_peers();

    printf("c peers: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
