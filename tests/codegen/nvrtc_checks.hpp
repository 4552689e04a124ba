// What the NVRTC compile tests check in a kernel's PTX and ptxas log (shared by test_cuda_nvrtc*.cpp).
#pragma once
#include <doctest/doctest.h>

#include <string>

#include "codegen/cuda/mla_kernels.hpp"
#include "codegen/cuda/nvrtc_compiler.hpp"

namespace mf::test {

inline size_t occurrences(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

// ptxas reports "Potential Performance Loss" (C75xx: setmaxnreg ignored, wgmma serialized) in the compile log of a
// kernel whose register budgets or wgmma pipelines it could not keep; checked for the plain and the profiled build.
inline void check_no_ptxas_performance_loss(const MlaDecodeDesc& d, MlaDecodeConfig c) {
    for (int prof : {0, 1}) {
        c.profile = prof;
        const CudaKernelSource src = mla_decode_source(d, c, 90);
        CAPTURE(src.name);
        const CudaBinary bin = compile_cuda_kernel(src, CudaArch{9, 0, true}, {});
        CAPTURE(bin.log);
        CHECK(bin.log.find("Performance Loss") == std::string::npos);
        CHECK(bin.log.find("C75") == std::string::npos);
    }
}

}  // namespace mf::test
