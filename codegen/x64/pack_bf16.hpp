// Packing into the bf16 panel layout of the AMX bf16 GEMM and the AVX-512 BF16 GEMV: per panel of 16 output
// channels, k_pad / 2 rows of 64 bytes; row r holds channel j's k = 2 r, 2 r + 1 at bytes 4 j, 4 j + 2 (one
// AMX B tile is 16 such rows = 32 k; one row is one vdpbf16ps operand). Padding is zero.
#pragma once
#include <cstring>

#include "codegen/x64/pack_int8.hpp"

namespace mf {

// bf16 sources are copied; f32 sources are rounded to nearest even. int8 and u4_group sources are refused.
PackedMatrix pack_bf16(const MatrixSrc& src);
PackedMatrix pack_bf16_interleaved(std::span<const MatrixSrc> srcs);

// Inline: the runtime rounds activations with it on every projection call.
inline uint16_t float_to_bf16(float f) {  // round to nearest even (NaN stays a quiet NaN)
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
}
inline float bf16_to_float(uint16_t b) {
    const uint32_t u = uint32_t(b) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
float packed_bf16(const PackedMatrix& pm, int64_t col, int64_t k);  // for tests

}  // namespace mf
