#include "model/tensor_view.hpp"

#include <stdexcept>

#include "model/block_formats.hpp"

namespace mf {

int64_t TensorView::rows() const {
    int64_t r = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i) r *= shape[i];
    return shape.empty() ? 0 : r;
}

uint64_t TensorView::row_bytes() const {
    const auto b = ggml_row_bytes(uint32_t(type), uint64_t(cols()));
    if (!b)
        throw std::logic_error("TensorView '" + name + "': row is not whole blocks");  // checked at binding
    return *b;
}

void dequantize_row(const TensorView& t, int64_t row, float* dst) {
    const int64_t n = t.cols();
    dequantize_row(t.type, t.row_ptr(row), dst, n);
    if (t.type == GgmlType::f8_e4m3 && t.scale_inv) {
        const int64_t block_cols = (n + 127) / 128;
        const float* s = t.scale_inv + (row / 128) * block_cols;
        for (int64_t i = 0; i < n; ++i) dst[i] *= s[i / 128];
    }
}

std::vector<float> dequantize(const TensorView& t) {
    std::vector<float> out(size_t(t.numel()));
    for (int64_t r = 0; r < t.rows(); ++r) dequantize_row(t, r, out.data() + r * t.cols());
    return out;
}

}  // namespace mf
