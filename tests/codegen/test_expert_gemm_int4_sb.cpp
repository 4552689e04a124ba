// The Q4_K super-block form (pack_int4_sb.hpp) and the AMX int4 kernel over it (AmxGemmConfig::int4_sb) against
// scalar references: the form and its unpack exactly, the kernel bit for bit against a scalar model of its
// float steps (the integer sums are exact), and within a stated tolerance of the per-group path.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <tuple>

#include "codegen/isa.hpp"
#include "codegen/kernel_cache.hpp"
#include "codegen/x64/pack_int4.hpp"
#include "codegen/x64/pack_int4_sb.hpp"
#include "runtime/cpu_topology.hpp"
#include "runtime/thread_pool.hpp"

using namespace mf;

namespace {

struct Q4kSource {
    int n, k, groups;
    std::vector<uint8_t> q;
    std::vector<float> scale, min;
    std::vector<float> d;  // [n][super block]
    MatrixSrc src() const { return {SrcType::u4_group, n, k, q.data(), 0, scale.data(), min.data()}; }
};

// Q4_K proper: per 256 k an fp16-valued d and dmin, per group 6-bit sc and m (sc 0..63, some blocks all zero).
Q4kSource q4k_blocks(int n, int k, std::mt19937& rng) {
    Q4kSource s;
    s.n = n;
    s.k = k;
    s.groups = (k + 31) / 32;
    const int blocks = (s.groups + 7) / 8;
    std::uniform_int_distribution<int> q(0, 15), six(0, 63), e(-14, -6), mant(1024, 2047), pick(0, 40);
    s.q.resize(size_t(n) * k);
    for (auto& v : s.q) v = uint8_t(q(rng));
    s.scale.resize(size_t(n) * s.groups);
    s.min.resize(s.scale.size());
    s.d.resize(size_t(n) * blocks);
    for (int r = 0; r < n; ++r)
        for (int b = 0; b < blocks; ++b) {
            const int kind = pick(rng);  // 0: an all-zero block; 1: sc all 63 (largest sums); else random
            const float d = kind == 0 ? 0.0f : std::ldexp(float(mant(rng)), e(rng) - 10),
                        dmin = std::ldexp(float(mant(rng)), e(rng) - 10);
            s.d[size_t(r) * blocks + b] = d;
            for (int g = b * 8; g < std::min(s.groups, b * 8 + 8); ++g) {
                s.scale[size_t(r) * s.groups + g] = d * float(kind == 1 ? 63 : six(rng));
                s.min[size_t(r) * s.groups + g] = dmin * float(six(rng));
            }
        }
    return s;
}

bool have_amx() {
    return detect_cpu_isa().has(IsaFeature::amx_int8) && request_amx_permission();
}

}  // namespace

TEST_CASE("int4 super-block form: Q4_K blocks factorise exactly, per-group float scales do not") {
    std::mt19937 rng(3);
    for (const auto& [n, k] : {std::pair{37, 100}, {16, 256}, {20, 320}, {33, 7168 / 4 + 64}}) {
        CAPTURE(n);
        CAPTURE(k);
        const Q4kSource s = q4k_blocks(n, k, rng);
        const PackedMatrix pm = pack_int4(s.src());
        REQUIRE(pm.sb.size() == size_t(pm.panels() * int4_sb_blocks(pm.k_pad) * kInt4SbBytes));
        int bad = 0;
        for (int r = 0; r < n; ++r)
            for (int g = 0; g < int(pm.k_pad / 32); ++g) {
                const float want = g < s.groups ? s.scale[size_t(r) * s.groups + g] : 0.0f;
                bad += int4_sb_d(pm, r, g / 8) * float(int4_sb_sc(pm, r, g)) != want;
                bad += int4_sb_sc(pm, r, g) < 0 || int4_sb_sc(pm, r, g) > 63;
            }
        CHECK(bad == 0);
    }
    // The factorisation's edge cases.
    float d;
    uint8_t sc[8];
    const float zero[3] = {0, 0, 0};
    CHECK(factor_int4_super_block(zero, 3, &d, sc));
    CHECK(d == 0.0f);
    const float root[2] = {1.0f, 0.70710677f};  // sqrt(1/2): no d has both as 0..63 multiples
    CHECK_FALSE(factor_int4_super_block(root, 2, &d, sc));
    const float mixed[2] = {1.0f, -0.5f};  // signs differ
    CHECK_FALSE(factor_int4_super_block(mixed, 2, &d, sc));
    const float neg[2] = {-1.5f, -0.5f};  // one sign: d < 0
    CHECK(factor_int4_super_block(neg, 2, &d, sc));
    CHECK(d * float(sc[0]) == -1.5f);
    CHECK(d * float(sc[1]) == -0.5f);
    // Float sources quantised per group: no form.
    std::normal_distribution<float> nd(0, 1);
    std::vector<float> w(size_t(20) * 300);
    for (auto& v : w) v = nd(rng);
    CHECK(pack_int4(MatrixSrc{SrcType::f32, 20, 300, w.data()}).sb.size() == 0);
}

TEST_CASE("int4 super-block unpack (AVX-512 where present) equals the scalar unpack and lo + 256 hi = sc * q") {
    std::mt19937 rng(9);
    for (const auto& [n, k] : {std::pair{16, 64}, {37, 100}, {50, 7168 / 8 + 3}, {64, 2048}}) {
        CAPTURE(n);
        CAPTURE(k);
        const Q4kSource s = q4k_blocks(n, k, rng);
        const PackedMatrix pm = pack_int4(s.src());
        const int64_t panel = int4_sb_panel_bytes(pm.k_pad), steps = pm.k_pad / 64;
        for (const auto& [first, count] : {std::pair<int64_t, int64_t>{0, pm.panels()}, {pm.panels() - 1, 1}}) {
            AlignedBytes got(size_t(count * panel + 64));
            std::vector<uint8_t> want(size_t(count * panel));
            unpack_int4_panels_sb_reference(pm, first, count, want.data());
            for (int off : {0, 1}) {
                std::fill_n(got.data(), got.size(), uint8_t(0xee));
                unpack_int4_panels_sb(pm, first, count, got.data() + off);
                CHECK(std::equal(want.begin(), want.end(), got.data() + off));
                CHECK(got.data()[off + count * panel] == 0xee);
            }
            // The layout from the source: channel c, k: step t = k / 64 of super block t / 4, row (k % 64) / 4.
            int bad = 0;
            for (int64_t c = first * 16; c < std::min<int64_t>(n, (first + count) * 16); ++c)
                for (int kk = 0; kk < k; ++kk) {
                    const int64_t t = kk / 64, b = t / 4;
                    const uint8_t* lo = want.data() + (c / 16 - first) * panel + b * (4 * 2048 + 64) +
                                        t % 4 * 2048 + (kk % 64) / 4 * 64 + (c % 16) * 4 + kk % 4;
                    const int v = lo[0] + 256 * lo[1024];
                    bad += v != int4_sb_sc(pm, c, kk / 32) * s.q[size_t(c) * k + kk];
                }
            for (int64_t p = 0; p < count; ++p)
                for (int64_t b = 0; b < int4_sb_blocks(pm.k_pad); ++b) {
                    const float* dl = reinterpret_cast<const float*>(
                        want.data() + p * panel + b * (4 * 2048 + 64) + std::min<int64_t>(4, steps - 4 * b) * 2048);
                    for (int j = 0; j < 16; ++j) bad += dl[j] != int4_sb_d(pm, (first + p) * 16 + j, b);
                }
            CHECK(bad == 0);
        }
    }
}

TEST_CASE("AMX int4 super-block GEMM equals its scalar model bit for bit, the per-group path within tolerance") {
    if (!have_amx()) {
        MESSAGE("no AMX on this host: skipped");
        return;
    }
    KernelCache cache;
    std::mt19937 rng(41);
    std::uniform_int_distribution<int> xd(-128, 127);
    struct Case {
        int m, n, k;
    };
    // k: one short super block, one full, full + short, 1.25 blocks, DeepSeek's down (8) and gate/up (28) blocks.
    const Case cases[] = {{1, 16, 32},  {17, 50, 100},   {16, 16, 256},  {33, 64, 448},
                          {40, 130, 320}, {20, 32, 2048}, {35, 32, 7168}};
    for (const Case& tc : cases)
        for (const auto& [nt, order, own] : {std::tuple{1, LoopOrder::nm, 0}, {1, LoopOrder::mn, 0},
                                             {1, LoopOrder::nm, 1}, {2, LoopOrder::nm, 1}}) {
            if (nt == 2 && tc.n <= 16) continue;  // one panel
            AmxGemmConfig cfg{1, nt, order, nt == 2 ? 2 : 0};  // prefetch: super blocks ahead
            cfg.int4_sb = 1;
            cfg.unpack_b = own;  // the kernel unpacks the form from the packed data itself
            const AmxGemmDesc desc{WeightType::int4, tc.k};
            CAPTURE(kernel_name(desc, cfg));
            CAPTURE(tc.m);
            const Q4kSource s = q4k_blocks(tc.n, tc.k, rng);
            const PackedMatrix pm = pack_int4(s.src());
            REQUIRE(pm.sb.size() > 0);
            const int64_t kp = pm.k_pad, groups = kp / 32;
            const int m_steps = (tc.m + 15) / 16;
            std::vector<int8_t> a(size_t(m_steps * 16) * size_t(kp), 0);
            std::vector<float> gs(size_t(m_steps * 16) * size_t(groups), 0.0f);
            for (int r = 0; r < tc.m; ++r)
                for (int kk = 0; kk < tc.k; ++kk) {
                    a[size_t(r * kp + kk)] = int8_t(xd(rng));
                    gs[size_t(r * groups + kk / 32)] += float(a[size_t(r * kp + kk)]);
                }
            AlignedBytes unpacked(size_t(pm.panels() * int4_sb_panel_bytes(kp)));
            unpack_int4_panels_sb(pm, 0, pm.panels(), unpacked.data());
            const int64_t ldc = pm.panels() * 64;
            std::vector<float> c(size_t(m_steps * 16) * size_t(ldc / 4), -1.0f);
            ExpertGemmArgs args{a.data(), own ? pm.panel(0) : unpacked.data(), reinterpret_cast<int32_t*>(c.data()),
                                ldc,      m_steps,         pm.panels() / nt,
                                gs.data(), pm.panel(0)};
            args.b_sb = pm.sb.data();
            cache.require(desc, cfg)(&args);
            int bad = 0, far = 0;
            double worst = 0;
            for (int r = 0; r < tc.m; ++r)
                for (int j = 0; j < tc.n; ++j) {
                    // The kernel's model: an exact integer sum per super block, then its float steps in order.
                    float f = 0;
                    double exact = 0, mag = 0;
                    for (int b = 0; b < int(int4_sb_blocks(kp)); ++b) {
                        int64_t sum = 0;
                        for (int kk = b * 256; kk < std::min(tc.k, b * 256 + 256); ++kk)
                            sum += int64_t(a[size_t(r * kp + kk)]) * int4_sb_sc(pm, j, kk / 32) *
                                   s.q[size_t(j) * tc.k + kk];
                        REQUIRE(std::llabs(sum) < (int64_t(1) << 31));
                        f = std::fma(float(sum), int4_sb_d(pm, j, b), f);
                        for (int g = b * 8; g < std::min(s.groups, b * 8 + 8); ++g)
                            f = std::fma(-s.min[size_t(j) * s.groups + g], gs[size_t(r * groups + g)], f);
                    }
                    bad += c[size_t(r) * (ldc / 4) + j] != f;
                    // Against the exact value: a few roundings of the terms' magnitude.
                    for (int kk = 0; kk < tc.k; ++kk) {
                        const size_t g = size_t(j) * s.groups + kk / 32;
                        const double w = double(s.scale[g]) * s.q[size_t(j) * tc.k + kk] - double(s.min[g]);
                        exact += w * a[size_t(r * kp + kk)];
                        mag += std::fabs(w * a[size_t(r * kp + kk)]);
                    }
                    const double err = std::fabs(double(c[size_t(r) * (ldc / 4) + j]) - exact);
                    worst = std::max(worst, mag > 0 ? err / mag : err);
                    far += err > 1e-6 * mag + 1e-30;
                }
            CHECK(bad == 0);
            CHECK(far == 0);
            CAPTURE(worst);
            // M = 0: nothing is written.
            std::vector<float> c0(c.size(), -1.0f);
            args.c = reinterpret_cast<int32_t*>(c0.data());
            args.m_steps = 0;
            cache.require(desc, cfg)(&args);
            CHECK(std::count(c0.begin(), c0.end(), -1.0f) == std::ptrdiff_t(c0.size()));
        }
    // The form takes one 16 x 16 block.
    AmxGemmConfig two{2, 1, LoopOrder::nm};
    two.int4_sb = 1;
    CHECK(cache.get(AmxGemmDesc{WeightType::int4, 256}, two).status == JitStatus::bad_desc);
    AmxGemmConfig ub{1, 4, LoopOrder::nm};
    ub.int4_sb = ub.unpack_b = 1;
    CHECK(cache.get(AmxGemmDesc{WeightType::int4, 256}, ub).status == JitStatus::bad_desc);
}

namespace {

// One worker's operands in the driver's shape: `rows` activation rows x K, 8 panels (a gate/up work item of 64
// channels), int8 and int4 (Q4_K form) weights, the int4 panels also unpacked to the form.
struct ShapeData {
    int64_t kp, groups, rows;
    std::vector<int8_t> a;
    std::vector<float> gs;
    PackedMatrix w8, w4;
    AlignedBytes sb_unpacked, c;
    ShapeData(int m, int k, unsigned seed) : kp(round_up(k, 64)), groups(kp / 32), rows(m) {
        std::mt19937 rng(seed);
        std::uniform_int_distribution<int> xd(-127, 127);
        a.resize(size_t(m * kp));
        gs.assign(size_t(m * groups), 0.0f);
        for (int64_t i = 0; i < m * kp; ++i) {
            a[size_t(i)] = int8_t(xd(rng));
            gs[size_t(i / kp * groups + i % kp / 32)] += a[size_t(i)];
        }
        std::vector<int8_t> q8(size_t(128) * k);
        for (auto& v : q8) v = int8_t(xd(rng));
        std::vector<float> s8(128, 1e-3f);
        w8 = pack_int8(MatrixSrc{SrcType::int8, 128, k, q8.data(), 0, s8.data()});
        const Q4kSource s = q4k_blocks(128, k, rng);
        w4 = pack_int4(s.src());
        sb_unpacked = AlignedBytes(size_t(w4.panels() * int4_sb_panel_bytes(kp)));
        c = AlignedBytes(size_t(m) * 8 * 64);
    }
};

}  // namespace

TEST_CASE("int4 super-block kernels in the driver's shape: ns per 16 x 16 x 64 step (MOEFORGE_AMX_PROBE=1)") {
    const char* on = std::getenv("MOEFORGE_AMX_PROBE");
    if (!on || std::string(on) != "1") {
        MESSAGE("timing skipped: set MOEFORGE_AMX_PROBE=1 to run it (~20 s)");
        return;
    }
    if (!have_amx()) {
        MESSAGE("no AMX on this host: skipped");
        return;
    }
    KernelCache cache;
    const int k = 7168;
    AmxGemmConfig group{1, 1, LoopOrder::nm, 16, 0, 0, 0, 0, 0, 1};  // the driver's int4 AMX default
    AmxGemmConfig sb_item{1, 1, LoopOrder::nm};
    sb_item.int4_sb = 1;
    AmxGemmConfig sb_own = sb_item;
    sb_own.unpack_b = 1;
    const AmxGemmConfig i8{2, 2, LoopOrder::nm};
    AmxGemmConfig sb_own2 = sb_own;
    sb_own2.n_tiles = 2;
    sb_own2.prefetch = 1;
    enum Kind { int8_2x2, int4_group, int4_sb_unpack_pass, int4_sb_item, int4_sb_own, int4_sb_own2 };
    const char* names[] = {"int8 2x2 (reference)", "int4 per group, kernel unpacks (session 6)",
                           "int4 super block: per-item unpack pass alone", "int4 super block over the unpacked form",
                           "int4 super block, kernel unpacks per block", "  2 panels per A tile, prefetch 1 (driver)"};
    const CpuTopology topo = read_cpu_topology();
    ThreadPool one({topo.one_pu_per_core().front()});
    ThreadPool all(topo.one_pu_per_core());
    std::printf("int4 kernels, K %d, 8 panels, weights and rows in L2 / L3 (one call per worker); ns per 16 x 16 x 64 "
                "step and TOPS per core (one core; all %d cores at once)\n",
                k, all.size());
    std::printf("%-48s %5s %9s %8s %9s %8s\n", "kernel", "rows", "1 core ns", "TOPS", "all ns", "TOPS");
    for (int m : {64, 256}) {
        std::vector<std::unique_ptr<ShapeData>> data;
        for (int w = 0; w < all.size(); ++w) data.push_back(std::make_unique<ShapeData>(m, k, unsigned(w + 1)));
        for (int kind = 0; kind < 6; ++kind) {
            const AmxGemmDesc desc{kind == int8_2x2 ? WeightType::int8 : WeightType::int4, k};
            const AmxGemmConfig cfg = kind == int8_2x2     ? i8
                                      : kind == int4_group ? group
                                      : kind == int4_sb_own ? sb_own
                                      : kind == int4_sb_own2 ? sb_own2
                                                            : sb_item;
            const JitKernel& kern = cache.require(desc, cfg);
            double ns[2] = {0, 0};
            for (int p = 0; p < 2; ++p) {
                ThreadPool& pool = p ? all : one;
                double best = 1e30;
                for (int rep = 0; rep < 6; ++rep) {
                    const auto t0 = std::chrono::steady_clock::now();
                    pool.run([&](int w) {
                        request_amx_permission();
                        ShapeData& d = *data[size_t(w)];
                        if (kind == int4_sb_unpack_pass) {
                            unpack_int4_panels_sb(d.w4, 0, 8, d.sb_unpacked.data());
                            return;
                        }
                        const bool i8k = kind == int8_2x2;
                        ExpertGemmArgs args{d.a.data(),
                                            kind == int4_sb_item ? d.sb_unpacked.data()
                                            : i8k                ? d.w8.panel(0)
                                                                 : d.w4.panel(0),
                                            reinterpret_cast<int32_t*>(d.c.data()),
                                            8 * 64,
                                            m / (i8k ? 32 : 16),
                                            i8k || kind == int4_sb_own2 ? 4 : 8,
                                            i8k ? nullptr : d.gs.data(),
                                            i8k ? nullptr : d.w4.panel(0)};
                        args.b_sb = d.w4.sb.data();
                        kern(&args);
                    });
                    if (rep) best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
                }
                ns[p] = best / (double(m) / 16 * 8 * (k / 64)) * 1e9;
            }
            const double ops = 2.0 * 16 * 16 * 64;
            std::printf("%-48s %5d %9.2f %8.3f %9.2f %8.3f\n", names[kind], m, ns[0], ops / ns[0] / 1e3, ns[1],
                        ops / ns[1] / 1e3);
            CHECK(ns[0] > 0);
        }
    }
}
