#include "model/reference_ops.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace mf {

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
    const float inv = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * w[i];
}

std::vector<float> yarn_inv_freq(const DeepSeekV3Config& c) {
    const int64_t dim = c.qk_rope, half = dim / 2;
    std::vector<float> inv(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i)
        inv[size_t(i)] = float(std::pow(double(c.rope_theta), -double(2 * i) / double(dim)));
    if (!c.yarn || c.yarn_factor <= 1.0f) return inv;
    // The dimension index whose wavelength completes `rotations` turns over the original context.
    auto correction_dim = [&](double rotations) {
        return double(dim) * std::log(double(c.yarn_original_ctx) / (rotations * 2.0 * std::numbers::pi)) /
               (2.0 * std::log(double(c.rope_theta)));
    };
    const double low = std::max(0.0, std::floor(correction_dim(c.yarn_beta_fast)));
    double high = std::min(double(dim - 1), std::ceil(correction_dim(c.yarn_beta_slow)));
    if (high == low) high += 0.001;
    for (int64_t i = 0; i < half; ++i) {
        const double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
        const double keep =
            1.0 - ramp;  // 1: extrapolate (original frequency), 0: interpolate (divided by factor)
        inv[size_t(i)] =
            float(double(inv[size_t(i)]) / c.yarn_factor * (1.0 - keep) + double(inv[size_t(i)]) * keep);
    }
    return inv;
}

float rope_cos_sin_scale(const DeepSeekV3Config& c) {
    if (!c.yarn) return 1.0f;
    return yarn_get_mscale(c.yarn_factor, c.yarn_mscale) /
           yarn_get_mscale(c.yarn_factor, c.yarn_mscale_all_dim);
}

void rope_interleaved(float* x, int64_t dim, int64_t pos, const std::vector<float>& inv_freq,
                      float cs_scale) {
    for (int64_t i = 0; i < dim / 2; ++i) {
        const double angle = double(pos) * double(inv_freq[size_t(i)]);
        const float c = float(std::cos(angle)) * cs_scale, s = float(std::sin(angle)) * cs_scale;
        const float a = x[2 * i], b = x[2 * i + 1];
        x[2 * i] = a * c - b * s;
        x[2 * i + 1] = a * s + b * c;
    }
}

void matmul(const TensorView& w, const float* x, int64_t T, float* y) {
    const int64_t rows = w.rows(), cols = w.cols();
    std::vector<float> row(size_t(cols), 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
        dequantize_row(w, r, row.data());
        for (int64_t t = 0; t < T; ++t) {
            const float* xt = x + t * cols;
            double acc = 0;
            for (int64_t k = 0; k < cols; ++k) acc += double(row[size_t(k)]) * double(xt[k]);
            y[t * rows + r] = float(acc);
        }
    }
}

}  // namespace mf
