// bf16 packing, AMX bf16 GEMM and AVX-512 BF16 GEMV against a double reference over the same bf16 values.
// Error metric: |c - ref| <= 1e-5 * sum_k |a w| + 1e-30 per element (fp32 accumulation of exact bf16
// products).
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "codegen/isa.hpp"
#include "codegen/kernel_cache.hpp"
#include "codegen/x64/pack_bf16.hpp"

using namespace mf;

namespace {

struct Bf16Problem {
    int m, n, k;
    std::vector<uint16_t> w, a;  // [n][k], [rows][2 * k_pad bytes / 2]
    int64_t lda;                 // elements
    PackedMatrix packed;
};

Bf16Problem make(int rows, int n, int k, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0, 1);
    Bf16Problem p;
    p.m = rows;
    p.n = n;
    p.k = k;
    p.w.resize(size_t(n) * k);
    for (auto& v : p.w) v = float_to_bf16(nd(rng));
    p.packed = pack_bf16(MatrixSrc{SrcType::bf16, n, k, p.w.data()});
    p.lda = p.packed.k_pad;
    p.a.assign(size_t(rows) * p.lda, 0);
    for (int r = 0; r < rows; ++r)
        for (int kk = 0; kk < k; ++kk) p.a[size_t(r * p.lda + kk)] = float_to_bf16(nd(rng));
    return p;
}

int count_bad(const Bf16Problem& p, int m, const float* c, int64_t ldc_floats) {
    int bad = 0;
    for (int r = 0; r < m; ++r)
        for (int j = 0; j < p.n; ++j) {
            double ref = 0, mag = 0;
            for (int kk = 0; kk < p.k; ++kk) {
                const double t = double(bf16_to_float(p.a[size_t(r * p.lda + kk)])) *
                                 bf16_to_float(p.w[size_t(j) * p.k + kk]);
                ref += t;
                mag += std::fabs(t);
            }
            bad += std::fabs(c[r * ldc_floats + j] - ref) > 1e-5 * mag + 1e-30;
        }
    return bad;
}

}  // namespace

TEST_CASE("bf16 packing rounds to nearest even and lays out pairs") {
    CHECK(float_to_bf16(1.0f) == 0x3f80);
    CHECK(float_to_bf16(1.0f + 1.0f / 256) == 0x3f80);  // tie, even stays
    CHECK(float_to_bf16(1.0f + 3.0f / 256) == 0x3f82);  // tie, odd rounds up
    CHECK(bf16_to_float(float_to_bf16(-2.5f)) == -2.5f);
    const Bf16Problem p = make(1, 20, 70, 1);
    for (int j = 0; j < 20; ++j)
        for (int kk = 0; kk < 70; ++kk)
            CHECK(packed_bf16(p.packed, j, kk) == bf16_to_float(p.w[size_t(j) * 70 + kk]));
    CHECK(packed_bf16(p.packed, 3, 100) == 0.0f);
}

TEST_CASE("AMX bf16 GEMM and AVX-512 BF16 GEMV match the reference on ragged shapes") {
    const IsaSet isa = detect_cpu_isa();
    KernelCache cache;
    if (isa.has(IsaFeature::amx_bf16) && request_amx_permission()) {
        for (const auto cfg :
             {AmxGemmConfig{2, 2, LoopOrder::nm, 0}, AmxGemmConfig{1, 2, LoopOrder::mn, 0},
              AmxGemmConfig{2, 2, LoopOrder::nm, 0, 2, 1, 1},
              // A tiled: whole K, and K chunks with the next chunk prefetched
              AmxGemmConfig{2, 2, LoopOrder::nm, 0, 0, 0, 0, 1}, AmxGemmConfig{1, 2, LoopOrder::mn, 0, 2, 0, 0, 1, 9}}) {
            const int m = 37, n = 70, k = 130, rows = 16 * cfg.m_tiles, steps = (m + rows - 1) / rows;
            Bf16Problem p = make(steps * rows, n, k, 7);
            std::vector<uint16_t> a = p.a;  // the kernel's A: p.a's rows, tiled when the config asks
            if (cfg.a_tiled)
                for (int i = 0; i < steps * rows; ++i) store_act_row_tiled(&p.a[size_t(i * p.lda)], 2 * p.lda, i, a.data());
            const int64_t ldc = p.packed.panels() * 64;
            std::vector<float> c(size_t(steps * rows) * size_t(ldc / 4), -1.0f);
            const ExpertGemmArgs args{reinterpret_cast<const int8_t*>(a.data()),
                                      p.packed.panel(0),
                                      reinterpret_cast<int32_t*>(c.data()),
                                      ldc,
                                      steps,
                                      p.packed.panels() / cfg.n_tiles};
            cache.require(AmxGemmDesc{WeightType::bf16, k}, cfg)(&args);
            CHECK(count_bad(p, m, c.data(), ldc / 4) == 0);
        }
    } else {
        MESSAGE("no AMX bf16: AMX part skipped");
    }
    if (!isa.has(IsaFeature::avx512_bf16)) {
        MESSAGE("no AVX-512 BF16: GEMV part skipped");
        return;
    }
    for (int m : {1, 3, 8, 16}) {
        const GemvConfig cfg{gemv_panels_for(m, GemvConfig{2, 8, 4}), 8, 4};
        Bf16Problem p = make(m, 16 * m + 5, 64 * m + 17, uint32_t(m));
        const int64_t ldc = p.packed.panels() * 64;
        std::vector<float> c(size_t(m) * size_t(ldc / 4), -1.0f);
        const ExpertGemmArgs args{reinterpret_cast<const int8_t*>(p.a.data()),
                                  p.packed.panel(0),
                                  reinterpret_cast<int32_t*>(c.data()),
                                  ldc,
                                  0,
                                  p.packed.panels() / cfg.panels};
        cache.require(GemvDesc{WeightType::bf16, p.k, m}, cfg)(&args);
        CHECK(count_bad(p, m, c.data(), ldc / 4) == 0);
    }
}
