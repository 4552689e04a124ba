// DeepSeek-V3's router for one token: sigmoid scores, e_score_correction_bias for choosing only,
// group-limited top-k (group score = sum of its 2 best biased scores; keep topk_group groups), weights = the
// unbiased scores of the chosen experts, normalised, times routed_scaling_factor.
#pragma once
#include <vector>

#include "model/deepseek_v3_config.hpp"

namespace mf {

struct RoutedExperts {
    std::vector<int> ids;        // n_experts_used expert ids, best first
    std::vector<float> weights;  // their weights
    std::vector<int> groups;     // the groups kept, best first
    // The narrowest decision: the smallest gap between a chosen and a rejected expert's biased score (within the
    // kept groups), or between a kept and a dropped group's score. Below the compute format's noise, another
    // implementation may legitimately choose differently.
    float margin = 0;
};

// logits: router outputs (x . W_gate) for all n_experts; bias: e_score_correction_bias (may be null).
// Ties go to the lower index. Softmax gating (DeepSeek-V2) scores by softmax and a group's max.
RoutedExperts route_token(const DeepSeekV3Config& c, const float* logits, const float* bias);

}  // namespace mf
