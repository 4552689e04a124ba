// Rotary position embedding with DeepSeek-V3's YaRN scaling, as a table of cos/sin per position.
// inv_freq_i = theta^(-2i/d), blended between inv_freq/factor (interpolation) and inv_freq (extrapolation) by a linear
// ramp between the beta_fast/beta_slow correction dims at the original context; cos/sin are multiplied by
// m(factor, mscale) / m(factor, mscale_all_dim) (1 for DeepSeek-V3). Pairs are rotated interleaved: (0,1), (2,3), ...
// (the layout of the released weights, which HF de-interleaves at run time and llama.cpp rotates as "norm" rope:
// both give the same dot products).
#pragma once
#include <cstdint>
#include <vector>

#include "codegen/rope_yarn.hpp"

namespace mf {

struct RopeParams {
    int64_t dim = 64;
    float theta = 10000.0f;
    bool yarn = true;
    float factor = 40.0f;
    int64_t original_ctx = 4096;
    float beta_fast = 32.0f;
    float beta_slow = 1.0f;
    float mscale = 1.0f;
    float mscale_all_dim = 1.0f;
};


class RopeTable {
public:
    RopeTable() = default;
    RopeTable(const RopeParams& p, int64_t positions);

    int64_t positions() const { return positions_; }
    // Rotates `heads` vectors of dim values, `stride` floats apart, for position pos.
    void apply(float* v, int64_t heads, int64_t stride, int64_t pos) const;
    const std::vector<float>& inv_freq() const { return inv_freq_; }

private:
    int64_t dim_ = 0, positions_ = 0;
    std::vector<float> inv_freq_;
    std::vector<float> cos_, sin_;  // [positions][dim / 2]
};

}  // namespace mf
