// One-to-one: a sender and a receiver; every message to the one receiver.
// Usage: one_to_one [ADDR]
#include "common.hpp"

#include <iostream>

int main(int argc, char **argv) {
    auto opts = example::options(argc, argv);
    mq::client receiver(opts);
    mq::subscription orders = receiver.subscribe("orders.created");
    mq::client sender(opts);
    for (int i = 1; i <= 3; i++) {
        std::string order = "order " + std::to_string(i);
        sender.publish("orders.created", order);
        std::cout << "sent: " << order << "\n";
    }
    for (int i = 1; i <= 3; i++) {
        mq::message m = example::expect(orders);
        std::cout << "received: " << example::text(m) << "\n";
        m.ack();
    }
}
