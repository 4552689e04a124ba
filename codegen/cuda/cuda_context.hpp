// A device's primary context, made current on the creating thread. Owns nothing else; modules, buffers and
// streams made while it is current belong to it and must be destroyed before it.
#pragma once
#include "codegen/cuda/cuda_driver.hpp"

namespace mf {

class CudaContext {
  public:
    // Throws std::runtime_error when there is no driver or no such device.
    explicit CudaContext(int ordinal = 0);
    ~CudaContext();
    CudaContext(const CudaContext&) = delete;
    CudaContext& operator=(const CudaContext&) = delete;

    const GpuInfo& info() const { return info_; }
    // Makes this context current on the calling thread (every thread that launches must do so once).
    void make_current() const;
    void synchronize() const;

  private:
    GpuInfo info_;
    CuDevice device_ = 0;
    CuContext ctx_ = nullptr;
};

}  // namespace mf
