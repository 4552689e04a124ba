// YaRN rope scaling, host side: the inverse frequencies and the attention temperature, shared by the CPU and
// GPU paths (both build their cos/sin tables from these).
#pragma once
#include <vector>

namespace mf {

// YaRN inverse frequencies (rope_dim / 2 values): theta^(-2i/d) blended between itself / factor (low
// frequencies) and itself (high) by a linear ramp between the beta_fast and beta_slow correction dims.
// factor <= 1 gives plain RoPE. Matches DeepSeek-V3's yarn_find_correction_range / yarn_linear_ramp_mask.
struct YarnParams {
    int rope_dim = 64;
    double theta = 10000.0;
    double factor = 40.0;
    int original_context = 4096;
    double beta_fast = 32.0;
    double beta_slow = 1.0;
};
std::vector<float> yarn_inv_freq(const YarnParams& p);
// YaRN's attention temperature: 0.1 * mscale * ln(factor) + 1 for factor > 1, else 1. DeepSeek-V3's softmax
// scale is qk_head_dim^-0.5 * yarn_mscale(40, 1)^2 = 192^-0.5 * 1.3689^2 = 0.1352338
// (MlaDecodeParams::scale).
double yarn_mscale(double factor, double mscale = 1.0);

}  // namespace mf
