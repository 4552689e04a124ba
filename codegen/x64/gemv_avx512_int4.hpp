// AVX-512 VNNI GEMV over int4 per-group weights (pack_int4.hpp) for 1..8 rows; float results (see
// ExpertGemmArgs).
#pragma once
#include <memory>

#include "codegen/x64/expert_gemm_desc.hpp"
#include "codegen/x64/jit_kernel.hpp"

namespace mf {

std::unique_ptr<JitKernel> make_gemv_avx512_int4(const GemvDesc& desc, const GemvConfig& cfg);

}  // namespace mf
