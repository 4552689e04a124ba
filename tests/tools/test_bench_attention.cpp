// `moeforge bench attention` on the tiny preset: one prefill row, one decode row per context and the projections
// alone, in order, with finite positive times; a bad preset, format or thread count is a one-line user error.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include "tools/bench_attention.hpp"

using namespace mf;

TEST_CASE("bench attention: rows per phase and context, user errors") {
    AttentionBenchOptions o;
    o.preset = "tiny";
    o.threads = 1;
    o.prefill = 7;
    o.ctx = {1, 37};
    o.steps = 2;
    const AttentionBenchResult r = run_attention_bench(o);
    CHECK(r.header.find("4 heads") != std::string::npos);
    REQUIRE(r.rows.size() == 4);
    CHECK(r.rows[0].phase == "prefill");
    CHECK(r.rows[0].tokens == 7);
    CHECK(r.rows[1].phase == "decode");
    CHECK(r.rows[1].ctx == 1);
    CHECK(r.rows[2].ctx == 37);
    CHECK(r.rows[3].phase == "projections");
    for (const auto& row : r.rows) {
        CHECK(std::isfinite(row.ms_per_token));
        CHECK(row.ms_per_token > 0);
        CHECK(row.weight_gb_s > 0);
    }
    CHECK(render_attention_bench(r).find("decode at ctx     37") != std::string::npos);
    o.preset = "huge";
    CHECK_THROWS_AS(run_attention_bench(o), std::runtime_error);
    o.preset = "tiny";
    o.threads = 100000;
    CHECK_THROWS_AS(run_attention_bench(o), std::runtime_error);
}
