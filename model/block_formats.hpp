// The GGML block formats moeforge reads and writes, with llama.cpp's exact bit layouts, and row-wise
// conversion between them and fp32. The runtime feeds kernels from these; model/ itself knows no kernel.
//
//   q8_0: 32 values in 34 B   x = d * q                       (d fp16, q int8)
//   q4_K: 256 values in 144 B x = d*sc[j]*q - dmin*m[j]       (8 sub-blocks of 32; 6-bit sc/m; q 0..15)
//   q5_K: 256 values in 176 B x = d*sc[j]*q - dmin*m[j]       (as q4_K, q 0..31: a 5th bit in qh)
//   q6_K: 256 values in 210 B x = d*scales[j]*(q - 32)        (16 sub-blocks of 16; int8 scales; q 0..63)
#pragma once
#include <cstdint>

#include "model/ggml_type.hpp"

namespace mf {

constexpr int kQK8_0 = 32;
constexpr int kQK_K = 256;

struct BlockQ8_0 {
    uint16_t d;     // fp16 scale
    int8_t qs[32];  // values
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4K {
    uint16_t d;          // fp16 super-block scale of the 6-bit sub-block scales
    uint16_t dmin;       // fp16 super-block scale of the 6-bit sub-block mins
    uint8_t scales[12];  // 8 scales + 8 mins, 6 bits each (see q4k_scale_min)
    uint8_t qs[128];     // nibbles: byte 32*c + l holds value 64c+l (low) and 64c+32+l (high)
};
static_assert(sizeof(BlockQ4K) == 144);

struct BlockQ5K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];  // as q4_K
    uint8_t qh[32];      // bit 2c of qh[l]: 5th bit of value 64c+l; bit 2c+1: of value 64c+32+l
    uint8_t qs[128];     // low 4 bits, as q4_K
};
static_assert(sizeof(BlockQ5K) == 176);

struct BlockQ6K {
    uint8_t ql[128];    // low 4 bits
    uint8_t qh[64];     // high 2 bits
    int8_t scales[16];  // one per 16 values
    uint16_t d;         // fp16 super-block scale
};
static_assert(sizeof(BlockQ6K) == 210);

// Sub-block j (0..7) of a q4_K/q5_K block: its 6-bit scale and min (llama.cpp's get_scale_min_k4).
void q4k_scale_min(const uint8_t scales[12], int j, uint8_t& sc, uint8_t& m);
// Inverse: packs 8 scales and 8 mins (each < 64) into the 12 bytes.
void q4k_pack_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t scales[12]);

// A q4_K block unpacked for an int4 per-group kernel: value i = scale[i/32] * q[i] - min[i/32].
struct Q4KGroups {
    float scale[8];  // d * sc[j]
    float min[8];    // dmin * m[j]
    uint8_t q[256];  // 0..15, in value order
};
void q4k_unpack(const BlockQ4K& b, Q4KGroups& dst);

// Row conversion; n must be a whole number of blocks of `type` (callers check with ggml_row_bytes).
// dequantize_row supports f32, f16, bf16, q8_0, q4_K, q5_K, q6_K and f8_e4m3 (no block scale: multiply
// after). quantize_row supports f32, f16, bf16, q8_0, q4_K, q5_K, q6_K, f8_e4m3. Both throw
// std::invalid_argument for any other type.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);
bool can_dequantize(GgmlType type);
bool can_quantize(GgmlType type);

// Per-format pieces (used by the row functions above and by tests).
void dequantize_row_q8_0(const BlockQ8_0* src, float* dst, int64_t n);
void quantize_row_q8_0(const float* src, BlockQ8_0* dst, int64_t n);
void dequantize_row_q4_k(const BlockQ4K* src, float* dst, int64_t n);
void quantize_row_q4_k(const float* src, BlockQ4K* dst, int64_t n);
void dequantize_row_q5_k(const BlockQ5K* src, float* dst, int64_t n);
void quantize_row_q5_k(const float* src, BlockQ5K* dst, int64_t n);
void dequantize_row_q6_k(const BlockQ6K* src, float* dst, int64_t n);
void quantize_row_q6_k(const float* src, BlockQ6K* dst, int64_t n);

}  // namespace mf
