// AMX int8 expert GEMM: C[m][n] = sum_k a[m][k] * b_u8[n][k] over packed weights (see expert_gemm_desc.hpp).
#pragma once
#include <memory>

#include "codegen/x64/expert_gemm_desc.hpp"
#include "codegen/x64/jit_kernel.hpp"

namespace mf {

// Returns an un-created kernel; call create() and check its status (bad_desc for an unsupported Config).
std::unique_ptr<JitKernel> make_gemm_amx_int8(const AmxGemmDesc& desc, const AmxGemmConfig& cfg);

}  // namespace mf
