#include "runtime/moe_block.hpp"

#include <atomic>
#include <stdexcept>

#include "model/moe_router.hpp"
#include "runtime/thread_pool.hpp"
#include "runtime/weight_matrix.hpp"

namespace mf {

MoeBlock::MoeBlock(const DeepSeekV3Config& c, const LayerWeights& w, ComputeType dense, ComputeType experts,
                   KernelCache& cache, const ExpertDrivers& drivers, const WorkerPools& pools,
                   const std::function<void(int64_t)>& on_expert, bool routed_only)
    : c_(c), node_drivers_(drivers.routed) {
    if (!routed_only) {
        WeightMatrix r;
        weight_matrix(w.router, r);
        router_ = Linear::pack(r.src, ComputeType::f32, &cache);
    }
    if (!w.router_bias.empty() && !routed_only) bias_ = weight_vector(w.router_bias);
    if (!w.shexp_gate.empty() && !routed_only)
        shared_ = FfnBlock(w.shexp_gate, w.shexp_up, w.shexp_down, dense, cache,
                           dense == ComputeType::int8 ? drivers.shared : nullptr);
    const int nodes = int(pools.nodes.size());
    experts_.resize(size_t(c.n_experts));
    for (int64_t e = 0; e < c.n_experts; ++e) expert_node_.push_back(int(e * nodes / c.n_experts));
    // Each node's workers pack that node's experts (first touch and mbind keep the pages there).
    for (int node = 0; node < nodes; ++node) {
        ThreadPool& pool = *pools.nodes[size_t(node)];
        std::vector<int64_t> mine;
        for (int64_t e = 0; e < c.n_experts; ++e)
            if (expert_node_[size_t(e)] == node) mine.push_back(e);
        std::atomic<size_t> next{0};
        pool.run([&](int) {
            for (size_t i; (i = next.fetch_add(1)) < mine.size();) {
                const int64_t e = mine[i];
                experts_[size_t(e)] = FfnBlock(w.exp_gate[size_t(e)], w.exp_up[size_t(e)], w.exp_down[size_t(e)],
                                               experts, cache, nullptr, nodes > 1 ? node : -1);
            }
        });
    }
    if (on_expert)
        for (int64_t e = 0; e < c.n_experts; ++e) on_expert(e);
}

size_t MoeBlock::routed_weight_bytes() const {
    size_t b = 0;
    for (const auto& e : experts_) b += e.weight_bytes();
    return b;
}

void MoeBlock::forward(const float* xn, int64_t m, float* out, const WorkerPools& pools, StageTimes& times) const {
    if (router_.empty()) throw std::logic_error("MoeBlock::forward on a routed-only block");
    const int64_t d = c_.hidden, ne = c_.n_experts;
    ExpertTokens r;
    r.tokens.resize(size_t(ne));
    r.gates.resize(size_t(ne));
    {
        StageClock clock(times.router);
        std::vector<float> logits(static_cast<size_t>(m * ne));
        router_.forward(xn, m, logits.data(), pools.all);
        for (int64_t i = 0; i < m; ++i) {
            const RoutedExperts re = route_token(c_, logits.data() + i * ne, bias_.empty() ? nullptr : bias_.data());
            for (size_t k = 0; k < re.ids.size(); ++k) {
                r.tokens[size_t(re.ids[k])].push_back(int32_t(i));
                r.gates[size_t(re.ids[k])].push_back(re.weights[k]);
            }
        }
    }
    // Shared expert (overwrites out), then the routed experts accumulate into it.
    {
        StageClock clock(times.shared_expert);
        if (shared_.hidden() > 0)
            shared_.forward(xn, m, out, *pools.all);
        else
            std::fill(out, out + m * d, 0.0f);
    }
    run_routed(xn, r, out, pools, times);
}

void MoeBlock::forward_routed(const float* xn, int64_t m, const int32_t* ids, const float* weights, float* out,
                              const WorkerPools& pools, StageTimes& times) const {
    const int64_t ne = c_.n_experts, k = c_.n_experts_used;
    ExpertTokens r;
    r.tokens.resize(size_t(ne));
    r.gates.resize(size_t(ne));
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < k; ++j) {
            const int32_t e = ids[i * k + j];
            if (e < 0 || e >= ne)
                throw std::runtime_error("routed expert id " + std::to_string(e) + " outside the layer's " +
                                         std::to_string(ne) + " experts");
            r.tokens[size_t(e)].push_back(int32_t(i));
            r.gates[size_t(e)].push_back(weights[i * k + j]);
        }
    std::fill(out, out + m * c_.hidden, 0.0f);
    run_routed(xn, r, out, pools, times);
}

void MoeBlock::run_routed(const float* xn, const ExpertTokens& r, float* out, const WorkerPools& pools,
                          StageTimes& times) const {
    const int64_t d = c_.hidden, ne = c_.n_experts;
    const auto& tokens = r.tokens;
    const auto& gates = r.gates;
    StageClock clock(times.routed_experts);
    ++times.routed_steps;
    for (int64_t e = 0; e < ne; ++e)
        if (!tokens[size_t(e)].empty()) times.routed_bytes += experts_[size_t(e)].weight_bytes();
    if (!experts_.empty() && experts_[0].int8_weights()) {
        for (size_t node = 0; node < pools.nodes.size(); ++node) {
            std::vector<ExpertRoute> routes;
            for (int64_t e = 0; e < ne; ++e)
                if (!tokens[size_t(e)].empty() && expert_node_[size_t(e)] == int(node))
                    routes.push_back({experts_[size_t(e)].int8_weights(), tokens[size_t(e)], gates[size_t(e)]});
            if (routes.empty()) continue;
            ExpertFfnBatch batch{xn, d, out, d, routes};
            node_drivers_.at(node)->run(*pools.nodes[node], batch);
        }
        return;
    }
    // bf16 experts: gather each expert's rows, run it, scatter with its router weight.
    std::vector<float> xs, ys;
    for (int64_t e = 0; e < ne; ++e) {
        const auto& tok = tokens[size_t(e)];
        if (tok.empty()) continue;
        const int64_t n = int64_t(tok.size());
        xs.resize(size_t(n * d));
        ys.resize(size_t(n * d));
        for (int64_t i = 0; i < n; ++i) std::copy(xn + tok[size_t(i)] * d, xn + (tok[size_t(i)] + 1) * d, xs.begin() + i * d);
        experts_[size_t(e)].forward(xs.data(), n, ys.data(), *pools.nodes.at(size_t(expert_node_[size_t(e)])));
        for (int64_t i = 0; i < n; ++i) {
            const float g = gates[size_t(e)][size_t(i)];
            float* dst = out + tok[size_t(i)] * d;
            for (int64_t j = 0; j < d; ++j) dst[j] += g * ys[size_t(i * d + j)];
        }
    }
}

}  // namespace mf
