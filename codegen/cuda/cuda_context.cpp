#include "codegen/cuda/cuda_context.hpp"

#include <stdexcept>

namespace mf {

CudaContext::CudaContext(int ordinal) {
    const CudaDriverApi& d = cuda_driver();
    GpuQuery q = query_cuda_gpus();
    if (ordinal < 0 || ordinal >= static_cast<int>(q.gpus.size()))
        throw std::runtime_error("CUDA device " + std::to_string(ordinal) + " does not exist (" +
                                 std::to_string(q.gpus.size()) + " found" +
                                 (q.unavailable.empty() ? "" : ": " + q.unavailable) + ")");
    info_ = q.gpus[ordinal];
    cu_check(d.device_get(&device_, ordinal), "cuDeviceGet");
    cu_check(d.primary_ctx_retain(&ctx_, device_), "cuDevicePrimaryCtxRetain");
    make_current();
}

CudaContext::~CudaContext() {
    if (ctx_) cuda_driver().primary_ctx_release(device_);
}

void CudaContext::make_current() const {
    cu_check(cuda_driver().ctx_set_current(ctx_), "cuCtxSetCurrent");
}

void CudaContext::synchronize() const {
    cu_check(cuda_driver().ctx_synchronize(), "cuCtxSynchronize");
}

}  // namespace mf
