#include "runtime/moe_block.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>

#include "model/moe_router.hpp"
#include "runtime/expert_ffn.hpp"
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

namespace {

// The calling thread's other per-step buffers: router logits, the int8 driver's route list, the bf16 path's
// gathered rows. They keep their capacity, so a decode step allocates nothing once they have grown.
struct MoeStepBuffers {
    std::vector<float> logits;
    std::vector<ExpertRoute> routes;
    std::vector<float> xs, ys;
};

MoeStepBuffers& step_buffers() {
    thread_local MoeStepBuffers b;
    return b;
}

}  // namespace

MoeBlock::ExpertTokens& MoeBlock::routing_scratch() {
    thread_local ExpertTokens r;
    return r;
}

void MoeBlock::sort_by_expert(int64_t m, ExpertTokens& r) const {
    const int64_t ne = c_.n_experts, pairs = m * c_.n_experts_used;
    // Counts into offset[e + 1], prefix sums make offset[e] expert e's start; filling advances offset[e] to its
    // end (= the next one's start), and a shift by one restores the starts.
    r.offset.assign(size_t(ne + 1), 0);
    for (int64_t p = 0; p < pairs; ++p) ++r.offset[size_t(r.ids[size_t(p)]) + 1];
    for (int64_t e = 0; e < ne; ++e) r.offset[size_t(e + 1)] += r.offset[size_t(e)];
    r.tokens.resize(size_t(pairs));
    r.gates.resize(size_t(pairs));
    for (int64_t p = 0; p < pairs; ++p) {
        const int32_t at = r.offset[size_t(r.ids[size_t(p)])]++;
        r.tokens[size_t(at)] = int32_t(p / c_.n_experts_used);
        r.gates[size_t(at)] = r.weights[size_t(p)];
    }
    for (int64_t e = ne; e > 0; --e) r.offset[size_t(e)] = r.offset[size_t(e - 1)];
    r.offset[0] = 0;
}

void MoeBlock::forward(const float* xn, int64_t m, float* out, const WorkerPools& pools, StageTimes& times) const {
    if (router_.empty()) throw std::logic_error("MoeBlock::forward on a routed-only block");
    const int64_t d = c_.hidden, ne = c_.n_experts, k = c_.n_experts_used;
    ExpertTokens& r = routing_scratch();
    {
        StageClock clock(times.router);
        std::vector<float>& logits = step_buffers().logits;
        logits.resize(size_t(m * ne));
        router_.forward(xn, m, logits.data(), pools.all);
        r.ids.resize(size_t(m * k));
        r.weights.resize(size_t(m * k));
        for (int64_t i = 0; i < m; ++i) {
            const RoutedExperts re = route_token(c_, logits.data() + i * ne, bias_.empty() ? nullptr : bias_.data());
            if (int64_t(re.ids.size()) != k) throw std::logic_error("MoeBlock: the router chose a wrong expert count");
            for (int64_t j = 0; j < k; ++j) {
                r.ids[size_t(i * k + j)] = int32_t(re.ids[size_t(j)]);
                r.weights[size_t(i * k + j)] = re.weights[size_t(j)];
            }
        }
        sort_by_expert(m, r);
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
    for (int64_t p = 0; p < m * k; ++p)
        if (ids[p] < 0 || ids[p] >= ne)
            throw std::runtime_error("routed expert id " + std::to_string(ids[p]) + " outside the layer's " +
                                     std::to_string(ne) + " experts");
    ExpertTokens& r = routing_scratch();
    r.ids.assign(ids, ids + m * k);
    r.weights.assign(weights, weights + m * k);
    sort_by_expert(m, r);
    std::fill(out, out + m * c_.hidden, 0.0f);
    run_routed(xn, r, out, pools, times);
}

void MoeBlock::run_routed(const float* xn, const ExpertTokens& r, float* out, const WorkerPools& pools,
                          StageTimes& times) const {
    const int64_t d = c_.hidden, ne = c_.n_experts;
    StageClock clock(times.routed_experts);
    ++times.routed_steps;
    for (int64_t e = 0; e < ne; ++e)
        if (r.count(e)) times.routed_bytes += experts_[size_t(e)].weight_bytes();
    MoeStepBuffers& b = step_buffers();
    if (!experts_.empty() && experts_[0].int8_weights()) {
        for (size_t node = 0; node < pools.nodes.size(); ++node) {
            b.routes.clear();
            for (int64_t e = 0; e < ne; ++e)
                if (r.count(e) && expert_node_[size_t(e)] == int(node))
                    b.routes.push_back({experts_[size_t(e)].int8_weights(), r.tokens_of(e), r.gates_of(e)});
            if (b.routes.empty()) continue;
            ExpertFfnBatch batch{xn, d, out, d, b.routes};
            node_drivers_.at(node)->run(*pools.nodes[node], batch);
        }
        return;
    }
    // bf16 experts: gather each expert's rows, run it, scatter with its router weight.
    for (int64_t e = 0; e < ne; ++e) {
        const auto tok = r.tokens_of(e);
        const auto gates = r.gates_of(e);
        if (tok.empty()) continue;
        const int64_t n = int64_t(tok.size());
        b.xs.resize(size_t(n * d));
        b.ys.resize(size_t(n * d));
        for (int64_t i = 0; i < n; ++i) std::copy(xn + tok[size_t(i)] * d, xn + (tok[size_t(i)] + 1) * d, b.xs.begin() + i * d);
        experts_[size_t(e)].forward(b.xs.data(), n, b.ys.data(), *pools.nodes.at(size_t(expert_node_[size_t(e)])));
        for (int64_t i = 0; i < n; ++i) {
            const float g = gates[size_t(i)];
            float* dst = out + tok[size_t(i)] * d;
            for (int64_t j = 0; j < d; ++j) dst[j] += g * b.ys[size_t(i * d + j)];
        }
    }
}

}  // namespace mf
