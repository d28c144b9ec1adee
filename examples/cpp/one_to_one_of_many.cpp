// One-to-one-of-many: three workers in one group share the tasks; each task
// goes to exactly one of them. Usage: one_to_one_of_many [ADDR]
#include "common.hpp"

#include <algorithm>
#include <array>
#include <iostream>
#include <vector>

int main(int argc, char **argv) {
    using namespace std::chrono_literals;
    using clock = std::chrono::steady_clock;
    constexpr int tasks = 6;
    auto opts = example::options(argc, argv);
    std::vector<mq::client> clients;
    std::vector<mq::subscription> workers;
    mq::subscribe_options group;
    group.group = "workers";
    for (int w = 0; w < 3; w++) {
        clients.emplace_back(opts);
        workers.push_back(clients.back().subscribe("tasks", group));
    }
    mq::client producer(opts);
    for (int i = 1; i <= tasks; i++) producer.publish("tasks", std::to_string(i));

    // Take from every worker until all tasks arrived and a while after, so a
    // task delivered twice would be seen.
    std::array<int, tasks + 1> deliveries{};
    auto deadline = clock::now() + example::patience;
    bool quiet = false; // all arrived, nothing since `quiet_since`
    clock::time_point quiet_since{};
    while (clock::now() < deadline) {
        bool got = false;
        for (const auto &w : workers) {
            if (auto m = w.recv(50ms)) {
                deliveries.at(std::stoi(example::text(*m)))++;
                m->ack();
                got = true;
            }
        }
        bool all = std::all_of(deliveries.begin() + 1, deliveries.end(), [](int n) { return n > 0; });
        if (got || !all) {
            quiet = false;
        } else if (!quiet) {
            quiet = true;
            quiet_since = clock::now();
        } else if (clock::now() - quiet_since > 300ms) {
            break;
        }
    }
    bool once = true;
    for (int i = 1; i <= tasks; i++) {
        if (deliveries[i] == 1) {
            std::cout << "task " << i << ": delivered to one worker\n";
        } else {
            std::cout << "task " << i << ": delivered " << deliveries[i] << " times\n";
            once = false;
        }
    }
    if (once) std::cout << tasks << " tasks, " << workers.size() << " workers, no task twice\n";
}
