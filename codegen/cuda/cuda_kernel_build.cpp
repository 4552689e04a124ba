#include "codegen/cuda/cuda_kernel_build.hpp"

#include "codegen/cuda/nvrtc_compiler.hpp"

namespace mf {

std::unique_ptr<CudaKernel> build_cuda_kernel(const CudaKernelSource& src, const CudaArch& arch,
                                              const std::filesystem::path& cache_dir) {
    const CudaBinary bin = compile_cuda_kernel(src, arch, cache_dir);
    return std::make_unique<CudaKernel>(bin.cubin, src.name, src.block_threads, src.dynamic_smem_bytes);
}

}  // namespace mf
