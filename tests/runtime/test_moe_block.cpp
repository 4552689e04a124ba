// MoeBlock's routed experts against a scalar reference (model/'s fp32 matmul, SiLU): explicit routings where experts
// get several rows, one row or none, the same block called with different row counts (the per-thread routing
// scratch is reused), bf16 and int8 experts; forward() = shared expert + the router's own choice routed.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "model/model.hpp"
#include "model/moe_router.hpp"
#include "model/reference_ops.hpp"
#include "model/synthetic_model.hpp"
#include "runtime/expert_ffn_set.hpp"
#include "runtime/moe_block.hpp"
#include "runtime/runtime_options.hpp"
#include "runtime/thread_pool.hpp"
#include "tests/model/scratch_dir.hpp"
#include "tests/runtime/test_model_file.hpp"

using namespace mf;

namespace {

// y = down(silu(gate x) * up x) in fp32 from the file's weights.
std::vector<float> expert_reference(const TensorView& gate, const TensorView& up, const TensorView& down,
                                    const float* x) {
    std::vector<float> g(size_t(gate.rows())), u(size_t(up.rows())), y(size_t(down.rows()));
    matmul(gate, x, 1, g.data());
    matmul(up, x, 1, u.data());
    for (size_t i = 0; i < g.size(); ++i) g[i] = silu(g[i]) * u[i];
    matmul(down, g.data(), 1, y.data());
    return y;
}

double cosine(const float* a, const float* b, int64_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < n; ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
    return ab / std::sqrt(aa * bb);
}

}  // namespace

TEST_CASE("MoeBlock: routed experts against a scalar reference, reused routing scratch, bf16 and int8 experts") {
    test::ScratchDir dir("moe-block");
    const auto model = Model::open(test::write_test_model(dir.path(), preset_config("tiny"), 3));
    const DeepSeekV3Config& c = model->config();
    const LayerWeights& lw = model->weights().layers[size_t(c.n_dense_layers)];  // the first MoE layer
    const int64_t d = c.hidden, k = c.n_experts_used;
    REQUIRE(k == 4);
    REQUIRE(c.n_experts == 16);

    ThreadPool pool({});
    WorkerPools pools{&pool, {&pool}};
    KernelCache cache;
    std::mt19937 rng(9);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (ComputeType experts : {ComputeType::bf16, ComputeType::int8}) {
        CAPTURE(compute_type_name(experts));
        ExpertDrivers drivers;
        if (experts == ComputeType::int8) {
            RuntimeOptions opt;
            ExpertFfnDesc desc{WeightType::int8, int(c.hidden), int(c.moe_inter)};
            drivers.routed.push_back(
                std::make_shared<ExpertFfnSet>(desc, opt.expert_ffn_by_m, opt.expert_ffn, cache, pool.size()));
        }
        const MoeBlock block(c, lw, ComputeType::bf16, experts, cache, drivers, pools, nullptr);
        StageTimes times;
        // Row i goes to experts (i, i + 1, 7, 15) mod 16 with distinct weights: expert 7 and 15 get every row,
        // others one or two, several none. Then m = 1 and m = 6 again, so a stale sort would show.
        for (int64_t m : {6, 1, 6, 3}) {
            CAPTURE(m);
            std::vector<float> x(size_t(m * d));
            for (auto& v : x) v = nd(rng);
            std::vector<int32_t> ids;
            std::vector<float> w;
            for (int64_t i = 0; i < m; ++i) {
                for (int32_t e : {int32_t(i % 16), int32_t((i + 1) % 16), int32_t(7 + m % 2), int32_t(15)}) ids.push_back(e);
                for (int j = 0; j < 4; ++j) w.push_back(0.1f * float(j + 1) + 0.01f * float(i));
            }
            std::vector<float> out(size_t(m * d), 99.0f);
            block.forward_routed(x.data(), m, ids.data(), w.data(), out.data(), pools, times);
            for (int64_t i = 0; i < m; ++i) {
                std::vector<float> ref(size_t(d), 0.0f);
                for (int64_t j = 0; j < k; ++j) {
                    const size_t e = size_t(ids[size_t(i * k + j)]);
                    const auto y = expert_reference(lw.exp_gate[e], lw.exp_up[e], lw.exp_down[e], x.data() + i * d);
                    for (int64_t c2 = 0; c2 < d; ++c2) ref[size_t(c2)] += w[size_t(i * k + j)] * y[size_t(c2)];
                }
                CAPTURE(i);
                CHECK(cosine(out.data() + i * d, ref.data(), d) >= 0.999);
            }
        }
        // forward() = shared expert + the router's own routing through forward_routed.
        const int64_t m = 5;
        std::vector<float> x(size_t(m * d));
        for (auto& v : x) v = nd(rng);
        std::vector<float> full(size_t(m * d)), routed(size_t(m * d)), logits(size_t(m * c.n_experts));
        block.forward(x.data(), m, full.data(), pools, times);
        matmul(lw.router, x.data(), m, logits.data());
        const std::vector<float> bias = lw.router_bias.empty() ? std::vector<float>() : dequantize(lw.router_bias);
        std::vector<int32_t> ids;
        std::vector<float> w;
        for (int64_t i = 0; i < m; ++i) {
            const RoutedExperts re = route_token(c, logits.data() + i * c.n_experts, bias.empty() ? nullptr : bias.data());
            for (int64_t j = 0; j < k; ++j) ids.push_back(re.ids[size_t(j)]), w.push_back(re.weights[size_t(j)]);
        }
        block.forward_routed(x.data(), m, ids.data(), w.data(), routed.data(), pools, times);
        for (int64_t i = 0; i < m; ++i) {
            const auto shared = expert_reference(lw.shexp_gate, lw.shexp_up, lw.shexp_down, x.data() + i * d);
            std::vector<float> ref(static_cast<size_t>(d));
            for (int64_t c2 = 0; c2 < d; ++c2) ref[size_t(c2)] = routed[size_t(i * d + c2)] + shared[size_t(c2)];
            CAPTURE(i);
            CHECK(cosine(full.data() + i * d, ref.data(), d) >= 0.999);
        }
        const int32_t bad[4] = {0, 1, 2, 16};
        const float bw[4] = {0.25f, 0.25f, 0.25f, 0.25f};
        CHECK_THROWS_AS(block.forward_routed(x.data(), 1, bad, bw, routed.data(), pools, times), std::runtime_error);
    }
}
