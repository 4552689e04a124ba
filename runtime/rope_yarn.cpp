#include "runtime/rope_yarn.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace mf {

RopeTable::RopeTable(const RopeParams& p, int64_t positions) : dim_(p.dim), positions_(positions) {
    if (p.dim <= 0 || p.dim % 2 || positions <= 0) throw std::invalid_argument("RopeTable: bad rope dim or length");
    const int64_t half = p.dim / 2;
    // factor 1 turns YaRN's blend into plain RoPE.
    inv_freq_ = yarn_inv_freq(YarnParams{int(p.dim), p.theta, p.yarn ? p.factor : 1.0, int(p.original_ctx),
                                         p.beta_fast, p.beta_slow});
    const double m = p.yarn ? yarn_mscale(p.factor, p.mscale) / yarn_mscale(p.factor, p.mscale_all_dim) : 1.0;
    cos_.resize(size_t(positions * half));
    sin_.resize(size_t(positions * half));
    for (int64_t t = 0; t < positions; ++t)
        for (int64_t i = 0; i < half; ++i) {
            const float a = float(t) * inv_freq_[size_t(i)];
            cos_[size_t(t * half + i)] = float(std::cos(double(a)) * m);
            sin_[size_t(t * half + i)] = float(std::sin(double(a)) * m);
        }
}

void RopeTable::apply(float* v, int64_t heads, int64_t stride, int64_t pos) const {
    if (pos < 0 || pos >= positions_) throw std::logic_error("RopeTable::apply: position outside the table");
    const int64_t half = dim_ / 2;
    const float* c = cos_.data() + pos * half;
    const float* s = sin_.data() + pos * half;
    for (int64_t h = 0; h < heads; ++h) {
        float* x = v + h * stride;
        for (int64_t i = 0; i < half; ++i) {
            const float x0 = x[2 * i], x1 = x[2 * i + 1];
            x[2 * i] = x0 * c[i] - x1 * s[i];
            x[2 * i + 1] = x0 * s[i] + x1 * c[i];
        }
    }
}

}  // namespace mf
