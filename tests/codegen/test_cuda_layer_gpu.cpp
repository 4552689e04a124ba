// RMSNorm, rope, router top-k and the elementwise glue against scalar references on ragged shapes. Needs a
// GPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "codegen/cuda/layer_kernels.hpp"
#include "tests/codegen/cuda_gpu_env.hpp"

using namespace mf;
using namespace mf::test;

namespace {

std::vector<float> random_f32(size_t n, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

std::vector<double> widen(const std::vector<uint16_t>& v) {
    std::vector<double> r(v.size());
    for (size_t i = 0; i < v.size(); ++i) r[i] = from_bf16(v[i]);
    return r;
}
std::vector<double> widen(const std::vector<float>& v) {
    return std::vector<double>(v.begin(), v.end());
}

}  // namespace

TEST_CASE("cuda rms_norm (GPU): f32 -> bf16 rows and an in-place bf16 norm inside a strided row") {
    MF_GPU_TEST_OR_SKIP(env);
    std::mt19937 rng(7);
    {  // residual stream (f32, 7168) -> bf16 GEMM input, 5 rows
        const int rows = 5, dim = 7168;
        const auto x = random_f32(size_t(rows) * dim, rng, -3, 3);
        const auto w = random_f32(dim, rng, 0.5, 1.5);
        DeviceBuffer dx = to_device(x), dw = to_device(w), dy(size_t(rows) * dim * 2);
        dy.fill_bytes(0xff);
        const auto k = env.build(rms_norm_source(RmsNormDesc{dim, CudaDtype::f32, CudaDtype::bf16}));
        k->launch(rms_norm_grid(rows),
                  RmsNormParams{dx.as<void>(), dy.as<void>(), dw.as<float>(), rows, dim, dim, 1e-6f},
                  nullptr);
        env.ctx->synchronize();
        std::vector<double> ref(size_t(rows) * dim);
        for (int r = 0; r < rows; ++r) {
            double ss = 0;
            for (int i = 0; i < dim; ++i) ss += double(x[r * dim + i]) * x[r * dim + i];
            const double inv = 1.0 / std::sqrt(ss / dim + 1e-6);
            for (int i = 0; i < dim; ++i) ref[r * dim + i] = x[r * dim + i] * inv * w[i];
        }
        CHECK(rel_l2(widen(from_device<uint16_t>(dy, ref.size())), ref) < 5e-3);
    }
    {  // c_kv normalised in place inside [c_kv 512 | k_pe 64] rows; k_pe untouched
        const int rows = 3, dim = 512, stride = 576;
        auto x = random_bf16(size_t(rows) * stride, rng, -2, 2);
        const auto w = random_f32(dim, rng, 0.5, 1.5);
        DeviceBuffer dx = to_device(x), dw = to_device(w);
        const auto k = env.build(rms_norm_source(RmsNormDesc{dim, CudaDtype::bf16, CudaDtype::bf16}));
        k->launch(rms_norm_grid(rows),
                  RmsNormParams{dx.as<void>(), dx.as<void>(), dw.as<float>(), rows, stride, stride, 1e-6f},
                  nullptr);
        env.ctx->synchronize();
        const auto got = from_device<uint16_t>(dx, x.size());
        std::vector<double> ref = widen(x);
        for (int r = 0; r < rows; ++r) {
            double ss = 0;
            for (int i = 0; i < dim; ++i) ss += ref[r * stride + i] * ref[r * stride + i];
            const double inv = 1.0 / std::sqrt(ss / dim + 1e-6);
            for (int i = 0; i < dim; ++i) ref[r * stride + i] *= inv * w[i];
            for (int i = dim; i < stride; ++i) CHECK(got[r * stride + i] == x[r * stride + i]);
        }
        CHECK(rel_l2(widen(got), ref) < 5e-3);
    }
}

TEST_CASE("cuda rope (GPU): YaRN rotation, interleaved and half-split pairs, strided heads") {
    MF_GPU_TEST_OR_SKIP(env);
    std::mt19937 rng(11);
    const auto inv_freq = yarn_inv_freq(YarnParams{});
    DeviceBuffer dfreq = to_device(inv_freq);
    for (bool interleaved : {true, false})
        for (CudaDtype dt : {CudaDtype::bf16, CudaDtype::f32}) {
            CAPTURE(interleaved);
            CAPTURE(field_text(dt));
            // q-like layout: [rows][heads][192], rope in the last 64 of each head; written out of place to a
            // [rows][heads][576]-like buffer at offset 512 (the absorbed query's q_pe slot)
            const int rows = 7, heads = 3, rope = 64;
            std::vector<int> pos(rows);
            for (int& p : pos) p = std::uniform_int_distribution<int>(0, 160000)(rng);
            const auto xf = random_f32(size_t(rows) * heads * 192, rng);
            std::vector<double> x(xf.size());
            DeviceBuffer dx, dy;
            const size_t ny = size_t(rows) * heads * 576;
            if (dt == CudaDtype::bf16) {
                std::vector<uint16_t> xb(xf.size());
                for (size_t i = 0; i < xf.size(); ++i) x[i] = from_bf16(xb[i] = to_bf16(xf[i]));
                dx = to_device(xb);
                dy = DeviceBuffer(ny * 2);
            } else {
                x = widen(xf);
                dx = to_device(xf);
                dy = DeviceBuffer(ny * 4);
            }
            dy.fill_bytes(0);
            DeviceBuffer dpos = to_device(pos);
            const RopeDesc desc{rope, dt, interleaved};
            const auto k = env.build(rope_source(desc));
            const int es = cuda_dtype_bytes(dt);
            RopeParams rp{reinterpret_cast<const char*>(dx.as<char>()) + 128 * es,
                          dy.as<char>() + 512 * es,
                          dpos.as<int>(),
                          dfreq.as<float>(),
                          rows,
                          heads,
                          heads * 192,
                          192,
                          heads * 576,
                          576,
                          1.0f};
            k->launch(rope_grid(desc, rows, heads), rp, nullptr);
            env.ctx->synchronize();
            std::vector<double> got(size_t(rows) * heads * rope), ref(got.size());
            std::vector<double> y = dt == CudaDtype::bf16 ? widen(from_device<uint16_t>(dy, ny))
                                                          : widen(from_device<float>(dy, ny));
            for (int r = 0; r < rows; ++r)
                for (int h = 0; h < heads; ++h)
                    for (int i = 0; i < rope / 2; ++i) {
                        const int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + rope / 2;
                        const double ang = double(float(pos[r]) * inv_freq[i]);  // fp32 angle, as the kernel
                        const double a = x[(r * heads + h) * 192 + 128 + i0],
                                     b = x[(r * heads + h) * 192 + 128 + i1];
                        const size_t o = (size_t(r) * heads + h) * rope;
                        ref[o + i0] = a * std::cos(ang) - b * std::sin(ang);
                        ref[o + i1] = a * std::sin(ang) + b * std::cos(ang);
                        got[o + i0] = y[(r * heads + h) * 576 + 512 + i0];
                        got[o + i1] = y[(r * heads + h) * 576 + 512 + i1];
                    }
            CHECK(rel_l2(got, ref) < (dt == CudaDtype::bf16 ? 5e-3 : 1e-4));
        }
}

TEST_CASE("cuda router top-k (GPU): sigmoid + bias, group-limited, normalised and scaled") {
    MF_GPU_TEST_OR_SKIP(env);
    std::mt19937 rng(5);
    struct Case {
        RouterTopkDesc d;
        int tokens;
    };
    const std::vector<Case> cases = {
        {RouterTopkDesc{}, 37},
        {RouterTopkDesc{64, 4, 2, 2, 6, true, false}, 9},
        {RouterTopkDesc{160, 1, 1, 1, 6, false, false}, 5}};  // V2-lite-like softmax
    for (const Case& c : cases) {
        const RouterTopkDesc& d = c.d;
        CAPTURE(router_topk_name(d));
        const auto logits = random_f32(size_t(c.tokens) * d.experts, rng, -4, 4);
        const auto bias = random_f32(d.experts, rng, -0.1f, 0.1f);
        DeviceBuffer dl = to_device(logits), db = to_device(bias);
        DeviceBuffer ids(size_t(c.tokens) * d.top_k * 4), w(size_t(c.tokens) * d.top_k * 4);
        const auto k = env.build(router_topk_source(d));
        k->launch(
            router_topk_grid(c.tokens),
            RouterTopkParams{dl.as<float>(), db.as<float>(), ids.as<int>(), w.as<float>(), c.tokens, 2.5f},
            nullptr);
        env.ctx->synchronize();
        const auto gid = from_device<int>(ids, size_t(c.tokens) * d.top_k);
        const auto gw = from_device<float>(w, size_t(c.tokens) * d.top_k);
        const int gs = d.experts / d.groups;
        for (int t = 0; t < c.tokens; ++t) {
            std::vector<double> score(d.experts), sel(d.experts);
            double mx = -INFINITY, sum = 0;
            for (int e = 0; e < d.experts; ++e) mx = std::max(mx, double(logits[t * d.experts + e]));
            for (int e = 0; e < d.experts; ++e) sum += std::exp(logits[t * d.experts + e] - mx);
            for (int e = 0; e < d.experts; ++e) {
                const double l = logits[t * d.experts + e];
                score[e] = d.sigmoid ? 1 / (1 + std::exp(-l)) : std::exp(l - mx) / sum;
                sel[e] = score[e] + bias[e];
            }
            std::vector<std::pair<double, int>> groups;
            for (int g = 0; g < d.groups; ++g) {
                std::vector<double> v(sel.begin() + g * gs, sel.begin() + (g + 1) * gs);
                std::sort(v.rbegin(), v.rend());
                groups.push_back({-std::accumulate(v.begin(), v.begin() + d.group_top, 0.0), g});
            }
            std::sort(groups.begin(), groups.end());
            std::vector<std::pair<double, int>> cand;
            for (int gi = 0; gi < d.groups_kept; ++gi)
                for (int e = groups[gi].second * gs; e < (groups[gi].second + 1) * gs; ++e)
                    cand.push_back({-sel[e], e});
            std::sort(cand.begin(), cand.end());
            double wsum = 0;
            for (int j = 0; j < d.top_k; ++j) wsum += score[cand[j].second];
            for (int j = 0; j < d.top_k; ++j) {
                CHECK(gid[t * d.top_k + j] == cand[j].second);
                const double ref_w =
                    (d.normalize ? score[cand[j].second] / wsum : score[cand[j].second]) * 2.5;
                CHECK(gw[t * d.top_k + j] == doctest::Approx(ref_w).epsilon(1e-4));
            }
        }
    }
}

TEST_CASE("cuda glue (GPU): embedding gather, SiLU * up, residual add, casts") {
    MF_GPU_TEST_OR_SKIP(env);
    std::mt19937 rng(3);
    {
        const int vocab = 100, dim = 300;
        const auto table = random_bf16(size_t(vocab) * dim, rng);
        const std::vector<int> ids = {5, 99, 0, -1, 100, 42, 42};
        DeviceBuffer dt = to_device(table), di = to_device(ids), dy(ids.size() * dim * 4);
        dy.fill_bytes(0xff);
        const auto k = env.build(
            elementwise_source(ElementwiseDesc{ElementwiseOp::embedding, CudaDtype::bf16, CudaDtype::f32}));
        const int n = static_cast<int>(ids.size());
        k->launch(elementwise_grid(static_cast<long long>(n) * dim),
                  EmbeddingParams{dt.as<void>(), di.as<int>(), dy.as<void>(), n, dim, vocab}, nullptr);
        env.ctx->synchronize();
        const auto y = from_device<float>(dy, ids.size() * dim);
        for (int r = 0; r < n; ++r)
            for (int c = 0; c < dim; ++c) {
                const float ref = (ids[r] >= 0 && ids[r] < vocab) ? from_bf16(table[ids[r] * dim + c]) : 0.f;
                CHECK(y[r * dim + c] == ref);
            }
    }
    {  // gate | up side by side in one [rows][2 * dim] GEMM output
        const int rows = 3, dim = 2048 + 5;
        const auto gu = random_bf16(size_t(rows) * 2 * dim, rng, -6, 6);
        DeviceBuffer dg = to_device(gu), dy(size_t(rows) * dim * 2);
        const auto k = env.build(
            elementwise_source(ElementwiseDesc{ElementwiseOp::silu_mul, CudaDtype::bf16, CudaDtype::bf16}));
        SiluMulParams sp{
            dg.as<void>(), dg.as<uint16_t>() + dim, dy.as<void>(), rows, dim, 2 * dim, 2 * dim, dim};
        k->launch(elementwise_grid(static_cast<long long>(rows) * dim), sp, nullptr);
        env.ctx->synchronize();
        std::vector<double> ref(size_t(rows) * dim);
        for (int r = 0; r < rows; ++r)
            for (int c = 0; c < dim; ++c) {
                const double g = from_bf16(gu[r * 2 * dim + c]), u = from_bf16(gu[r * 2 * dim + dim + c]);
                ref[r * dim + c] = g / (1 + std::exp(-g)) * u;
            }
        CHECK(rel_l2(widen(from_device<uint16_t>(dy, ref.size())), ref) < 5e-3);
    }
    {  // residual add (bf16 into f32) and both casts on a length that is not a multiple of the block
        const long long n = 100003;
        const auto a = random_f32(n, rng), b = random_f32(n, rng);
        std::vector<uint16_t> bb(n);
        for (long long i = 0; i < n; ++i) bb[i] = to_bf16(b[i]);
        DeviceBuffer da = to_device(a), db = to_device(bb), dc(n * 2), dd(n * 4);
        env.build(elementwise_source(ElementwiseDesc{ElementwiseOp::add, CudaDtype::bf16, CudaDtype::f32}))
            ->launch(elementwise_grid(n), ElementwiseParams{db.as<void>(), da.as<void>(), n}, nullptr);
        env.build(elementwise_source(ElementwiseDesc{ElementwiseOp::cast, CudaDtype::f32, CudaDtype::bf16}))
            ->launch(elementwise_grid(n), ElementwiseParams{da.as<void>(), dc.as<void>(), n}, nullptr);
        env.build(elementwise_source(ElementwiseDesc{ElementwiseOp::cast, CudaDtype::bf16, CudaDtype::f32}))
            ->launch(elementwise_grid(n), ElementwiseParams{dc.as<void>(), dd.as<void>(), n}, nullptr);
        env.ctx->synchronize();
        const auto sum = from_device<float>(da, n);
        const auto c16 = from_device<uint16_t>(dc, n);
        const auto back = from_device<float>(dd, n);
        for (long long i = 0; i < n; i += 997) {
            CHECK(sum[i] == a[i] + from_bf16(bb[i]));
            CHECK(c16[i] == to_bf16(sum[i]));
            CHECK(back[i] == from_bf16(c16[i]));
        }
    }
}
