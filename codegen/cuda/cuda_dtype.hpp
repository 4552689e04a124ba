// Element types of CUDA kernel operands (storage; arithmetic is fp32).
#pragma once
#include <cstdint>
#include <string_view>

namespace mf {

enum class CudaDtype { f32, bf16 };

const char* field_text(CudaDtype t);  // "f32", "bf16"
bool field_parse(std::string_view s, CudaDtype& t);
const char* cuda_device_type(CudaDtype t);  // "float", "mf::bf16" (as device code spells it)
inline int cuda_dtype_bytes(CudaDtype t) {
    return t == CudaDtype::f32 ? 4 : 2;
}

// Host-side bf16 (the cache's storage type): round to nearest even (NaN stays NaN), and back.
uint16_t bf16_from_float(float f);
float bf16_to_float32(uint16_t h);

// Largest dynamic shared memory a block may opt in to on `sm` (major * 10 + minor), in bytes.
int cuda_max_smem_optin(int sm);

}  // namespace mf
