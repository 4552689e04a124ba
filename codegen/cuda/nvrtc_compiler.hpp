// Compiles a CudaKernelSource with NVRTC (linked; needs no driver or GPU) against the embedded headers, for
// one architecture, straight to a CUBIN (no PTX JIT at load), through the on-disk cache.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "codegen/cuda/cuda_kernel_source.hpp"

namespace mf {

struct CudaBinary {
    std::string name;
    std::string cubin;  // ELF, loadable with CudaKernel
    std::string log;    // NVRTC's log (warnings); empty when loaded from the cache
    bool from_cache = false;
    unsigned block_threads = 0;
    unsigned dynamic_smem_bytes = 0;
};

// False when moeforge was built without the CUDA toolkit.
bool nvrtc_available();
// major * 1000 + minor * 10 (e.g. 13000); 0 without NVRTC.
int nvrtc_version();
// The options every compile uses for `arch` (part of the cache key).
std::vector<std::string> nvrtc_options(const CudaArch& arch);

// Throws std::runtime_error with the full compile log when NVRTC rejects the source. `cache_dir` empty: no
// cache.
CudaBinary compile_cuda_kernel(const CudaKernelSource& src, const CudaArch& arch,
                               const std::filesystem::path& cache_dir);
// PTX of the same source for arch.compute_name() (for kernel-dump; never cached).
std::string compile_cuda_ptx(const CudaKernelSource& src, const CudaArch& arch);

// True when the ELF `cubin` defines a symbol named exactly `name`.
bool cubin_has_symbol(const std::string& cubin, const std::string& name);

}  // namespace mf
