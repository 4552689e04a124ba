// The Q4_K super-block form of a packed int4 matrix, for the AMX int4 kernel that merges a super block's groups
// in integer (AmxGemmConfig::int4_sb, gemm_amx_int4.cpp).
//
// Arithmetic (checked for every Q4_K block, bounds below). Q4_K: per 256 k (a super block: 8 groups of 32) an fp16
// d and dmin, per group 6-bit sc, m; w = d * sc * q - dmin * m with q in 0..15. The packed int4 layout
// (pack_int4.hpp) keeps each group's scale = d * sc and min = dmin * m as fp32 (both exact: 11 + 6 bits). Fold sc
// into the weight: v = sc * q <= 63 * 15 = 945 < 1024, two bytes lo = v & 255, hi = v >> 8 (0..3). With int8
// activations a (|a| <= 128) over one super block of one row and channel:
//     S = sum_k a * v = sum_k a * lo + 256 * sum_k a * hi,   |S| <= 256 * 128 * 945 = 30965760 < 2^31
// (each of the two sums: |.| <= 256 * 128 * 255 < 2^23), exact in int32 and computed by two K = 64 tdpbsud per
// 64 k (A x lo, A x hi) that accumulate over the super block. Then, once per super block:
//     c = fma(float(S), d, c);  c = fma(-min_g, asum_g, c) for each group g of the block, in order
// (asum_g: the row's integer sum of a over group g, exact as a float). float(S) rounds once where |S| >= 2^24,
// so the result is not the per-group path's bits (c = fma(dot_g, scale_g, c) per group, the int4 GEMV's order):
// both are within a few float roundings of the exact sum (tests state the tolerance).
//
// The form is kept only where every super block of every column factorises exactly: the group scales s_g of a
// block (8, or the 2 / 4 / 6 groups of a last, short block of k_pad) are d * sc_g in fp32 for one float d and
// integers sc_g in 0..63 (decoded Q4_K always does; the packer finds d from the block's largest |s_g|). Float
// sources quantised per group do not; their matrices keep no form and take the per-group kernel.
//
// PackedMatrix::sb: per packed panel, per super block (k_pad / 256 rounded up), kInt4SbBytes bytes:
//   [0, 64):    d of the panel's 16 channels (fp32)
//   [64, 192):  sc, 8 groups x 16 channels (byte 64 + 16 g + lane; 0 past k_pad)
// The mins stay where pack_int4 puts them (fp32 per group, bytes [320, 384) of each packed group).
//
// Unpacked for the kernel (unpack_int4_panels_sb), per panel: per super block, for each of its 64-k steps
// (4, fewer in a short last block) the lo B tile then the hi B tile (1 KiB each: 16 rows of 16 channels x 4 k,
// the int8 panel layout's tile), then the block's 64-byte d line. int4_sb_panel_bytes(k_pad) per panel.
#pragma once
#include <cstdint>

#include "codegen/x64/pack_int8.hpp"

namespace mf {

constexpr int kInt4SbGroups = 8;  // groups of 32 k per super block (256 k)
constexpr int kInt4SbBytes = 192;

inline int64_t int4_sb_blocks(int64_t k_pad) {
    return (k_pad / kInt4Group + kInt4SbGroups - 1) / kInt4SbGroups;
}
inline int64_t int4_sb_panel_bytes(int64_t k_pad) {
    return k_pad / 64 * 2048 + int4_sb_blocks(k_pad) * 64;
}

// Fills pm.sb from the packed scales if every super block factorises (true), else leaves it empty (false).
bool build_int4_sb(PackedMatrix& pm);

// d * sc_g == s_g exactly for g < n with sc_g in 0..63 (false where no such d exists).
bool factor_int4_super_block(const float* s, int n, float* d, uint8_t* sc);

// Accessors of the form, for tests and references.
float int4_sb_d(const PackedMatrix& pm, int64_t col, int64_t block);
int int4_sb_sc(const PackedMatrix& pm, int64_t col, int64_t group);

// Unpacks `count` panels from `first` into the layout above: dst receives count * int4_sb_panel_bytes(k_pad)
// bytes. AVX-512 where the CPU has it and dst is 64-byte aligned, else scalar (..._reference: the same bytes).
// pm.sb must not be empty.
void unpack_int4_panels_sb(const PackedMatrix& pm, int64_t first, int64_t count, uint8_t* dst);
void unpack_int4_panels_sb_reference(const PackedMatrix& pm, int64_t first, int64_t count, uint8_t* dst);

}  // namespace mf
