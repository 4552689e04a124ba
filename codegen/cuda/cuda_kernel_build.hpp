// Source -> CUBIN (NVRTC, disk cache) -> loaded kernel, in one call: how the runtime resolves a plan's CUDA
// kernel.
#pragma once
#include <filesystem>
#include <memory>

#include "codegen/cuda/cuda_kernel_source.hpp"
#include "codegen/cuda/cuda_module.hpp"

namespace mf {

// Needs a current CudaContext. Throws std::runtime_error with the NVRTC log or the driver's message.
std::unique_ptr<CudaKernel> build_cuda_kernel(const CudaKernelSource& src, const CudaArch& arch,
                                              const std::filesystem::path& cache_dir);

}  // namespace mf
