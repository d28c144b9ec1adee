// One-to-many (fan-out): every subscriber gets every message.
// Usage: one_to_many [ADDR]
#include "common.hpp"

#include <iostream>
#include <vector>

int main(int argc, char **argv) {
    auto opts = example::options(argc, argv);
    std::vector<mq::client> clients;
    std::vector<mq::subscription> subscribers;
    for (int i = 0; i < 3; i++) {
        clients.emplace_back(opts);
        subscribers.push_back(clients.back().subscribe("news"));
    }
    mq::client publisher(opts);
    for (int i = 1; i <= 2; i++) {
        std::string headline = "headline " + std::to_string(i);
        publisher.publish("news", headline);
        std::cout << "published: " << headline << "\n";
    }
    for (size_t n = 0; n < subscribers.size(); n++) {
        for (int i = 1; i <= 2; i++) {
            mq::message m = example::expect(subscribers[n]);
            std::cout << "subscriber " << n + 1 << " received: " << example::text(m) << "\n";
            m.ack();
        }
    }
}
