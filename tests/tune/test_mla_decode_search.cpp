// The GPU search of the MLA decode kernel: the candidate grid and the split policy on any machine; on a GPU,
// every candidate against the scalar reference, the timed search, and tune_plan writing "mla_decode" entries.
// Without a GPU those cases print "skipped:" and the reason.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>

#include "codegen/cuda/cuda_driver.hpp"
#include "codegen/cuda/mla_split_policy.hpp"
#include "codegen/cuda/nvrtc_compiler.hpp"
#include "tune/mla_decode_bench.hpp"
#include "tune/tuner.hpp"

using namespace mf;
using nlohmann::json;

namespace {

std::filesystem::path cubin_dir() {
    return std::filesystem::path(MOEFORGE_BINARY_DIR) / "test_tmp" / "cuda_cache";
}

// The GPU bench for DeepSeek-V3's attention shape, or null after printing why the case is skipped.
std::unique_ptr<MlaDecodeBench> gpu_bench_or_skip() {
    std::string why;
    auto b = MlaDecodeBench::open(ModelShape{}, cubin_dir(), &why);
    if (!b) MESSAGE("skipped: " << why);
    return b;
}

}  // namespace

TEST_CASE("mla search: the grid spans every value of every field over the base and refuses unknown fields") {
    const json base = {{"a", 1}, {"b", 2}, {"keep", 7}};
    const auto g = json_grid(base, {{"a", {1, 3}}, {"b", {4, 5, 6}}});
    CHECK(g.size() == 6);
    for (const json& j : g) CHECK(j.at("keep") == 7);
    CHECK(std::count(g.begin(), g.end(), json{{"a", 3}, {"b", 6}, {"keep", 7}}) == 1);
    CHECK_THROWS_AS(json_grid(base, {{"nope", {1}}}), std::logic_error);
    // The search space names real fields of the split policy.
    CHECK_NOTHROW(json_grid(fields_to_json(MlaSplitPolicy{}), mla_split_search_space()));
}

TEST_CASE(
    "mla search: the default split policy is the kernel's own split count, the others move it as "
    "documented") {
    const MlaDecodeDesc d;
    for (const MlaDecodeConfig& c : {MlaDecodeConfig{64, 2, 1}, MlaDecodeConfig{32, 2, 4},
                                    MlaDecodeConfig{16, 1, 1}, MlaDecodeConfig{64, 1, 8}})
        for (int batch : {1, 3, 64})
            for (int len : {1, 100, 1024, 8192, 32768})
                for (int sms : {1, 78, 132}) {
                    CAPTURE(batch);
                    CAPTURE(len);
                    CAPTURE(sms);
                    CHECK(mla_decode_splits(d, c, MlaSplitPolicy{}, batch, len, sms) ==
                          mla_decode_num_splits(d, c, batch, len, sms));
                }
    // Batch 1, 128 heads = 2 head blocks, 132 SMs, tile 64: 66 splits fill the SMs once.
    const MlaDecodeConfig c{64, 2, 1};
    CHECK(mla_decode_splits(d, c, {100}, 1, 32768, 132) == 66);
    CHECK(mla_decode_splits(d, c, {50}, 1, 32768, 132) == 33);
    CHECK(mla_decode_splits(d, c, {200}, 1, 32768, 132) == 132);
    CHECK(mla_decode_splits(d, c, {100}, 1, 1024, 132) == 16);  // one tile per split
    MlaDecodeConfig four = c;
    four.min_split_tiles = 4;
    CHECK(mla_decode_splits(d, four, {100}, 1, 1024, 132) == 4);  // the config's four tiles per split
    four.cluster = 8;
    CHECK(mla_decode_splits(d, four, {100}, 1, 1024, 132) == 8);  // at least one cluster
    CHECK(mla_decode_splits(d, MlaDecodeConfig{64, 2, 4}, {50}, 1, 32768, 132) == 32);  // a multiple of 4
    CHECK(mla_split_policy_invalid({100}).empty());
    CHECK_FALSE(mla_split_policy_invalid({0}).empty());
    CHECK_FALSE(mla_split_policy_invalid({1000}).empty());
}

TEST_CASE("mla search (GPU): without a GPU it says why, with one every candidate matches the reference") {
    if (query_cuda_gpus().gpus.empty() || !nvrtc_available()) {
        std::string why;
        CHECK(MlaDecodeBench::open(ModelShape{}, cubin_dir(), &why) == nullptr);
        CHECK_FALSE(why.empty());
        MESSAGE("skipped: " << why);
        return;
    }
    auto bench = gpu_bench_or_skip();
    REQUIRE(bench);
    auto cands = bench->candidates(1024);
    REQUIRE(cands.size() > 10);
    CHECK(cands.front().is_default);
    CHECK(std::count_if(cands.begin(), cands.end(), [](const Candidate& c) { return c.is_default; }) == 1);
    for (auto& c : cands) {
        CAPTURE(c.label);
        CHECK(c.verify() == "");
    }
    // Timings are real and positive; a 1K context reads 1024 x 576 x 2 bytes.
    CHECK(bench->cache_bytes(1024) == 1024.0 * 576 * 2);
    const double t = cands.front().time(0.05);
    CHECK(t > 0);
    CHECK(t < 1e-2);
    CHECK(bench->copy_bandwidth() > 1e11);
    CHECK(bench->splits(cands.front().config, 32768) >= 1);
}

TEST_CASE("mla search (GPU): tune_plan writes verified mla_decode entries never slower than the default") {
    if (!gpu_bench_or_skip()) return;
    HostProfileOptions quick;
    quick.measure = false;
    HostProfile hp = capture_host_profile(quick);
    compute_fingerprint(hp);
    ModelShape s;  // small expert widths keep the CPU stages short; DeepSeek-V3's attention shape
    s.hidden = 320;
    s.moe_intermediate = 192;
    s.top_k = 4;
    TuneSettings t;
    t.budget_seconds = 30;
    t.gpu_share = 0.5;
    t.ffn_ms = {1, 16};
    t.gemv_ms = {1};
    t.amx_ms = {64};
    t.handover_ms = {8};
    t.pool_bytes = 8 << 20;
    t.cpu_only = false;
    t.cubin_dir = cubin_dir();
    t.mla_contexts = {1024, 8192};
    const Plan p = tune_plan(hp, s, t);
    int n = 0;
    for (const PlannedKernel& k : p.kernels) {
        if (k.family != "mla_decode") continue;
        ++n;
        CAPTURE(k.name);
        CHECK(k.verified);
        CHECK(k.seconds > 0);
        CHECK(k.seconds <= k.default_seconds * (1 + p.tolerance));
        CHECK(k.name.rfind("mla_decode_", 0) == 0);
    }
    CHECK(n == 2);
    CHECK(p.find("mla_decode", "decode", 1) != nullptr);
    CHECK(p.find("mla_decode", "decode", 100000) != nullptr);
    CHECK(p.host.gpu_copy_bytes > 0);
    CHECK_FALSE(p.gpu.name.empty());
    CHECK(p.notes.empty());
}

TEST_CASE("mla search: every split policy field changes its name, hash and JSON") {
    const MlaSplitPolicy base;
    const json j = fields_to_json(base);
    CHECK(fields_from_json<MlaSplitPolicy>(j) == base);
    int i = 0;
    MlaSplitPolicy::fields(base, [&](const char* name, const char*, const int&) {
        MlaSplitPolicy p = base;
        int k = 0;
        MlaSplitPolicy::fields(p, [&](const char*, const char*, int& v) {
            if (k++ == i) v += 1;
        });
        CAPTURE(name);
        CHECK_FALSE(p == base);
        CHECK(fields_hash(p) != fields_hash(base));
        CHECK(fields_name(p) != fields_name(base));
        CHECK(fields_to_json(p).at(name) != j.at(name));
        ++i;
    });
    CHECK(i == 1);
}
