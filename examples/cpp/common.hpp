// What the C++ examples share: the broker's address and text payloads.
#ifndef MQ_EXAMPLES_COMMON_HPP
#define MQ_EXAMPLES_COMMON_HPP

#include "mq.hpp"

#include <chrono>
#include <cstdlib>
#include <string>

namespace example {

using namespace std::chrono_literals;

/// How long a program waits for a message it expects.
inline constexpr std::chrono::milliseconds patience = 10s;

/// The broker's address: argv[1], else MQ_SERVER, else 127.0.0.1:7410.
inline mq::connect_options options(int argc, char **argv) {
    mq::connect_options o;
    const char *env = std::getenv("MQ_SERVER");
    o.address = argc > 1 ? argv[1] : env ? env : "127.0.0.1:7410";
    return o;
}

/// A message that must come within `patience`.
inline mq::message expect(const mq::subscription &s) {
    auto m = s.recv(patience);
    if (!m) throw std::runtime_error("no message arrived in time");
    return std::move(*m);
}

inline std::string text(const mq::message &m) { return std::string(m.payload().str()); }

} // namespace example

#endif
