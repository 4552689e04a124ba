#include "codegen/cuda/cuda_dtype.hpp"

#include <cstring>

namespace mf {

const char* field_text(CudaDtype t) {
    return t == CudaDtype::f32 ? "f32" : "bf16";
}

bool field_parse(std::string_view s, CudaDtype& t) {
    if (s == "f32")
        t = CudaDtype::f32;
    else if (s == "bf16")
        t = CudaDtype::bf16;
    else
        return false;
    return true;
}

const char* cuda_device_type(CudaDtype t) {
    return t == CudaDtype::f32 ? "float" : "mf::bf16";
}

int cuda_max_smem_optin(int sm) {
    switch (sm) {
        case 80:
        case 87:
            return 163 * 1024;
        case 90:
            return 227 * 1024;
        case 100:
        case 103:
            return 227 * 1024;
        default:
            return 99 * 1024;  // sm_86, sm_89, sm_120 and unknown: the consumer-part limit
    }
}

uint16_t bf16_from_float(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return 0x7fc0;
    u += 0x7fff + ((u >> 16) & 1);
    return static_cast<uint16_t>(u >> 16);
}

float bf16_to_float32(uint16_t h) {
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

}  // namespace mf
