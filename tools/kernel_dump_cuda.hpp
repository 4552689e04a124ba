// The CUDA half of `moeforge kernel-dump`: the kernels of one DeepSeek-V3 decoder layer on the GPU: the plan's
// MLA decode kernels (its "mla_decode" entries: tuned config per context range) where a plan has them, else the
// defaults for the target architecture; each as its instantiation source, the embedded headers it includes, PTX
// size (or the PTX itself) and SASS where cuobjdump/nvdisasm exist.
#pragma once
#include <string>

namespace mf {

struct Plan;

struct CudaDumpOptions {
    int sm = 0;          // compute capability x10 (90 = Hopper); 0: the first GPU's, else 90
    bool ptx = false;    // print the whole PTX (long), not only its size
    std::string filter;  // only kernels whose name contains this
    const Plan* plan = nullptr;  // its CUDA kernels instead of the defaults (null: defaults)
};

// Needs NVRTC (not a GPU); throws std::runtime_error naming what is missing.
std::string render_cuda_kernel_dump(const CudaDumpOptions& o);

}  // namespace mf
