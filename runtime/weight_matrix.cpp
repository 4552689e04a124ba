#include "runtime/weight_matrix.hpp"

#include <stdexcept>

#include "model/block_formats.hpp"

namespace mf {
namespace {

void check_readable(const TensorView& v) {
    if (v.empty()) throw std::runtime_error("a required weight tensor is missing from the model file");
    const GgmlType t = v.type;
    const bool ok = t == GgmlType::f32 || t == GgmlType::bf16 || can_dequantize(t);
    if (!ok)
        throw std::runtime_error("tensor " + v.name + " has type " + ggml_type_name(uint32_t(t)) +
                                 ", which moeforge cannot run (supported: f32, f16, bf16, q8_0, q4_K, q5_K, q6_K, "
                                 "f8_e4m3): convert the model to one of them");
}

}  // namespace

void weight_matrix(const TensorView& v, WeightMatrix& dst, int64_t row0, int64_t rows) {
    check_readable(v);
    if (rows < 0) rows = v.rows() - row0;
    if (row0 < 0 || rows <= 0 || row0 + rows > v.rows())
        throw std::logic_error("weight_matrix: rows outside tensor " + v.name);
    const int64_t k = v.cols();
    dst.storage.clear();
    dst.src = MatrixSrc{};
    dst.src.n = rows;
    dst.src.k = k;
    if (v.type == GgmlType::f32 && !v.scale_inv) {
        dst.src.type = SrcType::f32;
        dst.src.data = v.row_ptr(row0);
        return;
    }
    if (v.type == GgmlType::bf16) {
        dst.src.type = SrcType::bf16;
        dst.src.data = v.row_ptr(row0);
        return;
    }
    dst.storage.resize(size_t(rows * k));
    for (int64_t r = 0; r < rows; ++r) dequantize_row(v, row0 + r, dst.storage.data() + r * k);
    dst.src.type = SrcType::f32;
    dst.src.data = dst.storage.data();
}

void weight_matrix_transposed(const TensorView& v, WeightMatrix& dst, int64_t row0, int64_t rows) {
    check_readable(v);
    if (row0 < 0 || rows <= 0 || row0 + rows > v.rows())
        throw std::logic_error("weight_matrix_transposed: rows outside tensor " + v.name);
    const int64_t k = v.cols();
    std::vector<float> row(static_cast<size_t>(k));
    dst.storage.assign(size_t(rows * k), 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
        dequantize_row(v, row0 + r, row.data());
        for (int64_t c = 0; c < k; ++c) dst.storage[size_t(c * rows + r)] = row[size_t(c)];
    }
    dst.src = MatrixSrc{SrcType::f32, k, rows, dst.storage.data(), 0, nullptr};
}

void weight_matrix_int4(const TensorView& v, WeightMatrix& dst) {
    if (v.type != GgmlType::q4_k) {
        weight_matrix(v, dst);
        return;
    }
    const int64_t n = v.rows(), k = v.cols(), groups = k / 32, blocks = k / kQK_K;
    dst.storage.assign(size_t(n * groups), 0.0f);
    dst.u4_min.assign(size_t(n * groups), 0.0f);
    dst.u4.resize(size_t(n * k));
    Q4KGroups g;
    for (int64_t r = 0; r < n; ++r) {
        const auto* b = reinterpret_cast<const BlockQ4K*>(v.row_ptr(r));
        for (int64_t j = 0; j < blocks; ++j) {
            q4k_unpack(b[j], g);
            std::copy(g.q, g.q + kQK_K, dst.u4.begin() + r * k + j * kQK_K);
            for (int s = 0; s < 8; ++s) {
                dst.storage[size_t(r * groups + j * 8 + s)] = g.scale[s];
                dst.u4_min[size_t(r * groups + j * 8 + s)] = g.min[s];
            }
        }
    }
    dst.src = MatrixSrc{};
    dst.src.type = SrcType::u4_group;
    dst.src.n = n;
    dst.src.k = k;
    dst.src.data = dst.u4.data();
    dst.src.scale = dst.storage.data();
    dst.src.min = dst.u4_min.data();
}

std::vector<float> weight_vector(const TensorView& v) {
    check_readable(v);
    std::vector<float> out(static_cast<size_t>(v.numel()));
    for (int64_t r = 0; r < v.rows(); ++r) dequantize_row(v, r, out.data() + r * v.cols());
    return out;
}

}  // namespace mf
