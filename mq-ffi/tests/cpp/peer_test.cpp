// mq::peer, the C++ wrapper of mq_peer: two peers in this process, no
// daemon, one SQLite catalog; errors as exceptions; stop and start again.
//
// Usage: peer_test DIR (an empty directory for the catalog and the logs).
// Run by mq-ffi/tests/peer_abi.rs under AddressSanitizer. Prints one line
// per failed check and a closing count; exits non-zero when any failed.
#include "mq.hpp"

#include <cstdio>

using namespace std::chrono_literals;

static int passed, failed;

static void record(bool ok, const char *what, int line) {
    if (ok) {
        passed++;
    } else {
        failed++;
        std::fprintf(stderr, "peer_test.cpp:%d: check failed: %s\n", line, what);
    }
}

#define CHECK(cond) record((cond), #cond, __LINE__)

#define EXPECT_ERROR(stmt, want)                                                          \
    do {                                                                                  \
        try {                                                                             \
            stmt;                                                                         \
            record(false, #stmt " throws " #want, __LINE__);                              \
        } catch (const mq::error &e_) {                                                   \
            record(e_.code() == (want), #stmt " throws " #want, __LINE__);                \
            if (e_.code() != (want)) std::fprintf(stderr, "  it threw: %s\n", e_.what()); \
        }                                                                                 \
    } while (0)

static std::string dir;

static mq::peer_options options(const std::string &id) {
    mq::peer_options o;
    o.id = id;
    o.catalog = "sqlite:" + dir + "/mesh.db";
    o.data_dir = dir + "/" + id;
    o.lease = 2000ms;
    o.heartbeat = 200ms;
    return o;
}

// Probes `topic` until `sub` (on the other peer) gets one.
static bool until_linked(const mq::client &from, const std::string &topic,
                         const mq::subscription &sub) {
    mq::publish_options probe;
    probe.qos = mq::qos::at_most_once;
    for (int i = 0; i < 300; i++) {
        from.publish(topic, "probe", probe);
        if (sub.recv(200ms)) return true;
    }
    return false;
}

static void test_errors() {
    mq::peer_options o = options("bad");
    o.listen = "localhost";
    EXPECT_ERROR(mq::peer{o}, MQ_ERR_INVALID);
    o = options("bad");
    o.catalog = "nosuch://x";
    EXPECT_ERROR(mq::peer{o}, MQ_ERR_INVALID);
    o = options("bad");
    o.call_timeout = 2000ms;
    EXPECT_ERROR(mq::peer{o}, MQ_ERR_INVALID);
    mq::peer stopped;
    EXPECT_ERROR(stopped.address(), MQ_ERR_CLOSED);
    EXPECT_ERROR(stopped.client("nobody"), MQ_ERR_CLOSED);
    stopped.stop();
}

static void test_two_peers() {
    mq::peer a(options("a")), b(options("b"));
    CHECK(a.address().rfind("127.0.0.1:", 0) == 0);
    CHECK(a.address() != b.address());
    EXPECT_ERROR(a.start(options("a")), MQ_ERR_INVALID);
    mq::client alice = a.client("alice");
    mq::client bob = b.client("bob");
    mq::subscription inbox = bob.subscribe("inbox.bob");
    CHECK(until_linked(alice, "inbox.bob", inbox));
    for (int i = 0; i < 3; i++) alice.publish("inbox.bob", "m" + std::to_string(i));
    for (int i = 0; i < 3;) {
        std::optional<mq::message> m = inbox.recv(10s);
        CHECK(m.has_value());
        if (!m) return;
        if (m->payload().str() == "probe") continue;
        CHECK(m->payload().str() == "m" + std::to_string(i));
        m->ack();
        i++;
    }
    a.stop();
    EXPECT_ERROR(a.address(), MQ_ERR_CLOSED);
    a.start(options("a"));
    mq::client again = a.client("alice-again");
    CHECK(until_linked(again, "inbox.bob", inbox));
}

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    try {
        test_errors();
        test_two_peers();
    } catch (const std::exception &e) {
        failed++;
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    }
    std::printf("c++ peers: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
