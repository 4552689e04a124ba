// int4 per-group packing and the int4 GEMV against a scalar reference that does the same float steps (exact),
// on Q4_K-shaped sources (scale = d * sc, min = dmin * m with 6-bit sc, m).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "codegen/isa.hpp"
#include "codegen/kernel_cache.hpp"
#include "codegen/x64/pack_error.hpp"
#include "codegen/x64/pack_int4.hpp"

using namespace mf;

namespace {

struct Q4Source {
    int n, k, groups;
    std::vector<uint8_t> q;
    std::vector<float> scale, min;
};

// Q4_K-like: per 256 k a d and dmin (values an fp16 can hold), per 32 k 6-bit sc and m.
Q4Source q4k_like(int n, int k, std::mt19937& rng) {
    Q4Source s;
    s.n = n;
    s.k = k;
    s.groups = (k + 31) / 32;
    std::uniform_int_distribution<int> q(0, 15), six(0, 63), e(-14, -8), mant(1024, 2047);
    s.q.resize(size_t(n) * k);
    for (auto& v : s.q) v = uint8_t(q(rng));
    s.scale.resize(size_t(n) * s.groups);
    s.min.resize(s.scale.size());
    for (int r = 0; r < n; ++r)
        for (int g = 0; g < s.groups; ++g) {
            const float d = std::ldexp(float(mant(rng)), e(rng) - 10),
                        dmin = std::ldexp(float(mant(rng)), e(rng) - 10);
            s.scale[size_t(r) * s.groups + g] = d * float(six(rng));
            s.min[size_t(r) * s.groups + g] = dmin * float(six(rng));
        }
    return s;
}

}  // namespace

TEST_CASE("int4 packing holds Q4_K sub-blocks exactly, float sources quantise per group") {
    std::mt19937 rng(5);
    const Q4Source s = q4k_like(37, 100, rng);
    const PackedMatrix pm =
        pack_int4(MatrixSrc{SrcType::u4_group, s.n, s.k, s.q.data(), 0, s.scale.data(), s.min.data()});
    CHECK(pm.wtype == WeightType::int4);
    CHECK(pm.k_pad == 128);
    int bad = 0;
    for (int r = 0; r < s.n; ++r) {
        for (int kk = 0; kk < s.k; ++kk) bad += int4_q(pm, r, kk) != s.q[size_t(r) * s.k + kk];
        for (int kk = s.k; kk < pm.k_pad; ++kk) bad += int4_q(pm, r, kk) != 0;
        for (int g = 0; g < s.groups; ++g) {
            bad += int4_scale(pm, r, g) != s.scale[size_t(r) * s.groups + g];
            bad += int4_min(pm, r, g) != s.min[size_t(r) * s.groups + g];
        }
    }
    CHECK(bad == 0);
    // Float source: every weight within half a step of its group's grid.
    std::normal_distribution<float> nd(0, 1);
    std::vector<float> w(size_t(20) * 70);
    for (auto& v : w) v = nd(rng);
    const PackedMatrix pf = pack_int4(MatrixSrc{SrcType::f32, 20, 70, w.data()});
    for (int r = 0; r < 20; ++r)
        for (int kk = 0; kk < 70; ++kk) {
            const float sc = int4_scale(pf, r, kk / 32), mn = int4_min(pf, r, kk / 32);
            CHECK(std::fabs(sc * float(int4_q(pf, r, kk)) - mn - w[size_t(r) * 70 + kk]) <=
                  sc * 0.5001f + 1e-6f);
        }
}

TEST_CASE("int4 unpack to the int8 panel layout (AVX-512 where present) equals the scalar unpack") {
    std::mt19937 rng(7);
    for (const auto& [n, k] : {std::pair{16, 32}, {37, 100}, {130, 7168 / 8 + 3}, {64, 2048}}) {
        CAPTURE(n);
        CAPTURE(k);
        const Q4Source s = q4k_like(n, k, rng);
        const PackedMatrix pm =
            pack_int4(MatrixSrc{SrcType::u4_group, n, k, s.q.data(), 0, s.scale.data(), s.min.data()});
        const int64_t panel = pm.k_pad * 16;
        for (const auto& [first, count] : {std::pair<int64_t, int64_t>{0, pm.panels()}, {pm.panels() - 1, 1},
                                          {pm.panels() / 2, pm.panels() - pm.panels() / 2}}) {
            // aligned (vector path) and one byte off (scalar path), both against the scalar reference
            AlignedBytes got(size_t(count * panel + 64));
            std::vector<uint8_t> want(size_t(count * panel));
            unpack_int4_panels_reference(pm, first, count, want.data());
            for (int off : {0, 1}) {
                std::fill_n(got.data(), got.size(), uint8_t(0xee));
                unpack_int4_panels(pm, first, count, got.data() + off);
                CHECK(std::equal(want.begin(), want.end(), got.data() + off));
                CHECK(got.data()[off + count * panel] == 0xee);  // nothing written past the panels
            }
            // and the layout itself: q of channel c at k sits at panel c / 16, row k / 4, byte (c % 16) * 4 + k % 4
            int bad = 0;
            for (int64_t c = first * 16; c < std::min<int64_t>(n, (first + count) * 16); ++c)
                for (int kk = 0; kk < k; ++kk)
                    bad += want[size_t((c / 16 - first) * panel + (kk / 4) * 64 + (c % 16) * 4 + kk % 4)] !=
                           s.q[size_t(c) * k + kk];
            CHECK(bad == 0);
        }
    }
}

TEST_CASE("int4 GEMV equals the scalar per-group reference for 1..8 rows") {
    if (!detect_cpu_isa().has(IsaFeature::avx512_vnni)) {
        MESSAGE("no AVX-512 VNNI: skipped");
        return;
    }
    KernelCache cache;
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> xd(-127, 127);
    for (int m = 1; m <= kInt4GemvMaxRows; ++m)
        for (const GemvConfig cfg0 : {GemvConfig{1, 0, 1}, GemvConfig{2, 6, 1}, GemvConfig{4, 12, 1}}) {
            const int n = 16 * m + 29, k = 64 * m + 45;
            GemvConfig cfg = cfg0;
            cfg.panels = gemv_panels_for(m, cfg0, WeightType::int4);
            const GemvDesc desc{WeightType::int4, k, m};
            CAPTURE(kernel_name(desc, cfg));
            const Q4Source s = q4k_like(n, k, rng);
            const PackedMatrix pm =
                pack_int4(MatrixSrc{SrcType::u4_group, n, k, s.q.data(), 0, s.scale.data(), s.min.data()});
            const int64_t kp = pm.k_pad, groups = kp / 32;
            std::vector<int8_t> a(size_t(m) * kp, 0);
            std::vector<float> gs(size_t(m) * groups, 0.0f);
            for (int r = 0; r < m; ++r)
                for (int kk = 0; kk < k; ++kk) {
                    a[size_t(r * kp + kk)] = int8_t(xd(rng));
                    gs[size_t(r * groups + kk / 32)] += float(a[size_t(r * kp + kk)]);
                }
            const int64_t ldc = pm.panels() * 64;
            std::vector<float> c(size_t(m) * size_t(ldc / 4), -1.0f);
            ExpertGemmArgs args{a.data(), pm.panel(0), reinterpret_cast<int32_t*>(c.data()),
                                ldc,      0,           pm.panels() / cfg.panels,
                                gs.data()};
            cache.require(desc, cfg)(&args);
            int bad = 0;
            for (int r = 0; r < m; ++r)
                for (int j = 0; j < n; ++j) {
                    float f = 0;
                    for (int g = 0; g < s.groups; ++g) {
                        int32_t dot = 0;
                        for (int kk = g * 32; kk < std::min(k, g * 32 + 32); ++kk)
                            dot += int32_t(a[size_t(r * kp + kk)]) * s.q[size_t(j) * k + kk];
                        f = std::fma(float(dot), s.scale[size_t(j) * s.groups + g], f);
                        f = std::fma(-s.min[size_t(j) * s.groups + g], gs[size_t(r * groups + g)], f);
                    }
                    bad += c[size_t(r) * (ldc / 4) + j] != f;
                }
            CHECK(bad == 0);
        }
}

TEST_CASE("pack_error: zero for an exact Q4_K source, bounded for float requantisation") {
    std::mt19937 rng(21);
    const Q4Source s = q4k_like(24, 96, rng);
    std::vector<float> deq(size_t(s.n) * s.k);
    for (int r = 0; r < s.n; ++r)
        for (int kk = 0; kk < s.k; ++kk) {
            const size_t g = size_t(r) * s.groups + kk / 32;
            deq[size_t(r) * s.k + kk] = s.scale[g] * float(s.q[size_t(r) * s.k + kk]) - s.min[g];
        }
    const PackedMatrix p4 =
        pack_int4(MatrixSrc{SrcType::u4_group, s.n, s.k, s.q.data(), 0, s.scale.data(), s.min.data()});
    const PackError e4 = pack_error(p4, deq.data());
    CHECK(e4.max_abs <= 1e-6 * e4.rms_source);  // only the float evaluation of scale * q - min differs
    // The same weights requantised to int8 per channel: error within half a step of the row's scale.
    const PackedMatrix p8 = pack_int8(MatrixSrc{SrcType::f32, s.n, s.k, deq.data()});
    const PackError e8 = pack_error(p8, deq.data());
    float max_scale = 0;
    for (int r = 0; r < s.n; ++r) max_scale = std::max(max_scale, p8.scale[size_t(r)]);
    CHECK(e8.max_abs <= 0.5001 * max_scale);
    CHECK(e8.relative() > 0);
    CHECK(e8.relative() < 0.02);
}

TEST_CASE("AMX int4 GEMM (unpacked panels or unpacked in the kernel, per-group scale and min) equals the per-group "
          "reference") {
    if (!detect_cpu_isa().has(IsaFeature::amx_int8) || !request_amx_permission()) {
        MESSAGE("no AMX on this host: skipped");
        return;
    }
    KernelCache cache;
    std::mt19937 rng(31);
    std::uniform_int_distribution<int> xd(-127, 127);
    struct Case {
        int m, n, k;
    };
    const Case cases[] = {{1, 16, 32}, {17, 50, 100}, {40, 130, 7168 / 8 + 3}, {33, 64, 2048}};
    const AmxGemmConfig cfgs[] = {
        {2, 1, LoopOrder::nm, 0}, {1, 2, LoopOrder::mn, 0}, {2, 1, LoopOrder::mn, 0}, {1, 1, LoopOrder::nm, 0},
        // unpack_b: args.b is the packed data; with prefetch (groups ahead) too.
        {1, 1, LoopOrder::nm, 0, 0, 0, 0, 0, 0, 1}, {1, 1, LoopOrder::mn, 4, 0, 0, 0, 0, 0, 1},
        {2, 1, LoopOrder::nm, 2, 0, 0, 0, 0, 0, 1}, {1, 2, LoopOrder::mn, 0, 0, 0, 0, 0, 0, 1},
        // pf_a: A rows prefetched into L1 1 or 3 lines ahead, per-group B and unpack_b
        {1, 1, LoopOrder::nm, 0, 0, 1}, {2, 1, LoopOrder::mn, 16, 0, 3, 0, 0, 0, 1}};
    for (const Case& tc : cases)
        for (const AmxGemmConfig& cfg : cfgs) {
            const AmxGemmDesc desc{WeightType::int4, tc.k};
            CAPTURE(kernel_name(desc, cfg));
            CAPTURE(tc.m);
            const Q4Source s = q4k_like(tc.n, tc.k, rng);
            const PackedMatrix pm = pack_int4(
                MatrixSrc{SrcType::u4_group, tc.n, tc.k, s.q.data(), 0, s.scale.data(), s.min.data()});
            const int64_t kp = pm.k_pad, groups = kp / 32;
            const int rows = 16 * cfg.m_tiles, m_steps = (tc.m + rows - 1) / rows;
            std::vector<int8_t> a(size_t(m_steps * rows) * size_t(kp), 0);
            std::vector<float> gs(size_t(m_steps * rows) * size_t(groups), 0.0f);
            for (int r = 0; r < tc.m; ++r)
                for (int kk = 0; kk < tc.k; ++kk) {
                    a[size_t(r * kp + kk)] = int8_t(xd(rng));
                    gs[size_t(r * groups + kk / 32)] += float(a[size_t(r * kp + kk)]);
                }
            std::vector<uint8_t> unpacked(size_t(pm.panels() * kp * 16));
            unpack_int4_panels(pm, 0, pm.panels(), unpacked.data());
            const int64_t ldc = pm.panels() * 64;
            std::vector<float> c(size_t(m_steps * rows) * size_t(ldc / 4), -1.0f);
            ExpertGemmArgs args{a.data(), cfg.unpack_b ? pm.panel(0) : unpacked.data(),
                                reinterpret_cast<int32_t*>(c.data()),
                                ldc,      m_steps,         pm.panels() / cfg.n_tiles,
                                gs.data(), pm.panel(0)};
            cache.require(desc, cfg)(&args);
            int bad = 0;
            for (int r = 0; r < tc.m; ++r)
                for (int j = 0; j < tc.n; ++j) {
                    float f = 0;
                    for (int g = 0; g < s.groups; ++g) {
                        int32_t dot = 0;
                        for (int kk = g * 32; kk < std::min(tc.k, g * 32 + 32); ++kk)
                            dot += int32_t(a[size_t(r * kp + kk)]) * s.q[size_t(j) * tc.k + kk];
                        f = std::fma(float(dot), s.scale[size_t(j) * s.groups + g], f);
                        f = std::fma(-s.min[size_t(j) * s.groups + g], gs[size_t(r * groups + g)], f);
                    }
                    bad += c[size_t(r) * (ldc / 4) + j] != f;
                }
            CHECK(bad == 0);
            // M = 0: nothing is written.
            std::vector<float> c0(c.size(), -1.0f);
            args.c = reinterpret_cast<int32_t*>(c0.data());
            args.m_steps = 0;
            cache.require(desc, cfg)(&args);
            CHECK(std::count(c0.begin(), c0.end(), -1.0f) == std::ptrdiff_t(c0.size()));
        }
    // Four dot tiles per set would need 12 tiles.
    CHECK(cache.get(AmxGemmDesc{WeightType::int4, 64}, AmxGemmConfig{2, 2, LoopOrder::nm, 0}).status ==
          JitStatus::bad_desc);
}
