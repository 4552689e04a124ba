// Where the int8 AMX expert GEMM (codegen/x64/gemm_amx.cpp) loses against the AMX unit at prefill sizes, timed on
// the fused FFN's own call shapes (K = 7168, gate+up items of 8 or 16 panels) with MOEFORGE_AMX_PROBE=1:
//   MOEFORGE_AMX_PROBE=1 ./build/tests/test_codegen -tc='amx int8 gemm probe*'
// For each config: one call repeated with A and B hot in L2 (the inner loop alone); a whole work item (1024 rows in
// calls of the config's rows, the same B panels) with A and B warm in L3; with B flushed to DRAM first; with A and
// B flushed. Each on one core and on every core at once (own buffers per core). The in-tile peak and the L1-fed
// 2x2 loop (codegen/x64/peak_amx.hpp) of the same run are the references. Not a unit test of values: the kernel's
// results are checked in test_expert_gemm.cpp.
#include <doctest/doctest.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "codegen/isa.hpp"
#include "codegen/x64/gemm_amx.hpp"
#include "codegen/x64/pack_int8.hpp"
#include "codegen/x64/peak_amx.hpp"
#include "runtime/cpu_topology.hpp"
#include "runtime/thread_pool.hpp"

using namespace mf;

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kK = 7168;        // gate/up reduction (DeepSeek-V3 hidden)
constexpr int kItemRows = 1024;  // rows of one work item (M = 1024)
constexpr int kBSets = 8;        // distinct B panel sets cycled over the items of one worker

double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

void flush(const uint8_t* p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) _mm_clflush(const_cast<uint8_t*>(p + o));
    _mm_sfence();
}

// One worker's operands: kItemRows activation rows, kBSets sets of `panels` packed panels, C of one call.
struct Operands {
    AlignedBytes a, b, c;
    int64_t b_bytes;
    Operands(int panels, int rows_per_call, unsigned seed)
        : a(size_t(kItemRows) * kK), b(size_t(kBSets) * panels * kK * 16), c(size_t(rows_per_call) * panels * 64),
          b_bytes(int64_t(panels) * kK * 16) {
        std::mt19937 rng(seed);
        for (size_t i = 0; i < a.size(); i += 4) *reinterpret_cast<uint32_t*>(a.data() + i) = rng();
        for (size_t i = 0; i < b.size(); i += 4) *reinterpret_cast<uint32_t*>(b.data() + i) = rng();
    }
};

struct ProbeConfig {
    const char* what;
    AmxGemmConfig cfg;
    int rows;    // rows per call (the driver's m_block)
    int panels;  // panels per call (2 x n_block / 16 for gate+up)
};

enum class State { hot, l3, b_dram, ab_dram };

// Seconds per work item (kItemRows rows) on each worker of pool, best of a few items.
double time_items(ThreadPool& pool, const JitKernel& k, const ProbeConfig& pc, std::vector<Operands>& ops,
                  State st) {
    const int calls = kItemRows / pc.rows;
    const int mt = pc.cfg.m_tiles, nt = pc.cfg.n_tiles;
    std::vector<double> best(size_t(pool.size()), 1e30);
    for (int rep = 0; rep < 2 * kBSets; ++rep) {
        pool.run([&](int w) {
            Operands& o = ops[size_t(w)];
            const uint8_t* b = o.b.data() + (rep % kBSets) * o.b_bytes;
            if (st == State::b_dram || st == State::ab_dram) flush(b, size_t(o.b_bytes));
            if (st == State::ab_dram) flush(o.a.data(), o.a.size());
            ExpertGemmArgs args{};
            args.b = b;
            args.c = reinterpret_cast<int32_t*>(o.c.data());
            args.ldc = pc.panels * 64;
            args.m_steps = pc.rows / (16 * mt);
            args.n_steps = pc.panels / nt;
            const auto t0 = Clock::now();
            for (int i = 0; i < calls; ++i) {
                const int row = st == State::hot ? 0 : i * pc.rows;
                args.a = reinterpret_cast<const int8_t*>(o.a.data()) + int64_t(row) * kK;
                const bool more = i + 1 < calls;
                args.a_next = more ? reinterpret_cast<const int8_t*>(o.a.data()) +
                                         int64_t(st == State::hot ? 0 : row + pc.rows) * kK
                                   : nullptr;
                args.b_next = more ? b : nullptr;
                k(&args);
            }
            best[size_t(w)] = std::min(best[size_t(w)], since(t0));
        });
    }
    return *std::max_element(best.begin(), best.end());
}

// TOPS of all of pool's workers together in the peak kernel (codegen/x64/peak_amx.hpp), best of runs of about
// `seconds` each.
double peak_tops(ThreadPool& pool, bool reload, double seconds) {
    const auto k = make_peak_amx_kernel(PeakAmxDesc{AmxPeakDtype::int8, reload});
    REQUIRE(k->create() == JitStatus::ok);
    std::vector<AlignedBytes> a, b, c;
    std::mt19937 rng(5);
    for (int w = 0; w < pool.size(); ++w) {
        a.emplace_back(8192);
        b.emplace_back(8192);
        c.emplace_back(4096);
        for (int i = 0; i < 8192; ++i) a.back().data()[i] = uint8_t(rng()), b.back().data()[i] = uint8_t(rng());
    }
    const double ops_per_iter = double(PeakAmxDesc{AmxPeakDtype::int8, reload}.ops_per_iter());
    const uint64_t iters = uint64_t(seconds * 3e12 / ops_per_iter) + 1;  // about `seconds` at 3 TOPS a core
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
        const auto t0 = Clock::now();
        pool.run([&](int w) {
            request_amx_permission();
            const PeakAmxArgs args{a[size_t(w)].data(), b[size_t(w)].data(), c[size_t(w)].data(), iters};
            (*k)(&args);
        });
        best = std::min(best, since(t0));
    }
    return double(pool.size()) * double(iters) * ops_per_iter / best / 1e12;
}

}  // namespace

TEST_CASE("amx int8 gemm probe: TOPS per core of the GEMM alone, L2-hot and per work item (MOEFORGE_AMX_PROBE=1)") {
    const char* on = std::getenv("MOEFORGE_AMX_PROBE");
    if (!on || std::string(on) != "1") {
        MESSAGE("probe skipped: set MOEFORGE_AMX_PROBE=1 to run it (~20 s)");
        return;
    }
    const IsaSet isa = detect_cpu_isa();
    if (!isa.has(IsaFeature::amx_int8) || !request_amx_permission()) {
        MESSAGE("no AMX on this host: skipped");
        return;
    }
    // One pool at a time (a second pool's idle workers would spin on the same cores), each warmed up first: the
    // all-core AMX clock settles only after a while of tile work.
    const CpuTopology topo = read_cpu_topology();
    const std::vector<int> cores = topo.one_pu_per_core();
    auto with_pool = [&](bool all, auto&& f) {
        ThreadPool pool(all ? cores : std::vector<int>{cores.front()});
        pool.run([](int) { request_amx_permission(); });
        peak_tops(pool, false, 0.02);
        return f(pool);
    };
    const int n = int(cores.size());
    double peak[2], fed[2];
    for (int p = 0; p < 2; ++p)
        with_pool(p == 1, [&](ThreadPool& pool) {
            peak[p] = peak_tops(pool, false, 0.05) / pool.size();
            fed[p] = peak_tops(pool, true, 0.05) / pool.size();
            return 0;
        });
    std::printf("AMX int8 GEMM probe, K %d, items of %d rows; TOPS per core (one core | all %d cores at once)\n", kK,
                kItemRows, n);
    std::printf("in-tile peak %.2f | %.2f; L1-fed 2x2 loop %.2f | %.2f\n", peak[0], peak[1], fed[0], fed[1]);
    AmxGemmConfig chunked{2, 2, LoopOrder::nm};
    chunked.k_block = 8;
    chunked.a_tiled = 1;
    chunked.pf_next = 32;
    auto ck = [](LoopOrder o, int kb, int tiled, int pf_b, int pn) {
        AmxGemmConfig c{2, 2, o};
        c.k_block = kb;
        c.a_tiled = tiled;
        c.pf_b = pf_b;
        c.pf_next = pn;
        return c;
    };
    auto ki = [](AmxGemmConfig c) {
        c.k_inner = 1;
        return c;
    };
    auto pf = [](int a, int b) {
        AmxGemmConfig c{2, 2, LoopOrder::nm};
        c.pf_a = a;
        c.pf_b = b;
        return c;
    };
    const ProbeConfig configs[] = {
        {"2x2 whole K, no L1 prefetch (before session 8)", pf(0, 0), 64, 8},
        {"pf_a 1 pf_b 1 (the default since session 8)", pf(1, 1), 64, 8},
        {"pf_a 1 only", pf(1, 0), 64, 8},
        {"pf_b 1 only", pf(0, 1), 64, 8},
        {"pf_a 2 pf_b 2", pf(2, 2), 64, 8},
        {"pf 1 + next call's A into L2 (pf_call 8)", [&] {
             AmxGemmConfig c = pf(1, 1);
             c.pf_call = 8;
             return c;
         }(), 64, 8},
        {"pf 1 + next call's A into L2 (pf_call 16)", [&] {
             AmxGemmConfig c = pf(1, 1);
             c.pf_call = 16;
             return c;
         }(), 64, 8},
        {"chunks kb8 tiled pn32, 256 rows x 16 panels", chunked, 256, 16},
        {"mn kb8 k_inner", ki(ck(LoopOrder::mn, 8, 0, 0, 0)), 64, 8},
        {"mn kb8 k_inner pf_a 1 pf_b 1", [&] {
             AmxGemmConfig c = ki(ck(LoopOrder::mn, 8, 0, 1, 0));
             c.pf_a = 1;
             return c;
         }(), 64, 8},
    };
    const char* states[] = {"L2 hot", "A,B in L3", "B DRAM", "A,B DRAM"};
    std::printf("%-48s", "config");
    for (const char* s : states) std::printf(" %18s", s);
    std::printf("\n");
    for (const ProbeConfig& pc : configs) {
        const auto k = make_gemm_amx(AmxGemmDesc{WeightType::int8, kK}, pc.cfg);
        REQUIRE(k->create() == JitStatus::ok);
        const double ops = 2.0 * kItemRows * pc.panels * 16 * double(kK);
        std::printf("%-48s", pc.what);
        for (int s = 0; s < 4; ++s) {
            double tops[2];
            for (int p = 0; p < 2; ++p)
                tops[p] = with_pool(p == 1, [&](ThreadPool& pool) {
                    std::vector<Operands> data;
                    for (int w = 0; w < pool.size(); ++w) data.emplace_back(pc.panels, pc.rows, unsigned(w + 1));
                    return ops / time_items(pool, *k, pc, data, State(s)) / 1e12;
                });
            std::printf(" %8.2f | %7.2f", tops[0], tops[1]);
            CHECK(tops[0] > 0);
        }
        std::printf("\n");
    }
}
