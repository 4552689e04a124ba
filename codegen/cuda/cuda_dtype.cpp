#include "codegen/cuda/cuda_dtype.hpp"

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

}  // namespace mf
