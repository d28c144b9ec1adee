// mq.hpp: a header-only C++17 wrapper over the C ABI of mq (mq.h).
//
// - RAII handles, move-only: mq::client, mq::subscription, mq::listener,
//   mq::message. Destroying one frees its C handle (a client closes its
//   connection; a subscription or listener unsubscribes; an unsettled QoS 1
//   message is nacked for redelivery).
// - Arguments are std::string_view and mq::bytes (a view of bytes, made from
//   a string_view, a std::vector<uint8_t>, a pointer and a size, or a
//   std::span in C++20). Everything is copied by the call; nothing is kept.
// - Failures throw mq::error, which carries the mq_result code and the
//   handle's error text. A receive that times out is not a failure: it returns
//   an empty std::optional.
// - Threads: a client may be used from several threads at once; so may a
//   subscription (receivers take turns) and a message. Listener callbacks run
//   on the listener's own thread. See mq.h for the C-level rules.
//
// Link with the mq-ffi library (libmq_ffi.a or libmq_ffi.so).
#ifndef MQ_HPP
#define MQ_HPP

#include "mq.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if __cplusplus >= 202002L
#include <span>
#endif

namespace mq {

/// Delivery guarantee.
enum class qos : uint32_t {
    at_most_once = MQ_QOS_AT_MOST_ONCE,
    at_least_once = MQ_QOS_AT_LEAST_ONCE,
};

/// A failed call: the C result code and the text of the handle's last failure.
class error : public std::runtime_error {
public:
    error(mq_result code, const std::string &text)
        : std::runtime_error(std::string(mq_result_name(code)) + (text.empty() ? "" : ": " + text)),
          code_(code) {}

    /// The C result code (never MQ_OK).
    mq_result code() const noexcept { return code_; }

private:
    mq_result code_;
};

/// A view of bytes: what a payload or header value is passed as.
class bytes {
public:
    constexpr bytes() noexcept = default;
    constexpr bytes(const void *data, size_t size) noexcept
        : data_(static_cast<const uint8_t *>(data)), size_(size) {}
    constexpr bytes(std::string_view s) noexcept : bytes(s.data(), s.size()) {}
    constexpr bytes(const char *s) : bytes(std::string_view(s)) {}
    bytes(const std::string &s) noexcept : bytes(s.data(), s.size()) {}
    bytes(const std::vector<uint8_t> &v) noexcept : bytes(v.data(), v.size()) {}
#if __cplusplus >= 202002L
    constexpr bytes(std::span<const uint8_t> s) noexcept : bytes(s.data(), s.size()) {}
    constexpr bytes(std::span<const std::byte> s) noexcept : bytes(s.data(), s.size()) {}
#endif

    constexpr const uint8_t *data() const noexcept { return data_; }
    constexpr size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    /// The bytes as characters (no copy).
    std::string_view str() const noexcept {
        return {reinterpret_cast<const char *>(data_), size_};
    }
    /// A copy of the bytes.
    std::vector<uint8_t> to_vector() const { return {data_, data_ + size_}; }

private:
    const uint8_t *data_ = nullptr;
    size_t size_ = 0;
};

namespace detail {

/// The error text a `mq_*_error` function copies out of handle `h`.
template <class H>
std::string last_error(const H *h, mq_result (*get)(const H *, char *, size_t, size_t *)) {
    size_t len = 0;
    if (get(h, nullptr, 0, &len) != MQ_ERR_BUFFER_TOO_SMALL) return {};
    std::vector<char> buf(len + 1);
    if (get(h, buf.data(), buf.size(), nullptr) != MQ_OK) return {};
    return std::string(buf.data(), len);
}

/// Throws mq::error unless `r` is MQ_OK.
template <class H>
void check(mq_result r, const H *h, mq_result (*get)(const H *, char *, size_t, size_t *)) {
    if (r != MQ_OK) throw error(r, h ? last_error(h, get) : std::string());
}

inline void check(mq_result r, const mq_client *c) { check(r, c, mq_client_error); }
inline void check(mq_result r, const mq_subscription *s) { check(r, s, mq_subscription_error); }
inline void check(mq_result r, const mq_message *m) { check(r, m, mq_message_error); }
inline void check(mq_result r, const mq_peer *p) { check(r, p, mq_peer_error); }

/// Throws for a call that has no handle to keep text in.
inline void check_bare(mq_result r) {
    if (r != MQ_OK) throw error(r, "");
}

template <class T, void (*Free)(T *)>
struct deleter {
    void operator()(T *p) const noexcept { Free(p); }
};

template <class T, void (*Free)(T *)>
using handle = std::unique_ptr<T, deleter<T, Free>>;

inline uint32_t millis(std::chrono::milliseconds d) {
    if (d.count() <= 0) return 0;
    if (d.count() >= static_cast<int64_t>(MQ_WAIT_FOREVER)) return MQ_WAIT_FOREVER - 1;
    return static_cast<uint32_t>(d.count());
}

} // namespace detail

/// How to connect.
struct connect_options {
    /// `host:port` of the broker.
    std::string address;
    /// The client's identity; empty: a random one.
    std::string client_id;
    /// Auth token; empty: none.
    std::string token;
    /// Resume and keep the broker's session for client_id.
    bool persistent_session = false;
    /// 0: the default (10 s).
    std::chrono::milliseconds connect_timeout{0};
    /// 0: the default (15 s).
    std::chrono::milliseconds keepalive{0};
    /// Default credit of a subscription; 0: the default (1024).
    uint32_t credit = 0;
    /// Speak TLS (implied by tls_ca, tls_cert or tls_key); the broker's
    /// certificate is verified against tls_ca and the host of address.
    bool tls = false;
    /// PEM file of the CA(s) the broker's certificate chains to.
    std::string tls_ca;
    /// PEM files of a client certificate and its key (mutual TLS).
    std::string tls_cert;
    std::string tls_key;
    /// The name the broker's certificate must carry; empty: the host of
    /// address.
    std::string tls_server_name;
};

/// How to publish.
struct publish_options {
    mq::qos qos = mq::qos::at_least_once;
    /// Time to live; 0: none.
    std::chrono::milliseconds ttl{0};
    /// Application headers, in order.
    std::vector<std::pair<std::string, std::string>> headers;
    /// Give up after this long (mq::error MQ_ERR_TIMEOUT); 0: no limit.
    std::chrono::milliseconds timeout{0};
    /// Higher is delivered first among the messages waiting in a queue.
    uint8_t priority = 0;
};

/// The broker's answer to a publish.
struct puback {
    /// The message's per-topic sequence number (QoS 1 only).
    std::optional<uint64_t> seq;
    /// The broker had stored this message already.
    bool duplicate = false;
};

/// Where a subscription starts.
struct start {
    mq_start kind = MQ_START_NEW;
    uint64_t at = 0;

    /// Only messages published from now on.
    static start new_only() { return {MQ_START_NEW, 0}; }
    /// From this per-topic sequence number on.
    static start from_seq(uint64_t seq) { return {MQ_START_SEQ, seq}; }
    /// The last `n` retained messages of each topic, then new ones.
    static start last(uint32_t n) { return {MQ_START_LAST, n}; }
    /// The session's stored cursor (persistent sessions).
    static start cursor() { return {MQ_START_CURSOR, 0}; }
};

/// How to subscribe.
struct subscribe_options {
    /// Join this group (competing consumers); none: every message.
    std::optional<std::string> group;
    mq::start from = start::new_only();
    /// Highest QoS wanted.
    mq::qos max_qos = mq::qos::at_least_once;
    /// Deliveries outstanding at once; 0: the client's default.
    uint32_t credit = 0;
};

/// A received message. Owns its C handle unless it was lent to a listener's
/// callback (then it lives only for the call). Views it returns stay valid
/// while the message does.
class message {
public:
    message(message &&) noexcept = default;
    message &operator=(message &&) noexcept = default;

    std::string_view topic() const {
        const char *t = nullptr;
        detail::check(mq_message_topic(raw(), &t), raw());
        return t;
    }

    mq::bytes payload() const {
        const uint8_t *data = nullptr;
        size_t len = 0;
        detail::check(mq_message_payload(raw(), &data, &len), raw());
        return {data, len};
    }

    uint64_t seq() const { return info().seq; }
    /// 1 for the first delivery, higher for redeliveries.
    uint32_t attempt() const { return info().attempt; }
    mq::qos qos() const { return static_cast<mq::qos>(info().qos); }
    /// The publisher's time to live, if any.
    std::optional<std::chrono::milliseconds> ttl() const {
        uint64_t ms = info().ttl_ms;
        if (ms == 0) return std::nullopt;
        return std::chrono::milliseconds(ms);
    }
    /// Whether it was received waiting for an ack (QoS 1).
    bool needs_ack() const { return info().needs_ack; }
    /// The priority the publisher gave it.
    uint8_t priority() const { return info().priority; }

    size_t header_count() const { return info().header_count; }
    /// Header number `i`: key and value. Throws MQ_ERR_NOT_FOUND past the end.
    std::pair<std::string_view, mq::bytes> header(size_t i) const {
        mq_header h;
        detail::check(mq_message_header(raw(), i, &h), raw());
        return {h.key, mq::bytes(h.value, h.value_len)};
    }
    /// The value of the first header named `key`, if there is one.
    std::optional<mq::bytes> header(std::string_view key) const {
        mq_header h;
        std::string k(key);
        mq_result r = mq_message_find_header(raw(), k.c_str(), &h);
        if (r == MQ_ERR_NOT_FOUND) return std::nullopt;
        detail::check(r, raw());
        return mq::bytes(h.value, h.value_len);
    }
    /// All headers, in order.
    std::vector<std::pair<std::string_view, mq::bytes>> headers() const {
        std::vector<std::pair<std::string_view, mq::bytes>> all;
        for (size_t i = 0, n = header_count(); i < n; i++) all.push_back(header(i));
        return all;
    }

    /// Acknowledge: the broker forgets it.
    void ack() const { detail::check(mq_message_ack(raw()), raw()); }
    /// Refuse: redeliver (`requeue`) or dead-letter it.
    void nack(bool requeue = true) const { detail::check(mq_message_nack(raw(), requeue), raw()); }

    /// The C handle (still owned by this object).
    mq_message *raw() const noexcept { return owned_ ? owned_.get() : lent_; }

private:
    friend class subscription;
    friend class listener;
    explicit message(mq_message *owned) : owned_(owned) {}
    static message lent(mq_message *m) {
        message msg(nullptr);
        msg.lent_ = m;
        return msg;
    }
    mq_message_info info() const {
        mq_message_info i;
        detail::check(mq_message_get_info(raw(), &i), raw());
        return i;
    }

    detail::handle<mq_message, mq_message_free> owned_;
    mq_message *lent_ = nullptr;
};

/// A subscription read with recv. Destroying it unsubscribes.
class subscription {
public:
    subscription(subscription &&) noexcept = default;
    subscription &operator=(subscription &&) noexcept = default;

    /// The next message, waiting as long as it takes. Throws MQ_ERR_CLOSED once
    /// the subscription ended.
    message recv() const { return *recv_for(std::nullopt); }

    /// The next message within `timeout`, or nothing. Throws MQ_ERR_CLOSED once
    /// the subscription ended.
    std::optional<message> recv(std::chrono::milliseconds timeout) const {
        return recv_for(timeout);
    }

    mq_subscription *raw() const noexcept { return sub_.get(); }

private:
    friend class client;
    explicit subscription(mq_subscription *s) : sub_(s) {}

    std::optional<message> recv_for(std::optional<std::chrono::milliseconds> timeout) const {
        mq_message *m = nullptr;
        uint32_t ms = timeout ? detail::millis(*timeout) : MQ_WAIT_FOREVER;
        mq_result r = mq_subscription_recv(raw(), ms, &m);
        if (r == MQ_ERR_TIMEOUT) return std::nullopt;
        detail::check(r, raw());
        return message(m);
    }

    detail::handle<mq_subscription, mq_subscription_free> sub_;
};

/// A subscription whose messages go to a callback on a thread of its own.
/// Destroying it unsubscribes and waits for a running callback to return.
class listener {
public:
    using callback = std::function<void(const message &)>;

    listener(listener &&) noexcept = default;
    listener &operator=(listener &&other) noexcept {
        listener_.reset(); // stop the old callback before it goes
        callback_ = std::move(other.callback_);
        listener_ = std::move(other.listener_);
        return *this;
    }

    mq_listener *raw() const noexcept { return listener_.get(); }

private:
    friend class client;
    listener() = default;

    /// Calls the C++ callback; an exception it throws is swallowed (the
    /// message, left unsettled, is then nacked for redelivery): exceptions must
    /// not cross into the C library.
    static void trampoline(void *user_data, mq_message *m) noexcept {
        try {
            message msg = message::lent(m);
            (*static_cast<callback *>(user_data))(msg);
        } catch (...) {
        }
    }

    // Declared in this order so that the listener is freed (and its thread
    // stopped) before the callback it calls.
    std::unique_ptr<callback> callback_;
    detail::handle<mq_listener, mq_listener_free> listener_;
};

/// A connection to a broker. Construct connected, or unconnected and call
/// connect. Destroying it closes the connection.
class client {
public:
    /// An unconnected client.
    client() {
        mq_client *c = nullptr;
        detail::check_bare(mq_client_new(&c));
        client_.reset(c);
    }

    /// A client connected with `opts`.
    explicit client(const connect_options &opts) : client() { connect(opts); }

    client(client &&) noexcept = default;
    client &operator=(client &&) noexcept = default;

    /// Connects (again, after close). Throws MQ_ERR_IO (nothing listens, bad
    /// address, a failed TLS handshake), MQ_ERR_REFUSED (wrong token),
    /// MQ_ERR_INVALID (options, unusable TLS files).
    void connect(const connect_options &opts) const {
        mq_connect_options o;
        detail::check_bare(mq_connect_options_init(&o));
        o.address = opts.address.c_str();
        o.client_id = opts.client_id.empty() ? nullptr : opts.client_id.c_str();
        o.token = opts.token.empty() ? nullptr : opts.token.c_str();
        o.persistent_session = opts.persistent_session;
        o.connect_timeout_ms = detail::millis(opts.connect_timeout);
        o.keepalive_ms = detail::millis(opts.keepalive);
        o.credit = opts.credit;
        auto path = [](const std::string &p) { return p.empty() ? nullptr : p.c_str(); };
        o.tls = opts.tls;
        o.tls_ca = path(opts.tls_ca);
        o.tls_cert = path(opts.tls_cert);
        o.tls_key = path(opts.tls_key);
        o.tls_server_name = path(opts.tls_server_name);
        detail::check(mq_client_connect(raw(), &o), raw());
    }

    /// Closes the connection; the client may connect again.
    void close() const { detail::check(mq_client_close(raw()), raw()); }

    /// Publishes and waits until the broker stored it (QoS 1) or it is queued.
    puback publish(std::string_view topic, mq::bytes payload,
                   const publish_options &opts = {}) const {
        std::string t(topic);
        std::vector<mq_header> headers;
        headers.reserve(opts.headers.size());
        for (const auto &[key, value] : opts.headers)
            headers.push_back({key.c_str(), reinterpret_cast<const uint8_t *>(value.data()),
                               value.size()});
        mq_publish_options o;
        detail::check_bare(mq_publish_options_init(&o));
        o.qos = static_cast<uint32_t>(opts.qos);
        o.ttl_ms = detail::millis(opts.ttl);
        o.headers = headers.data();
        o.header_count = headers.size();
        o.timeout_ms = detail::millis(opts.timeout);
        o.priority = opts.priority;
        mq_puback ack;
        detail::check(mq_client_publish(raw(), t.c_str(), payload.data(), payload.size(), &o, &ack),
                      raw());
        puback answer;
        if (ack.has_seq) answer.seq = ack.seq;
        answer.duplicate = ack.duplicate;
        return answer;
    }

    /// Subscribes; read the messages with subscription::recv.
    subscription subscribe(std::string_view filter, const subscribe_options &opts = {}) const {
        std::string f(filter);
        mq_subscribe_options o = c_options(opts);
        mq_subscription *s = nullptr;
        detail::check(mq_client_subscribe(raw(), f.c_str(), &o, &s), raw());
        return subscription(s);
    }

    /// Subscribes; `on_message` gets every message on the listener's thread.
    /// The message lives for the call only: ack or nack it there (unsettled
    /// QoS 1 messages are nacked for redelivery).
    listener subscribe(std::string_view filter, const subscribe_options &opts,
                       listener::callback on_message) const {
        std::string f(filter);
        mq_subscribe_options o = c_options(opts);
        listener l;
        l.callback_ = std::make_unique<listener::callback>(std::move(on_message));
        mq_listener *raw_listener = nullptr;
        detail::check(mq_client_subscribe_callback(raw(), f.c_str(), &o, listener::trampoline,
                                                   l.callback_.get(), &raw_listener),
                      raw());
        l.listener_.reset(raw_listener);
        return l;
    }

    mq_client *raw() const noexcept { return client_.get(); }

private:
    static mq_subscribe_options c_options(const subscribe_options &opts) {
        mq_subscribe_options o;
        detail::check_bare(mq_subscribe_options_init(&o));
        o.group = opts.group ? opts.group->c_str() : nullptr;
        o.start = static_cast<uint32_t>(opts.from.kind);
        o.start_at = opts.from.at;
        o.qos = static_cast<uint32_t>(opts.max_qos);
        o.credit = opts.credit;
        return o;
    }

    detail::handle<mq_client, mq_client_free> client_;
};

/// How to start a peer. Empty strings and zero durations: the defaults.
struct peer_options {
    /// The peer's node id, unique in the catalog. Required.
    std::string id;
    /// `sqlite:PATH`, `redis://...` or `postgres://...`; empty: the SQLite
    /// file `mq-mesh.db` in the temporary directory (this machine's peers).
    std::string catalog;
    /// The peer's log; empty: `mq-peer-<id>` in the temporary directory.
    std::string data_dir;
    /// `IP:PORT` to listen on; empty: `127.0.0.1:0` (a free port).
    std::string listen;
    /// The address the other peers connect to; empty: the listen address.
    std::string advertise;
    /// 0: the default (5 s).
    std::chrono::milliseconds lease{0};
    /// 0: the default (1 s).
    std::chrono::milliseconds heartbeat{0};
    /// How long one call to the catalog may take (shorter than the lease);
    /// 0: the default (half the lease, at most the lease less a heartbeat).
    std::chrono::milliseconds call_timeout{0};
};

/// A desktop peer with no daemon: a mesh node in this process. Construct it
/// started, or stopped and call start. Destroying it stops it.
class peer {
public:
    /// A stopped peer.
    peer() {
        mq_peer *p = nullptr;
        detail::check_bare(mq_peer_new(&p));
        peer_.reset(p);
    }

    /// A peer started with `opts`.
    explicit peer(const peer_options &opts) : peer() { start(opts); }

    peer(peer &&) noexcept = default;
    peer &operator=(peer &&) noexcept = default;

    /// Starts it (again, after stop). Throws MQ_ERR_INVALID (options),
    /// MQ_ERR_IO (the log, the address, the catalog's database),
    /// MQ_ERR_REFUSED (the catalog refused the registration).
    void start(const peer_options &opts) const {
        auto str = [](const std::string &s) { return s.empty() ? nullptr : s.c_str(); };
        mq_peer_options o;
        detail::check_bare(mq_peer_options_init(&o));
        o.id = opts.id.c_str();
        o.catalog = str(opts.catalog);
        o.data_dir = str(opts.data_dir);
        o.listen = str(opts.listen);
        o.advertise = str(opts.advertise);
        o.lease_ms = detail::millis(opts.lease);
        o.heartbeat_ms = detail::millis(opts.heartbeat);
        o.call_timeout_ms = detail::millis(opts.call_timeout);
        detail::check(mq_peer_start(raw(), &o), raw());
    }

    /// Leaves the mesh and stops; the peer may start again.
    void stop() const { detail::check(mq_peer_stop(raw()), raw()); }

    /// Where it listens (for clients of other processes).
    std::string address() const {
        size_t len = 0;
        mq_result r = mq_peer_address(raw(), nullptr, 0, &len);
        if (r != MQ_ERR_BUFFER_TOO_SMALL) detail::check(r, raw());
        std::vector<char> buf(len + 1);
        detail::check(mq_peer_address(raw(), buf.data(), buf.size(), nullptr), raw());
        return std::string(buf.data(), len);
    }

    /// A client of this peer with a persistent session `client_id`.
    mq::client client(const std::string &client_id) const {
        mq::client c;
        detail::check(mq_peer_connect(raw(), c.raw(), client_id.c_str()), raw());
        return c;
    }

    mq_peer *raw() const noexcept { return peer_.get(); }

private:
    detail::handle<mq_peer, mq_peer_free> peer_;
};

} // namespace mq

#endif // MQ_HPP
