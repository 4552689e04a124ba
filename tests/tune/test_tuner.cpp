// The tuner end to end on a small model shape: every candidate of every family is verified against its scalar
// reference before it is timed, the plan holds verified choices that are never slower than the default beyond the
// tolerance on the same run, and it round-trips through its file. No timing assertions: only the selection logic.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>

#include "codegen/isa.hpp"
#include "runtime/cpu_topology.hpp"
#include "runtime/thread_pool.hpp"
#include "tune/expert_ffn_bench.hpp"
#include "tune/expert_gemm_bench.hpp"
#include "tune/tuner.hpp"

using namespace mf;

namespace {

bool have_vnni() { return detect_cpu_isa().has(IsaFeature::avx512_vnni); }

ModelShape small_shape() {
    ModelShape s;
    s.hidden = 320;  // ragged against the 64-wide panels and K blocks
    s.moe_intermediate = 192;
    s.top_k = 4;
    return s;
}

}  // namespace

TEST_CASE("tuner: every GEMM and fused-FFN candidate matches its reference") {
    if (!have_vnni()) {
        MESSAGE("no AVX-512 VNNI: skipped");
        return;
    }
    const bool amx = detect_cpu_isa().has(IsaFeature::amx_int8) && request_amx_permission();
    ThreadPool pool(read_cpu_topology().one_pu_per_core());
    KernelCache cache;
    HostFigures host;
    const ModelShape s = small_shape();
    ExpertGemmBench gb(pool, cache, host, 8 << 20);
    for (const GemmRole& r : expert_gemm_roles(s)) {
        for (int m : {1, 5, 16}) {
            auto c = gb.gemv_candidates(r, m);
            CHECK(c.size() > 20);
            CHECK(c.front().is_default);
            for (auto& x : c) {
                CAPTURE(x.label);
                CHECK(x.verify() == "");
            }
        }
        if (amx)
            for (auto& x : gb.amx_candidates(r, 64)) {
                CAPTURE(x.label);
                CHECK(x.verify() == "");
            }
    }
    ExpertFfnBench fb(pool, cache, s, 8 << 20);
    std::vector<ExpertFfnConfig> cfgs{ExpertFfnConfig{}};
    for (int g : {0, 2, 16})
        for (int nb : {64, 256}) {
            ExpertFfnConfig c;
            c.gemv_max_m = g;
            c.n_block = nb;
            c.n_block_down = 128;
            c.m_tiles = 1;
            c.n_tiles = 2;
            c.m_block = 64;
            cfgs.push_back(c);
        }
    for (int kb : {0, 1}) {  // AMX from 1 token, whole K and chunked (both tuner candidates)
        ExpertFfnConfig c;
        c.gemv_max_m = 0;
        c.n_block_down = 192;
        c.amx_k_block = kb;
        c.amx_chunk_min_m = 2;
        cfgs.push_back(c);
    }
    for (auto& x : fb.candidates(4, cfgs, 0)) {
        CAPTURE(x.label);
        CHECK(x.verify() == "");
    }
    // A config the driver refuses is reported, not timed.
    ExpertFfnConfig bad;
    bad.n_block = 100;
    CHECK(fb.verify(bad) != "");
}

TEST_CASE("tuner: a short tune writes a plan of verified choices never slower than the default") {
    if (!have_vnni()) {
        MESSAGE("no AVX-512 VNNI: skipped");
        return;
    }
    HostProfileOptions quick;
    quick.measure = false;
    const HostProfile hp = capture_host_profile(quick);
    TuneSettings t;
    t.budget_seconds = 6;
    t.gemv_ms = {1, 8};
    t.amx_ms = {32};
    t.handover_ms = {4, 16};
    t.ffn_ms = {2, 48};
    t.pool_bytes = 4 << 20;
    t.tool_version = "test";
    const auto trials = std::filesystem::temp_directory_path() / ("mf_test_tune_" + std::to_string(getpid()) + ".jsonl");
    t.trials_file = trials;
    const ModelShape s = small_shape();
    const Plan p = tune_plan(hp, s, t);
    std::filesystem::remove(trials);
    CHECK(p.host_fingerprint == hp.fingerprint);
    CHECK(p.shape == s);
    CHECK(p.amx_min_tokens >= 1);
    CHECK(p.amx_min_tokens <= 17);
    int ffn = 0;
    for (const auto& k : p.kernels) {
        CAPTURE(k.name);
        CHECK(k.verified);
        CHECK(k.seconds > 0);
        CHECK(k.default_seconds > 0);
        CHECK(k.seconds <= k.default_seconds * (1 + p.tolerance));
        CHECK(k.m_min <= k.m_max);
        ffn += k.family == "moe_ffn";
    }
    CHECK(ffn == 2);
    REQUIRE(p.find("moe_ffn", "expert", 1));
    REQUIRE(p.find("moe_ffn", "expert", 100000));
    CHECK(p.find("moe_ffn", "expert", 1)->bench_m == 2);
    // Every timed trial of a family came after that candidate's verification in the same family.
    for (const auto& tr : p.trials) {
        if (tr.rung < 0 || tr.seconds <= 0 || tr.family.rfind("handover", 0) == 0) continue;
        bool verified = false;
        for (const auto& v : p.trials)
            if (v.rung < 0 && v.family == tr.family && v.config == tr.config && !v.failed) verified = true;
        CAPTURE(tr.family);
        CAPTURE(tr.config);
        CHECK(verified);
    }
    CHECK(plan_to_json(plan_from_json(plan_to_json(p))) == plan_to_json(p));
}

TEST_CASE("tuner: int4 fused-FFN candidates match the reference over dequantised per-group weights") {
    if (!have_vnni()) {
        MESSAGE("no AVX-512 VNNI: skipped");
        return;
    }
    ThreadPool pool(read_cpu_topology().one_pu_per_core());
    KernelCache cache;
    ModelShape s = small_shape();
    s.wtype = "int4";
    s.group_size = 32;
    ExpertFfnBench fb(pool, cache, s, 4 << 20);
    std::vector<ExpertFfnConfig> cfgs{ExpertFfnConfig{}};
    for (int np : {1, 4})
        for (int nb : {64, 128}) {
            ExpertFfnConfig c;
            c.gemv_panels = np;
            c.gemv_prefetch = 0;
            c.n_block = nb;
            c.n_block_down = 64;
            cfgs.push_back(c);
        }
    for (auto& x : fb.candidates(3, cfgs, 0)) {
        CAPTURE(x.label);
        CHECK(x.verify() == "");
        CHECK(x.time(0.001) > 0);
    }
}

TEST_CASE("tuner: m ranges split at geometric midpoints and cover every m") {
    const auto r = m_ranges({1, 4, 16, 64, 256, 1024});
    REQUIRE(r.size() == 6);
    CHECK(r[0] == std::pair<int, int>{1, 2});
    CHECK(r[1] == std::pair<int, int>{3, 8});
    CHECK(r[2] == std::pair<int, int>{9, 32});
    CHECK(r[5].first == 513);
    for (size_t i = 1; i < r.size(); ++i) CHECK(r[i].first == r[i - 1].second + 1);
}
