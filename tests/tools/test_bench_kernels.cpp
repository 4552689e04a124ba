// `moeforge bench kernels` on small shapes: the config and an --alt each get their row per M with positive rates;
// a config no kernel accepts is a user error before any weight is packed (it used to come after the packing).
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "tools/bench_kernels.hpp"

using namespace mf;

TEST_CASE("bench kernels: a row per config and M, a bad --alt refused before packing") {
    KernelBenchOptions o;
    o.ms = {1, 20};
    o.hidden = 256;
    o.inter = 128;
    o.threads = 1;
    o.experts = 2;
    o.repeats = 1;
    ExpertFfnConfig alt;
    alt.m_block = 32;
    o.alts = {alt};
    const HostProfile hp;
    const auto rows = run_kernel_bench(o, hp, {});
    REQUIRE(rows.size() == 4);
    for (size_t i = 0; i < rows.size(); ++i) {
        CHECK(rows[i].impl == (i % 2 == 0 ? "moeforge" : "alt1"));
        CHECK(rows[i].m == o.ms[i / 2]);
        CHECK(rows[i].ops_per_s > 0);
        CHECK(rows[i].bytes_per_s > 0);
    }

    o.y_huge = true;  // y from AlignedBytes instead of a vector: the same rows
    const auto huge_rows = run_kernel_bench(o, hp, {});
    REQUIRE(huge_rows.size() == 4);
    for (const auto& r : huge_rows) CHECK(r.ops_per_s > 0);

    o.alts[0].m_block = -3;
    std::string stages;
    std::string error;
    try {
        run_kernel_bench(o, hp, [&](std::string_view stage, int, int) { stages += std::string(stage) + ";"; });
    } catch (const std::runtime_error& e) {
        error = e.what();
    }
    CHECK(error.find("m_block must be positive") != std::string::npos);
    CHECK(stages.find("packing") == std::string::npos);
}
