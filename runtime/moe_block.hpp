// A DeepSeek-V3 MoE layer's FFN on the CPU: the router (fp32 projection, then model/'s sigmoid + correction bias +
// group-limited top-k + normalised weights x routed_scaling_factor), the shared expert, and the routed experts.
// int8 experts run as one batch through the fused expert FFN driver (every expert with its own token list);
// bf16 experts run one after another through packed projections. Each expert's packed weights live on the NUMA node
// whose workers run it (expert e on node e * nodes / n_experts).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "model/deepseek_v3_config.hpp"
#include "model/deepseek_v3_weights.hpp"
#include "runtime/ffn_block.hpp"
#include "runtime/stage_times.hpp"

namespace mf {

// The workers: one pool over every core (dense work), and one per NUMA node (its experts); on a one-node host
// nodes[0] is `all`.
struct WorkerPools {
    ThreadPool* all = nullptr;
    std::vector<ThreadPool*> nodes;
};

// Fused int8/int4 FFN drivers (a tuned config per tokens-per-expert range) per (node, inter), shared by the layers.
struct ExpertDrivers {
    std::vector<std::shared_ptr<ExpertFfnSet>> routed;  // per node: hidden x moe_inter
    std::shared_ptr<ExpertFfnSet> shared;               // hidden x (n_shared * moe_inter), on `all`
};

class MoeBlock {
public:
    MoeBlock() = default;
    // The routed experts are packed in parallel on `pool` (each by a worker of its NUMA node where there are
    // several); on_expert(e) is then called for each, on the calling thread (progress). routed_only: the router
    // and the shared expert live elsewhere (on the GPU) and only forward_routed() may be called.
    MoeBlock(const DeepSeekV3Config& c, const LayerWeights& w, ComputeType dense, ComputeType experts,
             KernelCache& cache, const ExpertDrivers& drivers, const WorkerPools& pools,
             const std::function<void(int64_t)>& on_expert, bool routed_only = false);

    // xn: [m][hidden] normed rows; out: [m][hidden] = shared(xn) + sum_k w_k expert_k(xn).
    void forward(const float* xn, int64_t m, float* out, const WorkerPools& pools, StageTimes& times) const;
    // The routed experts alone, for a routing made elsewhere: ids and weights are [m][n_experts_used] (weights
    // already normalised and scaled); out: [m][hidden] = sum_k weights[k] expert_ids[k](xn) (overwritten).
    // Throws std::runtime_error on an expert id outside the layer.
    void forward_routed(const float* xn, int64_t m, const int32_t* ids, const float* weights, float* out,
                        const WorkerPools& pools, StageTimes& times) const;

    size_t routed_weight_bytes() const;
    size_t expert_bytes(int64_t e) const { return experts_[size_t(e)].weight_bytes(); }

private:
    // Per expert: the rows routed to it and their router weights, as one counting sort of the (row, expert) pairs:
    // expert e's rows are tokens[offset[e], offset[e + 1]) in increasing order, their weights gates[...] alike.
    // Kept per thread and reused, so a decode step allocates nothing here once it has grown.
    struct ExpertTokens {
        std::vector<int32_t> offset;  // n_experts + 1
        std::vector<int32_t> tokens;  // m * n_experts_used
        std::vector<float> gates;
        std::vector<int32_t> ids;     // [m][n_experts_used] the routing being sorted
        std::vector<float> weights;
        int64_t count(int64_t e) const { return offset[size_t(e) + 1] - offset[size_t(e)]; }
        std::span<const int32_t> tokens_of(int64_t e) const {
            return {tokens.data() + offset[size_t(e)], size_t(count(e))};
        }
        std::span<const float> gates_of(int64_t e) const { return {gates.data() + offset[size_t(e)], size_t(count(e))}; }
    };
    // Sorts r.ids / r.weights ([m][n_experts_used]) by expert into r's offset / tokens / gates.
    void sort_by_expert(int64_t m, ExpertTokens& r) const;
    static ExpertTokens& routing_scratch();  // the calling thread's
    // out += sum over experts of gate x expert(xn rows).
    void run_routed(const float* xn, const ExpertTokens& r, float* out, const WorkerPools& pools,
                    StageTimes& times) const;

    DeepSeekV3Config c_;
    Linear router_;  // [n_experts][hidden] f32
    std::vector<float> bias_;
    FfnBlock shared_;
    std::vector<FfnBlock> experts_;
    std::vector<int> expert_node_;
    std::vector<std::shared_ptr<ExpertFfnSet>> node_drivers_;
};

}  // namespace mf
