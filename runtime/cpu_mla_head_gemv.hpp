// The per-head projections of MLA's absorbed form, W_UK (q_nope -> latent) and W_UV (latent -> value): one small
// [n][k] matrix per head, all heads packed in one buffer with the reduction dimension outermost, so a head's outputs
// accumulate in registers (no horizontal sums) and one call serves every query of a chunk:
//   bf16: [head][k/2][n16][2] bf16 - vdpbf16ps of a broadcast activation pair against 16 output pairs; activations
//         rounded to bf16 (the rule of the bf16 Linear);
//   int8: [head][k/4][n16][4] int8 with one fp32 scale per output channel - vpdpbusd of a broadcast quad of u8
//         activations (q + 128, quantised per query and head like the int8 Linear) against 16 output quads; the
//         +128 is taken back with each channel's 128 * sum(w).
// n is padded to a multiple of 16, k to the pair/quad (zeros). y[i][c] = sum_j x[i][j] W[h][c][j].
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "codegen/x64/pack_int8.hpp"
#include "runtime/linear.hpp"

namespace mf {

class HeadGemv {
public:
    HeadGemv() = default;
    // heads: one [n][k] source per head, all of one shape (f32 or bf16 sources: what weight_matrix() gives for
    // attention tensors). type: bf16 or int8 (f32 packs as bf16). Throws std::invalid_argument on a shape mismatch.
    static HeadGemv pack(std::span<const MatrixSrc> heads, ComputeType type);

    int64_t heads() const { return heads_; }
    int64_t n() const { return n_; }
    int64_t k() const { return k_; }
    bool empty() const { return heads_ == 0; }
    size_t weight_bytes() const { return w_.size(); }

    // y (m rows, ldy floats apart) = x (m rows, ldx floats apart) * W[h]^T, on the calling thread; no allocation
    // once the thread's scratch has grown to the largest m * k seen.
    void forward(int64_t h, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy) const;

private:
    ComputeType type_ = ComputeType::bf16;
    int64_t heads_ = 0, n_ = 0, k_ = 0;
    int64_t n_pad_ = 0;    // n rounded up to 16
    int64_t groups_ = 0;   // k / 2 (bf16) or k / 4 (int8), rounded up
    AlignedBytes w_;       // [head][groups][n_pad] 32-bit words (a bf16 pair or an int8 quad each)
    std::vector<float> scale_;    // int8: [head][n_pad] per-channel weight scale
    std::vector<int32_t> wsum_;   // int8: [head][n_pad] 128 * sum_j q[c][j] (the u8 offset's contribution)
};

}  // namespace mf
