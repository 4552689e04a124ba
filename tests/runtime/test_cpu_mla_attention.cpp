// The CPU MLA attention's pieces against scalar references, on DeepSeek-V3's shapes and ragged ones: the packed
// per-head GEMVs (W_UK / W_UV; bf16 and int8 with the Linear's rounding rules, accumulated in double), the one-pass
// online-softmax attention over latent rows (against a two-pass softmax in double), and the decode path end to end
// at a ragged context length (37 tokens, one at a time) against model/'s fp32 reference forward.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "codegen/x64/pack_int8.hpp"
#include "model/reference_forward.hpp"
#include "model/synthetic_model.hpp"
#include "runtime/cpu_mla_head_gemv.hpp"
#include "runtime/cpu_mla_latent_attend.hpp"
#include "runtime/model_runner.hpp"
#include "tests/model/scratch_dir.hpp"
#include "tests/runtime/test_model_file.hpp"

using namespace mf;

namespace {

float bf16_round(float x) {  // round to nearest even, as the bf16 projections round weights and activations
    uint32_t u;
    std::memcpy(&u, &x, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

std::vector<float> normal_values(size_t n, uint32_t seed, float stddev = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, stddev);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// y[i][c] = sum_j x[i][j] W[c][j] in double, with each type's rounding of weights and activations.
double head_gemv_reference(ComputeType type, const float* w, const float* x, int64_t k, double* magnitude) {
    double y = 0, mag = 0;
    if (type == ComputeType::int8) {
        std::vector<int8_t> qw(static_cast<size_t>(k)), qx(static_cast<size_t>(k));
        const double sw = quantize_row_int8(w, k, qw.data()), sx = quantize_row_int8(x, k, qx.data());
        int64_t acc = 0;
        for (int64_t j = 0; j < k; ++j) acc += int64_t(qw[size_t(j)]) * qx[size_t(j)], mag += std::fabs(double(w[j]) * x[j]);
        y = double(acc) * sw * sx;
    } else {
        for (int64_t j = 0; j < k; ++j) {
            y += double(bf16_round(w[j])) * bf16_round(x[j]);
            mag += std::fabs(double(w[j]) * x[j]);
        }
    }
    *magnitude = mag;
    return y;
}

}  // namespace

TEST_CASE("HeadGemv: packed per-head GEMVs (bf16, int8) against a scalar reference, real and ragged shapes") {
    struct Shape {
        int64_t n, k;
    };
    const Shape shapes[] = {{512, 128}, {128, 512}, {40, 24}, {20, 40}, {17, 7}, {1, 3}, {33, 1}};
    for (ComputeType type : {ComputeType::bf16, ComputeType::int8}) {
        for (const Shape& s : shapes) {
            const int64_t heads = 3;
            std::vector<std::vector<float>> w;
            std::vector<MatrixSrc> srcs;
            for (int64_t h = 0; h < heads; ++h) {
                w.push_back(normal_values(size_t(s.n * s.k), uint32_t(11 + h), 0.1f));
                MatrixSrc src;
                src.type = SrcType::f32;
                src.n = s.n;
                src.k = s.k;
                src.data = w.back().data();
                srcs.push_back(src);
            }
            const HeadGemv g = HeadGemv::pack(srcs, type);
            CHECK(g.heads() == heads);
            CHECK(g.n() == s.n);
            CHECK(g.k() == s.k);
            for (int64_t m : {1, 2, 3, 4, 5, 7}) {
                CAPTURE(compute_type_name(type));
                CAPTURE(s.n);
                CAPTURE(s.k);
                CAPTURE(m);
                // Strided rows on both sides; the gaps of y must stay untouched.
                const int64_t ldx = s.k + 3, ldy = s.n + 5;
                const auto x = normal_values(size_t(m * ldx), uint32_t(100 + m));
                for (int64_t h = 0; h < heads; ++h) {
                    std::vector<float> y(size_t(m * ldy), -7.0f);
                    g.forward(h, x.data(), ldx, m, y.data(), ldy);
                    for (int64_t i = 0; i < m; ++i) {
                        for (int64_t c = 0; c < s.n; ++c) {
                            double mag = 0;
                            const double ref = head_gemv_reference(type, w[size_t(h)].data() + c * s.k,
                                                                   x.data() + i * ldx, s.k, &mag);
                            CHECK(std::fabs(y[size_t(i * ldy + c)] - ref) <= 1e-5 * mag + 1e-7);
                        }
                        for (int64_t c = s.n; c < ldy; ++c) CHECK(y[size_t(i * ldy + c)] == -7.0f);
                    }
                }
            }
        }
    }
}

TEST_CASE("attend_latent: one-pass online softmax over latent rows against a two-pass softmax in double") {
    struct Shape {
        int64_t kv_lora, rope;
    };
    const Shape shapes[] = {{512, 64}, {40, 8}, {36, 8}, {16, 0}};
    for (const Shape& s : shapes) {
        const int64_t row = s.kv_lora + s.rope;
        for (int64_t ctx : {1, 5, 16, 17, 37, 100}) {
            // Rows whose scores climb with t, so the running max grows block after block (the rescaling path).
            auto rows = normal_values(size_t(ctx * row), uint32_t(7 + ctx));
            for (int64_t t = 0; t < ctx; ++t)
                for (int64_t j = 0; j < row; ++j) rows[size_t(t * row + j)] += 0.02f * float(t) / std::sqrt(float(row));
            for (int heads = 1; heads <= kLatentAttendMaxHeads; ++heads) {
                CAPTURE(s.kv_lora);
                CAPTURE(ctx);
                CAPTURE(heads);
                const int64_t ldq = row + 2, ldo = s.kv_lora + 3;
                const auto q = normal_values(size_t(heads * ldq), uint32_t(heads * 31 + ctx));
                const float scale = 0.9f / std::sqrt(float(row)) * 4.0f;
                std::vector<float> o(size_t(heads * ldo), -7.0f);
                attend_latent(q.data(), ldq, heads, rows.data(), row, ctx, s.kv_lora, scale, o.data(), ldo);
                for (int g = 0; g < heads; ++g) {
                    std::vector<double> sc(static_cast<size_t>(ctx));
                    for (int64_t t = 0; t < ctx; ++t) {
                        double d = 0;
                        for (int64_t j = 0; j < row; ++j) d += double(q[size_t(g * ldq + j)]) * rows[size_t(t * row + j)];
                        sc[size_t(t)] = d * scale;
                    }
                    const double mx = *std::max_element(sc.begin(), sc.end());
                    double sum = 0;
                    for (double& v : sc) sum += v = std::exp(v - mx);
                    double worst = 0, big = 0;
                    for (int64_t c = 0; c < s.kv_lora; ++c) {
                        double ref = 0;
                        for (int64_t t = 0; t < ctx; ++t) ref += sc[size_t(t)] / sum * rows[size_t(t * row + c)];
                        worst = std::max(worst, std::fabs(ref - o[size_t(g * ldo + c)]));
                        big = std::max(big, std::fabs(ref));
                    }
                    CHECK(worst <= 2e-6 * std::max(big, 1.0));
                    for (int64_t c = s.kv_lora; c < ldo; ++c) CHECK(o[size_t(g * ldo + c)] == -7.0f);
                }
            }
        }
    }
}

TEST_CASE("CPU MLA decode at a ragged context against the fp32 reference: 20 heads, latent 136, 1 and 2 threads") {
    // Widths that take every tail: 20 heads (groups of 8 + 2 per worker at 2 threads, 8 + 8 + 4 at one), a latent
    // of 136 and a 152-value cache row (not multiples of 16), 37 positions (blocks of 16 + 16 + 5). Dense layers
    // only, so that no router tie can move a row; large enough that the heads go to the workers.
    DeepSeekV3Config c = preset_config("tiny");
    c.n_layers = 2, c.n_dense_layers = 2;
    c.n_heads = 20, c.q_lora_rank = 48, c.kv_lora_rank = 136, c.qk_nope = 32, c.qk_rope = 16, c.v_head = 24;
    test::ScratchDir dir("cpu-mla-decode");
    const auto path = test::write_test_model(dir.path(), c, 5);
    std::vector<int32_t> prompt;
    for (int i = 0; i < 37; ++i) prompt.push_back(int32_t((i * 7919 + 13) % 300));
    for (const char* type : {"bf16", "int8"}) {
        for (int threads : {1, 2}) {
            CAPTURE(std::string(type));
            CAPTURE(threads);
            RuntimeOptions opt;
            opt.threads = threads;
            opt.ctx = 64;
            opt.dense = opt.experts = type;
            auto model = ModelRunner::load(path, opt);
            const int64_t vocab = model->vocab(), T = int64_t(prompt.size());
            const auto ref = reference_forward(model->config(), model->file().weights(), prompt);
            std::vector<float> steps(size_t(T * vocab)), one(size_t(T * vocab));
            for (int64_t i = 0; i < T; ++i) model->forward(std::span(&prompt[size_t(i)], 1), steps.data() + i * vocab, 1);
            model->reset();
            model->forward(prompt, one.data(), T);
            double worst = 1, worst_pd = 1;
            for (int64_t r = 0; r < T; ++r) {
                double ab = 0, aa = 0, bb = 0, pd = 0, pp = 0;
                for (int64_t j = 0; j < vocab; ++j) {
                    const double a = steps[size_t(r * vocab + j)], b = ref[size_t(r * vocab + j)];
                    const double p = one[size_t(r * vocab + j)];
                    ab += a * b, aa += a * a, bb += b * b, pd += a * p, pp += p * p;
                }
                worst = std::min(worst, ab / std::sqrt(aa * bb));
                worst_pd = std::min(worst_pd, pd / std::sqrt(aa * pp));
            }
            MESSAGE(std::string(type) << ", " << threads << " thread(s): worst row cosine, decode vs fp32 reference " << worst
                         << ", decode vs one-shot prefill " << worst_pd);
            CHECK(worst >= 0.999);
            CHECK(worst_pd >= 0.99999);
        }
    }
}
