// AVX-512 VNNI int8 GEMV for 1..16 rows over the same packed weights as the AMX GEMM (see expert_gemm_desc.hpp).
#pragma once
#include <memory>

#include "codegen/x64/expert_gemm_desc.hpp"
#include "codegen/x64/jit_kernel.hpp"

namespace mf {

std::unique_ptr<JitKernel> make_gemv_avx512_int8(const GemvDesc& desc, const GemvConfig& cfg);

}  // namespace mf
