// Producer-consumer (competing consumers): two consumers in a group take one
// job at a time (credit 1) and ack each when done; a job that fails is nacked
// and the broker hands it out again. Usage: producer_consumer [ADDR]
#include "common.hpp"

#include <algorithm>
#include <array>
#include <iostream>
#include <vector>

int main(int argc, char **argv) {
    using namespace std::chrono_literals;
    constexpr int jobs = 6, flaky = 3; // job 3 fails on its first attempt
    auto opts = example::options(argc, argv);
    std::vector<mq::client> clients;
    std::vector<mq::subscription> consumers;
    mq::subscribe_options one_at_a_time;
    one_at_a_time.group = "jobs";
    one_at_a_time.credit = 1;
    for (int i = 0; i < 2; i++) {
        clients.emplace_back(opts);
        consumers.push_back(clients.back().subscribe("jobs", one_at_a_time));
    }
    mq::client producer(opts);
    for (int job = 1; job <= jobs; job++) producer.publish("jobs", std::to_string(job));

    std::array<uint32_t, jobs + 1> done_on{};
    int retried = 0;
    auto deadline = std::chrono::steady_clock::now() + example::patience;
    auto unfinished = [&] { return std::count(done_on.begin() + 1, done_on.end(), 0u) > 0; };
    while (unfinished() && std::chrono::steady_clock::now() < deadline) {
        for (const auto &c : consumers) {
            auto m = c.recv(50ms);
            if (!m) continue;
            int job = std::stoi(example::text(*m));
            if (job == flaky && m->attempt() == 1) {
                retried++;
                m->nack(true);
            } else {
                done_on.at(job) = m->attempt();
                m->ack();
            }
        }
    }
    for (int job = 1; job <= jobs; job++)
        std::cout << "job " << job << ": done on attempt " << done_on[job] << "\n";
    std::cout << jobs << " jobs done, " << retried << " retried\n";
}
