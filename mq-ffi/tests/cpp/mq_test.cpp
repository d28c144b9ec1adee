// mq.hpp, the C++ wrapper, against a real mqd.
//
// Usage: mq_test ADDRESS TOKEN NARROW_TOKEN TLS_ADDRESS CA CERT KEY OTHER_CA
// (as tests/c/mq_test.c).
// Run by mq-ffi/tests/c_abi.rs under AddressSanitizer and valgrind. Prints one
// line per failed check and a closing count; exits non-zero when any failed.
#include "mq.hpp"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

using namespace std::chrono_literals;

static int passed, failed;

static void record(bool ok, const char *what, int line) {
    if (ok) {
        passed++;
    } else {
        failed++;
        std::fprintf(stderr, "mq_test.cpp:%d: check failed: %s\n", line, what);
    }
}

#define CHECK(cond) record((cond), #cond, __LINE__)

// `stmt` throws mq::error with `want`.
#define EXPECT_ERROR(stmt, want)                                                              \
    do {                                                                                      \
        try {                                                                                 \
            stmt;                                                                             \
            record(false, #stmt " throws " #want, __LINE__);                                  \
        } catch (const mq::error &e_) {                                                       \
            record(e_.code() == (want), #stmt " throws " #want, __LINE__);                    \
            if (e_.code() != (want)) std::fprintf(stderr, "  it threw: %s\n", e_.what());     \
        }                                                                                     \
    } while (0)

static std::string addr, token, narrow;
static std::string tls_addr, tls_ca, tls_cert, tls_key, other_ca;

static mq::connect_options options(const std::string &id, const std::string &tok) {
    mq::connect_options o;
    o.address = addr;
    o.client_id = id;
    o.token = tok;
    o.connect_timeout = 5s;
    return o;
}

static void test_connect_errors() {
    mq::connect_options o = options("cpp-bad", token);
    o.address = "no such address";
    EXPECT_ERROR(mq::client{o}, MQ_ERR_IO);
    o.address = "127.0.0.1:1";
    try {
        mq::client c(o);
        record(false, "connecting to a closed port fails", __LINE__);
    } catch (const mq::error &e) {
        CHECK(e.code() == MQ_ERR_IO);
        CHECK(std::strstr(e.what(), "MQ_ERR_IO: connecting failed") != nullptr);
    }
    EXPECT_ERROR(mq::client{options("cpp-bad", "wrong")}, MQ_ERR_REFUSED);

    mq::client idle; // unconnected
    EXPECT_ERROR(idle.publish("t", "x"), MQ_ERR_CLOSED);
    EXPECT_ERROR(idle.subscribe("t"), MQ_ERR_CLOSED);
    idle.close(); // fine
    idle.connect(options("cpp-late", token));
    EXPECT_ERROR(idle.connect(options("cpp-late", token)), MQ_ERR_INVALID);

    mq::client n(options("cpp-narrow", narrow));
    CHECK(n.publish("open.fine", "ok").seq.has_value());
    EXPECT_ERROR(n.publish("closed.x", "no"), MQ_ERR_REJECTED);
    EXPECT_ERROR(n.subscribe("closed.>"), MQ_ERR_REJECTED);
}

static void test_tls() {
    mq::connect_options o;
    o.address = tls_addr;
    o.connect_timeout = 5s;
    o.tls_ca = other_ca;
    try {
        mq::client c(o);
        record(false, "a broker certificate from another CA is refused", __LINE__);
    } catch (const mq::error &e) {
        CHECK(e.code() == MQ_ERR_IO);
        CHECK(std::strstr(e.what(), "UnknownIssuer") != nullptr);
    }
    o.tls_ca = tls_ca;
    o.tls_cert = tls_cert;
    o.tls_key = tls_key;
    mq::client c(o);
    CHECK(c.publish("dev.ffi-device.t", "over tls").seq.has_value());
    EXPECT_ERROR(c.publish("open.x", "not mine"), MQ_ERR_REJECTED);
}

static void test_publish_receive(const mq::client &c) {
    mq::subscription sub = c.subscribe("ffi.cpp.>");
    mq::publish_options po;
    po.ttl = 30s;
    po.priority = 6;
    po.headers = {{"kind", "greeting"}, {"bin", std::string("\0\1", 2)}};
    mq::puback ack = c.publish("ffi.cpp.one", std::string_view("hello"), po);
    CHECK(ack.seq.has_value() && !ack.duplicate);

    std::optional<mq::message> m = sub.recv(10s);
    CHECK(m.has_value());
    if (!m) return;
    CHECK(m->topic() == "ffi.cpp.one");
    CHECK(m->payload().str() == "hello");
    CHECK(m->seq() == *ack.seq && m->attempt() == 1);
    CHECK(m->qos() == mq::qos::at_least_once && m->needs_ack());
    CHECK(m->ttl() == std::optional<std::chrono::milliseconds>(30s));
    CHECK(m->priority() == 6);
    CHECK(m->header_count() == 2);
    auto headers = m->headers();
    CHECK(headers.size() == 2 && headers[0].first == "kind" && headers[0].second.str() == "greeting");
    CHECK(headers[1].second.size() == 2 && headers[1].second.data()[1] == 1);
    CHECK(m->header("kind").has_value() && m->header("kind")->str() == "greeting");
    CHECK(!m->header("missing").has_value());
    EXPECT_ERROR(m->header(5), MQ_ERR_NOT_FOUND);
    m->ack();
    EXPECT_ERROR(m->ack(), MQ_ERR_INVALID);

    // Moved messages keep working; the moved-from one is empty.
    mq::message moved = std::move(*m);
    CHECK(moved.topic() == "ffi.cpp.one");

    CHECK(!sub.recv(50ms).has_value());

    // Bytes from a vector (and a span in C++20), QoS 0.
    std::vector<uint8_t> raw{1, 2, 3};
    mq::publish_options q0;
    q0.qos = mq::qos::at_most_once;
    CHECK(!c.publish("ffi.cpp.bytes", raw, q0).seq.has_value());
    mq::message b = sub.recv();
    CHECK(b.payload().to_vector() == raw && !b.needs_ack() && !b.ttl());
#if __cplusplus >= 202002L
    const uint8_t four[] = {4, 4, 4, 4};
    c.publish("ffi.cpp.bytes", std::span<const uint8_t>(four));
    mq::message s = sub.recv();
    CHECK(s.payload().size() == 4 && s.payload().data()[3] == 4);
    s.ack();
#endif

    EXPECT_ERROR(c.publish("bad..topic", "x"), MQ_ERR_INVALID);
    mq::publish_options bad;
    bad.headers = {{"", "empty key"}};
    EXPECT_ERROR(c.publish("t", "x", bad), MQ_ERR_INVALID);
    EXPECT_ERROR(c.subscribe("a.>.b"), MQ_ERR_INVALID);
    mq::subscribe_options so;
    so.max_qos = static_cast<mq::qos>(9);
    EXPECT_ERROR(c.subscribe("t", so), MQ_ERR_INVALID);
}

static void test_nack(const mq::client &c) {
    mq::subscription sub = c.subscribe("ffi.cpp.nack");
    mq::subscription dlq = c.subscribe("$dlq.ffi.cpp.nack");
    c.publish("ffi.cpp.nack", "n1");
    sub.recv().nack(true);
    mq::message again = sub.recv();
    CHECK(again.payload().str() == "n1" && again.attempt() == 2);
    again.nack(false);
    mq::message dead = dlq.recv();
    CHECK(dead.topic() == "$dlq.ffi.cpp.nack" && dead.payload().str() == "n1");
    dead.ack();
    {
        c.publish("ffi.cpp.nack", "n2");
        mq::message dropped = sub.recv(); // destroyed unsettled: redelivered
    }
    mq::message redelivered = sub.recv();
    CHECK(redelivered.payload().str() == "n2" && redelivered.attempt() == 2);
    redelivered.ack();
}

static void test_group_and_start(const mq::client &c) {
    mq::subscribe_options g;
    g.group = "cpp-workers";
    mq::subscription a = c.subscribe("ffi.cpp.jobs", g);
    mq::subscription b = c.subscribe("ffi.cpp.jobs", g);
    for (int i = 0; i < 10; i++) c.publish("ffi.cpp.jobs", std::to_string(i));
    std::multiset<std::string> seen;
    for (int round = 0; round < 100 && seen.size() < 10; round++) {
        for (const mq::subscription *s : {&a, &b}) {
            if (auto m = s->recv(50ms)) {
                seen.insert(std::string(m->payload().str()));
                m->ack();
            }
        }
    }
    CHECK(seen.size() == 10 && std::set<std::string>(seen.begin(), seen.end()).size() == 10);

    uint64_t first = *c.publish("ffi.cpp.replay", "r1").seq;
    c.publish("ffi.cpp.replay", "r2");
    mq::subscribe_options last;
    last.from = mq::start::last(1);
    mq::subscription l = c.subscribe("ffi.cpp.replay", last);
    CHECK(l.recv().payload().str() == "r2");
    mq::subscribe_options from;
    from.from = mq::start::from_seq(first);
    mq::subscription f = c.subscribe("ffi.cpp.replay", from);
    CHECK(f.recv().payload().str() == "r1");
    CHECK(f.recv().payload().str() == "r2");
}

static void test_listener(const mq::client &c) {
    std::mutex lock;
    std::vector<std::string> got;
    std::atomic<int> calls{0};
    {
        mq::listener l = c.subscribe("ffi.cpp.cb", {}, [&](const mq::message &m) {
            calls++;
            if (m.payload().str() == "throw") throw std::runtime_error("swallowed");
            std::lock_guard<std::mutex> g(lock);
            got.emplace_back(m.payload().str());
            m.ack();
        });
        c.publish("ffi.cpp.cb", "one");
        c.publish("ffi.cpp.cb", "throw"); // unsettled after the throw: redelivered
        c.publish("ffi.cpp.cb", "two");
        for (int i = 0; i < 500 && calls < 4; i++) std::this_thread::sleep_for(10ms);
        CHECK(calls >= 4); // one, throw, two, throw again
        std::lock_guard<std::mutex> g(lock);
        CHECK(got.size() == 2 && got[0] == "one" && got[1] == "two");
    }
    int after = calls;
    c.publish("ffi.cpp.cb", "late");
    std::this_thread::sleep_for(200ms);
    CHECK(calls == after); // no callback after the listener is gone
}

static void test_close(const mq::client &c) {
    mq::subscription sub = c.subscribe("ffi.cpp.close");
    c.publish("ffi.cpp.close", "held");
    mq::message held = sub.recv();
    c.close();
    EXPECT_ERROR(c.publish("ffi.cpp.close", "late"), MQ_ERR_CLOSED);
    EXPECT_ERROR(sub.recv(1s), MQ_ERR_CLOSED);
    EXPECT_ERROR(sub.recv(), MQ_ERR_CLOSED);
    EXPECT_ERROR(held.ack(), MQ_ERR_CLOSED);
}

int main(int argc, char **argv) {
    if (argc != 9) {
        std::fprintf(stderr, "usage: %s ADDRESS TOKEN NARROW_TOKEN TLS_ADDRESS CA CERT KEY OTHER_CA\n",
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
    try {
        test_connect_errors();
        test_tls();
        mq::client c(options("cpp-main", token));
        test_publish_receive(c);
        test_nack(c);
        test_group_and_start(c);
        test_listener(c);
        test_close(c);
    } catch (const std::exception &e) {
        failed++;
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    }
    std::printf("c++: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
