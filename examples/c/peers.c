/* liner's patterns between desktop peers, with no daemon: each peer is a
 * mesh node in its program's process (mq_peer), the program's clients talk
 * to their own peer, which talks directly to the others. The peers of one
 * example share one directory (the SQLite catalog and their logs).
 *
 * Usage: peers patterns|inbox|send [DIR]
 *   patterns  three peers (a, b, c) here, a client each (alice, bob, carol):
 *             one-to-one, one-to-one-of-many, one-to-many, many-to-many, a
 *             wildcard topic subscription, producer-consumer
 *   inbox     bob's peer: prints the three messages alice sends, confirms
 *   send      alice's peer (another process): sends them to bob's inbox
 *   DIR       default: MQ_PEER_DIR, else mq-examples in TMPDIR, TEMP or /tmp
 *             (made if missing; its parent must exist)
 *
 * A peer forwards a message only to the peers whose interest reached it, so
 * the program first sends probes (QoS 0, payload "probe") until the other
 * side shows its subscription arrived, and skips probes when receiving. */
#include "common.h"

#ifdef _WIN32
#include <direct.h>
#define make_dir(path) _mkdir(path)
#else
#include <sys/stat.h>
#define make_dir(path) mkdir(path, 0755)
#endif

static const char *dir;

/* The example's directory: argv[2], else MQ_PEER_DIR, else mq-examples in
 * the temporary directory. */
static const char *directory(int argc, char **argv) {
    static char path[1024];
    if (argc > 2) return argv[2];
    if (getenv("MQ_PEER_DIR")) return getenv("MQ_PEER_DIR");
    const char *tmp = getenv("TMPDIR");
    if (!tmp) tmp = getenv("TEMP");
    if (!tmp) tmp = "/tmp";
    snprintf(path, sizeof path, "%s/mq-examples", tmp);
    return path;
}

/* Peer `id` with its log in DIR/id and the catalog DIR/mesh.db. */
static mq_peer *start_peer(const char *id) {
    char catalog[1100], data[1100];
    snprintf(catalog, sizeof catalog, "sqlite:%s/mesh.db", dir);
    snprintf(data, sizeof data, "%s/%s", dir, id);
    mq_peer_options o;
    mq_peer_options_init(&o);
    o.id = id;
    o.catalog = catalog;
    o.data_dir = data;
    o.lease_ms = 2000;
    o.heartbeat_ms = 200;
    mq_peer *p = NULL;
    mq_peer_new(&p);
    mq_result r = mq_peer_start(p, &o);
    if (r != MQ_OK) {
        char why[512] = "";
        mq_peer_error(p, why, sizeof why, NULL);
        fprintf(stderr, "peer %s: %s: %s\n", id, mq_result_name(r), why);
        exit(1);
    }
    return p;
}

/* A client of `peer` with the persistent session `id`. */
static mq_client *client_of(mq_peer *peer, const char *id) {
    mq_client *c = NULL;
    check(mq_client_new(&c), NULL, "mq_client_new");
    mq_result r = mq_peer_connect(peer, c, id);
    if (r != MQ_OK) {
        char why[512] = "";
        mq_peer_error(peer, why, sizeof why, NULL);
        fprintf(stderr, "connect %s: %s: %s\n", id, mq_result_name(r), why);
        exit(1);
    }
    return c;
}

static void probe(mq_client *c, const char *topic) {
    mq_publish_options o;
    mq_publish_options_init(&o);
    o.qos = MQ_QOS_AT_MOST_ONCE;
    check(mq_client_publish(c, topic, (const uint8_t *)"probe", 5, &o, NULL), c, "probe");
}

/* Probes `topic` until each of the `n` subscriptions got one (any one of
 * them when `any`: a group). */
static void until_linked(mq_client *from, const char *topic, mq_subscription **subs, int n,
                         int any) {
    int reached[8] = {0};
    for (int round = 0; round < 100; round++) {
        probe(from, topic);
        int all = 1, some = 0;
        for (int i = 0; i < n; i++) {
            char text[64];
            mq_message *m;
            while ((m = receive(subs[i], i == 0 ? 100 : 1, text, sizeof text)) != NULL) {
                if (strcmp(text, "probe") == 0) reached[i] = 1;
                mq_message_free(m);
            }
            all &= reached[i];
            some |= reached[i];
        }
        if (all || (any && some)) return;
    }
    fprintf(stderr, "%s: the peers did not link in time\n", topic);
    exit(1);
}

/* The next message that is not a probe within `ms`, or NULL. */
static mq_message *next_within(mq_subscription *s, uint32_t ms, char *text, size_t cap) {
    for (;;) {
        mq_message *m = receive(s, ms, text, cap);
        if (!m || strcmp(text, "probe") != 0) return m;
        mq_message_free(m);
    }
}

static mq_message *next(mq_subscription *s, char *text, size_t cap) {
    mq_message *m = next_within(s, PATIENCE_MS, text, cap);
    if (!m) {
        fprintf(stderr, "no message arrived in time\n");
        exit(1);
    }
    return m;
}

static const char *topic_of(mq_message *m) {
    const char *t = NULL;
    mq_message_topic(m, &t);
    return t;
}

static int compare(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

static void patterns(mq_client *alice, mq_client *bob, mq_client *carol) {
    char text[64];
    /* One-to-one (liner's send_to): to bob's inbox, on peer b. */
    mq_subscription *inbox = subscribe(bob, "inbox.bob", NULL, 0);
    until_linked(alice, "inbox.bob", &inbox, 1, 0);
    for (int i = 1; i <= 3; i++) {
        snprintf(text, sizeof text, "hello %d", i);
        publish(alice, "inbox.bob", text);
    }
    for (int i = 1; i <= 3; i++) {
        mq_message *m = next(inbox, text, sizeof text);
        printf("one-to-one: bob got %s\n", text);
        done(m);
    }
    mq_subscription_free(inbox);

    /* One-to-one-of-many: workers on b and c share alice's tasks. */
    mq_subscription *workers[2] = {subscribe(bob, "tasks", "workers", 0),
                                   subscribe(carol, "tasks", "workers", 0)};
    until_linked(alice, "tasks", workers, 2, 1);
    for (int i = 1; i <= 6; i++) {
        snprintf(text, sizeof text, "task %d", i);
        publish(alice, "tasks", text);
    }
    int count[7] = {0}, got = 0;
    for (int spins = 0; got < 6 && spins < 400; spins++) {
        for (int w = 0; w < 2; w++) {
            mq_message *m = next_within(workers[w], 50, text, sizeof text);
            if (!m) continue;
            int task = atoi(text + 5);
            if (task >= 1 && task <= 6 && count[task]++ == 0) got++;
            done(m);
        }
    }
    int once = 1;
    for (int i = 1; i <= 6; i++) once &= count[i] == 1;
    printf("one-to-one-of-many: %d tasks, each to one worker: %s\n", got, once ? "true" : "false");
    mq_subscription_free(workers[0]);
    mq_subscription_free(workers[1]);

    /* One-to-many: carol's headlines to every subscriber, on every peer. */
    const char *names[3] = {"alice", "bob", "carol"};
    mq_subscription *readers[3] = {subscribe(alice, "news", NULL, 0), subscribe(bob, "news", NULL, 0),
                                   subscribe(carol, "news", NULL, 0)};
    until_linked(carol, "news", &readers[0], 1, 0);
    until_linked(carol, "news", &readers[1], 1, 0);
    publish(carol, "news", "headline 1");
    publish(carol, "news", "headline 2");
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < 2; i++) {
            mq_message *m = next(readers[r], text, sizeof text);
            printf("one-to-many: %s got %s\n", names[r], text);
            done(m);
        }
        mq_subscription_free(readers[r]);
    }

    /* Many-to-many: each peer publishes a reading; alice and bob read all. */
    mq_subscription *all[2] = {subscribe(alice, "sensors.>", NULL, 0),
                               subscribe(bob, "sensors.>", NULL, 0)};
    until_linked(alice, "sensors.probe", &all[1], 1, 0);
    until_linked(bob, "sensors.probe", &all[0], 1, 0);
    until_linked(carol, "sensors.probe", &all[0], 1, 0);
    until_linked(carol, "sensors.probe", &all[1], 1, 0);
    publish(alice, "sensors.a.temp", "20");
    publish(bob, "sensors.b.temp", "21");
    publish(carol, "sensors.c.temp", "22");
    for (int r = 0; r < 2; r++) {
        char lines[3][160];
        for (int i = 0; i < 3; i++) {
            mq_message *m = next(all[r], text, sizeof text);
            snprintf(lines[i], sizeof lines[i], "%.80s=%.60s", topic_of(m), text);
            done(m);
        }
        qsort(lines, 3, sizeof lines[0], compare);
        printf("many-to-many: %s got %s %s %s\n", names[r], lines[0], lines[1], lines[2]);
        mq_subscription_free(all[r]);
    }

    /* A topic subscription with a wildcard: bob wants created orders only. */
    mq_subscription *created = subscribe(bob, "orders.*.created", NULL, 0);
    until_linked(alice, "orders.probe.created", &created, 1, 0);
    publish(alice, "orders.eu.created", "o1");
    publish(alice, "orders.eu.cancelled", "o2");
    publish(alice, "orders.us.created", "o3");
    char lines[2][160];
    for (int i = 0; i < 2; i++) {
        mq_message *m = next(created, text, sizeof text);
        snprintf(lines[i], sizeof lines[i], "%.80s %.60s", topic_of(m), text);
        done(m);
    }
    qsort(lines, 2, sizeof lines[0], compare);
    printf("topic: bob got %s\ntopic: bob got %s\n", lines[0], lines[1]);
    mq_subscription_free(created);

    /* Producer-consumer: bob and carol take one job at a time (credit 1) and
     * ack it when done; job 2 fails once, is nacked and done again. */
    mq_subscription *consumers[2] = {subscribe(bob, "jobs", "consumers", 1),
                                     subscribe(carol, "jobs", "consumers", 1)};
    until_linked(alice, "jobs", consumers, 2, 1);
    for (int job = 1; job <= 4; job++) {
        snprintf(text, sizeof text, "%d", job);
        publish(alice, "jobs", text);
    }
    uint32_t attempt[5] = {0};
    int jobs = 0, retried = 0;
    for (int spins = 0; jobs < 4 && spins < 400; spins++) {
        for (int w = 0; w < 2; w++) {
            mq_message *m = next_within(consumers[w], 50, text, sizeof text);
            if (!m) continue;
            int job = atoi(text);
            mq_message_info info;
            mq_message_get_info(m, &info);
            if (job == 2 && retried == 0) {
                retried++;
                check(mq_message_nack(m, true), NULL, "nack");
                mq_message_free(m);
            } else {
                if (job >= 1 && job <= 4 && attempt[job] == 0) jobs++;
                attempt[job] = info.attempt;
                done(m);
            }
        }
    }
    for (int job = 1; job <= 4; job++)
        printf("producer-consumer: job %d done on attempt %u\n", job, (unsigned)attempt[job]);
    printf("producer-consumer: %d jobs done, %d retried\n", jobs, retried);
    mq_subscription_free(consumers[0]);
    mq_subscription_free(consumers[1]);
}

/* Bob's side: answers alice's hellos, prints her three messages, confirms. */
static void inbox(mq_client *bob) {
    mq_subscription *hello = subscribe(bob, "hello.bob", NULL, 0);
    mq_subscription *box = subscribe(bob, "inbox.bob", NULL, 0);
    char text[64];
    for (int got = 0; got < 3;) {
        mq_message *m;
        while ((m = receive(hello, 1, text, sizeof text)) != NULL) {
            mq_message_free(m);
            probe(bob, "hello.alice");
        }
        m = next_within(box, 100, text, sizeof text);
        if (m) {
            printf("received: %s\n", text);
            fflush(stdout);
            done(m);
            got++;
        }
    }
    publish(bob, "hello.alice", "done");
    mq_subscription_free(box);
    mq_subscription_free(hello);
}

/* Alice's side: says hello until bob's peer answers, sends three messages,
 * waits for his confirmation. */
static void send(mq_client *alice) {
    mq_subscription *replies = subscribe(alice, "hello.alice", NULL, 0);
    char text[64];
    int ready = 0;
    for (int i = 0; i < 300 && !ready; i++) {
        probe(alice, "hello.bob");
        mq_message *m = receive(replies, 200, text, sizeof text);
        if (m) {
            ready = 1;
            mq_message_free(m);
        }
    }
    if (!ready) {
        fprintf(stderr, "bob's peer did not answer\n");
        exit(1);
    }
    for (int i = 1; i <= 3; i++) {
        snprintf(text, sizeof text, "message %d", i);
        publish(alice, "inbox.bob", text);
        printf("sent: %s\n", text);
    }
    for (;;) {
        mq_message *m = next(replies, text, sizeof text);
        int confirmed = strcmp(text, "done") == 0;
        done(m);
        if (confirmed) break;
    }
    printf("bob confirmed\n");
    mq_subscription_free(replies);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    dir = directory(argc, argv);
    make_dir(dir); /* fails harmlessly when it exists */
    if (strcmp(mode, "patterns") == 0) {
        mq_peer *a = start_peer("a"), *b = start_peer("b"), *c = start_peer("c");
        mq_client *alice = client_of(a, "alice"), *bob = client_of(b, "bob"),
                  *carol = client_of(c, "carol");
        patterns(alice, bob, carol);
        mq_client_free(alice);
        mq_client_free(bob);
        mq_client_free(carol);
        mq_peer_free(a);
        mq_peer_free(b);
        mq_peer_free(c);
    } else if (strcmp(mode, "inbox") == 0) {
        mq_peer *p = start_peer("desk-bob");
        mq_client *bob = client_of(p, "bob");
        inbox(bob);
        mq_client_free(bob);
        mq_peer_free(p);
    } else if (strcmp(mode, "send") == 0) {
        mq_peer *p = start_peer("desk-alice");
        mq_client *alice = client_of(p, "alice");
        send(alice);
        mq_client_free(alice);
        mq_peer_free(p);
    } else {
        fprintf(stderr, "usage: %s patterns|inbox|send [DIR]\n", argv[0]);
        return 2;
    }
    return 0;
}
