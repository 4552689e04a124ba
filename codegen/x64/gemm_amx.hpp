// AMX expert GEMM over packed weights: int8 (tdpbsud, int32 C) or bf16 (tdpbf16ps, fp32 C); see
// expert_gemm_desc.hpp.
#pragma once
#include <memory>

#include "codegen/x64/expert_gemm_desc.hpp"
#include "codegen/x64/jit_kernel.hpp"

namespace mf {

// Returns an un-created kernel; call create() and check its status (bad_desc for an unsupported Config).
std::unique_ptr<JitKernel> make_gemm_amx(const AmxGemmDesc& desc, const AmxGemmConfig& cfg);

}  // namespace mf
