// One SwiGLU FFN y = down(SiLU(gate x) * up x): a dense layer's FFN, the shared expert, or (bf16 experts) one routed
// expert. int8 (and int4, routed experts only) runs through the kernels' fused expert FFN driver (one route holding every token, gate weight 1);
// bf16 through three packed Linear projections.
#pragma once
#include <cstdint>
#include <memory>

#include "codegen/kernel_cache.hpp"
#include "model/tensor_view.hpp"
#include "runtime/expert_ffn_set.hpp"
#include "runtime/linear.hpp"
#include "runtime/runtime_options.hpp"

namespace mf {

class FfnBlock {
public:
    FfnBlock() = default;
    // gate, up: [inter][hidden]; down: [hidden][inter]. driver: the int8 fused FFN driver for this (hidden, inter),
    // shared between blocks of one shape (null for bf16, or for routed experts run as a batch by MoeBlock).
    FfnBlock(const TensorView& gate, const TensorView& up, const TensorView& down, ComputeType type,
             KernelCache& cache, std::shared_ptr<ExpertFfnSet> driver, int numa_node = -1);

    // y[m][hidden] (+)= weight * ffn(x[m][hidden]); accumulate=false overwrites y.
    void forward(const float* x, int64_t m, float* y, ThreadPool& pool, bool accumulate = false) const;

    int64_t hidden() const { return hidden_; }
    int64_t inter() const { return inter_; }
    size_t weight_bytes() const;
    ComputeType type() const { return type_; }
    // The packed int8 weights (for the routed experts' batched driver); null for bf16.
    const ExpertFfnWeights* int8_weights() const { return fused_.get(); }

private:
    ComputeType type_ = ComputeType::bf16;
    int64_t hidden_ = 0, inter_ = 0;
    Linear gate_, up_, down_;
    std::unique_ptr<ExpertFfnWeights> fused_;
    std::shared_ptr<ExpertFfnSet> driver_;
};

}  // namespace mf
