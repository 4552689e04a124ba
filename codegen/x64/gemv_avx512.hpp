// AVX-512 GEMV for 1..16 rows over the AMX GEMM's packed weights: int8 (VNNI vpdpbusd) or bf16 (vdpbf16ps).
#pragma once
#include <memory>

#include "codegen/x64/expert_gemm_desc.hpp"
#include "codegen/x64/jit_kernel.hpp"

namespace mf {

std::unique_ptr<JitKernel> make_gemv_avx512(const GemvDesc& desc, const GemvConfig& cfg);

}  // namespace mf
