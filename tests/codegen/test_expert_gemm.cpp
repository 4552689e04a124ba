// Expert GEMM kernels (AMX int8, AVX-512 VNNI GEMV) against a scalar int32 reference on ragged shapes;
// packing; descriptor field lists; the JIT cache.
#include <doctest/doctest.h>

#include <random>
#include <set>
#include <thread>

#include "codegen/isa.hpp"
#include "codegen/kernel_cache.hpp"
#include "codegen/x64/pack_int8.hpp"

using namespace mf;

namespace {

bool have_amx() {
    static const bool ok = [] {
        const IsaSet isa = detect_cpu_isa();
        return isa.has(IsaFeature::amx_int8) && request_amx_permission();
    }();
    return ok;
}
bool have_vnni() {
    return detect_cpu_isa().has(IsaFeature::avx512_vnni);
}

struct IntCase {
    int m, n, k;
};

// Scalar reference: C[m][n] = sum_k a[m][k] * (w[n][k] + 128), the kernels' contract.
std::vector<int32_t> ref_gemm(const std::vector<int8_t>& a, int64_t lda, const std::vector<int8_t>& w, int m,
                              int n, int k) {
    std::vector<int32_t> c(size_t(m) * n);
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
            int32_t s = 0;
            for (int kk = 0; kk < k; ++kk)
                s += int32_t(a[size_t(i * lda + kk)]) * (int32_t(w[size_t(j) * k + kk]) + 128);
            c[size_t(i) * n + j] = s;
        }
    return c;
}

struct Problem {
    std::vector<int8_t> w, a;
    std::vector<float> ws;
    PackedMatrix packed;
    int64_t lda;
};

Problem make_problem(int rows_alloc, int n, int k, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> d(-127, 127);
    Problem p;
    p.w.resize(size_t(n) * k);
    for (auto& v : p.w) v = int8_t(d(rng));
    p.ws.assign(size_t(n), 0.5f);
    p.packed = pack_int8(MatrixSrc{SrcType::int8, n, k, p.w.data(), 0, p.ws.data()});
    p.lda = p.packed.k_pad;
    p.a.assign(size_t(rows_alloc) * p.lda, 0);
    for (int i = 0; i < rows_alloc; ++i)
        for (int kk = 0; kk < k; ++kk) p.a[size_t(i * p.lda + kk)] = int8_t(d(rng));
    return p;
}

}  // namespace

TEST_CASE("descriptor field lists drive equality, hash and name") {
    auto check_fields = [](auto base) {
        using T = decltype(base);
        const auto h0 = fields_hash(base);
        const auto s0 = fields_name_part(base, true);
        int idx = 0;
        T::visit(base, [&](const char* key, const char*, const auto&) {
            T t = base;
            int j = 0;
            T::visit(t, [&](const char*, const char*, auto& x) {
                if (j++ == idx) x = static_cast<std::decay_t<decltype(x)>>(int(x) + 1);
            });
            CAPTURE(key);
            CHECK_FALSE(t == base);
            CHECK(fields_hash(t) != h0);
            CHECK(fields_name_part(t, true) != s0);
            CHECK(fields_from_json<T>(fields_to_json(t)) == t);
            ++idx;
        });
        CHECK(idx > 0);
    };
    check_fields(AmxGemmDesc{WeightType::int8, 7168});
    check_fields(AmxGemmConfig{});
    check_fields(GemvDesc{WeightType::int8, 7168, 4});
    check_fields(GemvConfig{});
    CHECK(kernel_name(AmxGemmDesc{WeightType::int8, 7168}, AmxGemmConfig{2, 2, LoopOrder::nm, 0}) ==
          "gemm_amx_int8_k7168__mt2nt2nmpf0kb0pa0pb0at0pn0ub0sb0ki0pc0");
}

TEST_CASE("packing: layout and per-channel quantisation of float and bf16 sources") {
    const int n = 37, k = 70;
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0, 1);
    std::vector<float> w(size_t(n) * k);
    for (auto& v : w) v = d(rng);
    std::vector<uint16_t> wb(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
        uint32_t bits;
        std::memcpy(&bits, &w[i], 4);
        wb[i] = uint16_t(bits >> 16);
        bits &= 0xffff0000u;
        std::memcpy(&w[i], &bits, 4);  // w is now exactly the bf16 value
    }
    const PackedMatrix pf = pack_int8(MatrixSrc{SrcType::f32, n, k, w.data()});
    const PackedMatrix pb = pack_int8(MatrixSrc{SrcType::bf16, n, k, wb.data()});
    CHECK(pf.n_pad == 64);
    CHECK(pf.k_pad == 128);
    for (int r = 0; r < n; ++r) {
        float amax = 0;
        for (int kk = 0; kk < k; ++kk) amax = std::max(amax, std::fabs(w[size_t(r) * k + kk]));
        CHECK(pf.scale[size_t(r)] == doctest::Approx(amax / 127).epsilon(1e-6));
        for (int kk = 0; kk < k; ++kk) {
            const float x = w[size_t(r) * k + kk];
            CHECK(std::fabs(pf.q(r, kk) * pf.scale[size_t(r)] - x) <= pf.scale[size_t(r)] * 0.5001f);
            CHECK(pb.q(r, kk) == pf.q(r, kk));
        }
        for (int kk = k; kk < pf.k_pad; ++kk) CHECK(pf.q(r, kk) == 0);
    }
    for (int r = n; r < pf.n_pad; ++r) CHECK(pf.scale[size_t(r)] == 0.0f);
}

TEST_CASE("AMX int8 GEMM equals the scalar reference on ragged shapes") {
    if (!have_amx()) {
        MESSAGE("no AMX on this host: skipped");
        return;
    }
    KernelCache cache;
    const IntCase cases[] = {
        {1, 16, 64}, {17, 50, 100}, {40, 130, 7168 / 8 + 3}, {100, 64, 200}, {33, 200, 2048}};
    const AmxGemmConfig cfgs[] = {{2, 2, LoopOrder::nm, 0},
                                  {1, 2, LoopOrder::mn, 2},
                                  {1, 1, LoopOrder::nm, 0},
                                  {3, 1, LoopOrder::mn, 0},
                                  {2, 1, LoopOrder::nm, 4},
                                  // K chunks (C through memory between chunks; last chunk shorter), L1 prefetch
                                  {2, 2, LoopOrder::nm, 0, 3, 0, 2},
                                  {2, 2, LoopOrder::mn, 0, 2, 1, 0},
                                  {1, 2, LoopOrder::nm, 2, 1, 2, 4},
                                  // K chunks with the next chunk's A rows and B panels prefetched into L2
                                  {2, 2, LoopOrder::nm, 0, 3, 0, 0, 0, 5},
                                  {1, 2, LoopOrder::mn, 0, 2, 0, 0, 0, 32},
                                  {3, 1, LoopOrder::nm, 0, 1, 0, 0, 0, 1},
                                  // A tiled (store_act_row_tiled): whole K, K chunks, L1 prefetch, next-chunk prefetch
                                  {2, 2, LoopOrder::nm, 0, 0, 0, 0, 1},
                                  {2, 1, LoopOrder::mn, 2, 0, 3, 1, 1},
                                  {2, 2, LoopOrder::nm, 0, 3, 1, 0, 1, 7},
                                  {1, 2, LoopOrder::mn, 0, 2, 0, 0, 1, 32},
                                  // K chunks inside the outer loop (k_inner): mn / nm, last chunk shorter, tiled A
                                  {2, 2, LoopOrder::mn, 0, 3, 0, 0, 0, 0, 0, 0, 1},
                                  {2, 2, LoopOrder::nm, 0, 2, 0, 0, 0, 0, 0, 0, 1},
                                  {1, 2, LoopOrder::mn, 0, 5, 1, 1, 1, 0, 0, 0, 1},
                                  {2, 1, LoopOrder::nm, 2, 4, 0, 0, 1, 8, 0, 0, 1},
                                  // whole K with the next call's A rows prefetched into L2 (pf_call), rows / tiled
                                  {2, 2, LoopOrder::nm, 0, 0, 1, 1, 0, 0, 0, 0, 0, 8},
                                  {1, 2, LoopOrder::mn, 2, 0, 0, 0, 1, 0, 0, 0, 0, 1},
                                  {3, 1, LoopOrder::nm, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32}};
    uint32_t seed = 10;
    for (const auto& tc : cases)
        for (const auto& cfg : cfgs) {
            CAPTURE(tc.m);
            CAPTURE(tc.n);
            CAPTURE(tc.k);
            const std::string name = kernel_name(AmxGemmDesc{WeightType::int8, tc.k}, cfg);
            CAPTURE(name);
            const int rows = 16 * cfg.m_tiles, m_steps = (tc.m + rows - 1) / rows;
            Problem p = make_problem(m_steps * rows, tc.n, tc.k, seed++);
            const int64_t n_steps = p.packed.panels() / cfg.n_tiles;
            const int64_t ldc = p.packed.panels() * 64;
            std::vector<int32_t> c(size_t(m_steps * rows) * size_t(ldc / 4), -1);
            const JitKernel& kern = cache.require(AmxGemmDesc{WeightType::int8, tc.k}, cfg);
            std::vector<int8_t> a = p.a;  // the kernel's A: p.a's rows, tiled when the config asks
            if (cfg.a_tiled)
                for (int i = 0; i < m_steps * rows; ++i) store_act_row_tiled(&p.a[size_t(i * p.lda)], p.lda, i, a.data());
            ExpertGemmArgs args{a.data(), p.packed.panel(0), c.data(), ldc, m_steps, n_steps};
            if ((cfg.pf_next || cfg.pf_call) && tc.m > 20) {  // a next call named: its first chunk is prefetched (here: this one)
                args.a_next = a.data();
                args.b_next = p.packed.panel(0);
            }
            kern(&args);
            const auto ref = ref_gemm(p.a, p.lda, p.w, tc.m, tc.n, tc.k);
            int bad = 0;
            for (int i = 0; i < tc.m; ++i)
                for (int j = 0; j < tc.n; ++j)
                    bad += c[size_t(i) * (ldc / 4) + j] != ref[size_t(i) * tc.n + j];
            CHECK(bad == 0);
        }
}

TEST_CASE("AVX-512 VNNI GEMV equals the scalar reference for 1..16 rows") {
    if (!have_vnni()) {
        MESSAGE("no AVX-512 VNNI on this host: skipped");
        return;
    }
    KernelCache cache;
    const GemvConfig cfgs[] = {{1, 0, 1}, {2, 8, 4}, {4, 4, 16}, {4, 16, 2}};
    uint32_t seed = 100;
    for (int m = 1; m <= 16; m += (m < 4 ? 1 : 5))
        for (const auto& cfg0 : cfgs) {
            const int n = 16 * m + 13, k = 64 * m + 29;
            GemvConfig cfg = cfg0;
            cfg.panels = gemv_panels_for(m, cfg0);
            const GemvDesc desc{WeightType::int8, k, m};
            CAPTURE(kernel_name(desc, cfg));
            Problem p = make_problem(m, n, k, seed++);
            const int64_t ldc = p.packed.panels() * 64;
            std::vector<int32_t> c(size_t(m) * size_t(ldc / 4), -1);
            const ExpertGemmArgs args{
                p.a.data(), p.packed.panel(0), c.data(), ldc, 0, p.packed.panels() / cfg.panels};
            cache.require(desc, cfg)(&args);
            const auto ref = ref_gemm(p.a, p.lda, p.w, m, n, k);
            int bad = 0;
            for (int i = 0; i < m; ++i)
                for (int j = 0; j < n; ++j) bad += c[size_t(i) * (ldc / 4) + j] != ref[size_t(i) * n + j];
            CHECK(bad == 0);
        }
}

TEST_CASE("interleaved packing puts source s of panel p at packed panel p*S + s") {
    std::vector<int8_t> g(48 * 64), u(48 * 64);
    for (size_t i = 0; i < g.size(); ++i) g[i] = int8_t(i % 101 - 50), u[i] = int8_t(i % 37 - 18);
    std::vector<float> sg(48, 1.0f), su(48, 2.0f);
    const MatrixSrc srcs[] = {{SrcType::int8, 48, 64, g.data(), 0, sg.data()},
                              {SrcType::int8, 48, 64, u.data(), 0, su.data()}};
    const PackedMatrix pm = pack_int8_interleaved(srcs);
    CHECK(pm.panels() == 8);
    for (int r = 0; r < 48; ++r)
        for (int kk = 0; kk < 64; ++kk) {
            const int p = r / 16, lane = r % 16;
            CHECK(pm.q((2 * p) * 16 + lane, kk) == g[size_t(r) * 64 + kk]);
            CHECK(pm.q((2 * p + 1) * 16 + lane, kk) == u[size_t(r) * 64 + kk]);
            CHECK(pm.scale[size_t((2 * p + 1) * 16 + lane)] == 2.0f);
        }
}

TEST_CASE("JIT cache: one entry per (desc, config), shared across threads, refusals reported") {
    KernelCache cache;
    const GemvDesc d{WeightType::int8, 256, 2};
    const GemvConfig c{2, 4, 4};
    std::vector<const CachedKernel*> seen(4);
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i) ts.emplace_back([&, i] { seen[size_t(i)] = &cache.get(d, c); });
    for (auto& t : ts) t.join();
    for (auto* e : seen) CHECK(e == seen[0]);
    CHECK(cache.entries().size() == 1);
    CHECK(seen[0]->status == JitStatus::ok);
    CHECK(seen[0]->emit_seconds > 0);
    CHECK(seen[0]->kernel->code_size() > 0);
    const CachedKernel& bad =
        cache.get(AmxGemmDesc{WeightType::int8, 64}, AmxGemmConfig{2, 4, LoopOrder::nm, 0});
    CHECK(bad.status == JitStatus::bad_desc);
    CHECK_THROWS_AS(cache.require(AmxGemmDesc{WeightType::int8, 64}, AmxGemmConfig{2, 4, LoopOrder::nm, 0}),
                    std::runtime_error);
}
