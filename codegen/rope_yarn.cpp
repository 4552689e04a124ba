#include "codegen/rope_yarn.hpp"

#include <algorithm>
#include <cmath>

namespace mf {

std::vector<float> yarn_inv_freq(const YarnParams& p) {
    const int half = p.rope_dim / 2;
    std::vector<float> out(half);
    const double pi = 3.14159265358979323846;
    // dimension index whose wavelength makes `rotations` turns over the original context
    auto correction_dim = [&](double rotations) {
        return p.rope_dim * std::log(p.original_context / (rotations * 2 * pi)) / (2 * std::log(p.theta));
    };
    double low = std::floor(correction_dim(p.beta_fast)), high = std::ceil(correction_dim(p.beta_slow));
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(p.rope_dim - 1));
    if (low == high) high += 0.001;
    for (int i = 0; i < half; ++i) {
        const double freq = std::pow(p.theta, -2.0 * i / p.rope_dim);
        if (p.factor <= 1.0) {
            out[i] = static_cast<float>(freq);
            continue;
        }
        const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
        const double extrapolation = 1.0 - ramp;  // 1: keep the original frequency
        out[i] = static_cast<float>(freq / p.factor * (1.0 - extrapolation) + freq * extrapolation);
    }
    return out;
}

double yarn_mscale(double factor, double mscale) {
    return factor <= 1.0 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0;
}

}  // namespace mf
