// AMX GEMM over int4 weights with a scale and min per group of 32 k (pack_int4.hpp), for many tokens.
//
// Either the caller first unpacks the panels it will use into the int8 panel layout (unpack_int4_panels: q in
// 0..15, K_pad/4 rows of 64 bytes per panel, so one group is 8 rows = 512 bytes) and passes them as args.b, or
// (AmxGemmConfig::unpack_b) args.b is the packed int4 data and the kernel unpacks each group itself; args.
// b_groups points at the packed int4 data of the same first panel (for the scales and mins) and a_group_sums
// at the rows' per-group activation sums. Per group g one tdpbsud over K = 32 gives dot_g in int32; AVX-512
// then accumulates c = fma(dot_g, scale, c) and c = fma(-min, group_sum_g, c) in float, in group order, so
// the result equals the int4 GEMV's bit for bit.
// AmxGemmConfig::int4_sb: args.b is instead the Q4_K super-block form unpacked by unpack_int4_panels_sb
// (pack_int4_sb.hpp: sc folded into lo / hi weight bytes); per 64 k two tdpbsud (A x lo, A x hi) accumulate over
// a super block of 256 k, then c = fma(float(lo + 256 hi), d, c) and c = fma(-min_g, group_sum_g, c) per group
// once per super block (not the GEMV's bits: pack_int4_sb.hpp states the arithmetic).
#pragma once
#include <memory>

#include "codegen/x64/expert_gemm_desc.hpp"
#include "codegen/x64/jit_kernel.hpp"

namespace mf {

// desc.wtype must be int4; cfg: m_tiles * n_tiles <= 2 (two sets of dot tiles alternate between groups) and
// order; k_block must be 0 (C is in memory anyway).
std::unique_ptr<JitKernel> make_gemm_amx_int4(const AmxGemmDesc& desc, const AmxGemmConfig& cfg);
// int4_sb with unpack_b (gemm_amx_int4_sb.cpp): the kernel unpacks the form itself, super block by super block.
std::unique_ptr<JitKernel> make_gemm_amx_int4_sb_unpack(const AmxGemmDesc& desc, const AmxGemmConfig& cfg);

}  // namespace mf
