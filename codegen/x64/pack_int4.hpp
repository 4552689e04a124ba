// Packing into the int4 per-group layout the int4 GEMV streams. Per panel of 16 output channels and per group
// of 32 k (kInt4GroupBytes = 384 bytes, one sequential stream per panel):
//   bytes [0, 256):   4 rows of 64 bytes; row r, byte 4 j + b: low nibble q[j][8 r + b], high nibble q[j][8 r
//   + 4 + b]
//                     (so masking / shifting a row gives two vpdpbusd operands of 16 channels x 4 k)
//   bytes [256, 320): 16 fp32 scales, [320, 384): 16 fp32 mins, of the group's channels
// w = scale * q - min with q in 0..15. Padding (k up to 64, channels up to 64) has q = scale = min = 0.
// Where every 256-k super block's scales factorise as Q4_K's d * sc, the packer also keeps that form
// (PackedMatrix::sb; arithmetic, bounds and layout in pack_int4_sb.hpp) for the AMX super-block kernel, unless
// `super_blocks` is false (no kernel will read it: it costs 6.25% of the packed bytes and a pass at load).
#pragma once
#include "codegen/x64/pack_int8.hpp"

namespace mf {

// u4_group sources are taken as is (exact: Q4_K fits without loss); float / bf16 sources are quantised per
// group (min/max, round to nearest). int8 sources are refused.
PackedMatrix pack_int4(const MatrixSrc& src, bool super_blocks = true);
PackedMatrix pack_int4_interleaved(std::span<const MatrixSrc> srcs, bool super_blocks = true);

// Unpacks `count` packed int4 panels from `first` into the int8 panel layout (pack_int8.hpp) with the raw
// q in 0..15 (no +128): dst receives count * k_pad * 16 bytes. The AMX int4 GEMM reads these.
// AVX-512 where the CPU has it and dst is 64-byte aligned, else scalar (unpack_int4_panels_reference: the same
// bytes, for tests).
void unpack_int4_panels(const PackedMatrix& pm, int64_t first, int64_t count, uint8_t* dst);
void unpack_int4_panels_reference(const PackedMatrix& pm, int64_t first, int64_t count, uint8_t* dst);

// Accessors of a packed int4 matrix, for tests and references.
int int4_q(const PackedMatrix& pm, int64_t col, int64_t k);
float int4_scale(const PackedMatrix& pm, int64_t col, int64_t group);
float int4_min(const PackedMatrix& pm, int64_t col, int64_t group);

// The per-group asymmetric rule used for float sources: q in 0..15, w ~ scale * q - min.
void quantize_group_int4(const float* src, int n, uint8_t* q, float* scale, float* min);

}  // namespace mf
