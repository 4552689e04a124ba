// Turns model/ tensor views into the packers' generic sources (codegen's MatrixSrc): f32 and bf16 views are used in
// place (zero copy from the mapping), every other type the model can dequantise (f16, q8_0, q4_K, q5_K, q6_K,
// f8_e4m3 with its block scales) is dequantised to fp32 rows first.
#pragma once
#include <string>
#include <vector>

#include "codegen/x64/pack_int8.hpp"
#include "model/tensor_view.hpp"

namespace mf {

struct WeightMatrix {
    MatrixSrc src;
    std::vector<float> storage;  // the dequantised values when the view could not be used in place
    std::vector<uint8_t> u4;     // u4_group: one 0..15 value per weight
    std::vector<float> u4_min;   // u4_group: per row and group of 32 (scales go in storage)
    WeightMatrix() = default;
    WeightMatrix(const WeightMatrix&) = delete;
    WeightMatrix& operator=(const WeightMatrix&) = delete;
};

// Rows [row0, row0 + rows) of v (rows < 0: all) as an [rows][v.cols()] source. Throws std::runtime_error naming the
// tensor for a type moeforge cannot read.
void weight_matrix(const TensorView& v, WeightMatrix& dst, int64_t row0 = 0, int64_t rows = -1);
// The transpose of rows [row0, row0 + rows) of v: a [v.cols()][rows] fp32 source.
void weight_matrix_transposed(const TensorView& v, WeightMatrix& dst, int64_t row0, int64_t rows);
// An [rows][cols] source for the int4 packer: q4_K rows decoded exactly into 4-bit values with a scale and min per
// group of 32 (SrcType::u4_group, no fp32 trip); any other type as in weight_matrix() (the packer then quantises
// per group of 32).
void weight_matrix_int4(const TensorView& v, WeightMatrix& dst);
// A 1-D tensor (norm weight, router bias) as fp32.
std::vector<float> weight_vector(const TensorView& v);

}  // namespace mf
