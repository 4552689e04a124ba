// The scalar building blocks of the fp32 reference forward: plain loops, no tricks, easy to check by hand.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "model/deepseek_v3_config.hpp"
#include "model/tensor_view.hpp"

namespace mf {

// out = x / sqrt(mean(x^2) + eps) * w   (out may alias x)
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out);

inline float silu(float x) {
    return x / (1.0f + std::exp(-x));
}
inline float sigmoid(float x) {
    return 1.0f / (1.0f + std::exp(-x));
}

// Rotary frequencies of the qk_rope/2 pairs: theta^(-2i/d), blended under YaRN between inv_freq/factor (low
// frequencies) and inv_freq (high) by a linear ramp between the beta_fast and beta_slow correction dims.
std::vector<float> yarn_inv_freq(const DeepSeekV3Config& c);
// The cos/sin multiplier YaRN applies: m(factor, mscale) / m(factor, mscale_all_dim); 1 for DeepSeek-V3.
float rope_cos_sin_scale(const DeepSeekV3Config& c);
// Rotates interleaved pairs (x[2i], x[2i+1]) by pos*inv_freq[i], as DeepSeek's reference code and llama.cpp's
// non-NeoX rope do (HF transformers permutes to this when rope_interleave is set).
void rope_interleaved(float* x, int64_t dim, int64_t pos, const std::vector<float>& inv_freq, float cs_scale);

// y[t][r] = sum_c w[r][c] * x[t][c] for t < T; w is dequantised one row at a time.
void matmul(const TensorView& w, const float* x, int64_t T, float* y);

}  // namespace mf
