#include "runtime/ffn_block.hpp"

#include <numeric>
#include <stdexcept>
#include <vector>

#include "runtime/numa_memory.hpp"
#include "runtime/vector_ops.hpp"
#include "runtime/weight_matrix.hpp"

namespace mf {

FfnBlock::FfnBlock(const TensorView& gate, const TensorView& up, const TensorView& down, ComputeType type,
                   KernelCache& cache, std::shared_ptr<ExpertFfnSet> driver, int numa_node)
    : type_(type), hidden_(gate.cols()), inter_(gate.rows()), driver_(std::move(driver)) {
    WeightMatrix g, u, d;
    const auto load = type == ComputeType::int4 ? weight_matrix_int4
                                                : [](const TensorView& v, WeightMatrix& w) { weight_matrix(v, w); };
    load(gate, g);
    load(up, u);
    load(down, d);
    if (type == ComputeType::int8 || type == ComputeType::int4) {
        const bool super_blocks = driver_ && driver_->uses_int4_super_blocks();  // else no kernel reads the form
        fused_ = std::make_unique<ExpertFfnWeights>(
            type == ComputeType::int8 ? pack_expert_ffn_int8(g.src, u.src, d.src)
                                      : pack_expert_ffn_int4(g.src, u.src, d.src, super_blocks));
        bind_to_numa_node(fused_->gate_up.data.data(), fused_->gate_up.data.size(), numa_node);
        bind_to_numa_node(fused_->down.data.data(), fused_->down.data.size(), numa_node);
        return;
    }
    gate_ = Linear::pack(g.src, type, &cache, numa_node);
    up_ = Linear::pack(u.src, type, &cache, numa_node);
    down_ = Linear::pack(d.src, type, &cache, numa_node);
}

size_t FfnBlock::weight_bytes() const {
    if (fused_) return fused_->gate_up.weight_bytes() + fused_->down.weight_bytes();
    return gate_.weight_bytes() + up_.weight_bytes() + down_.weight_bytes();
}

void FfnBlock::forward(const float* x, int64_t m, float* y, ThreadPool& pool, bool accumulate) const {
    if (m <= 0) return;
    if (fused_) {
        if (!driver_) throw std::logic_error("FfnBlock: int8 block packed without a driver");
        if (!accumulate) std::fill(y, y + m * hidden_, 0.0f);
        std::vector<int32_t> tokens(static_cast<size_t>(m));
        std::iota(tokens.begin(), tokens.end(), 0);
        const std::vector<float> gates(static_cast<size_t>(m), 1.0f);
        const ExpertRoute route{fused_.get(), tokens, gates};
        ExpertFfnBatch batch{x, hidden_, y, hidden_, std::span<const ExpertRoute>(&route, 1)};
        driver_->run(pool, batch);
        return;
    }
    std::vector<float> g(static_cast<size_t>(m * inter_)), u(size_t(m * inter_));
    gate_.forward(x, m, g.data(), &pool);
    up_.forward(x, m, u.data(), &pool);
    silu_mul_f32(g.data(), u.data(), g.data(), m * inter_);
    if (!accumulate) {
        down_.forward(g.data(), m, y, &pool);
        return;
    }
    std::vector<float> d(static_cast<size_t>(m * hidden_));
    down_.forward(g.data(), m, d.data(), &pool);
    for (int64_t i = 0; i < m * hidden_; ++i) y[i] += d[size_t(i)];
}

}  // namespace mf
