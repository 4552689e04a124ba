// A typed, read-only view of one weight tensor inside a mapped model file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/ggml_type.hpp"

namespace mf {

struct TensorView {
    std::string name;  // as named in the file (GGUF or HF)
    GgmlType type = GgmlType::f32;
    std::vector<int64_t> shape;  // row-major, outermost first: shape.back() values per contiguous row
    const void* data = nullptr;  // into the mapping
    uint64_t bytes = 0;
    // f8_e4m3 only: fp32 scale_inv of 128x128 blocks, [ceil(rows/128)][ceil(cols/128)] (w = fp8 * scale_inv).
    const float* scale_inv = nullptr;

    bool empty() const { return data == nullptr; }
    int64_t cols() const { return shape.empty() ? 0 : shape.back(); }
    int64_t rows() const;  // product of all but the last dimension
    int64_t numel() const { return rows() * cols(); }
    uint64_t row_bytes() const;  // bytes of one row
    const uint8_t* row_ptr(int64_t row) const {
        return static_cast<const uint8_t*>(data) + uint64_t(row) * row_bytes();
    }
};

// Row `row` of `t` as fp32 (any type dequantize_row knows; f8_e4m3 applies its block scale).
void dequantize_row(const TensorView& t, int64_t row, float* dst);
// The whole tensor as fp32, rows()*cols() values.
std::vector<float> dequantize(const TensorView& t);

}  // namespace mf
