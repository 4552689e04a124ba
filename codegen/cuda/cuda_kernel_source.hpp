// What every CUDA kernel family hands to the builder: a ten-line instantiation stub that includes the
// embedded device headers and defines one extern "C" __global__ entry named after the kernel's descriptor.
#pragma once
#include <string>

namespace mf {

struct CudaKernelSource {
    std::string name;    // the extern "C" symbol; also the descriptor's printed name
    std::string source;  // the instantiation stub
    unsigned block_threads = 0;
    unsigned dynamic_smem_bytes = 0;
};

// The target of a compile: sm_<major><minor>, with the arch-specific "a" suffix on Hopper (sm_90a: wgmma,
// setmaxnreg) where the CUBIN then runs on that exact architecture only.
struct CudaArch {
    int major = 9;
    int minor = 0;
    bool arch_specific = true;
    std::string sm_name() const;       // "sm_90a", "sm_86"
    std::string compute_name() const;  // "compute_90a", "compute_86" (PTX target, for dumps)
    // The arch to compile for on a device of compute capability cc_major.cc_minor.
    static CudaArch for_device(int cc_major, int cc_minor);
};

}  // namespace mf
