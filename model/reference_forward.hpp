// The fp32 reference forward of DeepSeek-V3: clear, slow, obviously correct. Every fast path is tested
// against it. MLA without absorption, YaRN rope on the 64-dim rope parts (interleaved pairs), causal softmax
// attention, dense FFN or MoE (sigmoid router with e_score_correction_bias, group-limited top-k, shared
// expert), RMSNorm.
#pragma once
#include <cstdint>
#include <vector>

#include "model/deepseek_v3_config.hpp"
#include "model/deepseek_v3_weights.hpp"

namespace mf {

struct ReferenceTrace {
    std::vector<float> layer_rms;  // RMS of the residual stream after each layer, over all tokens
    // Per token: the smallest routing margin (RoutedExperts::margin) over the MoE layers; +inf without MoE.
    std::vector<float> route_margin;
};

// Logits [T][vocab] for the token sequence (positions 0..T-1). Throws std::invalid_argument for a token id
// outside the vocabulary.
std::vector<float> reference_forward(const DeepSeekV3Config& c, const ModelWeights& w,
                                     const std::vector<int32_t>& tokens, ReferenceTrace* trace = nullptr);

// kv_b as one fp32 matrix [H*(qk_nope+v_head)][kv_lora], from kv_b or from the k_b/v_b pair.
std::vector<float> dense_kv_b(const DeepSeekV3Config& c, const LayerWeights& l);

}  // namespace mf
