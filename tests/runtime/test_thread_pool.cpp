#include <doctest/doctest.h>
#include <sched.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "runtime/cpu_topology.hpp"
#include "runtime/thread_pool.hpp"

TEST_CASE("thread pool: every worker runs each job once, on its own pinned cpu") {
    const auto cpus = mf::read_cpu_topology().one_pu_per_core();
    mf::ThreadPool pool(cpus);
    REQUIRE(pool.size() == int(cpus.size()));
    std::vector<std::atomic<int>> runs(pool.size());
    std::vector<int> where(pool.size(), -1);
    for (int job = 0; job < 2000; ++job)
        pool.run([&](int w) {
            runs[w].fetch_add(1);
            where[w] = sched_getcpu();
        });
    for (int w = 0; w < pool.size(); ++w) {
        CHECK(runs[w].load() == 2000);
        CHECK(where[w] == pool.cpu_of(w));
    }
}

TEST_CASE("thread pool: a job's exception reaches the caller and the pool keeps working") {
    mf::ThreadPool pool(mf::read_cpu_topology().one_pu_per_core());
    const int last = pool.size() - 1;
    CHECK_THROWS_WITH_AS(pool.run([&](int w) {
        if (w == last) throw std::runtime_error("worker failed");
    }),
                         "worker failed", std::runtime_error);
    CHECK_THROWS_AS(pool.run([](int w) {
        if (w == 0) throw std::invalid_argument("caller failed");
    }),
                    std::invalid_argument);
    std::atomic<int> sum{0};
    pool.run([&](int w) { sum += w + 1; });
    CHECK(sum.load() == pool.size() * (pool.size() + 1) / 2);
}

TEST_CASE("thread pool: an unpinned pool has one worker, the caller") {
    mf::ThreadPool pool({});
    CHECK(pool.size() == 1);
    int ran = 0;
    pool.run([&](int w) { ran += w == 0; });
    CHECK(ran == 1);
}
