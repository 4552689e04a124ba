// The AMX int4 step probes (codegen/x64/probe_amx_int4.hpp): their products must be right, and, with
// MOEFORGE_AMX_PROBE=1, a table of what each piece of the int4 kernel's group step costs on one core and on every
// core at once (where int4 loses against int8, README "bench kernels"):
//   MOEFORGE_AMX_PROBE=1 ./build/tests/test_codegen -tc='amx int4 probe*'
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "codegen/isa.hpp"
#include "codegen/x64/pack_int8.hpp"
#include "codegen/x64/probe_amx_int4.hpp"
#include "runtime/cpu_topology.hpp"
#include "runtime/thread_pool.hpp"

using namespace mf;

namespace {

bool amx_usable() {
    const IsaSet isa = detect_cpu_isa();
    return isa.has(IsaFeature::amx_int8) && request_amx_permission();
}

// One probe's operands: random A (int8) and B (q in 0..15) tiles, scratch, normal floats for the float step.
struct ProbeData {
    AlignedBytes a{2048}, b{2048}, c{8192};
    std::vector<float> gs = std::vector<float>(16), scale = std::vector<float>(16), min = std::vector<float>(16);
    explicit ProbeData(unsigned seed) {
        std::mt19937 rng(seed);
        for (int i = 0; i < 2048; ++i) {
            a.data()[i] = uint8_t(int(rng() % 255) - 127);
            b.data()[i] = uint8_t(rng() % 16);
        }
        auto* cf = reinterpret_cast<float*>(c.data() + 4096);
        for (int i = 0; i < 1024; ++i) cf[i] = float(int(rng() % 2001) - 1000);
        for (int i = 0; i < 16; ++i) {
            gs[size_t(i)] = float(int(rng() % 801) - 400);
            scale[size_t(i)] = 1e-3f * float(1 + rng() % 63);
            min[size_t(i)] = 1e-3f * float(rng() % 64);
        }
    }
    ProbeAmxInt4Args args(uint64_t iters) {
        return {a.data(), b.data(), c.data(), gs.data(), scale.data(), min.data(), iters};
    }
};

// C[m][n] of A tile at a (16 rows x kb bytes, rows 64 apart, signed) times B tile at b (kb / 4 rows of 16 x 4
// unsigned bytes).
int32_t tile_dot(const uint8_t* a, const uint8_t* b, int kb, int m, int n) {
    int32_t s = 0;
    for (int k = 0; k < kb; ++k) s += int32_t(int8_t(a[m * 64 + k])) * int32_t(b[(k / 4) * 64 + n * 4 + k % 4]);
    return s;
}

}  // namespace

TEST_CASE("amx int4 probe loops compute the products they time") {
    if (!amx_usable()) {
        MESSAGE("no AMX on this host: skipped");
        return;
    }
    for (int kb : {32, 64}) {
        CAPTURE(kb);
        const auto k = make_probe_amx_int4(ProbeAmxInt4Desc{kb, 1, 1, 1, 1});
        REQUIRE(k->create() == JitStatus::ok);
        ProbeData d{unsigned(kb)};
        const ProbeAmxInt4Args args = d.args(3);
        (*k)(&args);
        int bad = 0;
        for (int s = 0; s < 4; ++s) {
            const auto* c = reinterpret_cast<const int32_t*>(d.c.data() + s * 1024);
            for (int m = 0; m < 16; ++m)
                for (int n = 0; n < 16; ++n)
                    bad += c[m * 16 + n] !=
                           tile_dot(d.a.data() + (s % 2) * 1024, d.b.data() + (s % 2) * 1024, kb, m, n);
        }
        CHECK(bad == 0);
    }
    // The super block's two accumulators: each of 4 steps adds A(s % 2) x B lo / hi.
    const auto k = make_probe_amx_int4(ProbeAmxInt4Desc{64, 0, 1, 0, 0, 1});
    REQUIRE(k->create() == JitStatus::ok);
    ProbeData d(5);
    const ProbeAmxInt4Args args = d.args(2);
    (*k)(&args);
    int bad = 0;
    for (int h = 0; h < 2; ++h) {
        const auto* c = reinterpret_cast<const int32_t*>(d.c.data() + h * 1024);
        for (int m = 0; m < 16; ++m)
            for (int n = 0; n < 16; ++n)
                bad += c[m * 16 + n] != 2 * tile_dot(d.a.data(), d.b.data() + h * 1024, 64, m, n) +
                                            2 * tile_dot(d.a.data() + 1024, d.b.data() + h * 1024, 64, m, n);
    }
    CHECK(bad == 0);
    CHECK(make_probe_amx_int4(ProbeAmxInt4Desc{48})->create() == JitStatus::bad_desc);
    CHECK(make_probe_amx_int4(ProbeAmxInt4Desc{32, 0, 1, 0, 0, 1})->create() == JitStatus::bad_desc);
}

TEST_CASE("amx int4 probe: ns per step of each piece, one core and all cores (MOEFORGE_AMX_PROBE=1)") {
    const char* on = std::getenv("MOEFORGE_AMX_PROBE");
    if (!on || std::string(on) != "1") {
        MESSAGE("probe skipped: set MOEFORGE_AMX_PROBE=1 to run it (~10 s)");
        return;
    }
    if (!amx_usable()) {
        MESSAGE("no AMX on this host: skipped");
        return;
    }
    struct Row {
        const char* what;
        ProbeAmxInt4Desc desc;
    };
    const Row rows[] = {
        {"int8 k step: one product, K 64, tiles in place", {64, 0, 1, 0, 0}},
        {"one product, K 32 (one int4 group)", {32, 0, 1, 0, 0}},
        {"K 32 product + dot tile stored", {32, 0, 1, 1, 0}},
        {"float step alone (cvt, fma, fnma bcast; 16 rows)", {32, 0, 0, 0, 1}},
        {"int4 group step: K 32 product + store + float step", {32, 0, 1, 1, 1}},
        {"  + A and B tiles loaded from L1", {32, 1, 1, 1, 1}},
        {"  the same with float dots (no cvt)", {32, 1, 1, 1, 2}},
        {"int8 k step with A and B loaded from L1, K 64", {64, 1, 1, 0, 0}},
        {"super block step: 2 K 64 products, float step / 4", {64, 0, 1, 0, 0, 1}},
    };
    const CpuTopology topo = read_cpu_topology();
    ThreadPool one({topo.one_pu_per_core().front()});
    ThreadPool all(topo.one_pu_per_core());
    std::printf("AMX int4 probe: ns per step (one core; all %d cores at once, per core); TOPS per core of the step's "
                "products\n",
                all.size());
    std::printf("%-55s %10s %10s %10s %10s\n", "step", "1 core ns", "TOPS", "all ns", "TOPS");
    for (const Row& row : rows) {
        const auto k = make_probe_amx_int4(row.desc);
        REQUIRE(k->create() == JitStatus::ok);
        double ns[2] = {0, 0};
        for (int p = 0; p < 2; ++p) {
            ThreadPool& pool = p ? all : one;
            std::vector<ProbeData> data;
            for (int w = 0; w < pool.size(); ++w) data.emplace_back(unsigned(w + 1));
            const uint64_t iters = 200000;
            double best = 1e30;
            for (int rep = 0; rep < 5; ++rep) {
                const auto t0 = std::chrono::steady_clock::now();
                pool.run([&](int w) {
                    request_amx_permission();
                    const ProbeAmxInt4Args args = data[size_t(w)].args(iters);
                    (*k)(&args);
                });
                best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            }
            ns[p] = best / double(iters * 4) * 1e9;
        }
        const double ops = double(row.desc.ops_per_step());
        std::printf("%-55s %10.2f %10.3f %10.2f %10.3f\n", row.what, ns[0], ops / ns[0] / 1e3, ns[1],
                    ops / ns[1] / 1e3);
        CHECK(ns[0] > 0);
        CHECK(ns[1] > 0);
    }
}
