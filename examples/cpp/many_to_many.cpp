// Many-to-many: three publishers on their own topics, two subscribers on a
// wildcard filter; each subscriber gets every publisher's messages.
// Usage: many_to_many [ADDR]
#include "common.hpp"

#include <algorithm>
#include <iostream>
#include <utility>
#include <vector>

int main(int argc, char **argv) {
    auto opts = example::options(argc, argv);
    std::vector<std::pair<std::string, mq::client>> readers;
    std::vector<mq::subscription> subs;
    for (const char *name : {"dashboard", "archive"}) {
        readers.emplace_back(name, mq::client(opts));
        subs.push_back(readers.back().second.subscribe("sensors.>"));
    }
    std::vector<std::pair<std::string, mq::client>> publishers;
    for (const char *topic : {"sensors.a", "sensors.b", "sensors.c"})
        publishers.emplace_back(topic, mq::client(opts));
    for (int reading = 1; reading <= 2; reading++)
        for (const auto &[topic, client] : publishers) client.publish(topic, std::to_string(reading));
    for (size_t i = 0; i < subs.size(); i++) {
        std::vector<std::string> seen;
        for (size_t k = 0; k < 2 * publishers.size(); k++) {
            mq::message m = example::expect(subs[i]);
            seen.push_back(std::string(m.topic()) + "=" + example::text(m));
            m.ack();
        }
        std::sort(seen.begin(), seen.end());
        std::cout << readers[i].first << ":";
        for (const auto &s : seen) std::cout << " " << s;
        std::cout << "\n";
    }
}
