// The fused expert FFN against a scalar reference that quantises the same way (tight tolerance) and against
// the plain fp32 FFN (quantisation-level tolerance), over ragged shapes and awkward routings.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "codegen/isa.hpp"
#include "codegen/x64/pack_bf16.hpp"
#include "codegen/x64/pack_int4.hpp"
#include "runtime/expert_ffn.hpp"
#include "runtime/expert_ffn_epilogue.hpp"
#include "runtime/expert_ffn_token_ranges.hpp"

using namespace mf;

namespace {

// One expert: its packed weights and the dequantised float weights the reference uses.
struct RefExpert {
    int hidden = 0, inter = 0;
    std::vector<float> g, u, d;  // dequantised: [inter][hidden], [inter][hidden], [hidden][inter]
    ExpertFfnWeights packed;
    bool bf16 = false;  // activations are rounded to bf16 instead of quantised to int8
};

// int8: random q with per-row scales. int4: Q4_K-like u4 values with per-group scale and min (centred).
// bf16: normal values rounded to bf16.
std::vector<float> random_matrix(WeightType wt, int n, int k, float mag, std::mt19937& rng, MatrixSrc& src,
                                 std::vector<int8_t>& q8, std::vector<uint8_t>& q4, std::vector<float>& sc,
                                 std::vector<float>& mn, std::vector<uint16_t>& b16) {
    std::uniform_real_distribution<float> s(0.5f, 2.0f);
    std::vector<float> w(size_t(n) * k);
    if (wt == WeightType::bf16) {
        std::normal_distribution<float> nd(0, mag);
        b16.resize(w.size());
        for (size_t i = 0; i < w.size(); ++i) b16[i] = float_to_bf16(nd(rng)), w[i] = bf16_to_float(b16[i]);
        src = {SrcType::bf16, n, k, b16.data()};
    } else if (wt == WeightType::int8) {
        std::uniform_int_distribution<int> q(-127, 127);
        q8.resize(w.size());
        sc.resize(size_t(n));
        for (auto& x : q8) x = int8_t(q(rng));
        for (auto& x : sc) x = s(rng) * mag / 127;
        for (int r = 0; r < n; ++r)
            for (int c = 0; c < k; ++c) w[size_t(r) * k + c] = sc[size_t(r)] * q8[size_t(r) * k + c];
        src = {SrcType::int8, n, k, q8.data(), 0, sc.data()};
    } else {
        std::uniform_int_distribution<int> q(0, 15);
        const int groups = (k + 31) / 32;
        q4.resize(w.size());
        sc.resize(size_t(n) * groups);
        mn.resize(sc.size());
        for (auto& x : q4) x = uint8_t(q(rng));
        // Q4_K's form: per 256 k one d (11 significant bits, as an fp16), per group sc = 16..63 (scale 0.5..2 x
        // mag / 15), so the super-block form (pack_int4_sb.hpp) holds.
        std::uniform_int_distribution<int> six(16, 63);
        int e2;
        std::frexp(mag / 15 / 32, &e2);
        for (int r = 0; r < n; ++r)
            for (int b = 0; b < (groups + 7) / 8; ++b) {
                const float d = std::ldexp(std::nearbyint(std::ldexp(s(rng) * mag / 15 / 32, 11 - e2)), e2 - 11);
                for (int g = b * 8; g < std::min(groups, b * 8 + 8); ++g) {
                    sc[size_t(r * groups + g)] = d * float(six(rng));
                    mn[size_t(r * groups + g)] = sc[size_t(r * groups + g)] * 7.5f;
                }
            }
        for (int r = 0; r < n; ++r)
            for (int c = 0; c < k; ++c)
                w[size_t(r) * k + c] =
                    sc[size_t(r * groups + c / 32)] * q4[size_t(r) * k + c] - mn[size_t(r * groups + c / 32)];
        src = {SrcType::u4_group, n, k, q4.data(), 0, sc.data(), mn.data()};
    }
    return w;
}

RefExpert random_expert(WeightType wt, int hidden, int inter, std::mt19937& rng, bool super_blocks = true) {
    RefExpert e;
    e.hidden = hidden;
    e.inter = inter;
    MatrixSrc sg, su, sd;
    std::vector<int8_t> q8[3];
    std::vector<uint8_t> q4[3];
    std::vector<float> sc[3], mn[3];
    std::vector<uint16_t> b16[3];
    e.g = random_matrix(wt, inter, hidden, 1 / std::sqrt(float(hidden)), rng, sg, q8[0], q4[0], sc[0], mn[0],
                        b16[0]);
    e.u = random_matrix(wt, inter, hidden, 1 / std::sqrt(float(hidden)), rng, su, q8[1], q4[1], sc[1], mn[1],
                        b16[1]);
    e.d = random_matrix(wt, hidden, inter, 1 / std::sqrt(float(inter)), rng, sd, q8[2], q4[2], sc[2], mn[2],
                        b16[2]);
    e.packed = wt == WeightType::int8   ? pack_expert_ffn_int8(sg, su, sd)
               : wt == WeightType::int4 ? pack_expert_ffn_int4(sg, su, sd, super_blocks)
                                        : pack_expert_ffn_bf16(sg, su, sd);
    e.bf16 = wt == WeightType::bf16;
    if (wt == WeightType::int4) {  // Q4_K-formed sources keep the super-block form where asked (int4_sb_min_m)
        CHECK((e.packed.gate_up.sb.size() > 0) == super_blocks);
        CHECK((e.packed.down.sb.size() > 0) == super_blocks);
    }
    return e;
}

// Scalar reference of one route, in double over the dequantised weights: quantise x (quantize_row_int8),
// dots, SiLU with std::exp, requantise h, down, accumulate. `fp32_acts` skips both activation quantisations
// (the plain FFN over the same weights).
void ref_route(const RefExpert& e, const float* x, float gate, float* y, bool fp32_acts) {
    const int H = e.hidden, I = e.inter;
    std::vector<float> xf(x, x + H), h(static_cast<size_t>(I));
    std::vector<int8_t> xq(static_cast<size_t>(H)), hq(static_cast<size_t>(I));
    const float sx = quantize_row_int8(xf.data(), H, xq.data());
    for (int n = 0; n < I; ++n) {
        double g = 0, u = 0;
        for (int k = 0; k < H; ++k) {
            const double xv = fp32_acts ? double(x[k])
                              : e.bf16  ? bf16_to_float(float_to_bf16(x[k]))
                                        : double(sx) * xq[size_t(k)];
            g += xv * e.g[size_t(n) * H + k];
            u += xv * e.u[size_t(n) * H + k];
        }
        h[size_t(n)] = float(g / (1 + std::exp(-g)) * u);
    }
    const float sh = quantize_row_int8(h.data(), I, hq.data());
    for (int n = 0; n < H; ++n) {
        double acc = 0;
        for (int k = 0; k < I; ++k)
            acc += (fp32_acts ? double(h[size_t(k)])
                    : e.bf16  ? double(bf16_to_float(float_to_bf16(h[size_t(k)])))
                              : double(sh) * hq[size_t(k)]) *
                   e.d[size_t(n) * I + k];
        y[n] += float(gate * acc);
    }
}

struct Scenario {
    const char* label;
    int hidden, inter, tokens;
    std::vector<std::vector<int>> routes;  // token list per expert
};

std::vector<int> iota_tokens(int n, int step = 1, int start = 0) {
    std::vector<int> v;
    for (int i = 0; i < n; ++i) v.push_back(start + i * step);
    return v;
}

// mixed_form (int4): every other expert packed without the super-block form, so that one batch runs both kernels.
void run_scenario(WeightType wt, const Scenario& sc, const ExpertFfnConfig& cfg, int threads, bool mixed_form = false) {
    CAPTURE(sc.label);
    CAPTURE(mixed_form);
    CAPTURE(kernel_name(ExpertFfnDesc{wt, sc.hidden, sc.inter}, cfg));
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0, 1);
    std::uniform_real_distribution<float> gd(0.05f, 1.0f);
    std::vector<float> x(size_t(sc.tokens) * sc.hidden);
    for (auto& v : x) v = nd(rng);
    std::vector<RefExpert> ref;
    for (size_t e = 0; e < sc.routes.size(); ++e)
        ref.push_back(random_expert(wt, sc.hidden, sc.inter, rng, !(mixed_form && e % 2)));
    std::vector<std::vector<int32_t>> toks(sc.routes.size());
    std::vector<std::vector<float>> gates(sc.routes.size());
    std::vector<ExpertRoute> routes;
    for (size_t e = 0; e < sc.routes.size(); ++e) {
        for (int t : sc.routes[e]) toks[e].push_back(t), gates[e].push_back(gd(rng));
        routes.push_back({&ref[e].packed, toks[e], gates[e]});
    }
    std::vector<float> y(x.size(), 0.25f), yq(x.size(), 0.25f), yf(x.size(), 0.25f);
    KernelCache cache;
    std::vector<int> cpus;
    ThreadPool pool(cpus);
    ThreadPool* p = &pool;
    std::unique_ptr<ThreadPool> multi;
    if (threads > 1) {
        for (int i = 0; i < threads; ++i) cpus.push_back(i % int(std::thread::hardware_concurrency()));
        multi = std::make_unique<ThreadPool>(cpus);
        p = multi.get();
    }
    ExpertFfn ffn(ExpertFfnDesc{wt, sc.hidden, sc.inter}, cfg, cache, p->size());
    ffn.run(*p, ExpertFfnBatch{x.data(), sc.hidden, y.data(), sc.hidden, routes});
    for (size_t e = 0; e < sc.routes.size(); ++e)
        for (size_t i = 0; i < toks[e].size(); ++i) {
            const size_t t = size_t(toks[e][i]);
            ref_route(ref[e], &x[t * sc.hidden], gates[e][i], &yq[t * sc.hidden], false);
            ref_route(ref[e], &x[t * sc.hidden], gates[e][i], &yf[t * sc.hidden], true);
        }
    double max_ref = 0, err_q = 0, err_f = 0;
    for (size_t i = 0; i < y.size(); ++i) {
        max_ref = std::max(max_ref, std::fabs(double(yf[i]) - 0.25));
        err_q = std::max(err_q, std::fabs(double(y[i]) - yq[i]));
        err_f = std::max(err_f, std::fabs(double(y[i]) - yf[i]));
    }
    CAPTURE(max_ref);
    CAPTURE(err_q);
    CAPTURE(err_f);
    // Same quantisation: only float rounding (int4 group scaling in float, dequantisation order) and the
    // vector exp (~1e-7 relative) differ (observed: below 1e-6 of max|y|). The bound leaves room for a rare
    // flip of one intermediate int8 rounding.
    CHECK(err_q <= 1e-4 * max_ref);
    // Against fp32 activations: int8 quantisation of x and h (about 1% each) bounds the error.
    CHECK(err_f <= 5e-2 * max_ref + 1e-6);
}

}  // namespace

TEST_CASE("activation quantisation equals the packer's scalar rule bit for bit") {
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0, 3);
    for (int k : {1, 15, 16, 17, 100, 7168}) {
        std::vector<float> x(static_cast<size_t>(k));
        for (auto& v : x) v = nd(rng);
        const int64_t kp = (k + 63) / 64 * 64;
        std::vector<int8_t> q(static_cast<size_t>(kp), 99), r(static_cast<size_t>(k));
        int32_t sum = 0;
        const float s = quantize_act_row(x.data(), k, kp, q.data(), &sum);
        CHECK(s == quantize_row_int8(x.data(), k, r.data()));
        int32_t rsum = 0;
        int bad = 0;
        for (int i = 0; i < k; ++i) bad += q[size_t(i)] != r[size_t(i)], rsum += r[size_t(i)];
        CHECK(bad == 0);
        for (int64_t i = k; i < kp; ++i) CHECK(q[size_t(i)] == 0);
        CHECK(sum == rsum);
        std::vector<float> gs(static_cast<size_t>(kp / 32), -1.0f);
        quantize_act_row(x.data(), k, kp, q.data(), &sum, gs.data());
        for (int64_t g = 0; g < kp / 32; ++g) {
            int32_t ref = 0;
            for (int64_t i = g * 32; i < std::min<int64_t>(k, g * 32 + 32); ++i) ref += r[size_t(i)];
            CHECK(gs[size_t(g)] == float(ref));
        }
    }
}

TEST_CASE("SiLU(gate)*up epilogue: scalar formula, and the max it returns is the max of what it wrote") {
    std::mt19937 rng(9);
    std::uniform_int_distribution<int32_t> cd(-400000, 400000);
    std::uniform_real_distribution<float> sd(0.5f, 2.0f);
    for (int npairs : {1, 3, 8})
        for (int n_valid : {16 * npairs, 16 * npairs - 5, 1}) {
            CAPTURE(npairs);
            CAPTURE(n_valid);
            std::vector<int32_t> c(size_t(32 * npairs));
            std::vector<float> ws(c.size()), cf(c.size()), dst(size_t(16 * npairs)), dstf(dst.size());
            for (auto& v : c) v = cd(rng);
            for (auto& v : ws) v = sd(rng) * 1e-5f;
            for (size_t i = 0; i < c.size(); ++i) cf[i] = float(c[i]) * 1e-5f;
            const int32_t rowsum = 37;
            const float xs = 0.8f;
            const float m = silu_mul_pairs(c.data(), ws.data(), xs, rowsum, npairs, n_valid, dst.data());
            const float mf = silu_mul_pairs_f32(cf.data(), xs, npairs, n_valid, dstf.data());
            float want_m = 0, want_mf = 0;
            for (int p = 0; p < npairs; ++p)
                for (int l = 0; l < 16; ++l) {
                    const size_t gi = size_t(32 * p + l), ui = gi + 16, o = size_t(16 * p + l);
                    const double g = double(xs) * ws[gi] * (double(c[gi]) - 128.0 * rowsum);
                    const double u = double(xs) * ws[ui] * (double(c[ui]) - 128.0 * rowsum);
                    const double h = g / (1 + std::exp(-g)) * u;
                    CHECK(std::fabs(dst[o] - h) <= 1e-5 * std::fabs(h) + 1e-30);
                    const double gf = double(xs) * cf[gi], uf = double(xs) * cf[ui];
                    const double hf = gf / (1 + std::exp(-gf)) * uf;
                    CHECK(std::fabs(dstf[o] - hf) <= 1e-5 * std::fabs(hf) + 1e-30);
                    if (int(o) < n_valid) {
                        want_m = std::max(want_m, std::fabs(dst[o]));
                        want_mf = std::max(want_mf, std::fabs(dstf[o]));
                    }
                }
            CHECK(m == want_m);
            CHECK(mf == want_mf);
        }
}

TEST_CASE("quantisation with a known max equals quantisation that finds it") {
    std::mt19937 rng(4);
    std::normal_distribution<float> nd(0, 2);
    for (int k : {1, 17, 2048}) {
        std::vector<float> x(static_cast<size_t>(k));
        for (auto& v : x) v = nd(rng);
        const int64_t kp = (k + 63) / 64 * 64;
        std::vector<int8_t> q(static_cast<size_t>(kp)), q2(q.size(), 5);
        std::vector<float> gs(size_t(kp / 32)), gs2(gs.size());
        int32_t sum = 0, sum2 = 0;
        const float s = quantize_act_row(x.data(), k, kp, q.data(), &sum, gs.data());
        const float s2 = quantize_act_row_amax(x.data(), k, kp, row_abs_max(x.data(), k), q2.data(), &sum2, gs2.data());
        CHECK(s == s2);
        CHECK(sum == sum2);
        CHECK(q == q2);
        CHECK(gs == gs2);
    }
}

TEST_CASE("fused expert FFN matches the scalar reference") {
    if (!detect_cpu_isa().has(IsaFeature::avx512_vnni)) {
        return;
    }
    const std::vector<Scenario> scenarios = {
        {"ragged mix with an empty expert",
         200,
         100,
         64,
         {{}, {3}, {0, 5, 9}, iota_tokens(17, 3), iota_tokens(40), {1, 2, 3, 4, 60}}},
        {"one token routed to 8 experts", 130, 72, 4, {{2}, {2}, {2}, {2}, {2}, {2}, {2}, {2}}},
        {"all tokens to one expert", 96, 140, 100, {{}, iota_tokens(100), {}}},
        {"single row, single channel block", 64, 64, 1, {{0}}},
        {"tokens not ascending (down pass without token ranges)", 96, 64, 40, {{5, 2, 9, 1}, iota_tokens(30), {7, 3}}},
        {"many tokens (down pass by token ranges on 3 workers)", 80, 64, 400, {iota_tokens(390, 1, 3)}},
    };
    ExpertFfnConfig base;
    base.n_block = 64;
    base.n_block_down = 64;
    base.m_block = 32;
    base.int4_amx_min_m = 16;
    ExpertFfnConfig all_amx = base;
    all_amx.gemv_max_m = 0;
    all_amx.int4_amx_min_m = 1;
    all_amx.order = LoopOrder::mn;
    all_amx.m_tiles = 3;
    all_amx.n_tiles = 1;
    ExpertFfnConfig all_gemv = base;
    all_gemv.gemv_max_m = 16;
    all_gemv.gemv_panels = 4;
    all_gemv.n_block = 128;
    all_gemv.n_block_down = 192;
    ExpertFfnConfig chunked = base;  // AMX K chunks and L1 prefetch (int4: m/n tiles only)
    chunked.gemv_max_m = 2;
    chunked.int4_amx_min_m = 3;
    chunked.m_tiles = 2;
    chunked.n_tiles = 2;
    chunked.order = LoopOrder::nm;
    chunked.amx_k_block = 1;
    chunked.amx_pf_a = 1;
    chunked.amx_pf_b = 2;
    chunked.amx_pf_next = 3;
    ExpertFfnConfig tiled = base;  // AMX activations tiled, whole K and K chunks with the next one prefetched
    tiled.gemv_max_m = 2;
    tiled.amx_a_tiled = 1;
    ExpertFfnConfig tiled_chunked = tiled;
    tiled_chunked.amx_k_block = 2;
    tiled_chunked.amx_pf_next = 5;
    tiled_chunked.m_tiles = 1;
    tiled_chunked.n_tiles = 2;
    tiled_chunked.order = LoopOrder::mn;
    ExpertFfnConfig split = tiled_chunked;  // chunked kernels from 30 tokens per route (40, 100), whole-K below (17)
    split.amx_chunk_min_m = 30;
    ExpertFfnConfig k_inner = chunked;  // K chunks inside the outer loop (nm: per panel group), 3 steps a chunk
    k_inner.amx_k_inner = 1;
    k_inner.amx_k_block = 3;
    ExpertFfnConfig k_inner_mn = tiled_chunked;  // ... (mn: per row group) over tiled activations
    k_inner_mn.amx_k_inner = 1;
    ExpertFfnConfig no_pf = base;  // AMX from 1 token without the L1 tile prefetch (the default before session 8)
    no_pf.gemv_max_m = 0;
    no_pf.amx_pf_a = no_pf.amx_pf_b = 0;
    ExpertFfnConfig pf_call = base;  // whole-K AMX from 1 token with the next call's A rows prefetched into L2
    pf_call.gemv_max_m = 0;
    pf_call.m_block = 32;  // several calls per route and item
    pf_call.amx_pf_call = 4;
    ExpertFfnConfig amx_mn = base;  // 2x2 tiles, order mn, AMX from 1 token
    amx_mn.gemv_max_m = 0;
    amx_mn.order = LoopOrder::mn;
    ExpertFfnConfig short_ranges = base;  // token ranges of at least 8 rows (more of them on 3 workers)
    short_ranges.down_range_min_rows = 8;
    ExpertFfnConfig no_ranges = base;  // the down pass by column block only
    no_ranges.down_token_ranges = 0;
    no_ranges.gemv_max_m = 4;
    ExpertFfnConfig int4_packed = base;  // int4 AMX from 1 token, every route unpacking in the kernel (token ranges)
    int4_packed.int4_amx_min_m = 1;
    int4_packed.int4_amx_unpack = 1000;
    int4_packed.gemv_max_m = 0;
    int4_packed.int4_amx_pf_a = 0;  // ... without its A row prefetch into L1 (the default before session 9)
    ExpertFfnConfig int4_unpacked = int4_packed;  // ... and every route's panels unpacked per work item first
    int4_unpacked.int4_amx_unpack = 0;
    ExpertFfnConfig int4_sb = int4_packed;  // int4: every AMX route through the super-block kernel unpacking it
    int4_sb.int4_sb_min_m = 1;
    ExpertFfnConfig int4_sb_item = int4_sb;  // ... or over panels unpacked to the form per work item
    int4_sb_item.int4_amx_unpack = 0;
    ExpertFfnConfig int4_sb_mixed = base;  // ... from 20 tokens (40, 100, 390), the kernel's own unpack below
    int4_sb_mixed.int4_sb_min_m = 20;
    ExpertFfnConfig def;
    for (const auto& sc : scenarios)
        for (const auto* cfg : {&base, &all_amx, &all_gemv, &chunked, &tiled, &tiled_chunked, &split, &k_inner,
                                &k_inner_mn, &no_pf, &pf_call, &short_ranges, &amx_mn,
                                &no_ranges, &int4_packed, &int4_unpacked, &int4_sb, &int4_sb_item, &int4_sb_mixed,
                                &def})
            for (int threads : {1, 3}) {
                run_scenario(WeightType::int8, sc, *cfg, threads);
                run_scenario(WeightType::int4, sc, *cfg, threads);
                if (detect_cpu_isa().has(IsaFeature::avx512_bf16))
                    run_scenario(WeightType::bf16, sc, *cfg, threads);
            }
    // Experts with and without the form in one batch: the per-group kernel takes those without it.
    for (const auto& sc : scenarios)
        for (const auto* cfg : {&int4_sb, &int4_sb_item}) run_scenario(WeightType::int4, sc, *cfg, 3, true);
}

TEST_CASE("down pass token ranges: contiguous rows per range, a multiple of the workers where it pays") {
    // 8 routes of the same 1024 ascending tokens, 28 column blocks, 16 workers (the device's M = 1024 call): four
    // ranges give 112 items (7 rounds) without rounding waste.
    std::vector<int32_t> all(1024);
    for (int i = 0; i < 1024; ++i) all[size_t(i)] = i;
    std::vector<std::span<const int32_t>> routes(8, std::span<const int32_t>(all));
    std::vector<int64_t> steps(8, 32);
    TokenRanges tr = split_token_ranges(routes, steps, 28, 16);
    CHECK(tr.count == 4);
    for (size_t r = 0; r < routes.size(); ++r)
        for (int k = 0; k < tr.count; ++k) {
            CHECK(tr.lo(r, k) == 256 * k);
            CHECK(tr.hi(r, k) == 256 * (k + 1));
        }
    // Two workers and 28 blocks already divide: no split (it would only add rounding).
    CHECK(split_token_ranges(routes, steps, 28, 2).count == 1);
    // At most 2 ranges keep 512 rows per route and range, and 2 do not fill 16 workers better than 1.
    CHECK(split_token_ranges(routes, steps, 28, 16, 8, 512).count == 1);
    CHECK(split_token_ranges(routes, steps, 28, 16, 8, 256).count == 4);
    // Ragged routes: every row in exactly one range, each range's tokens inside its slice of the ids.
    std::vector<int32_t> a{0, 3, 4, 9, 17, 18, 40, 41, 42, 63}, b2{1, 2, 62}, c{};
    std::vector<std::span<const int32_t>> rr{a, b2, c};
    std::vector<int64_t> st{1, 1, 16};
    tr = split_token_ranges(rr, st, 3, 4, 8);
    CHECK(tr.count >= 1);
    for (size_t r = 0; r < rr.size(); ++r) {
        CHECK(tr.lo(r, 0) == 0);
        CHECK(tr.hi(r, tr.count - 1) == int64_t(rr[r].size()));
        for (int k = 0; k < tr.count; ++k) {
            CHECK(tr.lo(r, k) <= tr.hi(r, k));
            for (int64_t i = tr.lo(r, k); i < tr.hi(r, k); ++i) {
                CHECK(rr[r][size_t(i)] >= 64 * k / tr.count);
                CHECK(rr[r][size_t(i)] < 64 * (k + 1) / tr.count);
            }
        }
    }
    // A route whose tokens do not ascend: one range.
    std::vector<int32_t> un{4, 1, 7};
    std::vector<std::span<const int32_t>> ru{all, un};
    std::vector<int64_t> su{32, 1};
    tr = split_token_ranges(ru, su, 28, 16);
    CHECK(tr.count == 1);
    CHECK(tr.hi(1, 0) == 3);
}
